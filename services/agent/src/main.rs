//! `berth-agent`: runs this host's tasks for a Berth cluster (or, with `simulate`, a fleet of
//! pretend hosts). Everything but argument parsing, tracing and the runtime lives in the library.

use std::process::ExitCode;

use clap::Parser;

// mimalloc: the services allocate many small, short-lived values (events, rows,
// JSON); with it, reading the log got 17% faster and a replay 10% (docs/benchmarks.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let cli = berth_agent::cli::Cli::parse();
    let _telemetry = berth_telemetry::init("berth-agent");
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            tracing::error!(%error, "cannot start the async runtime");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(berth_agent::cli::run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            tracing::error!(%error, "berth-agent stopped");
            ExitCode::FAILURE
        }
    }
}
