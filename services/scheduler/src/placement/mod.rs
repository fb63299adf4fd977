//! The placement engine: pure, synchronous, no I/O.
//!
//! Given the cluster's container instances ([`ClusterIndex`]) and a [`PlacementRequest`],
//! [`place`] decides where each task goes the way ECS does:
//!
//! 1. candidates are the `ACTIVE` instances whose agent is connected (else `AGENT`) and that have
//!    the CPU, memory and host ports the task needs (else `RESOURCE:CPU`, `RESOURCE:MEMORY`,
//!    `RESOURCE:PORTS`);
//! 2. placement constraints filter them (`memberOf` via the cluster query language,
//!    `distinctInstance`); both are binding;
//! 3. strategy rules (`binpack`, `spread`, `random`; ECS's defaults when none is given) rank
//!    what is left, each rule breaking the ties of the one before, the final tie going to the
//!    earliest registered instance;
//! 4. the best candidate takes the task, and the index is updated before the next task.
//!
//! When a task fits nowhere, the outcome lists one failure per distinct reason, each naming the
//! closest matching instance with that reason (see [`FailureReason`]), and the remaining tasks
//! of the request are not attempted (they would fail the same way).
//!
//! Speed comes from the index, not from the loop: candidate orders are kept sorted as
//! reservations come and go (`views.rs`, `bucket.rs`), spread counts are maintained rather than
//! recounted (`groups.rs`), so a typical decision touches a handful of instances whatever the
//! cluster size. `benches/placement.rs` measures it.

mod bucket;
mod engine;
mod filter;
mod groups;
mod index;
mod instance;
mod intern;
mod model;
mod ports;
mod request;
mod select;
mod views;

#[cfg(test)]
mod tests;

pub use engine::{place, place_into};
pub use index::{ClusterIndex, IndexError, InstanceState};
pub use model::{
    ContainerInstance, Failure, FailureReason, HostPort, InstanceStatus, Placement,
    PlacementOutcome, Protocol, TaskReservation,
};
pub use ports::{EPHEMERAL_FIRST, EPHEMERAL_LAST};
pub use request::{
    AVAILABILITY_ZONE, BinpackField, Constraint, MAX_CONSTRAINTS, MAX_STRATEGIES, Origin,
    PlacementRequest, PortRequest, RequestError, SpreadField, Strategy, TaskResources,
};
