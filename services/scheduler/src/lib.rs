//! Scheduler: the single writer of task placements per cluster.
//!
//! It follows the log into its state (the placement index of every cluster plus the
//! tasks that hold or wait for resources), persisted in its read model for fast
//! restarts, and turns every `TaskRequested` into `TaskPlaced` or
//! `TaskPlacementFailed`, appended conditionally on the task's version so a task is
//! never decided twice. [`placement`] is the pure engine.

mod read_model;
mod service;
mod state;

pub mod placement;

pub use service::{Scheduler, SchedulerOptions};
