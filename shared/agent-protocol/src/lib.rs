//! Frames exchanged between `berth-agent` and the control plane's agent-gateway over a WebSocket.
//!
//! The protocol is modelled on the ECS agent's ACS protocol: every WebSocket text frame is one JSON
//! object `{"type": "<Name>", "message": {...}}`, where `type` names the frame and `message` holds its
//! fields in camelCase (the casing ECS uses on its wires, so the same field names appear in the
//! agent's reports, the gateway's events and the ECS API answers built from them).
//!
//! Two enums cover the two directions, so each side can only send what the other expects to read:
//!
//! * [`AgentFrame`]: agent → gateway ([`RegisterInstance`], [`HeartbeatAck`], [`Ack`],
//!   [`TaskStateChange`], [`StateReport`]).
//! * [`GatewayFrame`]: gateway → agent ([`Registered`], [`RegistrationRefused`], [`PayloadMessage`],
//!   [`HeartbeatMessage`], [`TaskStateAck`], [`CloseMessage`]).
//!
//! A session goes like this: the agent connects and sends `RegisterInstance`; the gateway answers
//! `Registered` (or `RegistrationRefused` and closes). The agent then sends a `StateReport` of what it
//! is running so the gateway can reconcile after reconnects. From then on the gateway sends
//! `PayloadMessage`s (acknowledged by `Ack`) and `HeartbeatMessage`s (acknowledged by
//! `HeartbeatAck`); the agent sends a `TaskStateChange` for every change it observes, numbered by
//! `seq`, and the gateway acknowledges them with `TaskStateAck` once recorded durably. Acks are
//! cumulative (`seq` covers every earlier report), so one ack may answer several reports.
//! The agent keeps unacknowledged changes and sends them again after a reconnect; the gateway drops
//! any `seq` it has already recorded for that instance.
//!
//! Decoding never panics: malformed input is a [`ProtocolError`].

use std::collections::BTreeMap;
use std::fmt;
use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

/// Version of this protocol. Bumped on incompatible changes to any frame; additive changes (new
/// optional fields) keep it.
pub const PROTOCOL_VERSION: u32 = 1;

/// Errors from encoding or decoding frames.
#[derive(Debug, thiserror::Error)]
pub enum ProtocolError {
    /// The text is not a frame this side understands (bad JSON, unknown `type`, missing or
    /// mistyped field).
    #[error("invalid frame: {0}")]
    Decode(#[source] serde_json::Error),
    /// A frame could not be serialized (only possible for non-string map keys, which these types
    /// never have, but serde's signature requires the case).
    #[error("cannot encode frame: {0}")]
    Encode(#[source] serde_json::Error),
}

// ---------------------------------------------------------------------------------------------
// Frames
// ---------------------------------------------------------------------------------------------

/// A frame sent by the agent to the gateway.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", content = "message")]
pub enum AgentFrame {
    /// First frame of every connection.
    RegisterInstance(RegisterInstance),
    /// Answers a [`HeartbeatMessage`].
    HeartbeatAck(HeartbeatAck),
    /// Acknowledges a [`PayloadMessage`]: the agent has taken the tasks in hand.
    Ack(Ack),
    /// A task or one of its containers changed state.
    TaskStateChange(TaskStateChange),
    /// Everything the agent runs now; sent after every (re)connect, once registered.
    StateReport(StateReport),
}

/// A frame sent by the gateway to the agent.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", content = "message")]
pub enum GatewayFrame {
    /// Registration accepted.
    Registered(Registered),
    /// Registration refused; the gateway closes the connection after this frame.
    RegistrationRefused(RegistrationRefused),
    /// Tasks to start or stop.
    PayloadMessage(PayloadMessage),
    /// Liveness probe; the agent answers with [`HeartbeatAck`].
    HeartbeatMessage(HeartbeatMessage),
    /// The gateway has durably recorded the [`TaskStateChange`] with this `seq` (and every
    /// earlier one).
    TaskStateAck(TaskStateAck),
    /// The gateway is closing the connection (shutdown, rebalancing, heartbeat acks missing).
    CloseMessage(CloseMessage),
}

impl AgentFrame {
    /// Encodes the frame as the JSON text of one WebSocket message.
    pub fn to_json(&self) -> Result<String, ProtocolError> {
        serde_json::to_string(self).map_err(ProtocolError::Encode)
    }

    /// Decodes the JSON text of one WebSocket message.
    pub fn from_json(text: &str) -> Result<Self, ProtocolError> {
        serde_json::from_str(text).map_err(ProtocolError::Decode)
    }

    /// The frame's `type` name, for logs and metrics.
    pub fn type_name(&self) -> &'static str {
        match self {
            Self::RegisterInstance(_) => "RegisterInstance",
            Self::HeartbeatAck(_) => "HeartbeatAck",
            Self::Ack(_) => "Ack",
            Self::TaskStateChange(_) => "TaskStateChange",
            Self::StateReport(_) => "StateReport",
        }
    }
}

impl GatewayFrame {
    /// Encodes the frame as the JSON text of one WebSocket message.
    pub fn to_json(&self) -> Result<String, ProtocolError> {
        serde_json::to_string(self).map_err(ProtocolError::Encode)
    }

    /// Decodes the JSON text of one WebSocket message.
    pub fn from_json(text: &str) -> Result<Self, ProtocolError> {
        serde_json::from_str(text).map_err(ProtocolError::Decode)
    }

    /// The frame's `type` name, for logs and metrics.
    pub fn type_name(&self) -> &'static str {
        match self {
            Self::Registered(_) => "Registered",
            Self::RegistrationRefused(_) => "RegistrationRefused",
            Self::PayloadMessage(_) => "PayloadMessage",
            Self::HeartbeatMessage(_) => "HeartbeatMessage",
            Self::TaskStateAck(_) => "TaskStateAck",
            Self::CloseMessage(_) => "CloseMessage",
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Agent → gateway
// ---------------------------------------------------------------------------------------------

/// Registers (or re-registers) the agent's host as a container instance of `cluster`.
///
/// `Debug` leaves the token out so frames can be logged.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RegisterInstance {
    /// Cluster name or ARN to join.
    pub cluster: String,
    /// Shared secret that admits the agent (hosts are the untrusted edge).
    pub token: String,
    /// The id the gateway gave this host before, kept in the agent's data dir; `None` on the very
    /// first start, when the gateway allocates a new container instance.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instance_id: Option<String>,
    /// What the host offers to the scheduler.
    pub resources: Resources,
    /// Instance attributes (`ecs.os-type`, custom ones), name → value; used by placement
    /// constraints.
    #[serde(default)]
    pub attributes: BTreeMap<String, String>,
    /// The agent's version, e.g. `0.1.0`.
    pub agent_version: String,
    /// The runtime driver this agent runs tasks with.
    pub driver: DriverKind,
}

impl fmt::Debug for RegisterInstance {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RegisterInstance")
            .field("cluster", &self.cluster)
            .field("token", &"<redacted>")
            .field("instance_id", &self.instance_id)
            .field("resources", &self.resources)
            .field("attributes", &self.attributes)
            .field("agent_version", &self.agent_version)
            .field("driver", &self.driver)
            .finish()
    }
}

/// The host's registered resources, in ECS units.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Resources {
    /// CPU units: cores × 1024.
    pub cpu_units: u32,
    /// Memory the agent offers to tasks, in MiB (host memory minus what is reserved).
    pub memory_mib: u64,
    /// TCP host ports that tasks must never get (ssh, the Docker API, ...).
    #[serde(default)]
    pub reserved_tcp_ports: Vec<u16>,
    /// UDP host ports that tasks must never get.
    #[serde(default)]
    pub reserved_udp_ports: Vec<u16>,
}

/// The runtime an agent uses to run containers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DriverKind {
    /// Containers through the Docker Engine API.
    Docker,
    /// `entryPoint` + `command` as plain host processes; images are recorded, not pulled.
    Process,
}

impl DriverKind {
    /// The wire name (`docker`, `process`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Docker => "docker",
            Self::Process => "process",
        }
    }
}

impl fmt::Display for DriverKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Answers a [`HeartbeatMessage`] with its `message_id`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HeartbeatAck {
    /// The `message_id` of the heartbeat being answered.
    pub message_id: String,
}

/// Acknowledges a [`PayloadMessage`]: every task in it has been accepted (started, being started,
/// or recognised as a duplicate). Outcomes follow as [`TaskStateChange`]s.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Ack {
    /// The `message_id` of the payload being acknowledged.
    pub message_id: String,
}

/// A task's state, as the agent reports it.
///
/// The ECS lifecycle has more states (PROVISIONING, ACTIVATING, DEACTIVATING, STOPPING, ...); those
/// are control-plane states, the agent only observes these three.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum TaskStatus {
    /// Accepted, containers being prepared and started.
    Pending,
    /// Every container has started.
    Running,
    /// Every container has stopped (or never started). Final.
    Stopped,
}

impl TaskStatus {
    /// The wire name (`PENDING`, `RUNNING`, `STOPPED`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "PENDING",
            Self::Running => "RUNNING",
            Self::Stopped => "STOPPED",
        }
    }
}

impl fmt::Display for TaskStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A container's state; the same three values as a task's.
pub type ContainerStatus = TaskStatus;

/// Why a task stopped (ECS `TaskStopCode`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum TaskStopCode {
    /// A container could not be pulled, created or started.
    TaskFailedToStart,
    /// An essential container exited, so the agent stopped the others.
    EssentialContainerExited,
    /// StopTask by a user.
    UserInitiated,
    /// The service scheduler stopped it (scale-in, deployment, unhealthy).
    ServiceSchedulerInitiated,
    /// Spot capacity reclaimed (kept for ECS compatibility).
    SpotInterruption,
    /// The host is going away.
    TerminationNotice,
    /// The host or the agent was found unhealthy.
    InfrastructureHealth,
}

impl TaskStopCode {
    /// The wire name, e.g. `EssentialContainerExited`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::TaskFailedToStart => "TaskFailedToStart",
            Self::EssentialContainerExited => "EssentialContainerExited",
            Self::UserInitiated => "UserInitiated",
            Self::ServiceSchedulerInitiated => "ServiceSchedulerInitiated",
            Self::SpotInterruption => "SpotInterruption",
            Self::TerminationNotice => "TerminationNotice",
            Self::InfrastructureHealth => "InfrastructureHealth",
        }
    }
}

impl fmt::Display for TaskStopCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A container's health as ECS reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum HealthStatus {
    /// The health check passes.
    Healthy,
    /// The health check failed `retries` times in a row (after the start period).
    Unhealthy,
    /// No health check, or no verdict yet.
    #[default]
    Unknown,
}

impl HealthStatus {
    /// The wire name (`HEALTHY`, `UNHEALTHY`, `UNKNOWN`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Healthy => "HEALTHY",
            Self::Unhealthy => "UNHEALTHY",
            Self::Unknown => "UNKNOWN",
        }
    }
}

impl fmt::Display for HealthStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Transport protocol of a port mapping or binding.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TransportProtocol {
    /// TCP (the ECS default).
    #[default]
    Tcp,
    /// UDP.
    Udp,
}

impl TransportProtocol {
    /// The wire name (`tcp`, `udp`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Tcp => "tcp",
            Self::Udp => "udp",
        }
    }
}

impl fmt::Display for TransportProtocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A published port, as ECS `NetworkBinding` spells it (note `bindIP`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NetworkBinding {
    /// Host address the port is bound on (`0.0.0.0`, `::`).
    #[serde(rename = "bindIP")]
    pub bind_ip: String,
    /// Port inside the container.
    pub container_port: u16,
    /// Port on the host.
    pub host_port: u16,
    /// Transport protocol.
    #[serde(default)]
    pub protocol: TransportProtocol,
}

/// Milliseconds since the Unix epoch, UTC. The ACS wire uses epoch integers too (`generatedAt`);
/// millisecond resolution keeps PENDING → RUNNING → STOPPED of a fast task in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct EpochMillis(pub u64);

impl EpochMillis {
    /// The current time. A clock before 1970 reads as 0 rather than failing.
    pub fn now() -> Self {
        Self::from_system_time(SystemTime::now())
    }

    /// Converts a [`SystemTime`]; times before the epoch become 0.
    pub fn from_system_time(time: SystemTime) -> Self {
        let millis = time
            .duration_since(UNIX_EPOCH)
            .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
            .unwrap_or(0);
        Self(millis)
    }
}

/// One container's state inside a [`TaskStateChange`] or [`TaskSnapshot`]
/// (ECS `ContainerStateChange` plus health).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ContainerStateChange {
    /// The container definition's name.
    pub name: String,
    /// The runtime's id for it: the Docker container id, or the process id for the process
    /// driver. `None` until it has been created.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub runtime_id: Option<String>,
    /// Its state.
    pub status: ContainerStatus,
    /// Exit code once it has stopped, when known (a signal `n` reads as `128 + n`, as Docker
    /// reports it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exit_code: Option<i32>,
    /// Why it stopped or failed, e.g. `CannotStartContainerError: ...`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Published ports (set once RUNNING).
    #[serde(default)]
    pub network_bindings: Vec<NetworkBinding>,
    /// Health from its health check; `UNKNOWN` without one.
    #[serde(default)]
    pub health_status: HealthStatus,
}

/// A task's full observed state. The runtime emits one for every change; the connection loop
/// numbers it into a [`TaskStateChange`], and a list of them forms a [`StateReport`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TaskSnapshot {
    /// The task's ARN.
    pub task_arn: String,
    /// Its state.
    pub status: TaskStatus,
    /// Free-text reason once stopping/stopped (ECS `stoppedReason`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Why it stopped, when the agent decided it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stop_code: Option<TaskStopCode>,
    /// Every container of the task, in task-definition order.
    #[serde(default)]
    pub containers: Vec<ContainerStateChange>,
    /// When the images were ready (pulled or found locally).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pulled_at: Option<EpochMillis>,
    /// When the task became RUNNING.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_at: Option<EpochMillis>,
    /// When the task became STOPPED.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stopped_at: Option<EpochMillis>,
}

impl TaskSnapshot {
    /// Numbers the snapshot as the agent's `seq`-th report.
    pub fn into_state_change(self, seq: u64) -> TaskStateChange {
        TaskStateChange { task: self, seq }
    }
}

/// A change of a task or of one of its containers (ECS `SubmitTaskStateChange` with its containers).
/// It always carries the whole task, so the latest report alone is enough to know the task.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TaskStateChange {
    /// The task as it is now.
    #[serde(flatten)]
    pub task: TaskSnapshot,
    /// Agent-local report number, increasing by one per report and kept across agent restarts,
    /// so the gateway can drop duplicates and acknowledge with [`TaskStateAck`].
    pub seq: u64,
}

impl TaskStateChange {
    /// The change without its report number.
    pub fn into_snapshot(self) -> TaskSnapshot {
        self.task
    }
}

/// Everything the agent runs now (PENDING or RUNNING tasks), sent after each (re)connect so the
/// gateway can reconcile: tasks it believes run but are missing here have stopped; tasks here that
/// should be stopped get a stop payload.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StateReport {
    /// The tasks and their states.
    #[serde(default)]
    pub running: Vec<TaskSnapshot>,
}

// ---------------------------------------------------------------------------------------------
// Gateway → agent
// ---------------------------------------------------------------------------------------------

/// Registration accepted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Registered {
    /// The container instance's ARN.
    pub instance_arn: String,
    /// The stable id the agent stores in its data dir and sends back on every later registration.
    pub instance_id: String,
}

/// Registration refused (bad token, unknown cluster, deregistered instance).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RegistrationRefused {
    /// Human-readable reason.
    pub reason: String,
}

/// Tasks for the agent to start or stop (ACS `PayloadMessage`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PayloadMessage {
    /// Id the agent echoes in its [`Ack`].
    pub message_id: String,
    /// The tasks, each with its desired status.
    #[serde(default)]
    pub tasks: Vec<TaskPayload>,
}

/// The status the control plane wants a task in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum DesiredStatus {
    /// Start it (a no-op if it already runs or has run).
    Running,
    /// Stop it.
    Stopped,
}

/// Docker networking mode of a task.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum NetworkMode {
    /// Docker's default bridge; host ports are published.
    #[default]
    Bridge,
    /// The host's network stack; container port = host port.
    Host,
    /// No network.
    None,
    /// ECS task ENI mode; Berth runs it like `bridge`.
    Awsvpc,
}

impl NetworkMode {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Bridge => "bridge",
            Self::Host => "host",
            Self::None => "none",
            Self::Awsvpc => "awsvpc",
        }
    }
}

/// One task as the gateway hands it to the agent.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TaskPayload {
    /// The task's ARN; its last `/` segment is the task id.
    pub arn: String,
    /// Task definition family.
    pub family: String,
    /// Task definition revision.
    pub revision: u32,
    /// What the control plane wants.
    pub desired_status: DesiredStatus,
    /// Networking mode; `bridge` when absent.
    #[serde(default)]
    pub network_mode: NetworkMode,
    /// Container definitions, in order.
    #[serde(default)]
    pub containers: Vec<ContainerSpec>,
    /// With `desired_status: STOPPED`, the reason to report (e.g. StopTask's `reason`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stop_reason: Option<String>,
}

/// One container definition, with overrides already applied.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ContainerSpec {
    /// Name, unique within the task.
    pub name: String,
    /// Image reference.
    pub image: String,
    /// CPU units (1024 = one core); 0 = no reservation.
    #[serde(default)]
    pub cpu: u32,
    /// Hard memory limit in MiB.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory: Option<u32>,
    /// Soft memory limit (reservation) in MiB.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory_reservation: Option<u32>,
    /// Whether the task stops when this container exits (ECS default: true).
    #[serde(default = "default_true")]
    pub essential: bool,
    /// Overrides the image's entrypoint.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub entry_point: Option<Vec<String>>,
    /// Overrides the image's command.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub command: Option<Vec<String>>,
    /// Environment variables, name → value.
    #[serde(default)]
    pub environment: BTreeMap<String, String>,
    /// Published ports; host ports are already chosen by the scheduler.
    #[serde(default)]
    pub port_mappings: Vec<PortMapping>,
    /// Container health check.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub health_check: Option<HealthCheck>,
    /// Working directory inside the container.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub working_directory: Option<String>,
    /// Seconds between SIGTERM and SIGKILL when stopping; 30 when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stop_timeout: Option<u32>,
}

impl ContainerSpec {
    /// A container with only a name and an image; every other field takes its ECS default
    /// (essential, no limits, the image's entrypoint and command, no ports, no health check).
    pub fn new(name: impl Into<String>, image: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            image: image.into(),
            cpu: 0,
            memory: None,
            memory_reservation: None,
            essential: true,
            entry_point: None,
            command: None,
            environment: BTreeMap::new(),
            port_mappings: Vec::new(),
            health_check: None,
            working_directory: None,
            stop_timeout: None,
        }
    }
}

fn default_true() -> bool {
    true
}

/// A port to publish. Unlike ECS task definitions, `host_port` is never 0 here: the scheduler has
/// already picked the dynamic port, so the agent does not have to report back what it chose.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PortMapping {
    /// Port inside the container.
    pub container_port: u16,
    /// Port on the host.
    pub host_port: u16,
    /// Transport protocol; `tcp` when absent.
    #[serde(default)]
    pub protocol: TransportProtocol,
}

/// A container health check (ECS `HealthCheck`), times in seconds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HealthCheck {
    /// `["CMD", program, args...]` or `["CMD-SHELL", "shell command"]`.
    pub command: Vec<String>,
    /// Seconds between checks (ECS default 30).
    #[serde(default = "default_interval")]
    pub interval: u32,
    /// Seconds one check may take before it counts as failed (ECS default 5).
    #[serde(default = "default_timeout")]
    pub timeout: u32,
    /// Consecutive failures before UNHEALTHY (ECS default 3).
    #[serde(default = "default_retries")]
    pub retries: u32,
    /// Grace period in seconds during which failures do not count (ECS default 0).
    #[serde(default)]
    pub start_period: u32,
}

fn default_interval() -> u32 {
    30
}

fn default_timeout() -> u32 {
    5
}

fn default_retries() -> u32 {
    3
}

/// A liveness probe (ACS `HeartbeatMessage`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HeartbeatMessage {
    /// Id the agent echoes in its [`HeartbeatAck`].
    pub message_id: String,
}

/// Acknowledges every [`TaskStateChange`] up to and including `seq`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TaskStateAck {
    /// The highest report number the gateway has recorded.
    pub seq: u64,
}

/// The gateway is closing the connection; the agent reconnects (with backoff).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CloseMessage {
    /// Why.
    pub reason: String,
}
