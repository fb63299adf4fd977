//! `berth`: Berth's command line. `berth up` runs the whole control plane in one
//! process; see `berth --help`.

use clap::Parser;

// mimalloc: the services allocate many small, short-lived values (events, rows,
// JSON); with it, reading the log got 17% faster and a replay 10% (docs/benchmarks.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> anyhow::Result<()> {
    let cli = berth::cli::Cli::parse();
    let _telemetry = berth_telemetry::init("berth");
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(berth::cli::run(cli))
}
