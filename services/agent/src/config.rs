//! What one agent needs to know to run: where the gateway is, who it is, what it offers, and the
//! timers of its session. [`AgentConfig`] is filled by the command line (`cli`) or, for `berth up`
//! and tests, built in code with [`AgentConfig::new`] and adjusted field by field.

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use crate::error::AgentError;
use crate::stats::AgentStats;

/// TCP ports the real ECS agent reserves by default (`config_unix.go`): ssh, the Docker API (plain
/// and TLS) and the agent's own introspection ports. Berth keeps them so placements that worked on
/// ECS keep working here.
pub const DEFAULT_RESERVED_TCP_PORTS: [u16; 5] = [22, 2375, 2376, 51678, 51679];

/// The heartbeat period the agent expects from the gateway unless told otherwise. The ACS idle
/// timer is one minute; half of it keeps a dead gateway noticed within a minute.
pub const DEFAULT_HEARTBEAT_PERIOD: Duration = Duration::from_secs(30);

/// The default data dir of an agent installed on a host (the ECS agent uses `/var/lib/ecs/data`).
pub const DEFAULT_DATA_DIR: &str = "/var/lib/berth-agent";

/// The runtime driver an agent runs tasks with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DriverChoice {
    /// Docker containers through the Engine API on this unix socket.
    Docker {
        /// The engine's socket, normally `/var/run/docker.sock`.
        socket: PathBuf,
    },
    /// `entryPoint` + `command` as host processes.
    Process,
    /// Nothing runs: tasks are reported PENDING then RUNNING at once and STOPPED (exit 0) when
    /// stopped. For simulated fleets that load the control plane without loading the host.
    Sim,
}

impl DriverChoice {
    /// Docker on the default socket.
    pub fn docker() -> Self {
        Self::Docker {
            socket: PathBuf::from(crate::runtime::docker::DEFAULT_DOCKER_SOCKET),
        }
    }
}

/// The timers of a session. Defaults suit a real host; tests shorten them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Timing {
    /// A session with no frame from the gateway for this long is dead (the gateway or the network
    /// is gone without a FIN): the agent drops it and reconnects. Twice the heartbeat period, so
    /// one late heartbeat is tolerated.
    pub idle_timeout: Duration,
    /// Longest wait for the TCP connect and the WebSocket handshake.
    pub connect_timeout: Duration,
    /// Longest wait for one write to the gateway (a gateway that stops reading must not wedge the
    /// agent).
    pub send_timeout: Duration,
    /// First reconnect delay; it doubles after every failed attempt.
    pub backoff_initial: Duration,
    /// Upper bound of the reconnect delay.
    pub backoff_max: Duration,
    /// A registered session that lasted this long counts as healthy: the next reconnect starts
    /// from [`Timing::backoff_initial`] again. Shorter sessions keep doubling, so a gateway that
    /// accepts and then crashes is not hammered by every agent four times a second.
    pub healthy_after: Duration,
}

impl Timing {
    /// Timers for a gateway that sends a heartbeat every `period`.
    pub fn with_heartbeat_period(period: Duration) -> Self {
        Self {
            idle_timeout: period.saturating_mul(2),
            ..Self::default()
        }
    }
}

impl Default for Timing {
    fn default() -> Self {
        Self {
            idle_timeout: DEFAULT_HEARTBEAT_PERIOD.saturating_mul(2),
            connect_timeout: Duration::from_secs(10),
            send_timeout: Duration::from_secs(10),
            backoff_initial: Duration::from_millis(250),
            backoff_max: Duration::from_secs(30),
            healthy_after: Duration::from_secs(30),
        }
    }
}

/// Everything one agent runs with.
#[derive(Clone)]
pub struct AgentConfig {
    /// Cluster to join (name or ARN).
    pub cluster: String,
    /// The gateway, `ws://HOST:PORT` (path `/ws` added when absent); `http://` is taken as `ws://`.
    pub gateway: String,
    /// Shared secret that admits the agent.
    pub token: String,
    /// How tasks are run.
    pub driver: DriverChoice,
    /// Where the instance id, the unacknowledged reports and the task directories live. Required
    /// by the Docker and process drivers; a simulated agent without one keeps everything in memory
    /// (its instance id then lasts as long as the process).
    pub data_dir: Option<PathBuf>,
    /// Availability zone, reported as `ecs.availability-zone`.
    pub zone: Option<String>,
    /// Custom attributes (`--attribute k=v`); they win over the built-in ones of the same name.
    pub attributes: BTreeMap<String, String>,
    /// CPU units to offer; detected (cores × 1024) when `None`.
    pub cpu_units: Option<u32>,
    /// Memory to offer in MiB; detected (`MemTotal`) when `None`.
    pub memory_mib: Option<u64>,
    /// TCP host ports never given to tasks.
    pub reserved_tcp_ports: Vec<u16>,
    /// UDP host ports never given to tasks.
    pub reserved_udp_ports: Vec<u16>,
    /// What ECS shows as the instance's `ec2InstanceId`; the hostname when `None`. Sent as the
    /// [`crate::resources::EC2_INSTANCE_ID_ATTRIBUTE`] attribute.
    pub host_id: Option<String>,
    /// Session timers.
    pub timing: Timing,
    /// Counters to update (a fleet shares one); `None` keeps them private to the agent.
    pub stats: Option<Arc<AgentStats>>,
}

impl AgentConfig {
    /// A configuration with the defaults of everything optional: resources detected, the ECS
    /// reserved ports, no zone, no custom attributes, default timers.
    pub fn new(
        cluster: impl Into<String>,
        gateway: impl Into<String>,
        token: impl Into<String>,
        driver: DriverChoice,
        data_dir: Option<PathBuf>,
    ) -> Self {
        Self {
            cluster: cluster.into(),
            gateway: gateway.into(),
            token: token.into(),
            driver,
            data_dir,
            zone: None,
            attributes: BTreeMap::new(),
            cpu_units: None,
            memory_mib: None,
            reserved_tcp_ports: DEFAULT_RESERVED_TCP_PORTS.to_vec(),
            reserved_udp_ports: Vec::new(),
            host_id: None,
            timing: Timing::default(),
            stats: None,
        }
    }

    /// The WebSocket URL to connect to, see [`gateway_url`].
    pub fn gateway_url(&self) -> Result<String, AgentError> {
        gateway_url(&self.gateway)
    }
}

impl fmt::Debug for AgentConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The token admits anyone who has it to the cluster: keep it out of logs.
        f.debug_struct("AgentConfig")
            .field("cluster", &self.cluster)
            .field("gateway", &self.gateway)
            .field("token", &"<redacted>")
            .field("driver", &self.driver)
            .field("data_dir", &self.data_dir)
            .field("zone", &self.zone)
            .field("attributes", &self.attributes)
            .field("cpu_units", &self.cpu_units)
            .field("memory_mib", &self.memory_mib)
            .field("reserved_tcp_ports", &self.reserved_tcp_ports)
            .field("reserved_udp_ports", &self.reserved_udp_ports)
            .field("host_id", &self.host_id)
            .field("timing", &self.timing)
            .finish_non_exhaustive()
    }
}

/// The WebSocket URL for a `--gateway` value: `ws://HOST:PORT` gets the path `/ws`; a URL with a
/// path keeps it; `http://` becomes `ws://` (as ACS maps its endpoint). `wss://` and `https://` are
/// refused here with a clear message: the agent is built without TLS (terminate TLS in a proxy on
/// the gateway side, or reach the gateway over a private network).
pub fn gateway_url(given: &str) -> Result<String, AgentError> {
    let given = given.trim();
    let invalid = |why: &str| AgentError::Config(format!("invalid --gateway {given:?}: {why}"));
    let (scheme, rest) = given
        .split_once("://")
        .ok_or_else(|| invalid("expected ws://HOST:PORT"))?;
    match scheme.to_ascii_lowercase().as_str() {
        "ws" | "http" => {}
        "wss" | "https" => {
            return Err(invalid(
                "TLS is not built into berth-agent; use ws:// behind a TLS-terminating proxy",
            ));
        }
        _ => return Err(invalid("the scheme must be ws://")),
    }
    let (authority, path) = match rest.find(['/', '?']) {
        Some(at) => rest.split_at(at),
        None => (rest, ""),
    };
    if authority.is_empty() || authority.contains('@') {
        return Err(invalid("expected ws://HOST:PORT"));
    }
    let path = match path {
        "" | "/" => "/ws",
        path if path.starts_with('?') => return Ok(format!("ws://{authority}/ws{path}")),
        path => path,
    };
    let url = format!("ws://{authority}{path}");
    url.parse::<http::Uri>()
        .map_err(|error| invalid(&error.to_string()))?;
    Ok(url)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gateway_url_adds_the_ws_path() {
        let ok = |given: &str| gateway_url(given).expect(given);
        assert_eq!(ok("ws://127.0.0.1:7000"), "ws://127.0.0.1:7000/ws");
        assert_eq!(ok("ws://gw:7000/"), "ws://gw:7000/ws");
        assert_eq!(ok("http://gw:7000"), "ws://gw:7000/ws");
        assert_eq!(ok("ws://gw:7000/agents/ws"), "ws://gw:7000/agents/ws");
        assert_eq!(ok("ws://gw:7000?x=1"), "ws://gw:7000/ws?x=1");
        assert_eq!(ok("ws://[::1]:7000"), "ws://[::1]:7000/ws");
    }

    #[test]
    fn gateway_url_refuses_what_cannot_work() {
        for given in [
            "gw:7000",
            "wss://gw:7000",
            "https://gw",
            "tcp://gw:1",
            "ws://",
            "ws://u@gw",
        ] {
            assert!(gateway_url(given).is_err(), "accepted {given}");
        }
    }

    #[test]
    fn idle_timeout_is_twice_the_heartbeat_period() {
        let timing = Timing::with_heartbeat_period(Duration::from_secs(5));
        assert_eq!(timing.idle_timeout, Duration::from_secs(10));
        assert_eq!(Timing::default().idle_timeout, Duration::from_secs(60));
    }

    #[test]
    fn debug_hides_the_token() {
        let config = AgentConfig::new("c", "ws://gw:1", "s3cret", DriverChoice::Sim, None);
        assert!(!format!("{config:?}").contains("s3cret"));
    }
}
