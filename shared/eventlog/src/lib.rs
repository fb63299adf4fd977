//! The append-only event log on NATS JetStream: Berth's one source of truth.
//!
//! One stream (`BERTH_EVENTS` by default) captures every subject under
//! [`berth_events::SUBJECT_PREFIX`]; it has no age or size limit and denies deletes
//! and purges. [`EventLog`] appends events with optimistic concurrency per aggregate
//! (`Nats-Expected-Last-Subject-Sequence`), idempotently (`Nats-Msg-Id`), and
//! atomically in batches (JetStream atomic batch publish), and reads them back from
//! any sequence as a live [`EventStream`].
//!
//! [`local_server`] starts a private nats-server for `berth up` and the tests.

mod append;
mod error;
pub mod local_server;
mod log;
mod read;
mod tail;

pub use append::{Append, Appended, Expect};
pub use error::{AppendError, LogError};
pub use log::{EventLog, LogConfig};
pub use read::{EventRecord, EventStream, RecordedEvent};
