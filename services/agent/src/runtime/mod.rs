//! The runtime layer: runs tasks handed down by the control plane and reports what happens to them.
//!
//! A [`Driver`] starts a task (all its containers), stops it, lists what runs now, and emits a
//! [`TaskEvent`] (a full [`TaskSnapshot`]) on a channel for every observed change:
//! containers PENDING → RUNNING → STOPPED with runtime ids, network bindings, health and exit codes.
//! The connection loop numbers the events into `TaskStateChange` frames; nothing here knows about
//! the gateway.
//!
//! Two drivers run real workloads:
//! * [`DockerDriver`] runs each container definition as a Docker container through the Engine API.
//! * [`ProcessDriver`] runs `entryPoint` + `command` as host processes, for hosts without Docker
//!   and for laptops.
//!
//! Both share one task supervisor (module `task`), so the ECS task rules hold the same way for
//! both: an essential container exiting stops the others (`EssentialContainerExited`, "Essential
//! container in task exited"); a container that cannot be pulled, created or started fails the task
//! (`TaskFailedToStart`, reason `CannotPullContainerError: ...`, `CannotStartContainerError: ...`);
//! stopping sends SIGTERM and, after the container's `stopTimeout` (30 s by default), SIGKILL.
//!
//! A third driver, [`SimDriver`], runs nothing and reports tasks RUNNING at once: it backs simulated
//! fleets that load the control plane with many agents from one process.
//!
//! Every task gets a directory under the agent's data dir (see [`logs::log_path`]) holding its spec,
//! its last published state and its containers' logs. After an agent restart a new driver over the
//! same data dir finds the tasks still running (Docker containers by label, processes by pid file)
//! and supervises them again; [`Driver::list_running`] returns them for the reconciliation report.
//!
//! Starting is idempotent per task ARN, even across agent restarts: a task that runs or has run is
//! never started a second time; its last state is reported again instead.

use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;
use std::time::Duration;

use berth_agent_protocol::{DriverKind, TaskPayload, TaskSnapshot};

pub mod docker;
mod health;
mod layout;
pub mod logs;
pub mod process;
pub mod sim;
mod task;
#[cfg(feature = "test-support")]
pub mod testing;

pub use docker::{DockerConfig, DockerDriver};
pub use layout::{check_container_name, task_id};
pub use process::{ProcessConfig, ProcessDriver};
pub use sim::SimDriver;

/// What the drivers emit: the whole task after each change. The connection loop turns it into a
/// `TaskStateChange` with [`TaskSnapshot::into_state_change`].
pub type TaskEvent = TaskSnapshot;

/// The sending half the drivers emit [`TaskEvent`]s on.
///
/// Unbounded on purpose: a supervisor must never block on a slow or disconnected gateway link (it
/// would stop noticing exits and could deadlock with a caller waiting on `stop_task`), and events
/// come a handful per task, so the queue stays small.
pub type EventSender = tokio::sync::mpsc::UnboundedSender<TaskEvent>;

/// A boxed, sendable future, so [`Driver`] stays object safe (`Arc<dyn Driver>`).
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Time between SIGTERM and SIGKILL when a container has no `stopTimeout` (the ECS default).
pub const DEFAULT_STOP_TIMEOUT: Duration = Duration::from_secs(30);

/// Stopped reason when an essential container exits (the text ECS uses).
pub const ESSENTIAL_CONTAINER_EXITED: &str = "Essential container in task exited";

/// Label (Docker) / spec field naming the task a container belongs to.
pub const LABEL_TASK_ARN: &str = "berth.task-arn";
/// Label naming the container definition.
pub const LABEL_CONTAINER_NAME: &str = "berth.container-name";
/// Label scoping containers to one agent data dir, so agents (and tests) sharing a Docker engine
/// never adopt each other's containers.
pub const LABEL_DATA_DIR: &str = "berth.data-dir";

/// Errors of the runtime layer. Container failures are not errors here: they are reported as
/// events (a STOPPED task with a stop code and reason).
#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    /// The payload cannot be run as given (bad ARN, bad or duplicate container name).
    #[error("invalid task: {0}")]
    InvalidTask(String),
    /// No task with this ARN is known to the driver.
    #[error("unknown task {0}")]
    UnknownTask(String),
    /// A file under the data dir could not be read or written.
    #[error("{context}: {source}")]
    Io {
        /// What was being done.
        context: String,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// State could not be serialized.
    #[error("cannot encode state: {0}")]
    Encode(#[source] serde_json::Error),
    /// The Docker engine could not be reached or refused a request the driver itself needs
    /// (connecting, listing containers for recovery).
    #[error("docker: {0}")]
    Docker(#[from] bollard::errors::Error),
}

impl RuntimeError {
    pub(crate) fn io(context: impl Into<String>, source: std::io::Error) -> Self {
        Self::Io {
            context: context.into(),
            source,
        }
    }
}

/// A container runtime that runs whole tasks.
///
/// Calls return quickly: the work (pulling, starting, waiting, stopping) happens on tokio tasks and
/// its outcome arrives as [`TaskEvent`]s on the channel given to the driver's constructor.
pub trait Driver: Send + Sync {
    /// Which driver this is (reported at registration).
    fn kind(&self) -> DriverKind;

    /// The agent's data dir this driver keeps task directories under.
    fn data_dir(&self) -> &std::path::Path;

    /// Starts every container of `task`. A task this driver (or an earlier agent over the same data
    /// dir) already runs or has run is not started again; its last state is emitted once more.
    /// Returns an error only when the payload is unusable or the driver cannot work at all.
    fn start_task(&self, task: TaskPayload) -> BoxFuture<'_, Result<(), RuntimeError>>;

    /// Stops a task: SIGTERM to every container, SIGKILL after each container's `stopTimeout`.
    /// `reason` becomes the task's stopped reason unless the task already stops for another reason.
    /// Returns once the stop is under way; the STOPPED event follows. Stopping a stopped task is a
    /// no-op; an unknown ARN is [`RuntimeError::UnknownTask`].
    fn stop_task<'a>(
        &'a self,
        task_arn: &'a str,
        reason: Option<String>,
    ) -> BoxFuture<'a, Result<(), RuntimeError>>;

    /// The tasks that are PENDING or RUNNING now, including those found again after an agent
    /// restart (which are adopted: supervised, stoppable, reported).
    fn list_running(&self) -> BoxFuture<'_, Result<Vec<TaskSnapshot>, RuntimeError>>;

    /// Applies one task of a `PayloadMessage`: starts it when desired RUNNING, stops it when desired
    /// STOPPED. Stopping a task the agent never saw records it as STOPPED (so a late start for it is
    /// ignored) and emits a STOPPED event, so the control plane converges either way.
    fn apply(&self, task: TaskPayload) -> BoxFuture<'_, Result<(), RuntimeError>>;

    /// Where the logs of `container` of `task_arn` are written.
    fn log_path(&self, task_arn: &str, container: &str) -> Result<PathBuf, RuntimeError> {
        logs::log_path(self.data_dir(), task_arn, container)
    }
}
