//! The api-gateway projection: folds each batch into the entity tables.
//!
//! Live, batches of task events only are folded into memory instead
//! ([`Projection::fold`]) and their rows written at most once per
//! [`super::TASK_WRITE_INTERVAL`], or as soon as a query of tasks asks
//! (`Gateway::tasks_db`): a task's requested, placed and running events then cost one
//! row write, not three. Any other batch is applied in a transaction that also writes
//! what was folded.

use std::collections::BTreeSet;
use std::collections::hash_map::Entry;
use std::sync::Arc;

use berth_eventlog::RecordedEvent;
use berth_events::{Aggregate, Event};
use berth_projection::{Projection, ProjectionError, RowCache};
use foldhash::{HashMap, HashMapExt};
use sqlx::AnyConnection;

use super::clusters::{self, ClusterRow};
use super::container_instances::{self, InstanceRow};
use super::task_definitions::{self, TaskDefinitionBatch, TaskDefinitionRow};
use super::tasks::{self, StagedTaskIndexes, TaskEntries, TaskIndexes, TaskRow};
use super::{CatalogVersion, RowBatch, TableRow};
use crate::arn::{self, Resource};

/// The read model behind every Describe*/List* the gateway answers.
#[derive(Debug, Default)]
pub struct GatewayProjection {
    decided: DecidedRequests,
    cached: CachedRows,
    catalog: CatalogVersion,
    /// Whether the batch being applied changes clusters, task definitions or
    /// container instances: its commit then advances `catalog`.
    changes_catalog: bool,
    /// What the batch being applied changes in the indexes of tasks.
    task_indexes: StagedTaskIndexes,
    /// Task rows folded into memory and not yet written ([`Projection::fold`]): the
    /// next write, whichever batch it comes with, stores them all.
    unwritten: HashMap<(String, String), TaskRow>,
}

/// Rows of clusters, instances and tasks this projection wrote (it is their tables' only
/// writer): the next batch touching them skips reading them back.
#[derive(Debug)]
struct CachedRows {
    clusters: RowCache<String, ClusterRow>,
    instances: RowCache<(String, String), InstanceRow>,
    tasks: RowCache<(String, String), TaskRow>,
}

/// Rows per cache generation: live, a task's events lie milliseconds apart, so the rows of
/// a few seconds' work are all that is ever read again soon.
const CACHED_ROWS: usize = 4_096;

impl Default for CachedRows {
    fn default() -> Self {
        Self {
            clusters: RowCache::new(CACHED_ROWS),
            instances: RowCache::new(CACHED_ROWS),
            tasks: RowCache::new(CACHED_ROWS),
        }
    }
}

impl CachedRows {
    fn commit(&mut self) {
        self.clusters.commit();
        self.instances.commit();
        self.tasks.commit();
    }

    fn abandon(&mut self) {
        self.clusters.abandon();
        self.instances.abandon();
        self.tasks.abandon();
    }
}

impl GatewayProjection {
    /// Where RunTask calls learn that the scheduler decided their tasks.
    pub fn decided_requests(&self) -> DecidedRequests {
        self.decided.clone()
    }

    /// The indexes of tasks this projection keeps up to date (the caller loads them
    /// before the projection runs: [`super::task_queries::load_indexes`]).
    pub fn task_indexes(&self) -> TaskIndexes {
        self.task_indexes.indexes()
    }

    /// What the gateway's [`super::Catalog`] checks its remembered lookups against.
    pub fn catalog_version(&self) -> CatalogVersion {
        self.catalog.clone()
    }
}

/// The RunTask requests whose tasks a batch decided (placed, failed to place, or
/// stopped), announced with those tasks' rows as the batch is applied: a waiting
/// call answers from them instead of reading its tasks back from the database.
#[derive(Debug, Clone)]
pub struct DecidedRequests(tokio::sync::broadcast::Sender<Arc<Decided>>);

/// One batch's decided tasks, by request. Readers wait for the projection to reach
/// `sequence` (a batch is announced before its transaction commits, or as it is
/// folded).
#[derive(Debug)]
pub struct Decided {
    pub sequence: u64,
    pub tasks_by_request: HashMap<String, Vec<TaskRow>>,
}

impl Default for DecidedRequests {
    fn default() -> Self {
        // Receivers that fall further behind than this see `Lagged` and re-read.
        Self(tokio::sync::broadcast::channel(1024).0)
    }
}

impl DecidedRequests {
    pub fn subscribe(&self) -> tokio::sync::broadcast::Receiver<Arc<Decided>> {
        self.0.subscribe()
    }

    /// Whether anyone listens: without listeners a batch need not collect its rows.
    fn has_listeners(&self) -> bool {
        self.0.receiver_count() > 0
    }

    /// Announces the rows of the tasks a batch ending at `sequence` decided, by request.
    fn announce_rows<'a>(&self, sequence: u64, rows: impl Iterator<Item = &'a TaskRow>) {
        if !self.has_listeners() {
            return;
        }
        let mut tasks_by_request: HashMap<String, Vec<TaskRow>> = HashMap::new();
        for row in rows {
            tasks_by_request
                .entry(row.request_id.clone())
                .or_default()
                .push(row.clone());
        }
        if !tasks_by_request.is_empty() {
            let _ = self.0.send(Arc::new(Decided {
                sequence,
                tasks_by_request,
            }));
        }
    }
}

impl Projection for GatewayProjection {
    fn name(&self) -> &'static str {
        "api-gateway"
    }

    fn schema(&self) -> &'static [&'static str] {
        static SCHEMA: std::sync::LazyLock<Vec<&'static str>> = std::sync::LazyLock::new(|| {
            [
                clusters::SCHEMA,
                task_definitions::SCHEMA,
                container_instances::SCHEMA,
                tasks::SCHEMA,
            ]
            .concat()
        });
        &SCHEMA
    }

    fn tables(&self) -> &'static [&'static str] {
        &[
            "clusters",
            "task_definitions",
            "task_definition_families",
            "container_instances",
            "tasks",
        ]
    }

    async fn apply(
        &mut self,
        connection: &mut AnyConnection,
        events: &[RecordedEvent],
    ) -> Result<(), ProjectionError> {
        // What an earlier batch staged is committed by now, or never will be.
        self.cached.abandon();
        self.task_indexes.abandon();
        self.changes_catalog = events
            .iter()
            .any(|e| !matches!(e.aggregate, Aggregate::Task { .. }));
        let cached = &mut self.cached;
        let keys = TouchedKeys::of(events);
        let mut clusters = RowBatch::load(connection, keys.clusters, &mut cached.clusters).await?;
        let mut task_definitions =
            TaskDefinitionBatch::load(connection, keys.families, keys.revisions).await?;
        let mut instances =
            RowBatch::load(connection, keys.instances, &mut cached.instances).await?;
        // Rows folded since the last write are newer than the cache's and the table's.
        let (folded_keys, task_keys): (Vec<_>, Vec<_>) =
            (keys.tasks.into_iter()).partition(|key| self.unwritten.contains_key(key));
        let mut tasks = RowBatch::load(connection, task_keys, &mut cached.tasks).await?;
        for key in folded_keys {
            tasks.adopt(self.unwritten[&key].clone());
        }
        // Keys of the tasks this batch decided.
        let mut decided = BTreeSet::new();
        for recorded in events {
            let Some(event) = &recorded.event else {
                continue;
            };
            let sequence = recorded.sequence;
            match (&recorded.aggregate, event) {
                (Aggregate::Cluster(name), event) => {
                    let row = clusters.entry(name.clone(), || ClusterRow::empty(name));
                    row.version = sequence;
                    match event {
                        Event::ClusterCreated(created) => row.created(created),
                        Event::ClusterUpdated(updated) => row.updated(updated),
                        Event::ClusterDeleted(_) => row.status = "INACTIVE".into(),
                        Event::ResourceTagged(tagged) => merge_tags(&mut row.tags, &tagged.tags),
                        Event::ResourceUntagged(untagged) => {
                            row.tags.retain(|t| !untagged.tag_keys.contains(&t.key))
                        }
                        _ => {}
                    }
                }
                (Aggregate::TaskDefinitionFamily(family), event) => {
                    let family_row = task_definitions.touch_family(family, sequence);
                    match event {
                        Event::TaskDefinitionRegistered(registered) => {
                            family_row.last_revision =
                                family_row.last_revision.max(registered.revision);
                            task_definitions.insert(TaskDefinitionRow::registered(
                                registered,
                                recorded.meta.time,
                            ));
                        }
                        Event::TaskDefinitionDeregistered(deregistered) => {
                            if let Some(row) =
                                task_definitions.revision_mut(family, deregistered.revision)
                            {
                                row.status = "INACTIVE".into();
                                row.deregistered_at = Some(recorded.meta.time);
                            }
                        }
                        Event::TaskDefinitionDeleted(deleted) => {
                            if let Some(row) =
                                task_definitions.revision_mut(family, deleted.revision)
                            {
                                row.status = "DELETE_IN_PROGRESS".into();
                                row.deleted_at = Some(recorded.meta.time);
                            }
                        }
                        Event::ResourceTagged(tagged) => {
                            if let Some(Resource::TaskDefinition { revision, .. }) =
                                arn::parse(&tagged.resource_arn)
                                && let Some(row) = task_definitions.revision_mut(family, revision)
                            {
                                merge_tags(&mut row.tags, &tagged.tags);
                            }
                        }
                        Event::ResourceUntagged(untagged) => {
                            if let Some(Resource::TaskDefinition { revision, .. }) =
                                arn::parse(&untagged.resource_arn)
                                && let Some(row) = task_definitions.revision_mut(family, revision)
                            {
                                row.tags.retain(|t| !untagged.tag_keys.contains(&t.key));
                            }
                        }
                        _ => {}
                    }
                }
                (Aggregate::ContainerInstance { cluster, id }, event) => {
                    let row = instances.entry((cluster.clone(), id.clone()), || {
                        InstanceRow::empty(cluster, id)
                    });
                    row.version = sequence;
                    match event {
                        Event::ContainerInstanceRegistered(registered) => {
                            row.registered(registered, recorded.meta.time)
                        }
                        Event::ContainerInstanceStatusChanged(changed) => {
                            row.status = changed.status.clone()
                        }
                        Event::ContainerInstanceDeregistered(_) => {
                            row.status = "INACTIVE".into();
                            row.agent_connected = false;
                        }
                        Event::AgentConnected(_) => row.agent_connected = true,
                        Event::AgentDisconnected(_) => row.agent_connected = false,
                        Event::AttributesPut(put) => {
                            for attribute in &put.attributes {
                                row.doc
                                    .custom_attributes
                                    .retain(|a| a.name != attribute.name);
                                row.doc.custom_attributes.push(attribute.clone());
                            }
                        }
                        Event::AttributesDeleted(deleted) => {
                            row.doc
                                .custom_attributes
                                .retain(|a| !deleted.names.contains(&a.name));
                            row.doc
                                .agent_attributes
                                .retain(|a| !deleted.names.contains(&a.name));
                        }
                        Event::ResourceTagged(tagged) => {
                            merge_tags(&mut row.doc.tags, &tagged.tags)
                        }
                        Event::ResourceUntagged(untagged) => {
                            row.doc.tags.retain(|t| !untagged.tag_keys.contains(&t.key))
                        }
                        _ => {}
                    }
                }
                (Aggregate::Task { cluster, id }, Event::TaskRequested(requested)) => {
                    let mut row = TaskRow::requested(cluster, id, requested, recorded.meta.time);
                    row.version = sequence;
                    tasks.insert(row);
                }
                (Aggregate::Task { cluster, id }, event) => {
                    let key = (cluster.clone(), id.clone());
                    let Some(row) = tasks.get_mut(&key) else {
                        continue;
                    };
                    if apply_to_task(row, recorded, event) {
                        decided.insert(key);
                    }
                }
            }
        }
        clusters.save(connection, &mut cached.clusters).await?;
        task_definitions.save(connection).await?;
        instances.save(connection, &mut cached.instances).await?;
        if let Some(last) = events.last() {
            (self.decided).announce_rows(
                last.sequence,
                decided.iter().filter_map(|key| tasks.get(key)),
            );
        }
        for (key, loaded, now) in tasks.index_moves() {
            self.task_indexes.stage(key, loaded, now);
        }
        // Everything folded goes with this transaction; the rows the batch loaded from
        // `unwritten` (adopted, so written whatever the batch did) go by `tasks.save`.
        let folded = (self.unwritten.values()).filter(|row| tasks.get(&row.key()).is_none());
        super::upsert_rows(connection, folded).await?;
        tasks.save(connection, &mut cached.tasks).await?;
        Ok(())
    }

    /// Folds a batch made only of task events whose rows are in memory (a task's events
    /// arrive milliseconds apart, so live they nearly always are). The rows are written
    /// at the runner's next write: a task's requested, placed and running events then
    /// cost the table one row write instead of three. Anything else is applied.
    fn fold(&mut self, events: &[RecordedEvent]) -> bool {
        if !self.holds_rows_of(events) {
            return false;
        }
        // What a failed write staged will never be committed.
        self.cached.abandon();
        self.task_indexes.abandon();
        // Each touched task's index entries before this batch.
        let mut before: HashMap<(String, String), Option<TaskEntries>> = HashMap::new();
        let mut decided = BTreeSet::new();
        for recorded in events {
            let (Aggregate::Task { cluster, id }, Some(event)) =
                (&recorded.aggregate, &recorded.event)
            else {
                continue;
            };
            let key = (cluster.clone(), id.clone());
            if let Event::TaskRequested(requested) = event {
                let mut row = TaskRow::requested(cluster, id, requested, recorded.meta.time);
                row.version = recorded.sequence;
                let previous = (self.unwritten.insert(key.clone(), row))
                    .or_else(|| self.cached.tasks.take(&key));
                before
                    .entry(key)
                    .or_insert_with(|| previous.map(|row| row.indexed()));
                continue;
            }
            let row = match self.unwritten.entry(key.clone()) {
                Entry::Occupied(row) => row.into_mut(),
                Entry::Vacant(vacant) => match self.cached.tasks.take(&key) {
                    Some(row) => vacant.insert(row),
                    // No such task: ignored, as `apply` ignores it.
                    None => continue,
                },
            };
            before
                .entry(key.clone())
                .or_insert_with(|| Some(row.indexed()));
            if apply_to_task(row, recorded, event) {
                decided.insert(key);
            }
        }
        for (key, before) in &before {
            let now = self.unwritten[key].indexed();
            if before.as_ref() != Some(&now) {
                self.task_indexes.stage(key, before.as_ref(), now);
            }
        }
        // The runner moves the position as soon as this returns: readers must find them.
        self.task_indexes.commit();
        if let Some(last) = events.last() {
            (self.decided).announce_rows(
                last.sequence,
                decided.iter().filter_map(|key| self.unwritten.get(key)),
            );
        }
        true
    }

    fn committed(&mut self) {
        // The transaction wrote every folded row: they are the table's rows now.
        self.cached.tasks.stage_earlier(self.unwritten.drain());
        self.cached.commit();
        self.task_indexes.commit();
        if std::mem::take(&mut self.changes_catalog) {
            self.catalog.advance();
        }
    }
}

impl GatewayProjection {
    /// Whether `events` are all task events whose rows are in memory (folded or cached)
    /// or made by the batch itself.
    fn holds_rows_of(&self, events: &[RecordedEvent]) -> bool {
        let requested: BTreeSet<&str> = (events.iter())
            .filter_map(|recorded| match (&recorded.aggregate, &recorded.event) {
                (Aggregate::Task { id, .. }, Some(Event::TaskRequested(_))) => Some(id.as_str()),
                _ => None,
            })
            .collect();
        events.iter().all(|recorded| match &recorded.aggregate {
            Aggregate::Task { cluster, id } => {
                recorded.event.is_none() || requested.contains(id.as_str()) || {
                    let key = (cluster.clone(), id.clone());
                    self.unwritten.contains_key(&key) || self.cached.tasks.contains(&key)
                }
            }
            _ => false,
        })
    }
}

/// Applies a task event other than `TaskRequested` to the task's row; true when the
/// event decides the task for a waiting RunTask (placed, failed, stopped).
fn apply_to_task(row: &mut TaskRow, recorded: &RecordedEvent, event: &Event) -> bool {
    row.version = recorded.sequence;
    match event {
        Event::TaskPlaced(placed) => row.placed(placed),
        Event::TaskPlacementFailed(failed) => {
            row.placement = tasks::PLACEMENT_FAILED.into();
            row.doc.failures = failed.failures.clone();
        }
        Event::TaskStopRequested(stop) => {
            row.stop_requested(&stop.stop_code, stop.reason.as_deref(), recorded.meta.time)
        }
        Event::TaskStateReported(report) => row.reported(report, recorded.meta.time),
        Event::ResourceTagged(tagged) => merge_tags(&mut row.doc.tags, &tagged.tags),
        Event::ResourceUntagged(untagged) => {
            row.doc.tags.retain(|t| !untagged.tag_keys.contains(&t.key))
        }
        _ => {}
    }
    match event {
        Event::TaskPlaced(_) | Event::TaskPlacementFailed(_) | Event::TaskStopRequested(_) => true,
        Event::TaskStateReported(report) => report.last_status == "STOPPED",
        _ => false,
    }
}

/// Tags with an existing key overwrite its value, as TagResource does.
fn merge_tags(tags: &mut Vec<berth_events::Tag>, new: &[berth_events::Tag]) {
    for tag in new {
        match tags.iter_mut().find(|t| t.key == tag.key) {
            Some(existing) => existing.value = tag.value.clone(),
            None => tags.push(tag.clone()),
        }
    }
}

/// Every row key a batch reads before it changes it.
#[derive(Default)]
struct TouchedKeys {
    clusters: BTreeSet<String>,
    families: BTreeSet<String>,
    /// Existing revisions (not ones the batch registers).
    revisions: BTreeSet<(String, u32)>,
    instances: BTreeSet<(String, String)>,
    tasks: BTreeSet<(String, String)>,
}

impl TouchedKeys {
    fn of(events: &[RecordedEvent]) -> Self {
        let mut keys = Self::default();
        for recorded in events {
            match (&recorded.aggregate, &recorded.event) {
                (Aggregate::Cluster(name), _) => {
                    keys.clusters.insert(name.clone());
                }
                (Aggregate::TaskDefinitionFamily(family), Some(event)) => {
                    keys.families.insert(family.clone());
                    let revision = match event {
                        Event::TaskDefinitionDeregistered(e) => Some(e.revision),
                        Event::TaskDefinitionDeleted(e) => Some(e.revision),
                        Event::ResourceTagged(e) => tagged_revision(&e.resource_arn),
                        Event::ResourceUntagged(e) => tagged_revision(&e.resource_arn),
                        _ => None,
                    };
                    if let Some(revision) = revision {
                        keys.revisions.insert((family.clone(), revision));
                    }
                }
                (Aggregate::ContainerInstance { cluster, id }, _) => {
                    keys.instances.insert((cluster.clone(), id.clone()));
                }
                // A task's first event: there is no row to read yet.
                (Aggregate::Task { .. }, Some(Event::TaskRequested(_))) => {}
                (Aggregate::Task { cluster, id }, _) => {
                    keys.tasks.insert((cluster.clone(), id.clone()));
                }
                _ => {}
            }
        }
        keys
    }
}

fn tagged_revision(resource_arn: &str) -> Option<u32> {
    match arn::parse(resource_arn)? {
        Resource::TaskDefinition { revision, .. } => Some(revision),
        _ => None,
    }
}
