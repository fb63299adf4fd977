//! Task events. Aggregate: [`crate::Aggregate::Task`].
//!
//! Lifecycle: `TaskRequested` (api-gateway) -> `TaskPlaced` or
//! `TaskPlacementFailed` (scheduler) -> `TaskStateReported`* (agent-gateway, from the
//! agent) ; `TaskStopRequested` (api-gateway or scheduler) at any point.

use serde::{Deserialize, Serialize};

use crate::{Json, JsonText, Tag};

/// A host port a task needs: fixed, or 0 for one the scheduler picks.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PortRequest {
    pub container_name: String,
    pub container_port: u16,
    /// 0: dynamic.
    pub host_port: u16,
    /// `tcp` or `udp`.
    pub protocol: String,
}

/// A placement constraint as ECS spells it (`distinctInstance` or `memberOf`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Constraint {
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default)]
    pub expression: Option<String>,
}

/// A placement strategy rule as ECS spells it (`binpack`, `spread`, `random`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Strategy {
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default)]
    pub field: Option<String>,
}

/// RunTask or StartTask accepted one task. Carries everything placement and the
/// agent need, so the task runs the definition as it was when requested.
///
/// v1: introduced.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TaskRequested {
    pub family: String,
    pub revision: u32,
    /// The TaskDefinition body at request time (readers store it or look at a few fields).
    pub definition: JsonText,
    /// The request's `overrides` (TaskOverride), if any.
    #[serde(default)]
    pub overrides: Option<Json>,
    /// Reserved CPU units and memory MiB, overrides applied.
    pub cpu_units: u32,
    pub memory_mib: u32,
    #[serde(default)]
    pub ports: Vec<PortRequest>,
    /// Task-definition and request constraints together.
    #[serde(default)]
    pub constraints: Vec<Constraint>,
    #[serde(default)]
    pub strategy: Vec<Strategy>,
    /// StartTask: only these container instance ids may take it.
    #[serde(default)]
    pub target_instances: Vec<String>,
    pub group: String,
    #[serde(default)]
    pub started_by: Option<String>,
    pub launch_type: String,
    #[serde(default)]
    pub tags: Vec<Tag>,
    /// Every task of one RunTask call shares this id (the request id).
    pub request_id: String,
}

/// A host port given to a container.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PortAssignment {
    pub container_name: String,
    pub container_port: u16,
    pub host_port: u16,
    pub protocol: String,
    /// The host address the port is published on, as the agent reported it (`0.0.0.0`,
    /// `::`): Docker publishes a port once per address family. None in the scheduler's
    /// assignment, and in reports written before the field existed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bind_ip: Option<String>,
}

/// The scheduler placed the task on a container instance.
///
/// v1: introduced.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TaskPlaced {
    pub container_instance_id: String,
    pub cpu_units: u32,
    pub memory_mib: u32,
    #[serde(default)]
    pub ports: Vec<PortAssignment>,
}

/// One reason a task could not be placed, as RunTask reports it in `failures`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlacementFailure {
    /// The container instance concerned, if any.
    #[serde(default)]
    pub container_instance_id: Option<String>,
    /// `RESOURCE:CPU`, `RESOURCE:MEMORY`, `RESOURCE:PORTS`, `AGENT`, `ATTRIBUTE`,
    /// `MISSING`, `INACTIVE`, ...
    pub reason: String,
    #[serde(default)]
    pub detail: Option<String>,
}

/// The scheduler could not place the task: it never runs.
///
/// v1: introduced.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TaskPlacementFailed {
    pub failures: Vec<PlacementFailure>,
}

/// StopTask (or the scheduler) asked for the task to stop.
///
/// v1: introduced.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TaskStopRequested {
    /// `UserInitiated`, `ServiceSchedulerInitiated`, ...
    pub stop_code: String,
    #[serde(default)]
    pub reason: Option<String>,
}

/// One container's state as the agent reported it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ContainerState {
    pub name: String,
    #[serde(default)]
    pub runtime_id: Option<String>,
    pub last_status: String,
    #[serde(default)]
    pub exit_code: Option<i32>,
    #[serde(default)]
    pub reason: Option<String>,
    #[serde(default)]
    pub network_bindings: Vec<PortAssignment>,
    /// `HEALTHY`, `UNHEALTHY` or `UNKNOWN`.
    #[serde(default)]
    pub health_status: Option<String>,
}

/// The agent reported a task state (PENDING, RUNNING, STOPPED, ...).
///
/// v1: introduced. Every field but `last_status` may be absent, hence `Default`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct TaskStateReported {
    pub last_status: String,
    #[serde(default)]
    pub containers: Vec<ContainerState>,
    #[serde(default)]
    pub stop_code: Option<String>,
    #[serde(default)]
    pub stopped_reason: Option<String>,
    #[serde(default)]
    pub health_status: Option<String>,
    #[serde(default)]
    pub pull_started_at: Option<i64>,
    #[serde(default)]
    pub pull_stopped_at: Option<i64>,
    #[serde(default)]
    pub started_at: Option<i64>,
    #[serde(default)]
    pub stopped_at: Option<i64>,
}
