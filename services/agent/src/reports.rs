//! The outbox of task reports: every driver event becomes a `TaskStateChange` with the next `seq`,
//! is written to `<data-dir>/reports.json` before it is sent, and stays there until a
//! `TaskStateAck` covers it. After a reconnect, or an agent restart, what is still pending is sent
//! again in order, so a STOPPED report (with its exit codes) reaches the control plane even when
//! the gateway or the agent went away right after the task ended. The gateway drops any `seq` it
//! already recorded, so sending twice is harmless; losing one is not.
//!
//! `seq` must keep increasing across restarts (the gateway treats a lower one as a duplicate), so
//! the file also holds the next number even when nothing is pending.

use std::collections::VecDeque;
use std::path::PathBuf;
use std::time::{SystemTime, UNIX_EPOCH};

use berth_agent_protocol::{TaskSnapshot, TaskStateChange};
use foldhash::{HashSet, HashSetExt};
use serde::{Deserialize, Serialize};

use crate::error::AgentError;
use crate::persist::{read_if_exists, write_atomically};

/// The file name under the data dir.
pub const REPORTS_FILE: &str = "reports.json";

/// Above this many unacknowledged reports (a gateway that stays away for long while tasks churn),
/// reports superseded by a later report of the same task are dropped: each report carries the
/// whole task, so the latest one alone says where the task stands. This bounds memory and the
/// file's size by the number of tasks rather than by the number of changes.
const COMPACT_ABOVE: usize = 4096;

/// Format of `reports.json`.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct OutboxFile {
    /// Format version, for a future change of this file.
    version: u32,
    /// The `seq` the next report gets.
    next_seq: u64,
    /// Unacknowledged reports, oldest first.
    pending: Vec<TaskStateChange>,
}

const FILE_VERSION: u32 = 1;

/// Unacknowledged reports, in `seq` order.
#[derive(Debug)]
pub struct Outbox {
    path: Option<PathBuf>,
    next_seq: u64,
    pending: VecDeque<TaskStateChange>,
    dirty: bool,
}

impl Outbox {
    /// Loads the outbox of `data_dir` (or starts an in-memory one without a data dir).
    ///
    /// When the file is missing or damaged although the agent has registered before, its old
    /// numbers are unknown, so numbering restarts from the current time in microseconds: far above
    /// any count of reports an agent could have made, so the gateway never mistakes a new report
    /// for an old one. A damaged file is kept aside as `reports.json.damaged` for inspection.
    pub async fn open(
        data_dir: Option<PathBuf>,
        registered_before: bool,
    ) -> Result<Self, AgentError> {
        let Some(dir) = data_dir else {
            return Ok(Self::in_memory(1));
        };
        let path = dir.join(REPORTS_FILE);
        let bytes = read_if_exists(&path)
            .await
            .map_err(|error| AgentError::state(&path, error))?;
        let loaded = match bytes {
            Some(bytes) => match serde_json::from_slice::<OutboxFile>(&bytes) {
                Ok(file) => Some(file),
                Err(error) => {
                    let aside = path.with_extension("json.damaged");
                    tracing::warn!(path = %path.display(), %error, aside = %aside.display(), "damaged report outbox; unacknowledged reports are lost, numbering restarts above them");
                    tokio::fs::rename(&path, &aside)
                        .await
                        .map_err(|error| AgentError::state(&path, error))?;
                    None
                }
            },
            None => None,
        };
        let mut outbox = match loaded {
            Some(file) => {
                let after_pending = file.pending.last().map_or(0, |last| last.seq + 1);
                Self {
                    path: Some(path),
                    next_seq: file.next_seq.max(after_pending).max(1),
                    pending: file.pending.into(),
                    dirty: false,
                }
            }
            None => {
                let next_seq = if registered_before { seq_seed() } else { 1 };
                Self {
                    path: Some(path),
                    next_seq,
                    pending: VecDeque::new(),
                    // Written at once, so a missing file later really means it was lost.
                    dirty: true,
                }
            }
        };
        outbox
            .flush()
            .await
            .map_err(|error| AgentError::state(outbox.path.clone().unwrap_or_default(), error))?;
        Ok(outbox)
    }

    fn in_memory(next_seq: u64) -> Self {
        Self {
            path: None,
            next_seq,
            pending: VecDeque::new(),
            dirty: false,
        }
    }

    /// Numbers a driver event and keeps it until acknowledged; returns the frame body to send.
    /// Call [`Outbox::flush`] before sending it.
    pub fn push(&mut self, snapshot: TaskSnapshot) -> TaskStateChange {
        let change = snapshot.into_state_change(self.next_seq);
        self.next_seq += 1;
        self.pending.push_back(change.clone());
        self.dirty = true;
        if self.pending.len() > COMPACT_ABOVE {
            self.compact();
        }
        change
    }

    /// Forgets every report up to and including `seq` (acks are cumulative); returns how many.
    pub fn ack(&mut self, seq: u64) -> usize {
        if seq >= self.next_seq {
            // The gateway has recorded numbers this agent never handed out (its outbox was
            // replaced): continue above them, or every new report would look like a duplicate.
            tracing::warn!(
                acked = seq,
                next_seq = self.next_seq,
                "gateway acknowledged a report number not yet used; numbering continues above it"
            );
            self.next_seq = seq + 1;
            self.dirty = true;
        }
        let before = self.pending.len();
        while self.pending.front().is_some_and(|change| change.seq <= seq) {
            self.pending.pop_front();
        }
        let removed = before - self.pending.len();
        if removed > 0 {
            self.dirty = true;
        }
        removed
    }

    /// The unacknowledged reports, oldest first.
    pub fn pending(&self) -> impl ExactSizeIterator<Item = &TaskStateChange> {
        self.pending.iter()
    }

    /// The `seq` the next report gets.
    pub fn next_seq(&self) -> u64 {
        self.next_seq
    }

    /// Writes the outbox if it changed since the last write. An in-memory outbox does nothing.
    pub async fn flush(&mut self) -> std::io::Result<()> {
        if !self.dirty {
            return Ok(());
        }
        let Some(path) = &self.path else {
            self.dirty = false;
            return Ok(());
        };
        let file = OutboxFile {
            version: FILE_VERSION,
            next_seq: self.next_seq,
            pending: self.pending.iter().cloned().collect(),
        };
        let bytes = serde_json::to_vec(&file).map_err(std::io::Error::other)?;
        write_atomically(path, &bytes).await?;
        self.dirty = false;
        Ok(())
    }

    /// Keeps only the latest pending report of each task, in `seq` order.
    fn compact(&mut self) {
        let before = self.pending.len();
        let pending: Vec<TaskStateChange> = self.pending.drain(..).collect();
        self.pending = latest_per_task(pending, |change| &change.task).into();
        tracing::warn!(
            before,
            after = self.pending.len(),
            "many unacknowledged reports; kept only the latest of each task"
        );
    }
}

/// The last item of each task, in the order of those last items. Each report carries the whole
/// task, so the latest one alone says where the task stands: the earlier ones are superseded.
pub(crate) fn latest_per_task<T>(items: Vec<T>, task: impl Fn(&T) -> &TaskSnapshot) -> Vec<T> {
    let mut seen = HashSet::new();
    let mut kept: Vec<T> = Vec::with_capacity(items.len());
    for item in items.into_iter().rev() {
        if seen.insert(task(&item).task_arn.clone()) {
            kept.push(item);
        }
    }
    kept.reverse();
    kept
}

/// A starting `seq` above any an agent could have used before: microseconds since the epoch.
fn seq_seed() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_micros()).unwrap_or(u64::MAX / 2))
        .unwrap_or(1)
        .max(1)
}

#[cfg(test)]
mod tests {
    use berth_agent_protocol::TaskStatus;

    use super::*;

    fn snapshot(arn: &str, status: TaskStatus) -> TaskSnapshot {
        TaskSnapshot {
            task_arn: arn.to_string(),
            status,
            reason: None,
            stop_code: None,
            containers: Vec::new(),
            pulled_at: None,
            started_at: None,
            stopped_at: None,
        }
    }

    fn seqs(outbox: &Outbox) -> Vec<u64> {
        outbox.pending().map(|change| change.seq).collect()
    }

    #[tokio::test]
    async fn reports_survive_a_restart_until_acknowledged() {
        let dir = tempfile::tempdir().expect("tempdir");
        let data_dir = Some(dir.path().to_path_buf());
        let mut outbox = Outbox::open(data_dir.clone(), false).await.expect("open");
        assert_eq!(outbox.push(snapshot("t/a", TaskStatus::Pending)).seq, 1);
        assert_eq!(outbox.push(snapshot("t/a", TaskStatus::Running)).seq, 2);
        assert_eq!(outbox.push(snapshot("t/a", TaskStatus::Stopped)).seq, 3);
        outbox.flush().await.expect("flush");

        let mut reopened = Outbox::open(data_dir.clone(), true).await.expect("reopen");
        assert_eq!(seqs(&reopened), [1, 2, 3]);
        assert_eq!(reopened.ack(2), 2);
        reopened.flush().await.expect("flush");

        let mut again = Outbox::open(data_dir, true).await.expect("reopen");
        assert_eq!(seqs(&again), [3]);
        assert_eq!(
            again.pending().next().map(|c| c.task.status),
            Some(TaskStatus::Stopped)
        );
        assert_eq!(again.ack(3), 1);
        assert_eq!(again.push(snapshot("t/b", TaskStatus::Pending)).seq, 4);
    }

    #[tokio::test]
    async fn numbering_never_restarts_when_the_file_is_lost() {
        let dir = tempfile::tempdir().expect("tempdir");
        let data_dir = Some(dir.path().to_path_buf());
        let mut outbox = Outbox::open(data_dir.clone(), false).await.expect("open");
        outbox.push(snapshot("t/a", TaskStatus::Pending));
        outbox.flush().await.expect("flush");

        std::fs::write(dir.path().join(REPORTS_FILE), b"garbage").expect("damage");
        let damaged = Outbox::open(data_dir.clone(), true).await.expect("reopen");
        assert!(damaged.next_seq() > 1_000_000_000, "{}", damaged.next_seq());
        assert!(dir.path().join("reports.json.damaged").exists());

        std::fs::remove_file(dir.path().join(REPORTS_FILE)).expect("remove");
        let lost = Outbox::open(data_dir, true).await.expect("reopen");
        assert!(lost.next_seq() > 1_000_000_000);
    }

    #[test]
    fn acks_beyond_the_numbering_move_it_up() {
        let mut outbox = Outbox::in_memory(1);
        outbox.push(snapshot("t/a", TaskStatus::Pending));
        assert_eq!(outbox.ack(41), 1);
        assert_eq!(outbox.push(snapshot("t/a", TaskStatus::Running)).seq, 42);
    }

    #[test]
    fn a_long_outage_keeps_the_latest_report_of_each_task() {
        let mut outbox = Outbox::in_memory(1);
        for round in 0..=COMPACT_ABOVE {
            let status = if round % 2 == 0 {
                TaskStatus::Running
            } else {
                TaskStatus::Stopped
            };
            outbox.push(snapshot(&format!("t/{}", round % 3), status));
        }
        let arns: Vec<&str> = outbox.pending().map(|c| c.task.task_arn.as_str()).collect();
        assert_eq!(arns.len(), 3, "{arns:?}");
        let seqs = seqs(&outbox);
        assert!(seqs.windows(2).all(|w| w[0] < w[1]), "{seqs:?}");
        assert_eq!(*seqs.last().expect("one"), COMPACT_ABOVE as u64 + 1);
    }
}
