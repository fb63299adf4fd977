//! The agent-gateway projection, and the notices it gives the delivery side.

use std::collections::{BTreeMap, BTreeSet};

use berth_eventlog::RecordedEvent;
use berth_events::{Aggregate, Event};
use berth_projection::{Projection, ProjectionError, RowCache, StagedMoves};
use sqlx::AnyConnection;
use tokio::sync::mpsc;

use super::clusters::{self, ClusterBatch};
use super::deliveries;
use super::instances::{self, INACTIVE, InstanceBatch};
use super::tasks::{self, DefinitionBatch, LiveTasks, STOPPED, TaskBatch, TaskRow};

/// What a committed batch means for the agents: per instance, the tasks placed or stopped that
/// its agent must be handed (the rows as the batch left them), and the instances deregistered
/// (whose sessions end). Sent after the batch is applied; the receiver waits until the
/// projection has committed `sequence` before acting on it.
#[derive(Debug, Default, Clone, PartialEq)]
pub(crate) struct Notice {
    pub sequence: u64,
    pub deliver: BTreeMap<String, Vec<TaskRow>>,
    pub deregistered: BTreeSet<String>,
}

impl Notice {
    /// Adds a later notice: a task's later row replaces its earlier one.
    pub fn merge(&mut self, other: Notice) {
        self.sequence = self.sequence.max(other.sequence);
        for (instance_id, rows) in other.deliver {
            let pending = self.deliver.entry(instance_id).or_default();
            for row in rows {
                pending.retain(|earlier| earlier.id != row.id);
                pending.push(row);
            }
        }
        self.deregistered.extend(other.deregistered);
    }

    fn is_empty(&self) -> bool {
        self.deliver.is_empty() && self.deregistered.is_empty()
    }
}

/// Folds the log into the gateway's tables (see the [module docs](super)).
pub struct AgentGatewayProjection {
    notices: mpsc::UnboundedSender<Notice>,
    /// Task rows this projection wrote (it is `ag_tasks`' only writer): the next batch
    /// touching them skips reading them back.
    cached_tasks: RowCache<String, TaskRow>,
    /// Task definition revisions already in `ag_task_definitions`.
    known_definitions: RowCache<(String, u32), ()>,
    /// What the batch being applied changes in the index of tasks by instance.
    live_tasks: StagedMoves<String, String>,
}

/// Task rows per cache generation: live, a task's events lie milliseconds apart, so the rows
/// of a few seconds' work are all that is ever read again soon.
const CACHED_TASKS: usize = 4_096;

impl AgentGatewayProjection {
    /// `live_tasks` is the index the projection keeps up to date (loaded by the caller).
    pub(crate) fn new(notices: mpsc::UnboundedSender<Notice>, live_tasks: LiveTasks) -> Self {
        Self {
            notices,
            cached_tasks: RowCache::new(CACHED_TASKS),
            known_definitions: RowCache::new(CACHED_TASKS),
            live_tasks: StagedMoves::new(live_tasks),
        }
    }
}

impl Projection for AgentGatewayProjection {
    fn name(&self) -> &'static str {
        "agent-gateway"
    }

    fn schema(&self) -> &'static [&'static str] {
        static SCHEMA: std::sync::LazyLock<Vec<&'static str>> = std::sync::LazyLock::new(|| {
            [
                clusters::SCHEMA,
                instances::SCHEMA,
                tasks::SCHEMA,
                deliveries::SCHEMA,
            ]
            .concat()
        });
        &SCHEMA
    }

    fn tables(&self) -> &'static [&'static str] {
        // Not ag_deliveries: acknowledgements cannot be rebuilt from the log.
        static TABLES: std::sync::LazyLock<Vec<&'static str>> = std::sync::LazyLock::new(|| {
            [clusters::TABLES, instances::TABLES, tasks::TABLES].concat()
        });
        &TABLES
    }

    async fn apply(
        &mut self,
        connection: &mut AnyConnection,
        events: &[RecordedEvent],
    ) -> Result<(), ProjectionError> {
        // What an earlier batch staged is committed by now, or never will be.
        self.cached_tasks.abandon();
        self.known_definitions.abandon();
        self.live_tasks.abandon();
        let keys = TouchedKeys::of(events);
        let mut clusters = ClusterBatch::load(connection, &keys.clusters).await?;
        let mut instances = InstanceBatch::load(connection, &keys.instances).await?;
        let mut tasks = TaskBatch::load(connection, &keys.tasks, &mut self.cached_tasks).await?;
        let mut notice = Notice::default();
        // Tasks placed or stopped in this batch: candidates for delivery.
        let mut placed_or_stopped = BTreeSet::new();
        for recorded in events {
            let Some(event) = &recorded.event else {
                continue;
            };
            let sequence = recorded.sequence;
            match &recorded.aggregate {
                Aggregate::Cluster(name) => match event {
                    Event::ClusterCreated(_) => clusters.set_status(name, "ACTIVE", sequence),
                    Event::ClusterDeleted(_) => clusters.set_status(name, "INACTIVE", sequence),
                    _ => clusters.bump(name, sequence),
                },
                Aggregate::ContainerInstance { cluster, id } => {
                    let row = instances.touch(cluster, id, sequence);
                    match event {
                        Event::ContainerInstanceStatusChanged(changed)
                            if row.status != INACTIVE =>
                        {
                            row.status = changed.status.clone();
                        }
                        Event::ContainerInstanceDeregistered(_) => {
                            row.status = INACTIVE.to_owned();
                            notice.deregistered.insert(id.clone());
                        }
                        Event::AgentConnected(_) => row.connected_seq = sequence,
                        _ => {}
                    }
                }
                Aggregate::Task { cluster, id } => {
                    let row = tasks.touch(cluster, id, sequence);
                    match event {
                        Event::TaskRequested(requested) => {
                            let correlation = recorded
                                .meta
                                .correlation_id
                                .or(Some(recorded.meta.id))
                                .map(|id| id.to_string());
                            row.requested(requested, correlation);
                        }
                        Event::TaskPlaced(placed) => {
                            row.instance_id = Some(placed.container_instance_id.clone());
                            if let Some(spec) = row.spec.as_mut() {
                                spec.ports = placed.ports.clone();
                            }
                            placed_or_stopped.insert(id.clone());
                        }
                        Event::TaskStopRequested(stop) => {
                            row.desired = STOPPED.to_owned();
                            row.stop_reason = stop.reason.clone();
                            placed_or_stopped.insert(id.clone());
                        }
                        Event::TaskPlacementFailed(_) => row.desired = STOPPED.to_owned(),
                        Event::TaskStateReported(reported) => {
                            row.last_status = Some(reported.last_status.clone());
                            if reported.last_status == STOPPED {
                                // Nothing will run it again: keep the row, drop the bulk.
                                row.spec = None;
                            }
                        }
                        _ => {}
                    }
                }
                Aggregate::TaskDefinitionFamily(_) => {}
            }
        }
        let to_deliver = tasks
            .changed()
            .filter(|row| placed_or_stopped.contains(&row.id) && row.needs_delivery());
        for row in to_deliver {
            if let Some(instance_id) = &row.instance_id {
                let rows = notice.deliver.entry(instance_id.clone()).or_default();
                rows.push(row.clone());
            }
        }
        clusters.save(connection).await?;
        instances.save(connection).await?;
        DefinitionBatch::of(tasks.changed())
            .save(connection, &mut self.known_definitions)
            .await?;
        tasks
            .save(connection, &mut self.cached_tasks, &mut self.live_tasks)
            .await?;
        if let Some(last) = events.last() {
            notice.sequence = last.sequence;
        }
        if !notice.is_empty() {
            // The receiver is gone only when the gateway is shutting down.
            let _ = self.notices.send(notice);
        }
        Ok(())
    }

    fn committed(&mut self) {
        self.cached_tasks.commit();
        self.known_definitions.commit();
        self.live_tasks.commit();
    }
}

/// Every row key a batch reads before it changes it.
#[derive(Default)]
struct TouchedKeys {
    clusters: Vec<String>,
    instances: Vec<String>,
    tasks: Vec<String>,
}

impl TouchedKeys {
    fn of(events: &[RecordedEvent]) -> Self {
        let mut clusters = BTreeSet::new();
        let mut instances = BTreeSet::new();
        let mut tasks = BTreeSet::new();
        for recorded in events {
            match &recorded.aggregate {
                Aggregate::Cluster(name) => {
                    clusters.insert(name.clone());
                }
                Aggregate::ContainerInstance { id, .. } => {
                    instances.insert(id.clone());
                }
                Aggregate::Task { id, .. } => {
                    // A task's first event: there is no row to read yet.
                    if !matches!(recorded.event, Some(Event::TaskRequested(_))) {
                        tasks.insert(id.clone());
                    }
                }
                Aggregate::TaskDefinitionFamily(_) => {}
            }
        }
        Self {
            clusters: clusters.into_iter().collect(),
            instances: instances.into_iter().collect(),
            tasks: tasks.into_iter().collect(),
        }
    }
}
