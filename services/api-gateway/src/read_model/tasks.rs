//! Tasks in the read model.

use berth_events::{
    EpochMillis, Json, PlacementFailure, PortAssignment, Tag, TaskPlaced, TaskRequested,
    TaskStateReported,
};
use serde::{Deserialize, Serialize};
use sqlx::Row;

use super::clusters::json_column;
use berth_projection::sql::Column::{self, BigInt, Text};

use super::TableRow;
use berth_projection::sql::Rows;
use berth_projection::{MemoryIndex, StagedMoves};

pub(crate) const SCHEMA: &[&str] = &[
    "CREATE TABLE IF NOT EXISTS tasks (
    cluster KEY_TEXT NOT NULL,
    id KEY_TEXT NOT NULL,
    family TEXT NOT NULL,
    container_instance_id TEXT,
    last_status TEXT NOT NULL,
    desired_status TEXT NOT NULL,
    group_name TEXT NOT NULL,
    started_by TEXT,
    placement TEXT NOT NULL,
    request_id TEXT NOT NULL,
    doc TEXT NOT NULL,
    version BIGINT NOT NULL,
    PRIMARY KEY (cluster, id)
)",
    // Tasks by instance and by request are indexed in memory ([`TaskIndexes`]): an entry
    // of an index on either sat at a random place and cost a page write per task placed
    // or request made.
    "DROP INDEX IF EXISTS tasks_by_instance",
    "DROP INDEX IF EXISTS tasks_on_instance",
    "DROP INDEX IF EXISTS tasks_by_request",
];

const COLUMNS: &str = "cluster, id, family, container_instance_id, last_status, desired_status, group_name, \
    started_by, placement, request_id, doc, version";

/// The api-gateway's indexes of `tasks`, kept in memory ([`berth_projection::MemoryIndex`])
/// by its projection: roughly 300 bytes per task. Clones share them.
#[derive(Debug, Clone, Default)]
pub struct TaskIndexes {
    /// Every placed task, stopped ones included, by `(cluster, instance id)`.
    pub on_instances: MemoryIndex<(String, String), String>,
    /// Every task by the id of the RunTask/StartTask request that made it (all in the
    /// cluster the request named).
    pub of_requests: MemoryIndex<String, String>,
}

/// What a batch changes in [`TaskIndexes`], held back until its transaction commits.
#[derive(Debug, Default)]
pub(crate) struct StagedTaskIndexes {
    on_instances: StagedMoves<(String, String), String>,
    of_requests: StagedMoves<String, String>,
}

impl StagedTaskIndexes {
    pub fn indexes(&self) -> TaskIndexes {
        TaskIndexes {
            on_instances: self.on_instances.index().clone(),
            of_requests: self.of_requests.index().clone(),
        }
    }

    /// A task row changed from `loaded` (`None` when new) to `now`.
    pub fn stage(
        &mut self,
        key: &(String, String),
        loaded: Option<&TaskEntries>,
        now: TaskEntries,
    ) {
        let (loaded_request, loaded_instance) = match loaded {
            Some((request, instance)) => (Some(request.clone()), instance.clone()),
            None => (None, None),
        };
        let (request, instance) = now;
        let (_, id) = key;
        self.on_instances
            .stage(id.clone(), loaded_instance, instance);
        self.of_requests
            .stage(id.clone(), loaded_request, Some(request));
    }

    pub fn commit(&mut self) {
        self.on_instances.commit();
        self.of_requests.commit();
    }

    pub fn abandon(&mut self) {
        self.on_instances.abandon();
        self.of_requests.abandon();
    }
}

/// A task's entries in [`TaskIndexes`]: its request id, and `(cluster, instance id)` once
/// placed.
pub(crate) type TaskEntries = (String, Option<(String, String)>);

/// Where the scheduler's decision stands.
pub const PLACEMENT_PENDING: &str = "PENDING";
pub const PLACEMENT_PLACED: &str = "PLACED";
pub const PLACEMENT_FAILED: &str = "FAILED";

/// One container of a task, as DescribeTasks shows it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ContainerDoc {
    pub name: String,
    pub image: String,
    pub cpu: Option<i64>,
    pub memory: Option<i64>,
    pub memory_reservation: Option<i64>,
    pub last_status: String,
    pub exit_code: Option<i32>,
    pub reason: Option<String>,
    pub runtime_id: Option<String>,
    pub network_bindings: Vec<PortAssignment>,
    pub health_status: Option<String>,
}

/// What the read model keeps of a task beyond its key columns.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct TaskDoc {
    pub revision: u32,
    pub cpu_units: u32,
    pub memory_mib: u32,
    pub overrides: Option<Json>,
    pub containers: Vec<ContainerDoc>,
    pub launch_type: String,
    pub tags: Vec<Tag>,
    pub ports: Vec<PortAssignment>,
    pub failures: Vec<PlacementFailure>,
    pub created_at: i64,
    pub started_at: Option<i64>,
    pub stopping_at: Option<i64>,
    pub stopped_at: Option<i64>,
    pub pull_started_at: Option<i64>,
    pub pull_stopped_at: Option<i64>,
    pub connectivity_at: Option<i64>,
    pub stop_code: Option<String>,
    pub stopped_reason: Option<String>,
    pub health_status: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct TaskRow {
    pub cluster: String,
    pub id: String,
    pub family: String,
    pub container_instance_id: Option<String>,
    pub last_status: String,
    pub desired_status: String,
    pub group: String,
    pub started_by: Option<String>,
    pub placement: String,
    pub request_id: String,
    pub doc: TaskDoc,
    pub version: u64,
}

/// ECS task states in lifecycle order, so a late or repeated report never moves a
/// task backwards.
fn status_rank(status: &str) -> u8 {
    match status {
        "PROVISIONING" => 0,
        "PENDING" => 1,
        "ACTIVATING" => 2,
        "RUNNING" => 3,
        "DEACTIVATING" => 4,
        "STOPPING" => 5,
        "DEPROVISIONING" => 6,
        "STOPPED" => 7,
        _ => 0,
    }
}

/// The fields of a task definition a task row starts from.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct DefinitionContainers {
    #[serde(default)]
    container_definitions: Vec<ContainerDefinitionFields>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ContainerDefinitionFields {
    #[serde(default)]
    name: String,
    #[serde(default)]
    image: String,
    cpu: Option<i64>,
    memory: Option<i64>,
    memory_reservation: Option<i64>,
}

impl TaskRow {
    pub(crate) fn requested(
        cluster: &str,
        id: &str,
        event: &TaskRequested,
        at: EpochMillis,
    ) -> Self {
        // Only these few fields of the definition: read them without building a JSON tree.
        let containers = serde_json::from_str::<DefinitionContainers>(event.definition.as_str())
            .map(|definition| definition.container_definitions)
            .unwrap_or_default()
            .into_iter()
            .map(|container| ContainerDoc {
                name: container.name,
                image: container.image,
                cpu: container.cpu,
                memory: container.memory,
                memory_reservation: container.memory_reservation,
                last_status: "PENDING".into(),
                ..ContainerDoc::default()
            })
            .collect();
        Self {
            cluster: cluster.to_owned(),
            id: id.to_owned(),
            family: event.family.clone(),
            container_instance_id: None,
            last_status: "PROVISIONING".into(),
            desired_status: "RUNNING".into(),
            group: event.group.clone(),
            started_by: event.started_by.clone(),
            placement: PLACEMENT_PENDING.into(),
            request_id: event.request_id.clone(),
            doc: TaskDoc {
                revision: event.revision,
                cpu_units: event.cpu_units,
                memory_mib: event.memory_mib,
                overrides: event.overrides.clone(),
                containers,
                launch_type: event.launch_type.clone(),
                tags: event.tags.clone(),
                created_at: at.0,
                ..TaskDoc::default()
            },
            version: 0,
        }
    }

    pub(crate) fn placed(&mut self, event: &TaskPlaced) {
        self.placement = PLACEMENT_PLACED.into();
        self.container_instance_id = Some(event.container_instance_id.clone());
        self.doc.ports = event.ports.clone();
        self.advance("PENDING");
    }

    pub(crate) fn stop_requested(
        &mut self,
        stop_code: &str,
        reason: Option<&str>,
        at: EpochMillis,
    ) {
        self.desired_status = "STOPPED".into();
        self.doc
            .stop_code
            .get_or_insert_with(|| stop_code.to_owned());
        if self.doc.stopped_reason.is_none() {
            self.doc.stopped_reason = reason.map(str::to_owned);
        }
        self.doc.stopping_at.get_or_insert(at.0);
        // Not placed yet: the scheduler drops it, so it stops here and now.
        if self.placement == PLACEMENT_PENDING {
            self.last_status = "STOPPED".into();
            self.doc.stopped_at = Some(at.0);
            for container in &mut self.doc.containers {
                container.last_status = "STOPPED".into();
            }
        }
    }

    pub(crate) fn reported(&mut self, event: &TaskStateReported, at: EpochMillis) {
        if status_rank(&event.last_status) < status_rank(&self.last_status) {
            return;
        }
        self.advance(&event.last_status);
        for reported in &event.containers {
            if let Some(container) = self
                .doc
                .containers
                .iter_mut()
                .find(|c| c.name == reported.name)
            {
                container.last_status = reported.last_status.clone();
                container.exit_code = reported.exit_code.or(container.exit_code);
                container.reason = reported.reason.clone().or(container.reason.take());
                container.runtime_id = reported.runtime_id.clone().or(container.runtime_id.take());
                if !reported.network_bindings.is_empty() {
                    container.network_bindings = reported.network_bindings.clone();
                }
                container.health_status = reported
                    .health_status
                    .clone()
                    .or(container.health_status.take());
            }
        }
        let doc = &mut self.doc;
        doc.pull_started_at = event.pull_started_at.or(doc.pull_started_at);
        doc.pull_stopped_at = event.pull_stopped_at.or(doc.pull_stopped_at);
        doc.started_at = event.started_at.or(doc.started_at);
        doc.health_status = event.health_status.clone().or(doc.health_status.take());
        doc.connectivity_at.get_or_insert(at.0);
        if event.last_status == "STOPPED" {
            self.desired_status = "STOPPED".into();
            doc.stopped_at = event.stopped_at.or(Some(at.0));
            doc.stopping_at
                .get_or_insert(doc.stopped_at.unwrap_or(at.0));
            if doc.stop_code.is_none() {
                doc.stop_code = event.stop_code.clone();
            }
            if doc.stopped_reason.is_none() {
                doc.stopped_reason = event.stopped_reason.clone();
            }
        }
    }

    fn advance(&mut self, status: &str) {
        if status_rank(status) >= status_rank(&self.last_status) {
            self.last_status = status.to_owned();
        }
    }

    fn from_row(row: &sqlx::any::AnyRow) -> Result<Self, sqlx::Error> {
        Ok(Self {
            cluster: row.try_get("cluster")?,
            id: row.try_get("id")?,
            family: row.try_get("family")?,
            container_instance_id: row.try_get("container_instance_id")?,
            last_status: row.try_get("last_status")?,
            desired_status: row.try_get("desired_status")?,
            group: row.try_get("group_name")?,
            started_by: row.try_get("started_by")?,
            placement: row.try_get("placement")?,
            request_id: row.try_get("request_id")?,
            doc: json_column(row, "doc")?,
            version: row.try_get::<i64, _>("version")?.max(0) as u64,
        })
    }
}

impl TableRow for TaskRow {
    type Key = (String, String);
    const TABLE: &'static str = "tasks";
    const SELECTED: &'static str = COLUMNS;
    const KEY_COLUMNS: &'static [Column] = &[Text("cluster"), Text("id")];
    const COLUMNS: &'static [Column] = &[
        Text("cluster"),
        Text("id"),
        Text("family"),
        Text("container_instance_id"),
        Text("last_status"),
        Text("desired_status"),
        Text("group_name"),
        Text("started_by"),
        Text("placement"),
        Text("request_id"),
        Text("doc"),
        BigInt("version"),
    ];
    const ON_CONFLICT: &'static str = "(cluster, id) DO UPDATE SET \
        container_instance_id = excluded.container_instance_id, last_status = excluded.last_status, \
        desired_status = excluded.desired_status, placement = excluded.placement, doc = excluded.doc, \
        version = excluded.version";
    type Indexed = TaskEntries;

    fn indexed(&self) -> TaskEntries {
        let instance = (self.container_instance_id.clone()).map(|id| (self.cluster.clone(), id));
        (self.request_id.clone(), instance)
    }

    fn key(&self) -> (String, String) {
        (self.cluster.clone(), self.id.clone())
    }

    fn from_row(row: &sqlx::any::AnyRow) -> Result<Self, sqlx::Error> {
        TaskRow::from_row(row)
    }

    fn push_key<'a>(key: &'a (String, String), keys: &mut Rows<'a>) {
        super::push_cluster_key(key, keys);
    }

    fn push_values<'a>(&'a self, rows: &mut Rows<'a>) {
        let doc = serde_json::to_string(&self.doc).unwrap_or_default();
        rows.push([
            (&self.cluster).into(),
            (&self.id).into(),
            (&self.family).into(),
            self.container_instance_id.as_ref().into(),
            (&self.last_status).into(),
            (&self.desired_status).into(),
            (&self.group).into(),
            self.started_by.as_ref().into(),
            (&self.placement).into(),
            (&self.request_id).into(),
            doc.into(),
            self.version.into(),
        ]);
    }
}

/// Filters of ListTasks.
#[derive(Debug, Default)]
pub struct TaskFilter {
    pub container_instance_id: Option<String>,
    pub family: Option<String>,
    pub started_by: Option<String>,
    pub group: Option<String>,
    /// RUNNING (not yet stopped) or STOPPED.
    pub desired_status: String,
    pub launch_type: Option<String>,
}

pub(crate) mod queries {
    use sqlx::AnyPool;

    use futures::TryStreamExt;

    use super::{COLUMNS, PLACEMENT_FAILED, TaskFilter, TaskIndexes, TaskRow};
    use crate::read_model::fetch_rows;

    /// Candidate ids bound per statement of [`list`].
    const IDS_PER_STATEMENT: usize = 256;

    /// A task the user can see (not one whose placement failed).
    pub async fn get(
        pool: &AnyPool,
        cluster: &str,
        id: &str,
    ) -> Result<Option<TaskRow>, sqlx::Error> {
        let row = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM tasks WHERE cluster = $1 AND id = $2 AND placement <> '{PLACEMENT_FAILED}'"
        ))
        .bind(cluster)
        .bind(id)
        .fetch_optional(pool)
        .await?;
        row.as_ref().map(TaskRow::from_row).transpose()
    }

    /// [`TaskIndexes`] loaded from the table, at start.
    pub async fn load_indexes(pool: &AnyPool, indexes: &TaskIndexes) -> Result<(), sqlx::Error> {
        // Streamed: the table can be large, and only the indexes are kept.
        let mut rows = sqlx::query_as::<_, (String, String, String, Option<String>)>(
            "SELECT cluster, id, request_id, container_instance_id FROM tasks",
        )
        .fetch(pool);
        while let Some((cluster, id, request_id, instance_id)) = rows.try_next().await? {
            if let Some(instance_id) = instance_id {
                (indexes.on_instances).insert((cluster.clone(), instance_id), id.clone());
            }
            indexes.of_requests.insert(request_id, id);
        }
        Ok(())
    }

    /// The tasks of `ids` in `cluster`, placed or not, in id order.
    pub async fn by_ids(
        pool: &AnyPool,
        cluster: &str,
        ids: Vec<String>,
    ) -> Result<Vec<TaskRow>, sqlx::Error> {
        let keys: Vec<(String, String)> = (ids.into_iter())
            .map(|id| (cluster.to_owned(), id))
            .collect();
        let mut connection = pool.acquire().await?;
        let mut tasks: Vec<TaskRow> = fetch_rows(&mut connection, &keys).await?;
        tasks.sort_by(|a, b| a.id.cmp(&b.id));
        Ok(tasks)
    }

    /// Task ids matching `filter`, after `after`, in id order. With an instance in the
    /// filter, the candidates are that instance's tasks in `indexes`, checked a chunk
    /// at a time.
    pub async fn list(
        pool: &AnyPool,
        indexes: &TaskIndexes,
        cluster: &str,
        filter: &TaskFilter,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<String>, sqlx::Error> {
        let mut sql = format!(
            "SELECT id FROM tasks WHERE cluster = $1 AND placement <> '{PLACEMENT_FAILED}' AND desired_status = $2 AND id > $3"
        );
        let mut binds = vec![cluster, filter.desired_status.as_str(), after.unwrap_or("")];
        for (column, value) in [
            ("family", &filter.family),
            ("started_by", &filter.started_by),
            ("group_name", &filter.group),
        ] {
            if let Some(value) = value {
                binds.push(value);
                sql.push_str(&format!(" AND {column} = ${}", binds.len()));
            }
        }
        let Some(instance) = &filter.container_instance_id else {
            sql.push_str(&format!(" ORDER BY id LIMIT ${}", binds.len() + 1));
            return ids_matching(pool, &sql, &binds, limit).await;
        };
        let instance = (cluster.to_owned(), instance.clone());
        let candidates = indexes.on_instances.keys_after(&instance, after);
        let mut found: Vec<String> = Vec::new();
        for chunk in candidates.chunks(IDS_PER_STATEMENT) {
            if found.len() >= limit {
                break;
            }
            let mut chunk_binds = binds.clone();
            let mut listed = Vec::with_capacity(chunk.len());
            for id in chunk {
                chunk_binds.push(id);
                listed.push(format!("${}", chunk_binds.len()));
            }
            let statement = format!(
                "{sql} AND id IN ({}) ORDER BY id LIMIT ${}",
                listed.join(", "),
                chunk_binds.len() + 1
            );
            found.extend(ids_matching(pool, &statement, &chunk_binds, limit - found.len()).await?);
        }
        Ok(found)
    }

    /// The ids `sql` selects with `binds`, then `limit`, as its parameters.
    async fn ids_matching(
        pool: &AnyPool,
        sql: &str,
        binds: &[&str],
        limit: usize,
    ) -> Result<Vec<String>, sqlx::Error> {
        let mut query = sqlx::query_scalar(sql);
        for value in binds {
            query = query.bind(*value);
        }
        query.bind(limit as i64).fetch_all(pool).await
    }

    /// Tasks on instances of a cluster that are not yet stopped (for counts,
    /// remaining resources and the query language).
    pub async fn active_on_cluster(
        pool: &AnyPool,
        cluster: &str,
    ) -> Result<Vec<TaskRow>, sqlx::Error> {
        let rows = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM tasks WHERE cluster = $1 AND placement <> '{PLACEMENT_FAILED}' AND last_status <> 'STOPPED'"
        ))
        .bind(cluster)
        .fetch_all(pool)
        .await?;
        rows.iter().map(TaskRow::from_row).collect()
    }
}

pub(crate) mod counts {
    use sqlx::AnyPool;

    use super::PLACEMENT_FAILED;

    /// (pending, running) tasks of a cluster: PENDING counts everything placed or
    /// being placed that does not run yet.
    pub async fn pending_and_running(
        pool: &AnyPool,
        cluster: &str,
    ) -> Result<(i64, i64), sqlx::Error> {
        let rows: Vec<(String, i64)> = sqlx::query_as(&format!(
            "SELECT last_status, COUNT(*) FROM tasks WHERE cluster = $1 AND placement <> '{PLACEMENT_FAILED}' \
             AND last_status <> 'STOPPED' GROUP BY last_status"
        ))
        .bind(cluster)
        .fetch_all(pool)
        .await?;
        let running = rows
            .iter()
            .filter(|(s, _)| s == "RUNNING")
            .map(|(_, n)| n)
            .sum();
        let pending = rows
            .iter()
            .filter(|(s, _)| s != "RUNNING")
            .map(|(_, n)| n)
            .sum();
        Ok((pending, running))
    }
}
