//! Simulated fleets: N agents in one process, each with its own WebSocket, its own instance id
//! and its own host identity, running the [`crate::runtime::SimDriver`]. The gateway cannot tell
//! them from real hosts (they speak the real protocol), so a fleet measures the control plane at a
//! scale no test machine has hosts for.
//!
//! Agent `i` (counting from [`FleetConfig::first_index`]) gets:
//! * the host id `i-` + 17 hex digits derived from the cluster name and `i`, stable across runs
//!   (so a fleet with a data dir re-registers as the same instances);
//! * zone `zones[i % zones.len()]`;
//! * with a data dir, its own `agent-<i>` directory under it; without one, nothing on disk.
//!
//! A fleet agent costs a few tens of KiB: a socket with an 8 KiB read buffer, a tokio task, and
//! one snapshot per task it "runs".

use std::collections::BTreeMap;
use std::future::Future;
use std::path::PathBuf;
use std::pin::pin;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tokio::task::JoinSet;
use tokio::time::{Instant, MissedTickBehavior, interval, sleep};
use tracing::Instrument;

use crate::config::{AgentConfig, DriverChoice, Timing, gateway_url};
use crate::error::AgentError;
use crate::run_agent;
use crate::stats::{AgentStats, StatsSnapshot};

/// CPU units a simulated host offers unless told otherwise (4 cores).
pub const DEFAULT_SIM_CPU_UNITS: u32 = 4096;
/// Memory a simulated host offers unless told otherwise (16 GiB).
pub const DEFAULT_SIM_MEMORY_MIB: u64 = 16384;

/// How long agents get to close their sockets when the fleet stops.
const STOP_GRACE: Duration = Duration::from_secs(5);

/// A simulated fleet.
#[derive(Clone)]
pub struct FleetConfig {
    /// Number of agents.
    pub count: usize,
    /// Index of the first agent; lets several fleet processes join one cluster without sharing
    /// host ids.
    pub first_index: usize,
    /// Cluster every agent joins.
    pub cluster: String,
    /// The gateway, `ws://HOST:PORT`.
    pub gateway: String,
    /// Shared secret.
    pub token: String,
    /// Availability zones, assigned round-robin; none: no zone attribute.
    pub zones: Vec<String>,
    /// Base dir for per-agent data dirs; `None` keeps every agent in memory.
    pub data_dir: Option<PathBuf>,
    /// CPU units each agent offers.
    pub cpu_units: u32,
    /// Memory each agent offers, in MiB.
    pub memory_mib: u64,
    /// Custom attributes of every agent.
    pub attributes: BTreeMap<String, String>,
    /// Delay between starting two agents, so a fleet does not open a thousand connections in the
    /// same millisecond (a gateway's accept backlog is finite; real fleets never boot in lockstep).
    pub spawn_interval: Duration,
    /// How often the fleet logs its counters.
    pub progress_interval: Duration,
    /// Session timers of every agent.
    pub timing: Timing,
}

impl FleetConfig {
    /// A fleet of `count` agents with the defaults: 4096 CPU units and 16 GiB each, no zones, no
    /// data dir, 2 ms between agent starts, progress every 5 s.
    pub fn new(
        count: usize,
        cluster: impl Into<String>,
        gateway: impl Into<String>,
        token: impl Into<String>,
    ) -> Self {
        Self {
            count,
            first_index: 0,
            cluster: cluster.into(),
            gateway: gateway.into(),
            token: token.into(),
            zones: Vec::new(),
            data_dir: None,
            cpu_units: DEFAULT_SIM_CPU_UNITS,
            memory_mib: DEFAULT_SIM_MEMORY_MIB,
            attributes: BTreeMap::new(),
            spawn_interval: Duration::from_millis(2),
            progress_interval: Duration::from_secs(5),
            timing: Timing::default(),
        }
    }

    /// The configuration of agent `index` (absolute, `first_index` included).
    pub fn agent_config(&self, index: usize, stats: Option<Arc<AgentStats>>) -> AgentConfig {
        let mut config = AgentConfig::new(
            self.cluster.clone(),
            self.gateway.clone(),
            self.token.clone(),
            DriverChoice::Sim,
            self.data_dir
                .as_ref()
                .map(|dir| dir.join(format!("agent-{index:05}"))),
        );
        if !self.zones.is_empty() {
            config.zone = Some(self.zones[index % self.zones.len()].clone());
        }
        config.attributes = self.attributes.clone();
        config.cpu_units = Some(self.cpu_units);
        config.memory_mib = Some(self.memory_mib);
        config.host_id = Some(sim_host_id(&self.cluster, index));
        config.timing = self.timing.clone();
        config.stats = stats;
        config
    }
}

/// The host id of simulated agent `index` of `cluster`: `i-` and 17 hex digits, the shape of an
/// EC2 instance id. 8 digits from a hash of the cluster name keep fleets of different clusters
/// apart; 9 digits of index keep agents apart.
pub fn sim_host_id(cluster: &str, index: usize) -> String {
    // FNV-1a: stable across Rust versions and runs, unlike `DefaultHasher`.
    let hash = cluster.bytes().fold(0x811c_9dc5_u32, |hash, byte| {
        (hash ^ u32::from(byte)).wrapping_mul(0x0100_0193)
    });
    format!("i-{hash:08x}{:09x}", index as u64 & 0xf_ffff_ffff)
}

/// What a fleet did, returned when it stops.
#[derive(Debug, Clone)]
pub struct FleetSummary {
    /// Agents started.
    pub agents: usize,
    /// Agents that ended with an error (refused registration, ...).
    pub failed: usize,
    /// Time from the first agent's start until every agent was registered at once, if that
    /// happened.
    pub all_registered_after: Option<Duration>,
    /// The counters when the fleet stopped.
    pub stats: StatsSnapshot,
}

/// Runs the fleet until `shutdown` resolves or every agent has ended. Fails only when every
/// agent failed (then with the first error, e.g. the gateway refusing the token); otherwise the
/// failures are counted in the summary.
pub async fn run_fleet<S>(config: FleetConfig, shutdown: S) -> Result<FleetSummary, AgentError>
where
    S: Future<Output = ()> + Send,
{
    gateway_url(&config.gateway)?;
    if config.count == 0 {
        return Err(AgentError::Config(
            "a fleet needs at least one agent".to_string(),
        ));
    }
    if let Some(limit) = open_files_limit()
        && limit < config.count as u64 + 64
    {
        // Each agent holds a socket (plus a file or two with a data dir); past the limit,
        // connects fail with EMFILE and the fleet looks like a gateway problem.
        tracing::warn!(
            limit,
            count = config.count,
            "the open-files limit is too low for this fleet; raise it (ulimit -n)"
        );
    }
    let mut shutdown = pin!(shutdown);
    let stats = Arc::new(AgentStats::default());
    let (stop_tx, stop_rx) = watch::channel(false);
    let mut agents = JoinSet::new();
    let started = Instant::now();
    let mut all_registered_after = None;
    let mut failed = 0;
    let mut first_error = None;
    let mut stopping = false;

    tracing::info!(
        count = config.count,
        cluster = %config.cluster,
        gateway = %config.gateway,
        "starting simulated fleet"
    );
    let mut progress = interval(config.progress_interval);
    progress.set_missed_tick_behavior(MissedTickBehavior::Delay);
    // Fine-grained only until everyone is registered, for an accurate time to full fleet.
    let mut registration_check = interval(Duration::from_millis(10));
    registration_check.set_missed_tick_behavior(MissedTickBehavior::Skip);
    let mut next_index = config.first_index;
    let end_index = config.first_index + config.count;
    let spawn_delay = sleep(Duration::ZERO);
    let mut spawn_delay = pin!(spawn_delay);

    // Before every wait, and before stopping the agents (which unregisters them).
    let check_all_registered = |all_registered_after: &mut Option<Duration>| {
        if all_registered_after.is_none()
            && stats.registered.load(std::sync::atomic::Ordering::Relaxed) >= config.count as u64
        {
            let elapsed = started.elapsed();
            *all_registered_after = Some(elapsed);
            tracing::info!(
                count = config.count,
                elapsed_ms = elapsed.as_millis(),
                "every simulated agent is registered"
            );
        }
    };

    loop {
        check_all_registered(&mut all_registered_after);
        let spawning = !stopping && next_index < end_index;
        tokio::select! {
            () = shutdown.as_mut(), if !stopping => {
                check_all_registered(&mut all_registered_after);
                tracing::info!("stopping simulated fleet");
                stopping = true;
                let _ = stop_tx.send(true);
            }
            () = spawn_delay.as_mut(), if spawning => {
                let agent = config.agent_config(next_index, Some(Arc::clone(&stats)));
                let mut stop = stop_rx.clone();
                let span = tracing::info_span!("sim_agent", index = next_index);
                agents.spawn(
                    run_agent(agent, async move {
                        let _ = stop.wait_for(|stop| *stop).await;
                    })
                    .instrument(span),
                );
                next_index += 1;
                spawn_delay.as_mut().reset(Instant::now() + config.spawn_interval);
            }
            joined = agents.join_next(), if !agents.is_empty() => match joined {
                Some(Ok(Ok(()))) | None => {}
                Some(Ok(Err(error))) => {
                    failed += 1;
                    tracing::error!(%error, "simulated agent stopped");
                    first_error.get_or_insert(error);
                }
                Some(Err(error)) => {
                    failed += 1;
                    tracing::error!(%error, "simulated agent panicked");
                }
            },
            // Only a wake-up: the check runs at the top of the loop.
            _ = registration_check.tick(), if all_registered_after.is_none() => {}
            _ = progress.tick() => {
                let s = stats.snapshot();
                tracing::info!(
                    registered = s.registered,
                    of = config.count,
                    disconnects = s.disconnects,
                    failed_attempts = s.failed_attempts,
                    payloads = s.payloads,
                    reports_sent = s.reports_sent,
                    reports_acked = s.reports_acked,
                    heartbeats = s.heartbeats,
                    "fleet"
                );
            }
        }
        let all_spawned = next_index >= end_index;
        if (all_spawned || stopping) && agents.is_empty() {
            break;
        }
        if stopping {
            // Give agents a moment to close their sockets, then stop waiting.
            let drained = tokio::time::timeout(STOP_GRACE, async {
                while let Some(joined) = agents.join_next().await {
                    if let Ok(Err(error)) = joined {
                        tracing::debug!(%error, "simulated agent ended with an error while stopping");
                    }
                }
            })
            .await;
            if drained.is_err() {
                agents.abort_all();
            }
            break;
        }
    }

    let spawned = next_index - config.first_index;
    let summary = FleetSummary {
        agents: spawned,
        failed,
        all_registered_after,
        stats: stats.snapshot(),
    };
    match first_error {
        Some(error) if failed == spawned => Err(error),
        _ => Ok(summary),
    }
}

/// The soft limit of open files of this process, from `/proc/self/limits`.
fn open_files_limit() -> Option<u64> {
    let limits = std::fs::read_to_string("/proc/self/limits").ok()?;
    let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
    line["Max open files".len()..]
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_open_files_limit_is_read() {
        assert!(open_files_limit().is_some_and(|limit| limit > 0));
    }

    #[test]
    fn host_ids_look_like_ec2_and_differ() {
        let a = sim_host_id("bench", 0);
        let b = sim_host_id("bench", 1);
        let c = sim_host_id("other", 0);
        assert_eq!(a.len(), 19, "{a}");
        assert!(a.starts_with("i-"));
        assert!(a[2..].chars().all(|ch| ch.is_ascii_hexdigit()));
        assert_ne!(a, b);
        assert_ne!(a, c);
        assert_eq!(a, sim_host_id("bench", 0));
    }

    #[test]
    fn agents_get_zones_round_robin_and_their_own_dirs() {
        let mut fleet = FleetConfig::new(4, "bench", "ws://gw:1", "t");
        fleet.zones = vec!["a".into(), "b".into(), "c".into()];
        fleet.data_dir = Some(PathBuf::from("/tmp/fleet"));
        let zones: Vec<Option<String>> = (0..4).map(|i| fleet.agent_config(i, None).zone).collect();
        assert_eq!(
            zones,
            [Some("a"), Some("b"), Some("c"), Some("a")].map(|z| z.map(String::from))
        );
        assert_eq!(
            fleet.agent_config(7, None).data_dir,
            Some(PathBuf::from("/tmp/fleet/agent-00007"))
        );
        assert_eq!(fleet.agent_config(7, None).driver, DriverChoice::Sim);
    }
}
