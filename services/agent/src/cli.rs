//! The command line:
//!
//! ```text
//! berth-agent --gateway ws://HOST:PORT --token TOKEN [--cluster NAME] [--driver docker|process]
//!             [--data-dir DIR] [--zone Z] [--attribute k=v ...] [--cpu-units N] [--memory-mib N]
//! berth-agent simulate --count N --gateway ws://HOST:PORT --token TOKEN [--cluster NAME]
//!             [--zones a,b,c] [--data-dir DIR] ...
//! ```
//!
//! The token may come from `BERTH_AGENT_TOKEN` (better than the command line, which other users of
//! the host can read in `ps`).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::config::{AgentConfig, DEFAULT_DATA_DIR, DriverChoice, Timing};
use crate::error::AgentError;
use crate::run_agent;
use crate::runtime::docker::DEFAULT_DOCKER_SOCKET;
use crate::simulate::{DEFAULT_SIM_CPU_UNITS, DEFAULT_SIM_MEMORY_MIB, FleetConfig, run_fleet};

/// `berth-agent`: runs this host's tasks for a Berth cluster.
#[derive(Debug, Parser)]
#[command(
    name = "berth-agent",
    version,
    about = "Runs this host's tasks for a Berth cluster",
    args_conflicts_with_subcommands = true,
    subcommand_negates_reqs = true
)]
pub struct Cli {
    /// A subcommand instead of running the agent.
    #[command(subcommand)]
    pub command: Option<Command>,
    /// The agent's options.
    #[command(flatten)]
    pub agent: AgentArgs,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run N simulated agents in this process (they speak the real protocol; tasks only pretend
    /// to run), to load a control plane for benchmarks.
    Simulate(SimulateArgs),
}

/// What every agent needs to reach and join a cluster.
#[derive(Debug, Clone, Args)]
pub struct GatewayArgs {
    /// Cluster to join.
    #[arg(long, default_value = "default")]
    pub cluster: String,
    /// The agent gateway, ws://HOST:PORT (the path /ws is added).
    #[arg(long, env = "BERTH_AGENT_GATEWAY", required = true)]
    pub gateway: Option<String>,
    /// Shared secret that admits agents to the cluster.
    #[arg(
        long,
        env = "BERTH_AGENT_TOKEN",
        hide_env_values = true,
        required = true
    )]
    pub token: Option<String>,
    /// A custom instance attribute, NAME=VALUE; repeat for more.
    #[arg(long = "attribute", value_name = "NAME=VALUE", value_parser = parse_attribute)]
    pub attributes: Vec<(String, String)>,
    /// CPU units to offer (default: cores × 1024; simulated: 4096).
    #[arg(long, value_name = "N")]
    pub cpu_units: Option<u32>,
    /// Memory to offer in MiB (default: MemTotal; simulated: 16384).
    #[arg(long, value_name = "N")]
    pub memory_mib: Option<u64>,
    /// Seconds between the gateway's heartbeats; a gateway silent for twice as long is taken as
    /// gone and the agent reconnects.
    #[arg(long, value_name = "SECONDS", default_value_t = 30, value_parser = clap::value_parser!(u64).range(1..))]
    pub heartbeat_period: u64,
}

/// Options of a real agent.
#[derive(Debug, Clone, Args)]
pub struct AgentArgs {
    /// Gateway and cluster.
    #[command(flatten)]
    pub gateway: GatewayArgs,
    /// How tasks run: Docker containers, or entryPoint + command as host processes.
    #[arg(long, value_enum, default_value_t = DriverArg::Docker)]
    pub driver: DriverArg,
    /// Where the agent keeps its instance id, unacknowledged reports and task directories.
    #[arg(long, default_value = DEFAULT_DATA_DIR)]
    pub data_dir: PathBuf,
    /// Availability zone (the ecs.availability-zone attribute).
    #[arg(long)]
    pub zone: Option<String>,
    /// The Docker engine's socket (docker driver).
    #[arg(long, default_value = DEFAULT_DOCKER_SOCKET)]
    pub docker_socket: PathBuf,
    /// What ECS shows as the instance's ec2InstanceId (default: the hostname).
    #[arg(long)]
    pub host_id: Option<String>,
}

/// The driver names on the command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum DriverArg {
    /// Docker containers through the Engine API.
    Docker,
    /// entryPoint + command as host processes.
    Process,
}

/// Options of `simulate`.
#[derive(Debug, Clone, Args)]
pub struct SimulateArgs {
    /// Gateway and cluster, shared by every simulated agent.
    #[command(flatten)]
    pub gateway: GatewayArgs,
    /// Number of agents.
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..))]
    pub count: u64,
    /// Availability zones, comma-separated, assigned round-robin.
    #[arg(long, value_delimiter = ',')]
    pub zones: Vec<String>,
    /// Keep each agent's instance id and reports under DIR/agent-NNNNN (default: in memory only).
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// Index of the first agent, so several fleets can join one cluster with distinct host ids.
    #[arg(long, default_value_t = 0)]
    pub first_index: usize,
    /// Milliseconds between starting two agents.
    #[arg(long, default_value_t = 2)]
    pub spawn_interval_ms: u64,
    /// Seconds between progress lines.
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u64).range(1..))]
    pub progress_secs: u64,
}

fn parse_attribute(text: &str) -> Result<(String, String), String> {
    let (name, value) = text
        .split_once('=')
        .ok_or_else(|| format!("expected NAME=VALUE, got {text:?}"))?;
    // The ECS rule for attribute names.
    let valid = !name.is_empty()
        && name.len() <= 128
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '/' | '@'));
    if !valid {
        return Err(format!(
            "invalid attribute name {name:?}: 1 to 128 letters, digits, '-', '_', '.', '/', '@'"
        ));
    }
    if value.len() > 128 {
        return Err(format!(
            "attribute {name}: value longer than 128 characters"
        ));
    }
    Ok((name.to_string(), value.to_string()))
}

impl GatewayArgs {
    fn required(value: Option<String>, flag: &str) -> Result<String, AgentError> {
        value.ok_or_else(|| AgentError::Config(format!("{flag} is required")))
    }

    fn attributes(&self) -> BTreeMap<String, String> {
        self.attributes.iter().cloned().collect()
    }

    fn timing(&self) -> Timing {
        Timing::with_heartbeat_period(Duration::from_secs(self.heartbeat_period))
    }
}

impl AgentArgs {
    /// The agent's configuration.
    pub fn into_config(self) -> Result<AgentConfig, AgentError> {
        let driver = match self.driver {
            DriverArg::Docker => DriverChoice::Docker {
                socket: self.docker_socket,
            },
            DriverArg::Process => DriverChoice::Process,
        };
        let mut config = AgentConfig::new(
            self.gateway.cluster.clone(),
            GatewayArgs::required(self.gateway.gateway.clone(), "--gateway")?,
            GatewayArgs::required(self.gateway.token.clone(), "--token")?,
            driver,
            Some(self.data_dir),
        );
        config.zone = self.zone;
        config.attributes = self.gateway.attributes();
        config.cpu_units = self.gateway.cpu_units;
        config.memory_mib = self.gateway.memory_mib;
        config.host_id = self.host_id;
        config.timing = self.gateway.timing();
        Ok(config)
    }
}

impl SimulateArgs {
    /// The fleet's configuration.
    pub fn into_fleet_config(self) -> Result<FleetConfig, AgentError> {
        let count = usize::try_from(self.count)
            .map_err(|_| AgentError::Config("--count is too large".to_string()))?;
        let mut fleet = FleetConfig::new(
            count,
            self.gateway.cluster.clone(),
            GatewayArgs::required(self.gateway.gateway.clone(), "--gateway")?,
            GatewayArgs::required(self.gateway.token.clone(), "--token")?,
        );
        fleet.first_index = self.first_index;
        fleet.zones = self
            .zones
            .into_iter()
            .map(|zone| zone.trim().to_string())
            .filter(|zone| !zone.is_empty())
            .collect();
        fleet.data_dir = self.data_dir;
        fleet.cpu_units = self.gateway.cpu_units.unwrap_or(DEFAULT_SIM_CPU_UNITS);
        fleet.memory_mib = self.gateway.memory_mib.unwrap_or(DEFAULT_SIM_MEMORY_MIB);
        fleet.attributes = self.gateway.attributes();
        fleet.spawn_interval = Duration::from_millis(self.spawn_interval_ms);
        fleet.progress_interval = Duration::from_secs(self.progress_secs);
        fleet.timing = self.gateway.timing();
        Ok(fleet)
    }
}

/// Runs what the command line asks until SIGINT or SIGTERM (a second one exits at once).
pub async fn run(cli: Cli) -> Result<(), AgentError> {
    match cli.command {
        Some(Command::Simulate(args)) => {
            let summary = run_fleet(args.into_fleet_config()?, shutdown_signal()).await?;
            let s = summary.stats;
            println!(
                "simulated agents: {agents} started, {failed} failed; all registered after: {after}\n\
                 registrations {registrations}, disconnects {disconnects}, payloads {payloads}, \
                 reports sent {sent} / acknowledged {acked}, heartbeats {heartbeats}",
                agents = summary.agents,
                failed = summary.failed,
                after = summary
                    .all_registered_after
                    .map_or_else(|| "never".to_string(), |d| format!("{} ms", d.as_millis())),
                registrations = s.registrations,
                disconnects = s.disconnects,
                payloads = s.payloads,
                sent = s.reports_sent,
                acked = s.reports_acked,
                heartbeats = s.heartbeats,
            );
            Ok(())
        }
        None => run_agent(cli.agent.into_config()?, shutdown_signal()).await,
    }
}

/// Resolves on the first SIGINT or SIGTERM; a second one exits the process at once (a drain that
/// hangs must not make the operator reach for SIGKILL).
async fn shutdown_signal() {
    wait_for_signal().await;
    tracing::info!("stopping (signal again to exit at once)");
    tokio::spawn(async {
        wait_for_signal().await;
        std::process::exit(130);
    });
}

async fn wait_for_signal() {
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

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Cli, clap::Error> {
        Cli::try_parse_from(std::iter::once("berth-agent").chain(args.iter().copied()))
    }

    #[test]
    fn agent_flags_become_a_config() {
        let cli = parse(&[
            "--cluster",
            "prod",
            "--gateway",
            "ws://gw:7000",
            "--token",
            "t0k",
            "--driver",
            "process",
            "--data-dir",
            "/tmp/agent",
            "--zone",
            "az-1",
            "--attribute",
            "stack=blue",
            "--attribute",
            "empty=",
            "--cpu-units",
            "2048",
            "--memory-mib",
            "1024",
            "--heartbeat-period",
            "5",
        ])
        .expect("parse");
        assert!(cli.command.is_none());
        let config = cli.agent.into_config().expect("config");
        assert_eq!(config.cluster, "prod");
        assert_eq!(config.token, "t0k");
        assert_eq!(config.driver, DriverChoice::Process);
        assert_eq!(config.data_dir, Some(PathBuf::from("/tmp/agent")));
        assert_eq!(config.zone.as_deref(), Some("az-1"));
        assert_eq!(
            config.attributes.get("stack").map(String::as_str),
            Some("blue")
        );
        assert_eq!(config.attributes.get("empty").map(String::as_str), Some(""));
        assert_eq!(config.cpu_units, Some(2048));
        assert_eq!(config.memory_mib, Some(1024));
        assert_eq!(config.timing.idle_timeout, Duration::from_secs(10));
    }

    #[test]
    fn docker_is_the_default_driver() {
        let cli = parse(&["--gateway", "ws://gw:1", "--token", "t"]).expect("parse");
        let config = cli.agent.into_config().expect("config");
        assert_eq!(config.driver, DriverChoice::docker());
        assert_eq!(config.cluster, "default");
        assert_eq!(config.data_dir, Some(PathBuf::from(DEFAULT_DATA_DIR)));
    }

    #[test]
    fn bad_attributes_and_missing_gateway_are_refused() {
        assert!(
            parse(&[
                "--gateway",
                "ws://gw:1",
                "--token",
                "t",
                "--attribute",
                "novalue"
            ])
            .is_err()
        );
        assert!(
            parse(&[
                "--gateway",
                "ws://gw:1",
                "--token",
                "t",
                "--attribute",
                "a b=c"
            ])
            .is_err()
        );
        if std::env::var_os("BERTH_AGENT_GATEWAY").is_none() {
            assert!(parse(&["--token", "t"]).is_err());
        }
    }

    #[test]
    fn simulate_takes_its_own_flags() {
        let cli = parse(&[
            "simulate",
            "--count",
            "1000",
            "--cluster",
            "bench",
            "--gateway",
            "ws://gw:7000",
            "--token",
            "t",
            "--zones",
            "a,b,c",
        ])
        .expect("parse");
        let Some(Command::Simulate(args)) = cli.command else {
            panic!("expected simulate");
        };
        let fleet = args.into_fleet_config().expect("fleet");
        assert_eq!(fleet.count, 1000);
        assert_eq!(fleet.cluster, "bench");
        assert_eq!(fleet.zones, ["a", "b", "c"]);
        assert_eq!(fleet.cpu_units, DEFAULT_SIM_CPU_UNITS);
        assert!(fleet.data_dir.is_none());
    }

    #[test]
    fn simulate_does_not_mix_with_agent_flags() {
        assert!(parse(&["--driver", "process", "simulate", "--count", "1"]).is_err());
        assert!(
            parse(&[
                "simulate",
                "--count",
                "0",
                "--gateway",
                "ws://g:1",
                "--token",
                "t"
            ])
            .is_err()
        );
    }
}
