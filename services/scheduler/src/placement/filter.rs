//! The binding part of a placement: can this instance take this task at all?
//!
//! Checks run in the order ECS documents (resources, then constraints), cheapest first within
//! that, and stop at the first failure: the same function decides candidates in the hot loop and
//! names the reason an instance was rejected when nothing fits.

use std::sync::Arc;

use berth_cql::Query;

use super::groups::{GroupId, Groups};
use super::instance::{CqlInstance, Instance};
use super::model::{Failure, FailureReason, Protocol};
use super::ports::EPHEMERAL_FIRST;
use super::request::{Constraint, PlacementRequest, PortRequest};

/// A request's requirements, prepared once per request.
#[derive(Debug)]
pub(crate) struct Need<'r> {
    pub(crate) cpu: u32,
    pub(crate) memory: u32,
    pub(crate) ports: &'r [PortRequest],
    /// Dynamic ports per protocol, plus the static ones asked inside the ephemeral range
    /// (they compete for the same free ports).
    ephemeral_needed: [u32; 2],
    /// The same static port asked twice: fits nowhere.
    ports_impossible: bool,
    /// The request's group, once it has tasks (set by the placement loop).
    pub(crate) group: Option<GroupId>,
    distinct_instance: bool,
    member_of: Vec<&'r Query>,
    /// StartTask's instances; `None` for any.
    on_instances: Option<&'r [Arc<str>]>,
}

impl<'r> Need<'r> {
    pub(crate) fn new(request: &'r PlacementRequest) -> Self {
        let ports = &request.resources.ports[..];
        let mut ephemeral_needed = [0u32; 2];
        let mut ports_impossible = false;
        for (i, p) in ports.iter().enumerate() {
            if p.host_port == 0 || p.host_port >= EPHEMERAL_FIRST {
                ephemeral_needed[p.protocol.index()] += 1;
            }
            ports_impossible |= p.host_port != 0 && ports[..i].contains(p);
        }
        let mut member_of = Vec::new();
        let mut on_instances = None;
        for constraint in &request.constraints {
            match constraint {
                Constraint::MemberOf(query) => member_of.push(&**query),
                Constraint::OnInstances(ids) => on_instances = Some(&ids[..]),
                Constraint::DistinctInstance => {}
            }
        }
        Self {
            cpu: request.resources.cpu,
            memory: request.resources.memory,
            ports,
            ephemeral_needed,
            ports_impossible,
            group: None,
            distinct_instance: request.constraints.contains(&Constraint::DistinctInstance),
            member_of,
            on_instances,
        }
    }

    /// Whether `inst` is a candidate at all: StartTask considers only the instances it names.
    #[inline]
    fn offered(&self, inst: &Instance) -> bool {
        self.on_instances.is_none_or(|ids| ids.contains(&inst.id))
    }

    /// Whether `inst` can take the task, or the first reason it cannot. The instance is assumed
    /// `ACTIVE` (the callers only offer active instances) and [offered](Self::offered).
    #[inline]
    pub(crate) fn check(&self, inst: &Instance, groups: &Groups) -> Result<(), FailureReason> {
        if !inst.connected {
            return Err(FailureReason::Agent);
        }
        if inst.cpu_free < self.cpu {
            return Err(FailureReason::Cpu);
        }
        if inst.memory_free < self.memory {
            return Err(FailureReason::Memory);
        }
        if !self.ports.is_empty() && !self.ports_fit(inst) {
            return Err(FailureReason::Ports);
        }
        if self.distinct_instance && self.group.is_some_and(|g| inst.group_count(g) > 0) {
            return Err(FailureReason::DistinctInstance);
        }
        if !self.member_of.is_empty() {
            let view = CqlInstance {
                instance: inst,
                groups,
            };
            if !self.member_of.iter().all(|q| q.matches(&view)) {
                return Err(FailureReason::MemberOf);
            }
        }
        Ok(())
    }

    #[inline]
    pub(crate) fn fits(&self, inst: &Instance, groups: &Groups) -> bool {
        self.offered(inst) && self.check(inst, groups).is_ok()
    }

    fn ports_fit(&self, inst: &Instance) -> bool {
        if self.ports_impossible {
            return false;
        }
        let statics_free = self
            .ports
            .iter()
            .filter(|p| p.host_port != 0)
            .all(|p| !inst.port_space(p.protocol).in_use(p.host_port));
        statics_free
            && [Protocol::Tcp, Protocol::Udp].into_iter().all(|proto| {
                let needed = self.ephemeral_needed[proto.index()];
                needed == 0 || inst.port_space(proto).ephemeral_free() >= needed
            })
    }
}

/// When a task fits nowhere: one failure per distinct reason among the active instances offered,
/// each naming the instance that came closest with that reason (most CPU left for
/// `RESOURCE:CPU`, most memory left for `RESOURCE:MEMORY`, the first in registration order
/// otherwise). That is what ECS's service events describe ("The closest matching
/// container-instance ...") and keeps RunTask's `failures` short on a large cluster, where ECS
/// would otherwise list thousands.
pub(crate) fn closest_failures<'a>(
    instances: impl Iterator<Item = &'a Instance>,
    groups: &Groups,
    need: &Need<'_>,
    out: &mut Vec<Failure>,
) {
    const REASONS: [FailureReason; 6] = [
        FailureReason::Agent,
        FailureReason::Cpu,
        FailureReason::Memory,
        FailureReason::Ports,
        FailureReason::MemberOf,
        FailureReason::DistinctInstance,
    ];
    let mut best: [Option<(&Instance, u32)>; 6] = [None; 6];
    for inst in instances.filter(|i| i.is_active() && need.offered(i)) {
        let Err(reason) = need.check(inst, groups) else {
            continue;
        };
        let closeness = match reason {
            FailureReason::Cpu => inst.cpu_free,
            FailureReason::Memory => inst.memory_free,
            _ => 0,
        };
        let i = REASONS
            .iter()
            .position(|r| *r == reason)
            .expect("all reasons listed");
        if best[i].is_none_or(|(_, c)| closeness > c) {
            best[i] = Some((inst, closeness));
        }
    }
    for (reason, found) in REASONS.into_iter().zip(best) {
        if let Some((inst, _)) = found {
            out.push(Failure {
                instance_arn: inst.arn.clone(),
                reason,
            });
        }
    }
}
