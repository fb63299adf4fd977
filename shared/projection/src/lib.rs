//! Projections: each service's read model, folded from the event log.
//!
//! A [`Projection`] applies a batch of events to its SQL tables; the
//! [`ProjectionRunner`] feeds it from its checkpoint and stores the new checkpoint in
//! the same transaction, so every event is applied exactly once, a crashed service
//! resumes where it stopped, and `--rebuild` (or deleting the database) replays the
//! log from sequence 1. A [`ProjectionHandle`] tells callers how far the projection
//! has got, which gives read-your-writes and the health check.
//!
//! Read models use sqlx's `Any` driver: SQLite by default, PostgreSQL for a
//! `postgres://` URL. Projections write portable SQL (`$1` parameters,
//! `INSERT ... ON CONFLICT`), which both accept.

mod handle;
mod memory_index;
mod read_model;
mod row_cache;
mod runner;
pub mod sql;
mod sqlite_memory;

pub use handle::{NotReached, ProjectionHandle};
pub use memory_index::{MemoryIndex, StagedMoves};
pub use read_model::{Backend, ReadModel, WriteTransaction};
pub use row_cache::RowCache;
pub use runner::{Projection, ProjectionError, ProjectionRunner, RunnerOptions};
