//! Counters of what agents do, for the simulated fleet's progress lines and for tests. Plain
//! relaxed atomics: they are read for reporting only, never to decide anything.

use std::sync::atomic::{AtomicU64, Ordering};

/// Counters shared by one agent or by a whole simulated fleet.
#[derive(Debug, Default)]
pub struct AgentStats {
    /// Sessions registered right now (a gauge).
    pub registered: AtomicU64,
    /// Registrations accepted, over all sessions.
    pub registrations: AtomicU64,
    /// Sessions lost after registration (closed, idle, write failed).
    pub disconnects: AtomicU64,
    /// Connection attempts that failed before registration.
    pub failed_attempts: AtomicU64,
    /// `PayloadMessage`s acknowledged.
    pub payloads: AtomicU64,
    /// `TaskStateChange` frames sent, resends included.
    pub reports_sent: AtomicU64,
    /// Reports acknowledged by `TaskStateAck`.
    pub reports_acked: AtomicU64,
    /// Heartbeats answered.
    pub heartbeats: AtomicU64,
}

/// A copy of [`AgentStats`] at one moment.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StatsSnapshot {
    /// See [`AgentStats::registered`].
    pub registered: u64,
    /// See [`AgentStats::registrations`].
    pub registrations: u64,
    /// See [`AgentStats::disconnects`].
    pub disconnects: u64,
    /// See [`AgentStats::failed_attempts`].
    pub failed_attempts: u64,
    /// See [`AgentStats::payloads`].
    pub payloads: u64,
    /// See [`AgentStats::reports_sent`].
    pub reports_sent: u64,
    /// See [`AgentStats::reports_acked`].
    pub reports_acked: u64,
    /// See [`AgentStats::heartbeats`].
    pub heartbeats: u64,
}

impl AgentStats {
    /// Reads every counter.
    pub fn snapshot(&self) -> StatsSnapshot {
        let read = |counter: &AtomicU64| counter.load(Ordering::Relaxed);
        StatsSnapshot {
            registered: read(&self.registered),
            registrations: read(&self.registrations),
            disconnects: read(&self.disconnects),
            failed_attempts: read(&self.failed_attempts),
            payloads: read(&self.payloads),
            reports_sent: read(&self.reports_sent),
            reports_acked: read(&self.reports_acked),
            heartbeats: read(&self.heartbeats),
        }
    }

    pub(crate) fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }

    pub(crate) fn sub(counter: &AtomicU64, n: u64) {
        counter.fetch_sub(n, Ordering::Relaxed);
    }
}
