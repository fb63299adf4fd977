//! `berth-api-gateway`: the ECS API as its own process (the compose stack).

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context;
use berth_api_gateway::read_model::TASK_WRITE_INTERVAL;
use berth_api_gateway::{ApiGateway, ApiGatewayOptions, health_router};
use berth_aws_protocol::sigv4::KeyStore;
use berth_eventlog::{EventLog, LogConfig};
use clap::Parser;

#[derive(Parser)]
#[command(name = "berth-api-gateway", about = "Berth's ECS-compatible API")]
struct Args {
    #[arg(long, env = "BERTH_NATS_URL", default_value = "nats://127.0.0.1:4222")]
    nats_url: String,
    #[arg(long, env = "BERTH_API_ADDR", default_value = "0.0.0.0:8080")]
    listen: SocketAddr,
    #[arg(
        long,
        env = "BERTH_READ_MODEL_URL",
        default_value = "sqlite://api-gateway.db"
    )]
    read_model_url: String,
    #[arg(long, env = "BERTH_ACCOUNT_ID", default_value = "000000000000")]
    account_id: String,
    #[arg(long)]
    rebuild: bool,
    #[arg(long, default_value_t = 1024 * 1024)]
    body_limit: usize,
}

// mimalloc: the services allocate many small, short-lived values (events, rows,
// JSON); with it, reading the log got 17% faster and a replay 10% (docs/benchmarks.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let _telemetry = berth_telemetry::init("berth-api-gateway");
    // BERTH_ACCESS_KEY_ID / BERTH_SECRET_ACCESS_KEY and BERTH_CREDENTIALS_FILE.
    let keys = KeyStore::from_env().context("loading credentials")?;
    anyhow::ensure!(
        !keys.is_empty(),
        "no credentials: set BERTH_ACCESS_KEY_ID and BERTH_SECRET_ACCESS_KEY"
    );
    let log = EventLog::connect(&args.nats_url, &LogConfig::default()).await?;
    let options = ApiGatewayOptions {
        account_id: args.account_id,
        read_model_url: args.read_model_url,
        rebuild: args.rebuild,
        body_limit: args.body_limit,
        task_write_interval: TASK_WRITE_INTERVAL,
    };
    let gateway = ApiGateway::build(log, &options).await?;
    let router = gateway
        .router(Arc::new(keys), options.body_limit)
        .merge(health_router(vec![gateway.projection()]));
    let listener = tokio::net::TcpListener::bind(args.listen).await?;
    tracing::info!(address = %args.listen, "api-gateway listening");
    gateway
        .run(listener, router, async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await?;
    Ok(())
}
