//! berth-agent: runs a host's tasks through Docker or as plain processes, as the control plane asks.
//!
//! The agent sits on each host, connects to an agent-gateway over a WebSocket (frames in
//! `berth-agent-protocol`), registers the host's resources and runs what it is told:
//!
//! * [`runtime`]: the drivers that start and stop tasks and report every change.
//! * `connection` (private): the session loop that speaks the protocol, reconnects with backoff
//!   and keeps every report until the gateway acknowledges it ([`reports`]).
//! * [`identity`], [`resources`]: who the agent is and what it offers at registration.
//! * [`simulate`]: many agents with the simulated driver in one process, for benchmarks.
//!
//! [`run_agent`] is the library entry point (the `berth-agent` binary and `berth up` both use it):
//!
//! ```no_run
//! # async fn example() -> Result<(), berth_agent::AgentError> {
//! use berth_agent::{AgentConfig, DriverChoice, run_agent};
//!
//! let config = AgentConfig::new(
//!     "default",
//!     "ws://127.0.0.1:7000",
//!     "s3cret",
//!     DriverChoice::Process,
//!     Some("./.berth/agent".into()),
//! );
//! run_agent(config, async { let _ = tokio::signal::ctrl_c().await; }).await
//! # }
//! ```
//!
//! The agent's data dir holds `instance.json` (the instance id), `reports.json` (reports not yet
//! acknowledged) and `tasks/` (the drivers' task directories). Stopping the agent leaves its tasks
//! running: an agent started again over the same data dir adopts them, as the ECS agent does.

use std::future::Future;
use std::pin::pin;
use std::sync::Arc;

use tokio::sync::mpsc;

pub mod cli;
pub mod config;
mod connection;
pub mod error;
pub mod identity;
mod persist;
pub mod reports;
pub mod resources;
pub mod runtime;
pub mod simulate;
pub mod stats;

pub use config::{AgentConfig, DriverChoice, Timing};
pub use error::AgentError;
pub use simulate::{FleetConfig, FleetSummary, run_fleet};
pub use stats::{AgentStats, StatsSnapshot};

use crate::connection::Connection;
use crate::identity::IdentityStore;
use crate::reports::Outbox;
use crate::runtime::{DockerConfig, DockerDriver, Driver, ProcessConfig, ProcessDriver, SimDriver};

/// Runs one agent until `shutdown` resolves: sets up the driver, then registers with the gateway
/// and serves it, reconnecting whenever the connection is lost.
///
/// Returns `Ok(())` after `shutdown` (tasks keep running, for the next agent over the same data
/// dir to adopt), or an error when the agent cannot work: a bad configuration, Docker unreachable
/// at start, an unreadable `instance.json`, or the gateway refusing the registration.
pub async fn run_agent<S>(config: AgentConfig, shutdown: S) -> Result<(), AgentError>
where
    S: Future<Output = ()> + Send,
{
    let url = config.gateway_url()?;
    let register = resources::registration(&config)?;
    if let Some(dir) = &config.data_dir {
        tokio::fs::create_dir_all(dir)
            .await
            .map_err(|error| AgentError::state(dir, error))?;
    }
    let mut shutdown = pin!(shutdown);
    let (events_tx, events) = mpsc::unbounded_channel();
    let driver: Arc<dyn Driver> = match &config.driver {
        config::DriverChoice::Docker { socket } => {
            let mut docker = DockerConfig::new(required_data_dir(&config)?);
            docker.socket = socket.clone();
            tokio::select! {
                () = shutdown.as_mut() => return Ok(()),
                driver = DockerDriver::connect(docker, events_tx) => Arc::new(driver?),
            }
        }
        config::DriverChoice::Process => Arc::new(ProcessDriver::new(
            ProcessConfig::new(required_data_dir(&config)?),
            events_tx,
        )),
        config::DriverChoice::Sim => Arc::new(SimDriver::new(events_tx)),
    };
    // Adopts what an earlier agent left running now, before any payload can arrive, so a replayed
    // start finds its task known (and the log says what was found).
    match driver.list_running().await {
        Ok(running) => {
            tracing::debug!(running = running.len(), driver = %driver.kind(), "driver ready")
        }
        Err(error) => tracing::warn!(%error, "driver cannot list its tasks yet"),
    }
    let identity = IdentityStore::open(config.data_dir.clone()).await?;
    let outbox = Outbox::open(config.data_dir.clone(), identity.current().is_some()).await?;
    tracing::info!(
        gateway = %url,
        cluster = %config.cluster,
        instance_id = identity.current().map(|i| i.instance_id.as_str()),
        pending_reports = outbox.pending().len(),
        cpu_units = register.resources.cpu_units,
        memory_mib = register.resources.memory_mib,
        "agent starting"
    );
    let connection = Connection {
        url,
        timing: config.timing.clone(),
        register,
        identity,
        outbox,
        driver,
        events,
        stats: config.stats.clone().unwrap_or_default(),
    };
    connection.run(shutdown).await
}

fn required_data_dir(config: &AgentConfig) -> Result<std::path::PathBuf, AgentError> {
    config.data_dir.clone().ok_or_else(|| {
        AgentError::Config("the docker and process drivers need a data dir".to_string())
    })
}
