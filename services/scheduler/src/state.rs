//! The scheduler's state: per cluster, the placement index and every task that
//! holds or waits for resources. Fed by the log, one event at a time, idempotently
//! (each entity remembers the sequence of the last event it applied), so a batch
//! applied twice after a failed commit changes nothing.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};

use berth_eventlog::RecordedEvent;
use berth_events::{
    Attribute, Event, EventMeta, InstanceResources, PlacementFailure, PortAssignment, PortRequest,
    TaskPlaced, TaskPlacementFailed,
};
use foldhash::HashMap;
use rand::rngs::SmallRng;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::placement::{
    ClusterIndex, Constraint, ContainerInstance, HostPort, InstanceStatus, PlacementRequest,
    Protocol, Strategy, TaskReservation, TaskResources, place,
};

/// What the scheduler keeps of a container instance.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct InstanceRecord {
    pub version: u64,
    pub status: String,
    pub agent_connected: bool,
    pub ec2_instance_id: String,
    pub agent_version: String,
    pub registered_at: i64,
    pub resources: InstanceResources,
    pub agent_attributes: Vec<Attribute>,
    pub custom_attributes: Vec<Attribute>,
}

/// Where a task stands.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum TaskPhase {
    /// Requested, not decided.
    Pending,
    /// Decided here, the decision not yet seen in the log (never persisted).
    InFlight {
        instance_id: String,
        ports: Vec<PortAssignment>,
    },
    /// Holds resources on an instance until it stops.
    Placed {
        instance_id: String,
        ports: Vec<PortAssignment>,
    },
}

/// What the scheduler keeps of a task until it stops.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TaskRecord {
    /// Sequence of the task's last event: the version a decision expects.
    pub version: u64,
    /// Sequence of its TaskRequested: the order tasks are placed in.
    pub requested_at: u64,
    pub group: String,
    pub cpu_units: u32,
    pub memory_mib: u32,
    pub ports: Vec<PortRequest>,
    pub constraints: Vec<berth_events::Constraint>,
    pub strategy: Vec<berth_events::Strategy>,
    pub target_instances: Vec<String>,
    pub phase: TaskPhase,
    /// The request the task answers, for the envelope of the decision (absent from
    /// snapshots written before it was kept: their decisions carry no correlation).
    #[serde(default)]
    pub requested_by: RequestedBy,
}

/// What a decision's event keeps of the task's `TaskRequested` envelope: the decision is
/// caused by it and shares its correlation (the user's request) and trace, so a consumer
/// of the log can follow a task from its request to its placement. Taken from
/// [`EventMeta::caused_by`] when the request is applied; the decision's own id and time
/// are stamped when it is made.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RequestedBy {
    /// Id of the `TaskRequested` event.
    #[serde(alias = "event_id")]
    pub causation_id: Option<Uuid>,
    pub correlation_id: Option<Uuid>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub trace_context: Vec<(String, String)>,
}

impl RequestedBy {
    fn of(requested: &EventMeta) -> Self {
        let caused = EventMeta::caused_by(requested);
        Self {
            causation_id: caused.causation_id,
            correlation_id: caused.correlation_id,
            trace_context: caused.trace_context,
        }
    }

    /// A fresh envelope for the decision.
    pub fn decision_meta(&self) -> EventMeta {
        EventMeta {
            causation_id: self.causation_id,
            correlation_id: self.correlation_id,
            trace_context: self.trace_context.clone(),
            ..EventMeta::new()
        }
    }
}

/// One cluster.
#[derive(Default)]
pub struct ClusterState {
    pub index: ClusterIndex,
    pub instances: HashMap<String, InstanceRecord>,
    pub tasks: HashMap<String, TaskRecord>,
    /// Pending tasks by request sequence.
    pending: BTreeMap<u64, String>,
}

/// A decision to append.
#[derive(Debug, Clone)]
pub struct Decision {
    pub cluster: String,
    pub task_id: String,
    pub expected_version: u64,
    pub outcome: DecisionOutcome,
    /// The envelope of the decision's event.
    pub meta: EventMeta,
}

#[derive(Debug, Clone)]
pub enum DecisionOutcome {
    Placed(TaskPlaced),
    Failed(TaskPlacementFailed),
}

/// Every cluster the scheduler knows.
#[derive(Default)]
pub struct SchedulerState {
    pub clusters: HashMap<String, ClusterState>,
}

impl InstanceRecord {
    fn attributes(&self) -> BTreeMap<String, String> {
        self.agent_attributes
            .iter()
            .chain(&self.custom_attributes)
            .map(|a| (a.name.clone(), a.value.clone().unwrap_or_default()))
            .collect()
    }

    /// The engine's view. Its `arn` is the id: the scheduler renders no ARNs.
    fn to_index(&self, id: &str) -> ContainerInstance {
        ContainerInstance {
            id: id.to_owned(),
            arn: id.to_owned(),
            status: InstanceStatus::parse(&self.status).unwrap_or(InstanceStatus::Inactive),
            agent_connected: self.agent_connected,
            ec2_instance_id: Some(self.ec2_instance_id.clone()),
            agent_version: Some(self.agent_version.clone()),
            registered_at: self.registered_at / 1000,
            attributes: self.attributes(),
            cpu: self.resources.cpu_units,
            memory: self.resources.memory_mib,
            reserved_tcp_ports: self.resources.reserved_tcp_ports.clone(),
            reserved_udp_ports: self.resources.reserved_udp_ports.clone(),
        }
    }
}

fn protocol(name: &str) -> Protocol {
    if name.eq_ignore_ascii_case("udp") {
        Protocol::Udp
    } else {
        Protocol::Tcp
    }
}

/// One of the engine's failures as the log records it (the engine's `arn` is the id).
fn engine_failure(failure: &crate::placement::Failure) -> PlacementFailure {
    PlacementFailure {
        container_instance_id: Some(failure.instance_arn.to_string()),
        reason: failure.reason.as_str().to_owned(),
        detail: Some(failure.reason.detail().to_owned()),
    }
}

impl TaskRecord {
    fn reservation(&self, ports: &[PortAssignment]) -> TaskReservation {
        TaskReservation {
            group: Arc::from(self.group.as_str()),
            cpu: self.cpu_units,
            memory: self.memory_mib,
            ports: ports
                .iter()
                .map(|p| HostPort {
                    protocol: protocol(&p.protocol),
                    port: p.host_port,
                })
                .collect(),
        }
    }

    /// StartTask's named instances that cannot take a task whatever it needs, as StartTask
    /// reports them: `MISSING` (unknown to the cluster) or `INACTIVE` (deregistered, or
    /// draining). The engine, which knows only active instances, reports the others.
    fn unavailable_targets(
        &self,
        instances: &HashMap<String, InstanceRecord>,
    ) -> impl Iterator<Item = PlacementFailure> {
        self.target_instances.iter().filter_map(|id| {
            let (reason, detail) = match instances.get(id).map(|r| r.status.as_str()) {
                None | Some("") => ("MISSING", "The container instance was not found."),
                Some("INACTIVE") => ("INACTIVE", "The container instance is deregistered."),
                Some("DRAINING") => (
                    "INACTIVE",
                    "The container instance is draining and takes no new tasks.",
                ),
                Some(_) => return None,
            };
            Some(PlacementFailure {
                container_instance_id: Some(id.clone()),
                reason: reason.into(),
                detail: Some(detail.into()),
            })
        })
    }

    /// The engine's request; `None` when the stored constraints no longer parse.
    fn request(&self) -> Result<PlacementRequest, String> {
        let mut constraints = self
            .constraints
            .iter()
            .map(|c| {
                Constraint::from_wire(&c.kind, c.expression.as_deref()).map_err(|e| e.to_string())
            })
            .collect::<Result<Vec<_>, _>>()?;
        if !self.target_instances.is_empty() {
            let ids = self
                .target_instances
                .iter()
                .map(|id| Arc::from(id.as_str()));
            constraints.push(Constraint::OnInstances(ids.collect()));
        }
        let strategies = self
            .strategy
            .iter()
            .map(|s| Strategy::from_wire(&s.kind, s.field.as_deref()).map_err(|e| e.to_string()))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(PlacementRequest {
            group: Arc::from(self.group.as_str()),
            resources: TaskResources {
                cpu: self.cpu_units,
                memory: self.memory_mib,
                ports: self
                    .ports
                    .iter()
                    .map(|p| crate::placement::PortRequest {
                        protocol: protocol(&p.protocol),
                        host_port: p.host_port,
                    })
                    .collect(),
            },
            constraints,
            strategies,
            origin: crate::placement::Origin::Standalone,
            count: 1,
        })
    }
}

impl ClusterState {
    fn sync_instance(&mut self, id: &str) {
        let Some(record) = self.instances.get(id) else {
            return;
        };
        if record.status == "INACTIVE" {
            let _ = self.index.remove_instance(id);
            return;
        }
        let instance = record.to_index(id);
        let result = if self.index.contains(id) {
            self.index.update_instance(instance)
        } else {
            self.index.add_instance(instance)
        };
        if let Err(error) = result {
            tracing::warn!(instance = id, %error, "instance not indexed");
        }
    }

    /// Holds (or gives back) a placed task's resources in the index.
    fn hold(&mut self, task_id: &str, hold: bool) {
        let Some(task) = self.tasks.get(task_id) else {
            return;
        };
        let (TaskPhase::Placed { instance_id, ports } | TaskPhase::InFlight { instance_id, ports }) =
            &task.phase
        else {
            return;
        };
        if !self.index.contains(instance_id) {
            return;
        }
        let reservation = task.reservation(ports);
        let result = if hold {
            self.index.reserve(instance_id, &reservation)
        } else {
            self.index.release(instance_id, &reservation)
        };
        if let Err(error) = result {
            tracing::warn!(task = task_id, instance = %instance_id, %error, "reservation out of step");
        }
    }
}

impl SchedulerState {
    /// Applies one event. Returns true if it changed anything.
    pub fn apply(&mut self, recorded: &RecordedEvent) -> bool {
        let Some(event) = &recorded.event else {
            return false;
        };
        let sequence = recorded.sequence;
        match &recorded.aggregate {
            berth_events::Aggregate::ContainerInstance { cluster, id } => {
                let state = self.clusters.entry(cluster.clone()).or_default();
                let record = state.instances.entry(id.clone()).or_default();
                if record.version >= sequence {
                    return false;
                }
                record.version = sequence;
                match event {
                    Event::ContainerInstanceRegistered(registered) => {
                        if record.status.is_empty() || record.status == "INACTIVE" {
                            record.status = "ACTIVE".into();
                            record.registered_at = recorded.meta.time.0;
                        }
                        record.ec2_instance_id = registered.ec2_instance_id.clone();
                        record.agent_version = registered.agent_version.clone();
                        record.resources = registered.resources.clone();
                        record.agent_attributes = registered.attributes.clone();
                    }
                    Event::ContainerInstanceStatusChanged(changed) => {
                        record.status = changed.status.clone()
                    }
                    Event::ContainerInstanceDeregistered(_) => {
                        record.status = "INACTIVE".into();
                        record.agent_connected = false;
                    }
                    Event::AgentConnected(_) => record.agent_connected = true,
                    Event::AgentDisconnected(_) => record.agent_connected = false,
                    Event::AttributesPut(put) => {
                        for attribute in &put.attributes {
                            record
                                .custom_attributes
                                .retain(|a| a.name != attribute.name);
                            record.custom_attributes.push(attribute.clone());
                        }
                    }
                    Event::AttributesDeleted(deleted) => {
                        record
                            .custom_attributes
                            .retain(|a| !deleted.names.contains(&a.name));
                        record
                            .agent_attributes
                            .retain(|a| !deleted.names.contains(&a.name));
                    }
                    _ => return true,
                }
                state.sync_instance(id);
                true
            }
            berth_events::Aggregate::Task { cluster, id } => {
                self.apply_task(cluster, id, recorded, event)
            }
            _ => false,
        }
    }

    fn apply_task(
        &mut self,
        cluster: &str,
        id: &str,
        recorded: &RecordedEvent,
        event: &Event,
    ) -> bool {
        let sequence = recorded.sequence;
        let state = self.clusters.entry(cluster.to_owned()).or_default();
        if let Event::TaskRequested(requested) = event {
            if state.tasks.contains_key(id) {
                return false;
            }
            state.tasks.insert(
                id.to_owned(),
                TaskRecord {
                    version: sequence,
                    requested_at: sequence,
                    group: requested.group.clone(),
                    cpu_units: requested.cpu_units,
                    memory_mib: requested.memory_mib,
                    ports: requested.ports.clone(),
                    constraints: requested.constraints.clone(),
                    strategy: requested.strategy.clone(),
                    target_instances: requested.target_instances.clone(),
                    phase: TaskPhase::Pending,
                    requested_by: RequestedBy::of(&recorded.meta),
                },
            );
            state.pending.insert(sequence, id.to_owned());
            return true;
        }
        let Some(task) = state.tasks.get_mut(id) else {
            return false;
        };
        if task.version >= sequence {
            return false;
        }
        task.version = sequence;
        match event {
            Event::TaskPlaced(placed) => {
                let requested_at = task.requested_at;
                let decided_here = matches!(&task.phase,
                    TaskPhase::InFlight { instance_id, .. } if *instance_id == placed.container_instance_id);
                if !decided_here {
                    // Decided elsewhere (or before a restart): give back what this
                    // scheduler may hold for it, then hold what the log says.
                    state.hold(id, false);
                }
                if let Some(task) = state.tasks.get_mut(id) {
                    task.phase = TaskPhase::Placed {
                        instance_id: placed.container_instance_id.clone(),
                        ports: placed.ports.clone(),
                    };
                }
                if !decided_here {
                    state.hold(id, true);
                }
                state.pending.remove(&requested_at);
            }
            Event::TaskPlacementFailed(_) => {
                let requested_at = task.requested_at;
                state.hold(id, false);
                state.tasks.remove(id);
                state.pending.remove(&requested_at);
            }
            // A task stopped before it was placed is never placed.
            Event::TaskStopRequested(_) if task.phase == TaskPhase::Pending => {
                let requested_at = task.requested_at;
                state.tasks.remove(id);
                state.pending.remove(&requested_at);
            }
            Event::TaskStateReported(report) if report.last_status == "STOPPED" => {
                let requested_at = task.requested_at;
                state.hold(id, false);
                state.tasks.remove(id);
                state.pending.remove(&requested_at);
            }
            _ => {}
        }
        true
    }

    /// Decides every pending task, in request order, holding resources for each
    /// placement at once (so later decisions see them). The decisions are marked in
    /// flight until the log confirms them.
    pub fn decide(&mut self, rng: &mut SmallRng, limit: usize) -> Vec<Decision> {
        let mut decisions = Vec::new();
        for (cluster, state) in &mut self.clusters {
            while decisions.len() < limit {
                let Some((_, task_id)) = state.pending.pop_first() else {
                    break;
                };
                let Some(task) = state.tasks.get(&task_id) else {
                    continue;
                };
                if task.phase != TaskPhase::Pending {
                    continue;
                }
                let outcome = match task.request() {
                    Err(reason) => DecisionOutcome::Failed(TaskPlacementFailed {
                        failures: vec![PlacementFailure {
                            container_instance_id: None,
                            reason: "ATTRIBUTE".into(),
                            detail: Some(reason),
                        }],
                    }),
                    Ok(request) => {
                        let result = place(&mut state.index, &request, rng);
                        match result.placed.first() {
                            Some(placement) => {
                                let ports: Vec<PortAssignment> = task
                                    .ports
                                    .iter()
                                    .zip(&placement.reservation.ports)
                                    .map(|(wanted, held)| PortAssignment {
                                        container_name: wanted.container_name.clone(),
                                        container_port: wanted.container_port,
                                        host_port: held.port,
                                        protocol: wanted.protocol.clone(),
                                        bind_ip: None,
                                    })
                                    .collect();
                                DecisionOutcome::Placed(TaskPlaced {
                                    container_instance_id: placement.instance_id.to_string(),
                                    cpu_units: task.cpu_units,
                                    memory_mib: task.memory_mib,
                                    ports,
                                })
                            }
                            None => {
                                let mut failures: Vec<PlacementFailure> = (result.failures)
                                    .iter()
                                    .map(engine_failure)
                                    .chain(task.unavailable_targets(&state.instances))
                                    .collect();
                                // RunTask with no active instance at all.
                                if failures.is_empty() && task.target_instances.is_empty() {
                                    failures.push(PlacementFailure {
                                        container_instance_id: None,
                                        reason: "MISSING".into(),
                                        detail: Some(
                                            "No Container Instances were found in your cluster."
                                                .into(),
                                        ),
                                    });
                                }
                                DecisionOutcome::Failed(TaskPlacementFailed { failures })
                            }
                        }
                    }
                };
                let expected_version = task.version;
                let meta = task.requested_by.decision_meta();
                if let (DecisionOutcome::Placed(placed), Some(task)) =
                    (&outcome, state.tasks.get_mut(&task_id))
                {
                    task.phase = TaskPhase::InFlight {
                        instance_id: placed.container_instance_id.clone(),
                        ports: placed.ports.clone(),
                    };
                }
                decisions.push(Decision {
                    cluster: cluster.clone(),
                    task_id,
                    expected_version,
                    outcome,
                    meta,
                });
            }
        }
        decisions
    }

    /// A decision the log refused (the task changed, or another scheduler decided
    /// first) or could not take: give its resources back and queue the task again;
    /// the next round decides it afresh from the log's latest state, or skips it if
    /// the log has settled it meanwhile.
    pub fn undo(&mut self, decision: &Decision) {
        let Some(state) = self.clusters.get_mut(&decision.cluster) else {
            return;
        };
        let Some(task) = state.tasks.get(&decision.task_id) else {
            return;
        };
        if matches!(task.phase, TaskPhase::InFlight { .. }) {
            state.hold(&decision.task_id, false);
        }
        let Some(task) = state.tasks.get_mut(&decision.task_id) else {
            return;
        };
        if matches!(task.phase, TaskPhase::InFlight { .. } | TaskPhase::Pending) {
            task.phase = TaskPhase::Pending;
            state
                .pending
                .insert(task.requested_at, decision.task_id.clone());
        }
    }

    /// Rebuilds the state from persisted records (after a restart).
    pub fn restore(
        &mut self,
        instances: Vec<(String, String, InstanceRecord)>,
        tasks: Vec<(String, String, TaskRecord)>,
    ) {
        for (cluster, id, record) in instances {
            let state = self.clusters.entry(cluster).or_default();
            state.instances.insert(id.clone(), record);
            state.sync_instance(&id);
        }
        for (cluster, id, record) in tasks {
            let state = self.clusters.entry(cluster).or_default();
            let pending = record.phase == TaskPhase::Pending;
            let requested_at = record.requested_at;
            state.tasks.insert(id.clone(), record);
            if pending {
                state.pending.insert(requested_at, id);
            } else {
                state.hold(&id, true);
            }
        }
    }

    pub fn has_pending(&self) -> bool {
        self.clusters
            .values()
            .any(|state| !state.pending.is_empty())
    }
}

/// The shared state, locked (by the decision loop and by the projection). A lock
/// poisoned by a panic elsewhere is taken as it is: the service goes on with the state
/// it has.
pub(crate) fn lock(state: &Mutex<SchedulerState>) -> MutexGuard<'_, SchedulerState> {
    state
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}
