//! Command-line interface.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use crate::{ControlPlane, ControlPlaneConfig, load_key_store};

#[derive(Debug, Parser)]
#[command(name = "berth", version, about = "Berth: an ECS-compatible container orchestrator")]
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
}

pub async fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Up(args) => up(args).await,
    }
}

async fn up(args: UpArgs) -> anyhow::Result<()> {
    let (keys, credentials) = load_key_store(args.credentials_file.as_deref(), &args.data_dir)?;
    let config = ControlPlaneConfig {
        data_dir: args.data_dir,
        nats_url: args.nats_url,
        nats_server_bin: args.nats_server_bin,
        api_addr: args.api_addr,
        read_model_url: args.read_model_url,
        rebuild: args.rebuild,
        account_id: args.account_id,
        body_limit: args.body_limit,
    };
    let control_plane = ControlPlane::start(config, keys).await?;
    let endpoint = control_plane.endpoint();
    println!(
        "\nBerth is up.\n\
         \n  ECS API     {endpoint}   (GET {endpoint}/health answers 200 once caught up)\
         \n  NATS        {nats}\
         \n  credentials AWS_ACCESS_KEY_ID={key}\
         \n              AWS_SECRET_ACCESS_KEY={secret}\
         \n              (any region; ARNs use the one you sign for)\
         \n\nTry:\
         \n  export AWS_ACCESS_KEY_ID={key} AWS_SECRET_ACCESS_KEY={secret} AWS_DEFAULT_REGION=us-east-1\
         \n  aws ecs create-cluster --cluster-name demo --endpoint-url {endpoint}\
         \n  aws ecs list-clusters --endpoint-url {endpoint}\
         \n  aws ecs register-task-definition --family hello --container-definitions \
'[{{\"name\":\"hello\",\"image\":\"busybox\",\"memory\":64,\"command\":[\"echo\",\"hi\"]}}]' --endpoint-url {endpoint}\
         \n  aws ecs describe-task-definition --task-definition hello --endpoint-url {endpoint}\
         \n\nCtrl-C stops Berth (a second Ctrl-C exits at once).\n",
        nats = control_plane.nats_url,
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
