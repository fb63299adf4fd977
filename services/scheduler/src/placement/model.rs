//! What goes into the index and what comes out of a placement.
//!
//! Identifiers and the task group travel as `Arc<str>`: a placement hands them back for every
//! task, and cloning an `Arc` is a reference-count increment where a `String` would allocate.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

/// `ContainerInstance.status` in ECS. Only `ACTIVE` instances receive new tasks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum InstanceStatus {
    Active,
    Draining,
    Registering,
    Deregistering,
    RegistrationFailed,
    Inactive,
}

impl InstanceStatus {
    /// The wire spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Active => "ACTIVE",
            Self::Draining => "DRAINING",
            Self::Registering => "REGISTERING",
            Self::Deregistering => "DEREGISTERING",
            Self::RegistrationFailed => "REGISTRATION_FAILED",
            Self::Inactive => "INACTIVE",
        }
    }

    /// Parses the wire spelling.
    pub fn parse(text: &str) -> Option<Self> {
        [
            Self::Active,
            Self::Draining,
            Self::Registering,
            Self::Deregistering,
            Self::RegistrationFailed,
            Self::Inactive,
        ]
        .into_iter()
        .find(|s| s.as_str() == text)
    }
}

/// Transport protocol of a host port; TCP and UDP ports are separate spaces.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Protocol {
    Tcp,
    Udp,
}

impl Protocol {
    pub(crate) fn index(self) -> usize {
        match self {
            Protocol::Tcp => 0,
            Protocol::Udp => 1,
        }
    }

    /// The wire spelling (`tcp`, `udp`).
    pub fn as_str(self) -> &'static str {
        match self {
            Protocol::Tcp => "tcp",
            Protocol::Udp => "udp",
        }
    }
}

/// A container instance as registered: identity, state, attributes and registered resources.
/// Reservations are not part of it; the index keeps them across updates.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContainerInstance {
    /// The container instance id (the last part of its ARN): the key of the index.
    pub id: String,
    pub arn: String,
    pub status: InstanceStatus,
    pub agent_connected: bool,
    pub ec2_instance_id: Option<String>,
    pub agent_version: Option<String>,
    /// Seconds since the Unix epoch.
    pub registered_at: i64,
    /// ECS attributes; an attribute without a value (allowed by ECS) is stored as `""`.
    pub attributes: BTreeMap<String, String>,
    /// Registered CPU units (cores × 1024).
    pub cpu: u32,
    /// Registered memory, MiB.
    pub memory: u32,
    /// Host ports the instance reserves for itself at registration (22, the agent's ports...).
    pub reserved_tcp_ports: Vec<u16>,
    pub reserved_udp_ports: Vec<u16>,
}

impl ContainerInstance {
    /// An `ACTIVE`, connected instance with the given resources and nothing else.
    pub fn new(id: impl Into<String>, arn: impl Into<String>, cpu: u32, memory: u32) -> Self {
        Self {
            id: id.into(),
            arn: arn.into(),
            status: InstanceStatus::Active,
            agent_connected: true,
            ec2_instance_id: None,
            agent_version: None,
            registered_at: 0,
            attributes: BTreeMap::new(),
            cpu,
            memory,
            reserved_tcp_ports: Vec::new(),
            reserved_udp_ports: Vec::new(),
        }
    }

    /// Adds an attribute (builder style).
    pub fn with_attribute(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.attributes.insert(name.into(), value.into());
        self
    }
}

/// One host port held by a task.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct HostPort {
    pub protocol: Protocol,
    pub port: u16,
}

/// What one task holds on its instance. `place` returns it for each task; the caller keeps it
/// and hands it back to [`ClusterIndex::release`](super::ClusterIndex::release) when the task
/// stops, or to [`ClusterIndex::reserve`](super::ClusterIndex::reserve) when rebuilding the
/// index from the event log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskReservation {
    pub group: Arc<str>,
    pub cpu: u32,
    pub memory: u32,
    /// Host ports, in the order of the request's port mappings (dynamic ones resolved).
    pub ports: Vec<HostPort>,
}

/// One placed task.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Placement {
    pub instance_id: Arc<str>,
    pub instance_arn: Arc<str>,
    pub reservation: TaskReservation,
}

/// Why an instance could not take a task, in the order ECS checks (an instance is reported
/// with the first check it fails).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum FailureReason {
    /// The agent is disconnected.
    Agent,
    /// Not enough CPU units left.
    Cpu,
    /// Not enough memory left.
    Memory,
    /// A static host port is taken, or no dynamic port is free.
    Ports,
    /// A `memberOf` expression does not select the instance.
    MemberOf,
    /// `distinctInstance`: a task of the same group is already there.
    DistinctInstance,
}

impl FailureReason {
    /// The `Failure.reason` ECS returns from RunTask / StartTask.
    ///
    /// ECS documents no reason for unsatisfied placement constraints; both constraint kinds
    /// are reported as `ATTRIBUTE` (the documented reason for an instance lacking what the task
    /// requires), and [`detail`](Self::detail) tells them apart.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Agent => "AGENT",
            Self::Cpu => "RESOURCE:CPU",
            Self::Memory => "RESOURCE:MEMORY",
            Self::Ports => "RESOURCE:PORTS",
            Self::MemberOf | Self::DistinctInstance => "ATTRIBUTE",
        }
    }

    /// Text for `Failure.detail` and for service events ("The closest matching container-instance
    /// ... "), phrased as ECS phrases them.
    pub fn detail(self) -> &'static str {
        match self {
            Self::Agent => "The container instance agent is disconnected.",
            Self::Cpu => "has insufficient CPU units available.",
            Self::Memory => "has insufficient memory available.",
            Self::Ports => "is already using a port required by your task.",
            Self::MemberOf => "MemberOf placement constraint unsatisfied.",
            Self::DistinctInstance => "DistinctInstance placement constraint unsatisfied.",
        }
    }
}

impl fmt::Display for FailureReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One entry of RunTask's `failures`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    pub instance_arn: Arc<str>,
    pub reason: FailureReason,
}

/// The result of one placement request.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PlacementOutcome {
    /// Placed tasks, in placement order; the index already holds their reservations.
    pub placed: Vec<Placement>,
    /// Filled when a task could not be placed: one entry per distinct reason, in
    /// [`FailureReason`] order, each naming the closest matching instance with that reason.
    pub failures: Vec<Failure>,
    /// Tasks of the request not placed. Non-zero with no `failures` means there was no `ACTIVE`
    /// instance at all (ECS answers that case with an `InvalidParameterException`, "No Container
    /// Instances were found in your cluster.").
    pub unplaced: u32,
}

impl PlacementOutcome {
    /// Empties the outcome, keeping its allocations for reuse.
    pub fn clear(&mut self) {
        self.placed.clear();
        self.failures.clear();
        self.unplaced = 0;
    }
}
