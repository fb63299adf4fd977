//! `berth-agent-gateway`: the agent gateway as its own process (one container in compose).

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::Context;
use berth_agent_gateway::{AgentGateway, AgentGatewayOptions};
use berth_eventlog::{EventLog, LogConfig};
use clap::Parser;
use tracing::{info, warn};

/// Holds agent WebSocket sessions for the Berth control plane.
#[derive(Debug, Parser)]
#[command(name = "berth-agent-gateway", version)]
struct Cli {
    /// NATS server holding the event log.
    #[arg(long, env = "BERTH_NATS_URL", default_value = "nats://127.0.0.1:4222")]
    nats_url: String,
    /// Address agents connect to (`ws://<listen>/ws`).
    #[arg(
        long,
        env = "BERTH_AGENT_GATEWAY_LISTEN",
        default_value = "0.0.0.0:8081"
    )]
    listen: SocketAddr,
    /// Read model: `sqlite://<file>` or `postgres://...`.
    #[arg(
        long,
        env = "BERTH_READ_MODEL_URL",
        default_value = "sqlite://agent-gateway.db"
    )]
    read_model_url: String,
    /// Shared secret agents must present.
    #[arg(long, env = "BERTH_AGENT_TOKEN", hide_env_values = true)]
    token: String,
    /// Disconnect an agent silent this long: `30s`, `1500ms`, `2m` or plain seconds.
    #[arg(long, env = "BERTH_HEARTBEAT_TIMEOUT", default_value = "30s", value_parser = parse_duration)]
    heartbeat_timeout: Duration,
    /// This replica's name in `AgentConnected` (default: the host name).
    #[arg(long, env = "BERTH_GATEWAY_ID")]
    gateway_id: Option<String>,
    /// Region of the ARNs handed to agents.
    #[arg(long, env = "BERTH_REGION", default_value = "us-east-1")]
    region: String,
    /// Account id of the ARNs handed to agents.
    #[arg(long, env = "BERTH_ACCOUNT_ID", default_value = "000000000000")]
    account_id: String,
    /// Drop the read model and replay the log from sequence 1.
    #[arg(long)]
    rebuild: bool,
}

// mimalloc: the services allocate many small, short-lived values (events, rows,
// JSON); with it, reading the log got 17% faster and a replay 10% (docs/benchmarks.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let _telemetry = berth_telemetry::init("berth-agent-gateway");
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(run(cli))
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    anyhow::ensure!(
        !cli.token.is_empty(),
        "BERTH_AGENT_TOKEN (--token) must not be empty"
    );
    let log = EventLog::connect(&cli.nats_url, &LogConfig::default())
        .await
        .with_context(|| format!("opening the event log on {}", cli.nats_url))?;
    let mut options = AgentGatewayOptions::new(cli.token, cli.read_model_url);
    options.rebuild = cli.rebuild;
    options.heartbeat_timeout = cli.heartbeat_timeout;
    options.region = cli.region;
    options.account_id = cli.account_id;
    options.gateway_id = cli.gateway_id.unwrap_or_else(host_name);
    let gateway = AgentGateway::build(log, options)
        .await
        .context("starting agent-gateway")?;
    let listener = tokio::net::TcpListener::bind(cli.listen)
        .await
        .with_context(|| format!("binding {}", cli.listen))?;
    gateway.run(listener, shutdown_signal()).await?;
    info!("agent-gateway stopped");
    Ok(())
}

/// Completes on the first SIGTERM or Ctrl-C (drain); a second one exits at once.
async fn shutdown_signal() {
    wait_for_signal().await;
    info!("draining; signal again to exit now");
    tokio::spawn(async {
        wait_for_signal().await;
        warn!("second signal: exiting");
        std::process::exit(130);
    });
}

async fn wait_for_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut terminate) => {
                tokio::select! {
                    _ = terminate.recv() => {}
                    _ = tokio::signal::ctrl_c() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

fn host_name() -> String {
    std::env::var("HOSTNAME")
        .ok()
        .or_else(|| std::fs::read_to_string("/proc/sys/kernel/hostname").ok())
        .map(|name| name.trim().to_owned())
        .filter(|name| !name.is_empty())
        .unwrap_or_else(|| "agent-gateway".to_owned())
}

/// `30s`, `1500ms`, `2m`, or plain seconds.
fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let (number, unit) = match text.find(|c: char| !c.is_ascii_digit()) {
        Some(at) => text.split_at(at),
        None => (text, "s"),
    };
    let value: u64 = number
        .parse()
        .map_err(|_| format!("not a duration: {text:?}"))?;
    match unit {
        "ms" => Ok(Duration::from_millis(value)),
        "s" => Ok(Duration::from_secs(value)),
        "m" => Ok(Duration::from_secs(value * 60)),
        _ => Err(format!("unknown unit in {text:?} (use ms, s or m)")),
    }
}
