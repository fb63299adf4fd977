//! Container instance events. Aggregate: [`crate::Aggregate::ContainerInstance`].

use serde::{Deserialize, Serialize};

/// What an instance offers (registered) or has left (remaining).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct InstanceResources {
    /// CPU units: cores × 1024.
    pub cpu_units: u32,
    pub memory_mib: u32,
    /// Host ports the host itself uses (never given to tasks).
    #[serde(default)]
    pub reserved_tcp_ports: Vec<u16>,
    #[serde(default)]
    pub reserved_udp_ports: Vec<u16>,
}

/// An attribute of a container instance: built-in (`ecs.os-type`, ...) or custom.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Attribute {
    pub name: String,
    #[serde(default)]
    pub value: Option<String>,
}

/// An agent registered the instance, or re-registered it after a restart (same id,
/// resources and built-in attributes refreshed; custom attributes kept).
///
/// v1: introduced.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ContainerInstanceRegistered {
    pub instance_id: String,
    /// The host's identity as ECS shows it in `ec2InstanceId` (Berth: the hostname).
    pub ec2_instance_id: String,
    pub resources: InstanceResources,
    /// Attributes the agent reports (built-in and `--attribute k=v`).
    #[serde(default)]
    pub attributes: Vec<Attribute>,
    pub agent_version: String,
    /// `docker` or `process`.
    pub driver: String,
}

/// UpdateContainerInstancesState: `ACTIVE` or `DRAINING`.
///
/// v1: introduced.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ContainerInstanceStatusChanged {
    pub status: String,
}

/// DeregisterContainerInstance: the instance becomes INACTIVE.
///
/// v1: introduced.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ContainerInstanceDeregistered {
    pub force: bool,
}

/// The agent's session is up (registered and heartbeating).
///
/// v1: introduced.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AgentConnected {
    /// Which agent-gateway holds the session.
    pub gateway_id: String,
}

/// The agent's session closed or missed heartbeats: no new placement goes there.
///
/// v1: introduced.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AgentDisconnected {
    pub reason: String,
}

/// PutAttributes: custom attributes set (a name already set takes the new value).
///
/// v1: introduced.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AttributesPut {
    pub attributes: Vec<Attribute>,
}

/// DeleteAttributes.
///
/// v1: introduced.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AttributesDeleted {
    pub names: Vec<String>,
}
