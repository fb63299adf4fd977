//! Berth's event types.
//!
//! The event log is the source of truth; this crate defines what goes into it:
//! - [`Aggregate`]: which aggregate an event belongs to, and the one place that maps
//!   aggregates onto NATS subjects;
//! - [`EventMeta`]: the envelope fields carried in NATS headers (id, type, version,
//!   time, causation, correlation, trace context), so a consumer can skip an event it
//!   does not read without decoding the payload;
//! - [`Event`]: every event, versioned, with a MessagePack payload.
//!
//! Events are never edited: a schema change adds a version and an upcaster in
//! [`catalogue`], and the golden files under `tests/golden/` keep every version.

mod aggregate;
pub mod catalogue;
mod cluster;
mod container_instance;
mod meta;
mod task;
mod task_definition;
mod types;

pub use aggregate::{Aggregate, AggregateParseError, SUBJECT_PREFIX};
pub use catalogue::{CodecError, Event};
pub use cluster::{ClusterCreated, ClusterDeleted, ClusterUpdated};
pub use container_instance::{
    AgentConnected, AgentDisconnected, Attribute, AttributesDeleted, AttributesPut,
    ContainerInstanceDeregistered, ContainerInstanceRegistered, ContainerInstanceStatusChanged,
    InstanceResources,
};
pub use meta::{EventMeta, headers};
pub use task::{
    Constraint, ContainerState, PlacementFailure, PortAssignment, PortRequest, Strategy,
    TaskPlaced, TaskPlacementFailed, TaskRequested, TaskStateReported, TaskStopRequested,
};
pub use task_definition::{
    ResourceTagged, ResourceUntagged, TaskDefinitionDeleted, TaskDefinitionDeregistered,
    TaskDefinitionRegistered,
};
pub use types::{ClusterSetting, EpochMillis, Json, JsonText, KeyValue, Tag};
