//! Scheduler: single writer of task placements per cluster.

pub mod placement;
