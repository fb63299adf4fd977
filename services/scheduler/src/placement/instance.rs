//! One container instance as the index holds it: registration, what is left, what is held.

use std::collections::BTreeMap;
use std::sync::Arc;

use berth_cql::InstanceView;

use super::groups::{GroupId, Groups};
use super::intern::{AttrId, ValueId};
use super::model::{ContainerInstance, InstanceStatus, Protocol};
use super::ports::PortSpace;

#[derive(Debug, Clone)]
pub(crate) struct Instance {
    pub(crate) id: Arc<str>,
    pub(crate) arn: Arc<str>,
    pub(crate) status: InstanceStatus,
    pub(crate) connected: bool,
    pub(crate) ec2_instance_id: Option<String>,
    pub(crate) agent_version: Option<String>,
    pub(crate) registered_at: i64,
    /// For the query language, which asks by name.
    pub(crate) attributes: BTreeMap<String, String>,
    /// The same attributes interned, sorted by name id, for spread and partitioned views.
    pub(crate) attr_ids: Vec<(AttrId, ValueId)>,
    pub(crate) cpu_registered: u32,
    pub(crate) memory_registered: u32,
    /// Sums of what tasks hold. Kept apart from what is free so that a re-registration with
    /// different resources recomputes the free amounts instead of losing the reservations.
    pub(crate) cpu_reserved: u64,
    pub(crate) memory_reserved: u64,
    /// `registered - reserved`, floored at zero: what the next task may take.
    pub(crate) cpu_free: u32,
    pub(crate) memory_free: u32,
    pub(crate) ports: [PortSpace; 2],
    /// Tasks placed here and not released.
    pub(crate) running: u32,
    /// Tasks per group, only groups with at least one task; few per instance, so a vector.
    pub(crate) groups: Vec<(GroupId, u32)>,
}

impl Instance {
    pub(crate) fn new(ci: ContainerInstance, attr_ids: Vec<(AttrId, ValueId)>) -> Self {
        let mut inst = Self {
            id: ci.id.into(),
            arn: ci.arn.into(),
            status: ci.status,
            connected: ci.agent_connected,
            ec2_instance_id: ci.ec2_instance_id,
            agent_version: ci.agent_version,
            registered_at: ci.registered_at,
            attributes: ci.attributes,
            attr_ids,
            cpu_registered: ci.cpu,
            memory_registered: ci.memory,
            cpu_reserved: 0,
            memory_reserved: 0,
            cpu_free: 0,
            memory_free: 0,
            ports: [
                PortSpace::new(ci.reserved_tcp_ports),
                PortSpace::new(ci.reserved_udp_ports),
            ],
            running: 0,
            groups: Vec::new(),
        };
        inst.recompute_free();
        inst
    }

    /// Takes a re-registration: everything but the reservations.
    pub(crate) fn update(&mut self, ci: ContainerInstance, attr_ids: Vec<(AttrId, ValueId)>) {
        self.arn = ci.arn.into();
        self.status = ci.status;
        self.connected = ci.agent_connected;
        self.ec2_instance_id = ci.ec2_instance_id;
        self.agent_version = ci.agent_version;
        self.registered_at = ci.registered_at;
        self.attributes = ci.attributes;
        self.attr_ids = attr_ids;
        self.cpu_registered = ci.cpu;
        self.memory_registered = ci.memory;
        self.ports[0].set_registered(ci.reserved_tcp_ports);
        self.ports[1].set_registered(ci.reserved_udp_ports);
        self.recompute_free();
    }

    pub(crate) fn recompute_free(&mut self) {
        let free =
            |registered: u32, reserved: u64| u64::from(registered).saturating_sub(reserved) as u32;
        self.cpu_free = free(self.cpu_registered, self.cpu_reserved);
        self.memory_free = free(self.memory_registered, self.memory_reserved);
    }

    pub(crate) fn is_active(&self) -> bool {
        self.status == InstanceStatus::Active
    }

    /// The instance's value of an attribute, [`ValueId::MISSING`] when it has none.
    pub(crate) fn value_of(&self, attr: AttrId) -> ValueId {
        match self.attr_ids.binary_search_by_key(&attr, |(a, _)| *a) {
            Ok(i) => self.attr_ids[i].1,
            Err(_) => ValueId::MISSING,
        }
    }

    pub(crate) fn group_count(&self, group: GroupId) -> u32 {
        self.groups
            .iter()
            .find(|(g, _)| *g == group)
            .map_or(0, |(_, n)| *n)
    }

    pub(crate) fn add_group_task(&mut self, group: GroupId) {
        match self.groups.iter_mut().find(|(g, _)| *g == group) {
            Some((_, n)) => *n += 1,
            None => self.groups.push((group, 1)),
        }
    }

    pub(crate) fn remove_group_task(&mut self, group: GroupId) {
        if let Some(i) = self.groups.iter().position(|(g, _)| *g == group) {
            self.groups[i].1 -= 1;
            if self.groups[i].1 == 0 {
                self.groups.swap_remove(i);
            }
        }
    }

    pub(crate) fn port_space(&self, protocol: Protocol) -> &PortSpace {
        &self.ports[protocol.index()]
    }
}

/// An index entry seen through the query language's eyes.
pub(crate) struct CqlInstance<'a> {
    pub(crate) instance: &'a Instance,
    pub(crate) groups: &'a Groups,
}

impl InstanceView for CqlInstance<'_> {
    fn attribute(&self, name: &str) -> Option<&str> {
        self.instance.attributes.get(name).map(String::as_str)
    }
    fn ec2_instance_id(&self) -> Option<&str> {
        self.instance.ec2_instance_id.as_deref()
    }
    fn agent_connected(&self) -> bool {
        self.instance.connected
    }
    fn agent_version(&self) -> Option<&str> {
        self.instance.agent_version.as_deref()
    }
    fn registered_at(&self) -> Option<i64> {
        Some(self.instance.registered_at)
    }
    fn running_tasks_count(&self) -> u64 {
        u64::from(self.instance.running)
    }
    fn any_task_group(&self, f: &mut dyn FnMut(&str) -> bool) -> bool {
        self.instance
            .groups
            .iter()
            .any(|(g, _)| f(self.groups.name(*g)))
    }
    fn has_task_group(&self, group: &str) -> bool {
        self.groups
            .lookup(group)
            .is_some_and(|g| self.instance.group_count(g) > 0)
    }
}
