//! How far a projection has got: read-your-writes and health.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{Notify, watch};

/// A cheap, cloneable view of a running projection's progress.
#[derive(Clone, Debug)]
pub struct ProjectionHandle {
    name: &'static str,
    position: watch::Receiver<u64>,
    /// The sequence of the last event written to the tables: behind `position` while
    /// a folding projection holds events in memory ([`crate::RunnerOptions::write_interval`]).
    written: watch::Receiver<u64>,
    /// Asks the runner to write what it has folded now rather than at the interval.
    write_now: Arc<Notify>,
    /// The log's last sequence when the runner started: the projection has caught up
    /// once it has applied that far.
    startup_target: u64,
}

/// The projection did not reach a sequence in time.
#[derive(Debug, thiserror::Error)]
#[error("projection {name} is at {position}, not yet at {wanted}")]
pub struct NotReached {
    pub name: &'static str,
    pub position: u64,
    pub wanted: u64,
}

impl ProjectionHandle {
    pub(crate) fn new(
        name: &'static str,
        position: watch::Receiver<u64>,
        written: watch::Receiver<u64>,
        write_now: Arc<Notify>,
        startup_target: u64,
    ) -> Self {
        Self {
            name,
            position,
            written,
            write_now,
            startup_target,
        }
    }

    pub fn name(&self) -> &'static str {
        self.name
    }

    /// The sequence of the last event applied: committed, or folded into memory by a
    /// projection that writes at intervals.
    pub fn position(&self) -> u64 {
        *self.position.borrow()
    }

    /// True once the projection has applied everything that was in the log when it
    /// started.
    pub fn caught_up(&self) -> bool {
        self.position() >= self.startup_target
    }

    /// True when the event at `sequence` was in the log before the runner started: it
    /// is replayed history, which later events (already applied) may have superseded.
    pub fn replayed(&self, sequence: u64) -> bool {
        sequence < self.startup_target
    }

    /// Waits until the projection has applied `sequence`: a caller that appended an
    /// event then reads its own write.
    pub async fn wait_for(&self, sequence: u64, timeout: Duration) -> Result<(), NotReached> {
        self.reach(&self.position, sequence, timeout).await
    }

    /// Waits until everything applied so far is also in the tables, asking the runner
    /// to write what it folded at once rather than at its interval: a query that reads
    /// the tables then sees every event the projection has applied. Returns at once for
    /// a projection that writes each batch as it applies it.
    pub async fn wait_written(&self, timeout: Duration) -> Result<(), NotReached> {
        let wanted = self.position();
        if *self.written.borrow() >= wanted {
            return Ok(());
        }
        self.write_now.notify_one();
        self.reach(&self.written, wanted, timeout).await
    }

    /// Waits until `progress` (the applied or the written position) is at `wanted`.
    async fn reach(
        &self,
        progress: &watch::Receiver<u64>,
        wanted: u64,
        timeout: Duration,
    ) -> Result<(), NotReached> {
        let mut waiting = progress.clone();
        let reached = tokio::time::timeout(timeout, waiting.wait_for(|at| *at >= wanted)).await;
        match reached {
            Ok(Ok(_)) => Ok(()),
            _ => Err(NotReached {
                name: self.name,
                position: *progress.borrow(),
                wanted,
            }),
        }
    }
}
