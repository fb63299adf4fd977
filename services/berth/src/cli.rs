//! Command-line interface.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};

use berth_agent::DriverChoice;

use crate::{ControlPlane, ControlPlaneConfig, load_agent_token, load_key_store};

#[derive(Debug, Parser)]
#[command(
    name = "berth",
    version,
    about = "Berth: an ECS-compatible container orchestrator"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the whole control plane in this process.
    Up(UpArgs),
}

#[derive(Debug, Args)]
pub struct UpArgs {
    /// Data directory: the JetStream store (when Berth starts nats-server), the SQLite
    /// read models, and generated credentials.
    #[arg(long, default_value = "./.berth")]
    pub data_dir: PathBuf,
    /// Use this NATS server instead of starting one (it needs JetStream, 2.12+).
    #[arg(long, env = "BERTH_NATS_URL")]
    pub nats_url: Option<String>,
    /// The nats-server binary to start when --nats-url is not given.
    #[arg(long, env = "BERTH_NATS_SERVER_BIN")]
    pub nats_server_bin: Option<PathBuf>,
    /// Address of the ECS API.
    #[arg(long, default_value = "127.0.0.1:8080")]
    pub api_addr: SocketAddr,
    /// A postgres:// URL for the read models (default: SQLite files in the data dir).
    #[arg(long, env = "BERTH_READ_MODEL_URL")]
    pub read_model_url: Option<String>,
    /// Rebuild every read model from the start of the log.
    #[arg(long)]
    pub rebuild: bool,
    /// The account id in ARNs.
    #[arg(long, env = "BERTH_ACCOUNT_ID", default_value = "000000000000")]
    pub account_id: String,
    /// A credentials file (AWS shared-credentials format) with more key pairs.
    #[arg(long, env = "BERTH_CREDENTIALS_FILE")]
    pub credentials_file: Option<PathBuf>,
    /// Largest request body accepted, in bytes.
    #[arg(long, default_value_t = 1024 * 1024)]
    pub body_limit: usize,
    /// Where agents connect (`berth-agent --gateway ws://ADDR`).
    #[arg(long, default_value = "127.0.0.1:8081")]
    pub agent_gateway_addr: SocketAddr,
    /// How the local agent runs tasks: `docker`, `process`, or `none` for no local
    /// agent. Default: docker when a Docker engine answers, else process.
    #[arg(long)]
    pub agent_driver: Option<String>,
    /// An agent silent this long is marked disconnected (e.g. `30s`, `500ms`, `2m`).
    #[arg(long, default_value = "30s", value_parser = parse_duration)]
    pub agent_heartbeat_timeout: Duration,
}

/// `500ms`, `30s`, `2m`, `1h`.
fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let number: u64 = number
        .parse()
        .map_err(|_| format!("not a duration: {text}"))?;
    match unit {
        "ms" => Ok(Duration::from_millis(number)),
        "s" | "" => Ok(Duration::from_secs(number)),
        "m" => Ok(Duration::from_secs(number * 60)),
        "h" => Ok(Duration::from_secs(number * 3600)),
        _ => Err(format!("unknown unit in {text}: use ms, s, m or h")),
    }
}

/// The local agent's driver: as asked, or Docker when its socket answers.
fn local_agent_driver(asked: Option<&str>) -> anyhow::Result<Option<DriverChoice>> {
    match asked {
        Some("none") => Ok(None),
        Some("docker") => Ok(Some(DriverChoice::docker())),
        Some("process") => Ok(Some(DriverChoice::Process)),
        Some(other) => anyhow::bail!("--agent-driver must be docker, process or none, not {other}"),
        None => {
            let docker = std::os::unix::net::UnixStream::connect("/var/run/docker.sock").is_ok();
            Ok(Some(if docker {
                DriverChoice::docker()
            } else {
                DriverChoice::Process
            }))
        }
    }
}

pub async fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Up(args) => up(args).await,
    }
}

async fn up(args: UpArgs) -> anyhow::Result<()> {
    let (keys, credentials) = load_key_store(args.credentials_file.as_deref(), &args.data_dir)?;
    let agent_token = load_agent_token(&args.data_dir)?;
    let local_agent = local_agent_driver(args.agent_driver.as_deref())?;
    let config = ControlPlaneConfig {
        data_dir: args.data_dir,
        nats_url: args.nats_url,
        nats_server_bin: args.nats_server_bin,
        api_addr: args.api_addr,
        read_model_url: args.read_model_url,
        rebuild: args.rebuild,
        account_id: args.account_id,
        body_limit: args.body_limit,
        agent_gateway_addr: args.agent_gateway_addr,
        agent_token: agent_token.clone(),
        agent_heartbeat_timeout: args.agent_heartbeat_timeout,
        local_agent: local_agent.clone(),
    };
    let control_plane = ControlPlane::start(config, keys).await?;
    let endpoint = control_plane.endpoint();
    println!(
        "\nBerth is up.\n\
         \n  ECS API     {endpoint}   (GET {endpoint}/health answers 200 once caught up)\
         \n  NATS        {nats}\
         \n  agents      ws://{agents}   token {agent_token} (BERTH_AGENT_TOKEN)\
         \n  local agent {local}   (cluster `default`; task logs under <data-dir>/agent/tasks/<task-id>/<container>.log)\
         \n  credentials AWS_ACCESS_KEY_ID={key}\
         \n              AWS_SECRET_ACCESS_KEY={secret}\
         \n              (any region; ARNs use the one you sign for)\
         \n\nTry:\
         \n  export AWS_ACCESS_KEY_ID={key} AWS_SECRET_ACCESS_KEY={secret} AWS_DEFAULT_REGION=us-east-1\
         \n  aws ecs create-cluster --cluster-name demo --endpoint-url {endpoint}\
         \n  aws ecs list-clusters --endpoint-url {endpoint}\
         \n  aws ecs register-task-definition --family hello --container-definitions \
'[{{\"name\":\"hello\",\"image\":\"busybox\",\"memory\":64,\"command\":[\"echo\",\"hi\"]}}]' --endpoint-url {endpoint}\
         \n  aws ecs run-task --task-definition hello --endpoint-url {endpoint}\
         \n  aws ecs list-tasks --desired-status STOPPED --endpoint-url {endpoint}\
         \n  berth-agent --cluster default --gateway ws://{agents} --token $BERTH_AGENT_TOKEN --driver process --data-dir ./agent2\
         \n\nCtrl-C stops Berth (a second Ctrl-C exits at once).\n",
        nats = control_plane.nats_url,
        agents = control_plane.agent_gateway_addr,
        local = match &local_agent {
            None => "none".to_owned(),
            Some(DriverChoice::Docker { .. }) => "docker".to_owned(),
            Some(DriverChoice::Process) => "process".to_owned(),
            Some(DriverChoice::Sim) => "simulated".to_owned(),
        },
        key = credentials.access_key_id,
        secret = credentials.secret_access_key,
    );
    shutdown_signal().await;
    eprintln!("stopping: finishing in-flight work (Ctrl-C again to exit now)");
    tokio::select! {
        () = control_plane.stop() => Ok(()),
        () = shutdown_signal() => std::process::exit(130),
    }
}

/// SIGINT or SIGTERM.
async fn shutdown_signal() {
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        () = terminate => {}
    }
}
