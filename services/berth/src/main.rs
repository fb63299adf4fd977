//! `berth`: Berth's command line. `berth up` runs the whole control plane in one
//! process; see `berth --help`.

use clap::Parser;

fn main() -> anyhow::Result<()> {
    let cli = berth::cli::Cli::parse();
    let _telemetry = berth_telemetry::init("berth");
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(berth::cli::run(cli))
}
