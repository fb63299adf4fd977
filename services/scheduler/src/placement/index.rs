//! The cluster index: every container instance of one cluster with what it has left, kept
//! current by the scheduler (the single writer of placements for the cluster).
//!
//! Instances live in a slab (`Vec<Option<Instance>>`) addressed by slot number: views, spread
//! counts and the selection loop refer to instances by slot, a `u32`, and only the public API
//! goes through the id map. Freed slots are reused.
//!
//! Invariants, checked by the property tests:
//! - reservations never exceed what an instance registered (`reserve` refuses, and `place` only
//!   picks instances where the task fits); ports held on an instance are unique;
//! - `release` of what `reserve` took restores the instance exactly;
//! - every view and spread count equals what it would be if rebuilt from scratch.

use std::sync::Arc;

use foldhash::HashMap;

use super::filter::Need;
use super::groups::Groups;
use super::instance::Instance;
use super::intern::{AttrId, Interner, ValueId};
use super::model::{
    ContainerInstance, FailureReason, HostPort, InstanceStatus, Protocol, TaskReservation,
};
use super::select::Scratch;
use super::views::Views;

/// Errors of the index's own operations (placement failures are not errors; see
/// [`PlacementOutcome`](super::PlacementOutcome)).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum IndexError {
    #[error("container instance {0} is not in the index")]
    UnknownInstance(String),
    #[error("container instance {0} is already in the index")]
    DuplicateInstance(String),
    #[error("container instance {instance} cannot take the reservation: {reason}")]
    DoesNotFit {
        instance: String,
        reason: FailureReason,
    },
    #[error("container instance {instance} does not hold that reservation: {what}")]
    NotReserved {
        instance: String,
        what: &'static str,
    },
}

/// All container instances of a cluster, with free resources, held ports and task groups,
/// plus the incremental structures that make a placement decision cheap.
#[derive(Debug, Default)]
pub struct ClusterIndex {
    pub(crate) slots: Vec<Option<Instance>>,
    free_slots: Vec<u32>,
    by_id: HashMap<Arc<str>, u32>,
    active: usize,
    pub(crate) attrs: Interner,
    values: Interner,
    pub(crate) groups: Groups,
    pub(crate) views: Views,
    /// Buffers the placement loop reuses, so a decision allocates nothing.
    pub(crate) scratch: Scratch,
}

/// A read-only look at one instance of the index.
#[derive(Clone, Copy)]
pub struct InstanceState<'a> {
    inst: &'a Instance,
    groups: &'a Groups,
}

impl<'a> InstanceState<'a> {
    pub fn id(&self) -> &'a str {
        &self.inst.id
    }
    pub fn arn(&self) -> &'a str {
        &self.inst.arn
    }
    pub fn status(&self) -> InstanceStatus {
        self.inst.status
    }
    pub fn agent_connected(&self) -> bool {
        self.inst.connected
    }
    pub fn attributes(&self) -> &'a std::collections::BTreeMap<String, String> {
        &self.inst.attributes
    }
    pub fn cpu_registered(&self) -> u32 {
        self.inst.cpu_registered
    }
    pub fn memory_registered(&self) -> u32 {
        self.inst.memory_registered
    }
    /// CPU units held by tasks (may exceed what is registered only after a re-registration
    /// with less CPU).
    pub fn cpu_reserved(&self) -> u64 {
        self.inst.cpu_reserved
    }
    pub fn memory_reserved(&self) -> u64 {
        self.inst.memory_reserved
    }
    pub fn cpu_remaining(&self) -> u32 {
        self.inst.cpu_free
    }
    pub fn memory_remaining(&self) -> u32 {
        self.inst.memory_free
    }
    /// Tasks placed on the instance and not released.
    pub fn running_tasks(&self) -> u32 {
        self.inst.running
    }
    /// Tasks of `group` on the instance.
    pub fn group_count(&self, group: &str) -> u32 {
        self.groups
            .lookup(group)
            .map_or(0, |g| self.inst.group_count(g))
    }
    /// Host ports held by tasks, sorted.
    pub fn task_ports(&self, protocol: Protocol) -> &'a [u16] {
        self.inst.port_space(protocol).task_ports()
    }
    /// Host ports reserved at registration, sorted.
    pub fn registered_ports(&self, protocol: Protocol) -> &'a [u16] {
        self.inst.port_space(protocol).registered_ports()
    }
}

impl ClusterIndex {
    pub fn new() -> Self {
        Self::default()
    }

    /// Instances in the index, whatever their status.
    pub fn len(&self) -> usize {
        self.by_id.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_id.is_empty()
    }

    /// `ACTIVE` instances: the candidates of a placement.
    pub fn active_len(&self) -> usize {
        self.active
    }

    pub fn contains(&self, id: &str) -> bool {
        self.by_id.contains_key(id)
    }

    pub fn instance(&self, id: &str) -> Option<InstanceState<'_>> {
        let slot = *self.by_id.get(id)?;
        Some(self.state(slot))
    }

    /// Every instance, in slot order.
    pub fn instances(&self) -> impl Iterator<Item = InstanceState<'_>> {
        self.live().map(|(slot, _)| self.state(slot))
    }

    /// Task groups with at least one task in the cluster.
    pub fn group_count(&self) -> usize {
        self.groups.len()
    }

    /// Registers an instance.
    pub fn add_instance(&mut self, ci: ContainerInstance) -> Result<(), IndexError> {
        if self.by_id.contains_key(ci.id.as_str()) {
            return Err(IndexError::DuplicateInstance(ci.id));
        }
        let attr_ids = self.intern_attributes(&ci);
        let inst = Instance::new(ci, attr_ids);
        let slot = match self.free_slots.pop() {
            Some(slot) => slot,
            None => {
                self.slots.push(None);
                u32::try_from(self.slots.len() - 1).expect("fewer than 4 billion instances")
            }
        };
        self.by_id.insert(inst.id.clone(), slot);
        self.active += usize::from(inst.is_active());
        self.groups.shift_instance(&inst, true);
        self.views.insert(slot, &inst);
        self.slots[slot as usize] = Some(inst);
        Ok(())
    }

    /// Takes a new description of a registered instance (status, agent, attributes, registered
    /// resources); its reservations stay.
    pub fn update_instance(&mut self, ci: ContainerInstance) -> Result<(), IndexError> {
        let Some(&slot) = self.by_id.get(ci.id.as_str()) else {
            return Err(IndexError::UnknownInstance(ci.id));
        };
        let attr_ids = self.intern_attributes(&ci);
        self.modify(slot, |inst| inst.update(ci, attr_ids));
        Ok(())
    }

    /// Sets the status (DRAINING instances keep their tasks and receive no new ones).
    pub fn set_status(&mut self, id: &str, status: InstanceStatus) -> Result<(), IndexError> {
        let slot = self.slot(id)?;
        self.modify(slot, |inst| inst.status = status);
        Ok(())
    }

    /// Records the agent connecting or disconnecting.
    pub fn set_agent_connected(&mut self, id: &str, connected: bool) -> Result<(), IndexError> {
        let slot = self.slot(id)?;
        // Connection is a filter, not a key of any view: no view moves.
        self.instance_mut(slot).connected = connected;
        Ok(())
    }

    /// Removes an instance, and with it the tasks it held from the group counts.
    pub fn remove_instance(&mut self, id: &str) -> Result<(), IndexError> {
        let slot = self.slot(id)?;
        let inst = self.slots[slot as usize]
            .take()
            .expect("slot of a known id");
        self.views.remove(slot, &inst);
        for group in self.groups.instance_removed(&inst) {
            self.views.forget_group(group);
        }
        self.active -= usize::from(inst.is_active());
        self.by_id.remove(id);
        self.free_slots.push(slot);
        Ok(())
    }

    /// Records a task holding `reservation` on the instance: used when rebuilding the index from
    /// the event log, and by [`place`](super::place). Refuses what does not fit (CPU, memory, a
    /// port already held or listed twice); the agent and status are not checked, since a task
    /// that is already running is where it is.
    pub fn reserve(
        &mut self,
        instance_id: &str,
        reservation: &TaskReservation,
    ) -> Result<(), IndexError> {
        let slot = self.slot(instance_id)?;
        let inst = self.slots[slot as usize].as_ref().expect("live slot");
        let does_not_fit = |reason| IndexError::DoesNotFit {
            instance: instance_id.to_owned(),
            reason,
        };
        if inst.cpu_free < reservation.cpu {
            return Err(does_not_fit(FailureReason::Cpu));
        }
        if inst.memory_free < reservation.memory {
            return Err(does_not_fit(FailureReason::Memory));
        }
        let ports = &reservation.ports;
        for (i, p) in ports.iter().enumerate() {
            if inst.port_space(p.protocol).in_use(p.port) || ports[..i].contains(p) {
                return Err(does_not_fit(FailureReason::Ports));
            }
        }
        self.hold(slot, reservation);
        Ok(())
    }

    /// Gives back what a task held. Refuses (changing nothing) what the instance does not hold.
    pub fn release(
        &mut self,
        instance_id: &str,
        reservation: &TaskReservation,
    ) -> Result<(), IndexError> {
        let slot = self.slot(instance_id)?;
        let inst = self.slots[slot as usize].as_ref().expect("live slot");
        let not_reserved = |what| IndexError::NotReserved {
            instance: instance_id.to_owned(),
            what,
        };
        let Some(group) = self
            .groups
            .lookup(&reservation.group)
            .filter(|g| inst.group_count(*g) > 0)
        else {
            return Err(not_reserved("no task of that group"));
        };
        if inst.cpu_reserved < u64::from(reservation.cpu) {
            return Err(not_reserved("more CPU than reserved"));
        }
        if inst.memory_reserved < u64::from(reservation.memory) {
            return Err(not_reserved("more memory than reserved"));
        }
        if reservation
            .ports
            .iter()
            .any(|p| !inst.port_space(p.protocol).held_by_task(p.port))
        {
            return Err(not_reserved("a port no task holds"));
        }

        self.views.capture(slot, inst);
        let inst = self.slots[slot as usize].as_mut().expect("live");
        inst.cpu_reserved -= u64::from(reservation.cpu);
        inst.memory_reserved -= u64::from(reservation.memory);
        inst.recompute_free();
        for p in &reservation.ports {
            inst.ports[p.protocol.index()].free(p.port);
        }
        inst.running -= 1;
        inst.remove_group_task(group);
        self.views.settle(slot, inst);
        if self.groups.task_removed(group, inst) {
            self.views.forget_group(group);
        }
        Ok(())
    }

    // ---- internals shared with the placement loop ---------------------------------------

    pub(crate) fn live(&self) -> impl Iterator<Item = (u32, &Instance)> {
        self.slots
            .iter()
            .enumerate()
            .filter_map(|(slot, inst)| Some((slot as u32, inst.as_ref()?)))
    }

    /// Applies a reservation already known to fit.
    pub(crate) fn hold(&mut self, slot: u32, reservation: &TaskReservation) {
        let group = self.groups.intern(&reservation.group);
        let inst = self.slots[slot as usize].as_mut().expect("live slot");
        self.views.capture(slot, inst);
        inst.cpu_reserved += u64::from(reservation.cpu);
        inst.memory_reserved += u64::from(reservation.memory);
        inst.recompute_free();
        for p in &reservation.ports {
            inst.ports[p.protocol.index()].hold(p.port);
        }
        inst.running += 1;
        inst.add_group_task(group);
        self.groups.task_added(group, inst);
        self.views.settle(slot, inst);
    }

    /// Resolves the host ports of a task about to be held on `slot`: static ones as asked,
    /// dynamic ones picked from the ephemeral range. `need` has checked that they are free.
    pub(crate) fn assign_ports(&mut self, slot: u32, need: &Need<'_>) -> Vec<HostPort> {
        let inst = self.slots[slot as usize].as_mut().expect("live slot");
        // Allocates only when the task has ports.
        let mut out = Vec::with_capacity(need.ports.len());
        for p in need.ports {
            let port = if p.host_port != 0 {
                p.host_port
            } else {
                inst.ports[p.protocol.index()]
                    .pick_dynamic(p.protocol, &out)
                    .expect("checked by Need::check")
            };
            out.push(HostPort {
                protocol: p.protocol,
                port,
            });
        }
        out
    }

    fn state(&self, slot: u32) -> InstanceState<'_> {
        InstanceState {
            inst: self.slots[slot as usize].as_ref().expect("live slot"),
            groups: &self.groups,
        }
    }

    fn slot(&self, id: &str) -> Result<u32, IndexError> {
        self.by_id
            .get(id)
            .copied()
            .ok_or_else(|| IndexError::UnknownInstance(id.to_owned()))
    }

    fn instance_mut(&mut self, slot: u32) -> &mut Instance {
        self.slots[slot as usize].as_mut().expect("live slot")
    }

    /// Changes an instance in a way that may move it anywhere: out of every structure, change,
    /// back in.
    fn modify(&mut self, slot: u32, change: impl FnOnce(&mut Instance)) {
        let inst = self.slots[slot as usize].as_mut().expect("live slot");
        self.views.remove(slot, inst);
        self.groups.shift_instance(inst, false);
        self.active -= usize::from(inst.is_active());
        change(inst);
        self.active += usize::from(inst.is_active());
        self.groups.shift_instance(inst, true);
        self.views.insert(slot, inst);
    }

    fn intern_attributes(&mut self, ci: &ContainerInstance) -> Vec<(AttrId, ValueId)> {
        let mut ids: Vec<(AttrId, ValueId)> = ci
            .attributes
            .iter()
            .map(|(name, value)| {
                (
                    AttrId(self.attrs.intern(name)),
                    ValueId(self.values.intern(value)),
                )
            })
            .collect();
        ids.sort_unstable();
        ids
    }
}
