//! Host ports held on one instance, per protocol.
//!
//! Ports the instance reserved at registration and ports held by tasks are kept apart, so that
//! a re-registration can change the former without losing track of the latter. Both are small
//! sorted vectors: ECS allows 100 reserved ports per instance and tasks hold a few each, so a
//! binary search beats a 64 Ki-bit bitmap (8 KiB per protocol per instance) on memory and is as
//! fast at these sizes.

use super::model::{HostPort, Protocol};

/// First port of the range dynamic host ports come from (the ECS agent's default).
pub const EPHEMERAL_FIRST: u16 = 49153;
/// Last port of that range.
pub const EPHEMERAL_LAST: u16 = 65535;
const EPHEMERAL_SIZE: u32 = (EPHEMERAL_LAST - EPHEMERAL_FIRST) as u32 + 1;

fn in_ephemeral(port: u16) -> bool {
    port >= EPHEMERAL_FIRST
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct PortSpace {
    /// Reserved by the instance at registration; sorted, unique.
    registered: Vec<u16>,
    /// Held by tasks; sorted, unique.
    tasks: Vec<u16>,
    /// How many of both lists fall in the ephemeral range (overlaps counted twice, which only
    /// ever under-states what is free).
    ephemeral_used: u32,
    /// Where the next dynamic port search starts: rotating through the range rather than always
    /// taking the lowest free port keeps a port just released by one task from going straight to
    /// the next one (as Docker's allocator does), and makes the search O(1) in practice.
    cursor: u16,
}

impl PortSpace {
    pub(crate) fn new(mut registered: Vec<u16>) -> Self {
        registered.sort_unstable();
        registered.dedup();
        let ephemeral_used = registered.iter().filter(|p| in_ephemeral(**p)).count() as u32;
        Self {
            registered,
            tasks: Vec::new(),
            ephemeral_used,
            cursor: EPHEMERAL_FIRST,
        }
    }

    /// Replaces the registered ports, keeping the task-held ones.
    pub(crate) fn set_registered(&mut self, registered: Vec<u16>) {
        let mut fresh = Self::new(registered);
        fresh.ephemeral_used += self.tasks.iter().filter(|p| in_ephemeral(**p)).count() as u32;
        fresh.tasks = std::mem::take(&mut self.tasks);
        fresh.cursor = self.cursor;
        *self = fresh;
    }

    pub(crate) fn in_use(&self, port: u16) -> bool {
        self.registered.binary_search(&port).is_ok() || self.tasks.binary_search(&port).is_ok()
    }

    pub(crate) fn held_by_task(&self, port: u16) -> bool {
        self.tasks.binary_search(&port).is_ok()
    }

    /// Free ports in the ephemeral range (a lower bound).
    pub(crate) fn ephemeral_free(&self) -> u32 {
        EPHEMERAL_SIZE.saturating_sub(self.ephemeral_used)
    }

    pub(crate) fn hold(&mut self, port: u16) {
        if let Err(at) = self.tasks.binary_search(&port) {
            self.tasks.insert(at, port);
            if in_ephemeral(port) {
                self.ephemeral_used += 1;
            }
        }
    }

    pub(crate) fn free(&mut self, port: u16) {
        if let Ok(at) = self.tasks.binary_search(&port) {
            self.tasks.remove(at);
            if in_ephemeral(port) {
                self.ephemeral_used -= 1;
            }
        }
    }

    /// Picks a free ephemeral port not in `taken` (ports already chosen for the same task),
    /// starting at the cursor; the caller then holds it. `None` only if the range is full.
    pub(crate) fn pick_dynamic(&mut self, protocol: Protocol, taken: &[HostPort]) -> Option<u16> {
        let start = self.cursor.max(EPHEMERAL_FIRST);
        let candidates = (start..=EPHEMERAL_LAST).chain(EPHEMERAL_FIRST..start);
        for port in candidates {
            if !self.in_use(port)
                && !taken
                    .iter()
                    .any(|t| t.protocol == protocol && t.port == port)
            {
                self.cursor = if port == EPHEMERAL_LAST {
                    EPHEMERAL_FIRST
                } else {
                    port + 1
                };
                return Some(port);
            }
        }
        None
    }

    pub(crate) fn task_ports(&self) -> &[u16] {
        &self.tasks
    }

    pub(crate) fn registered_ports(&self) -> &[u16] {
        &self.registered
    }
}
