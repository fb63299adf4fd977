//! Which session holds which container instance on this gateway.
//!
//! One instance has at most one session here: a new registration replaces (and closes) the
//! previous one, which may be a half-open connection the agent has already given up on.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use foldhash::{HashMap, HashMapExt};
use tokio::sync::{mpsc, watch};

use crate::read_model::tasks::TaskRow;

/// What the rest of the gateway asks of a session.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum SessionCommand {
    /// Hand the agent these tasks, as the projection just committed them (unless this session
    /// already has).
    Deliver(Vec<TaskRow>),
    /// Something may be waiting for the agent: read from the read model what it has not
    /// acknowledged, and send it.
    Sweep,
    /// End the session with this reason (replaced, instance deregistered).
    Close(String),
}

struct Entry {
    session: u64,
    commands: mpsc::UnboundedSender<SessionCommand>,
}

pub(crate) struct SessionRegistry {
    current: Mutex<HashMap<String, Entry>>,
    next_session: AtomicU64,
    /// How many sessions are open (registered or not), so shutdown can wait for them.
    live: watch::Sender<usize>,
}

impl Default for SessionRegistry {
    fn default() -> Self {
        Self {
            current: Mutex::new(HashMap::new()),
            next_session: AtomicU64::new(1),
            live: watch::channel(0).0,
        }
    }
}

/// Counts a connection as open until dropped.
pub(crate) struct OpenSession<'a> {
    registry: &'a SessionRegistry,
    pub id: u64,
}

impl Drop for OpenSession<'_> {
    fn drop(&mut self) {
        self.registry.live.send_modify(|n| *n = n.saturating_sub(1));
    }
}

impl SessionRegistry {
    /// A new connection: its session id, counted as open until the guard drops.
    pub fn open(&self) -> OpenSession<'_> {
        self.live.send_modify(|n| *n += 1);
        OpenSession {
            registry: self,
            id: self.next_session.fetch_add(1, Ordering::Relaxed),
        }
    }

    /// Makes `session` the one holding `instance_id`; the previous holder is told to close.
    pub fn install(
        &self,
        instance_id: &str,
        session: u64,
        commands: mpsc::UnboundedSender<SessionCommand>,
    ) {
        let previous = self
            .lock()
            .insert(instance_id.to_owned(), Entry { session, commands });
        if let Some(previous) = previous {
            let _ = previous.commands.send(SessionCommand::Close(
                "replaced by a newer session of the same instance".to_owned(),
            ));
        }
    }

    /// Forgets `session` if it still holds `instance_id`; false when another replaced it.
    pub fn remove(&self, instance_id: &str, session: u64) -> bool {
        let mut current = self.lock();
        if current
            .get(instance_id)
            .is_some_and(|e| e.session == session)
        {
            current.remove(instance_id);
            return true;
        }
        false
    }

    /// Sends `command` to the session holding `instance_id`, if this gateway has one.
    pub fn send(&self, instance_id: &str, command: SessionCommand) -> bool {
        self.lock()
            .get(instance_id)
            .is_some_and(|entry| entry.commands.send(command).is_ok())
    }

    /// Waits until every connection has closed; false on timeout.
    pub async fn wait_closed(&self, timeout: Duration) -> bool {
        let mut live = self.live.subscribe();
        tokio::time::timeout(timeout, live.wait_for(|n| *n == 0))
            .await
            .is_ok()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Entry>> {
        // A panic while holding this lock cannot leave the map inconsistent (single inserts
        // and removes), so a poisoned lock is still usable.
        self.current
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_new_session_replaces_and_closes_the_old_one() {
        let registry = SessionRegistry::default();
        let (old_tx, mut old_rx) = mpsc::unbounded_channel();
        let (new_tx, mut new_rx) = mpsc::unbounded_channel();
        let old = registry.open();
        let new = registry.open();
        registry.install("i", old.id, old_tx);
        registry.install("i", new.id, new_tx);
        assert!(matches!(old_rx.try_recv(), Ok(SessionCommand::Close(_))));
        assert!(
            !registry.remove("i", old.id),
            "the old session no longer holds i"
        );
        assert!(registry.send("i", SessionCommand::Sweep));
        assert_eq!(new_rx.try_recv(), Ok(SessionCommand::Sweep));
        assert!(registry.remove("i", new.id));
        assert!(!registry.send("i", SessionCommand::Sweep));
        assert_eq!(*registry.live.borrow(), 2);
        drop(old);
        drop(new);
        assert_eq!(*registry.live.borrow(), 0);
    }
}
