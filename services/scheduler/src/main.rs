//! `berth-scheduler`: the scheduler as its own process (the compose stack).

use berth_eventlog::{EventLog, LogConfig};
use berth_scheduler::{Scheduler, SchedulerOptions};
use clap::Parser;

#[derive(Parser)]
#[command(name = "berth-scheduler", about = "Berth's scheduler: places tasks")]
struct Args {
    #[arg(long, env = "BERTH_NATS_URL", default_value = "nats://127.0.0.1:4222")]
    nats_url: String,
    #[arg(
        long,
        env = "BERTH_READ_MODEL_URL",
        default_value = "sqlite://scheduler.db"
    )]
    read_model_url: String,
    #[arg(long)]
    rebuild: bool,
}

// mimalloc: the services allocate many small, short-lived values (events, rows,
// JSON); with it, reading the log got 17% faster and a replay 10% (docs/benchmarks.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let _telemetry = berth_telemetry::init("berth-scheduler");
    let log = EventLog::connect(&args.nats_url, &LogConfig::default()).await?;
    let scheduler = Scheduler::build(
        log,
        &SchedulerOptions {
            read_model_url: args.read_model_url,
            rebuild: args.rebuild,
        },
    )
    .await?;
    scheduler
        .run(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await;
    Ok(())
}
