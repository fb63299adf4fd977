//! Tasks: everything needed to hand a task to its agent, and to judge what an agent reports.

use std::collections::{BTreeMap, BTreeSet};

use berth_agent_protocol::DesiredStatus;
use berth_events::{PortAssignment, TaskRequested};
use berth_projection::sql::Column::{BigInt, Text};
use berth_projection::sql::{Column, Rows, bulk_upsert};
use berth_projection::{MemoryIndex, RowCache, StagedMoves};
use foldhash::HashMap;
use futures::TryStreamExt;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use sqlx::{AnyConnection, AnyPool, Row};

use super::{fetch_by_ids, sequence_column};

pub(crate) const SCHEMA: &[&str] = &[
    "CREATE TABLE IF NOT EXISTS ag_tasks (
    id KEY_TEXT PRIMARY KEY,
    cluster TEXT NOT NULL,
    instance_id TEXT,
    family TEXT NOT NULL,
    revision BIGINT NOT NULL,
    spec TEXT,
    desired TEXT NOT NULL,
    stop_reason TEXT,
    last_status TEXT,
    correlation TEXT,
    version BIGINT NOT NULL
)",
    // Tasks by instance are indexed in memory ([`LiveTasks`]): an index entry here sat at a
    // random place and cost a page write per task placed.
    "DROP INDEX IF EXISTS ag_tasks_instance",
    // Each task definition revision once, rather than in every task's row (a task's row is
    // written at each of its events).
    "CREATE TABLE IF NOT EXISTS ag_task_definitions (
    family KEY_TEXT NOT NULL,
    revision BIGINT NOT NULL,
    definition TEXT NOT NULL,
    PRIMARY KEY (family, revision)
)",
];

pub(crate) const TABLES: &[&str] = &["ag_tasks", "ag_task_definitions"];

/// The tasks on each instance that have not stopped: the agent-gateway's index of
/// `ag_tasks`, kept in memory ([`berth_projection::MemoryIndex`]); rows
/// [`TaskRow::live_on`] an instance.
pub(crate) type LiveTasks = MemoryIndex<String, String>;

pub(crate) const RUNNING: &str = "RUNNING";
pub(crate) const STOPPED: &str = "STOPPED";

/// What the agent needs to run the task: the definition and overrides as requested, and the
/// host ports the scheduler chose. The documents stay JSON text: the projection loads and saves
/// a task's row at each of its events, and only building a payload looks inside them.
#[derive(Debug, Clone)]
pub(crate) struct TaskSpec {
    pub definition: Box<RawValue>,
    pub overrides: Option<Box<RawValue>>,
    pub ports: Vec<PortAssignment>,
}

/// A [`TaskSpec`] as `ag_tasks.spec` holds it: without the definition, which
/// `ag_task_definitions` holds once per revision.
#[derive(Serialize)]
struct StoredSpec<'a> {
    overrides: Option<&'a RawValue>,
    ports: &'a [PortAssignment],
}

/// `ag_tasks.spec` as read: rows written before `ag_task_definitions` existed hold the
/// definition themselves.
#[derive(Deserialize)]
struct LoadedSpec {
    #[serde(default)]
    definition: Option<Box<RawValue>>,
    #[serde(default)]
    overrides: Option<Box<RawValue>>,
    #[serde(default)]
    ports: Vec<PortAssignment>,
}

impl TaskSpec {
    fn stored(&self) -> String {
        let stored = StoredSpec {
            overrides: self.overrides.as_deref(),
            ports: &self.ports,
        };
        serde_json::to_string(&stored).unwrap_or_default()
    }

    /// The spec of a row: its `spec` column, and the definition joined from
    /// `ag_task_definitions`.
    fn loaded(spec: &str, definition: Option<String>) -> Result<Self, serde_json::Error> {
        let loaded: LoadedSpec = serde_json::from_str(spec)?;
        let definition = match (loaded.definition, definition) {
            (Some(inline), _) => inline,
            (None, Some(text)) => RawValue::from_string(text)?,
            (None, None) => RawValue::NULL.to_owned(),
        };
        Ok(Self {
            definition,
            overrides: loaded.overrides,
            ports: loaded.ports,
        })
    }
}

impl PartialEq for TaskSpec {
    fn eq(&self, other: &Self) -> bool {
        self.definition.get() == other.definition.get()
            && self.overrides.as_ref().map(|o| o.get()) == other.overrides.as_ref().map(|o| o.get())
            && self.ports == other.ports
    }
}

/// A JSON document as raw text (a `Value` always serializes).
fn raw_json(value: &serde_json::Value) -> Box<RawValue> {
    serde_json::value::to_raw_value(value).unwrap_or_else(|_| RawValue::NULL.to_owned())
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct TaskRow {
    pub id: String,
    pub cluster: String,
    /// Where the scheduler placed it; `None` until placed (or never, if placement failed).
    pub instance_id: Option<String>,
    pub family: String,
    pub revision: u32,
    /// `None` once the task has stopped (nothing will run it again) or when its request was
    /// never seen.
    pub spec: Option<TaskSpec>,
    /// RUNNING, or STOPPED after a stop request.
    pub desired: String,
    pub stop_reason: Option<String>,
    /// The last status the agent reported; `None` before the first report.
    pub last_status: Option<String>,
    /// Correlation id of the request that started it, carried on to its reports.
    pub correlation: Option<String>,
    /// Sequence of the task aggregate's last event.
    pub version: u64,
    /// The desired status whose payload the agent acknowledged (from `ag_deliveries`, which
    /// sessions write; read here, never saved with the row). A row the projection kept in
    /// its cache holds what was read when it was loaded, which may be older: that can only
    /// send a stop payload again, which the agent ignores.
    pub acked: Option<String>,
}

impl TaskRow {
    fn empty(cluster: &str, id: &str) -> Self {
        Self {
            id: id.to_owned(),
            cluster: cluster.to_owned(),
            instance_id: None,
            family: String::new(),
            revision: 0,
            spec: None,
            desired: RUNNING.to_owned(),
            stop_reason: None,
            last_status: None,
            correlation: None,
            version: 0,
            acked: None,
        }
    }

    pub fn requested(&mut self, event: &TaskRequested, correlation: Option<String>) {
        self.family = event.family.clone();
        self.revision = event.revision;
        self.spec = Some(TaskSpec {
            definition: RawValue::from_string(event.definition.as_str().to_owned())
                .unwrap_or_else(|_| RawValue::NULL.to_owned()),
            overrides: event.overrides.as_ref().map(raw_json),
            ports: self.spec.take().map(|s| s.ports).unwrap_or_default(),
        });
        self.correlation = correlation;
    }

    pub fn desired_status(&self) -> DesiredStatus {
        if self.desired == STOPPED {
            DesiredStatus::Stopped
        } else {
            DesiredStatus::Running
        }
    }

    /// Whether the agent still has to be handed this task: placed, not stopped, and the status
    /// the control plane wants not acknowledged; a task already reported has reached its agent
    /// unless it must now stop.
    pub fn needs_delivery(&self) -> bool {
        self.instance_id.is_some()
            && self.last_status.as_deref() != Some(STOPPED)
            && self.acked.as_deref() != Some(self.desired.as_str())
            && (self.desired == STOPPED || self.last_status.is_none())
    }

    /// The instance whose agent this task concerns, while it has not stopped: its group in
    /// [`LiveTasks`].
    pub fn live_on(&self) -> Option<&String> {
        self.instance_id
            .as_ref()
            .filter(|_| self.last_status.as_deref() != Some(STOPPED))
    }

    fn from_row(row: &sqlx::any::AnyRow) -> Result<Self, sqlx::Error> {
        let spec: Option<String> = row.try_get("spec")?;
        let definition: Option<String> = row.try_get("definition")?;
        let spec = spec
            .map(|text| TaskSpec::loaded(&text, definition))
            .transpose()
            .map_err(|e| sqlx::Error::ColumnDecode {
                index: "spec".to_owned(),
                source: Box::new(e),
            })?;
        Ok(Self {
            id: row.try_get("id")?,
            cluster: row.try_get("cluster")?,
            instance_id: row.try_get("instance_id")?,
            family: row.try_get("family")?,
            revision: u32::try_from(row.try_get::<i64, _>("revision")?).unwrap_or(0),
            spec,
            desired: row.try_get("desired")?,
            stop_reason: row.try_get("stop_reason")?,
            last_status: row.try_get("last_status")?,
            correlation: row.try_get("correlation")?,
            version: sequence_column(row, "version")?,
            acked: row.try_get("acked")?,
        })
    }
}

const COLUMNS: &[Column] = &[
    Text("id"),
    Text("cluster"),
    Text("instance_id"),
    Text("family"),
    BigInt("revision"),
    Text("spec"),
    Text("desired"),
    Text("stop_reason"),
    Text("last_status"),
    Text("correlation"),
    BigInt("version"),
];

/// What a [`TaskRow`] is read from: the task with its definition and acknowledgement.
const SELECT_ROWS: &str = "SELECT t.id, t.cluster, t.instance_id, t.family, t.revision, t.spec, \
                           t.desired, t.stop_reason, t.last_status, t.correlation, t.version, \
                           td.definition, d.acked FROM ag_tasks t \
                           LEFT JOIN ag_task_definitions td \
                           ON td.family = t.family AND td.revision = t.revision \
                           LEFT JOIN ag_deliveries d ON d.task_id = t.id";

/// The tasks one projection batch touches.
#[derive(Default)]
pub(crate) struct TaskBatch {
    rows: HashMap<String, TaskRow>,
    dirty: BTreeSet<String>,
    /// [`TaskRow::live_on`] of each row as loaded.
    loaded_live_on: HashMap<String, Option<String>>,
}

impl TaskBatch {
    /// The rows of `ids` that exist: from `cache` where it has them, the rest from the database.
    pub async fn load(
        connection: &mut AnyConnection,
        ids: &[String],
        cache: &mut RowCache<String, TaskRow>,
    ) -> Result<Self, sqlx::Error> {
        let (rows, missing) = cache.take_many(ids.iter().cloned());
        let mut batch = Self {
            rows,
            ..Self::default()
        };
        if !missing.is_empty() {
            let rows = fetch_by_ids(connection, SELECT_ROWS, "t.id", &missing).await?;
            for row in &rows {
                let task = TaskRow::from_row(row)?;
                batch.rows.insert(task.id.clone(), task);
            }
        }
        batch.loaded_live_on = (batch.rows.iter())
            .map(|(id, row)| (id.clone(), row.live_on().cloned()))
            .collect();
        Ok(batch)
    }

    /// The row to change (a fresh one if unknown) with its version moved to `sequence`.
    pub fn touch(&mut self, cluster: &str, id: &str, sequence: u64) -> &mut TaskRow {
        self.dirty.insert(id.to_owned());
        let row = self
            .rows
            .entry(id.to_owned())
            .or_insert_with(|| TaskRow::empty(cluster, id));
        row.version = sequence;
        row
    }

    /// The changed rows, in the order of their last events.
    pub fn changed(&self) -> impl Iterator<Item = &TaskRow> {
        let mut rows: Vec<&TaskRow> = self
            .dirty
            .iter()
            .filter_map(|id| self.rows.get(id))
            .collect();
        rows.sort_by_key(|row| row.version);
        rows.into_iter()
    }

    /// Writes the changed rows back, stages their moves in [`LiveTasks`], and leaves every
    /// row of the batch to `cache`; both serve them once the transaction commits.
    pub async fn save(
        mut self,
        connection: &mut AnyConnection,
        cache: &mut RowCache<String, TaskRow>,
        live_tasks: &mut StagedMoves<String, String>,
    ) -> Result<(), sqlx::Error> {
        let mut rows = Rows::new();
        for row in self.dirty.iter().filter_map(|id| self.rows.get(id)) {
            let loaded = self.loaded_live_on.remove(&row.id).flatten();
            live_tasks.stage(row.id.clone(), loaded, row.live_on().cloned());
            let spec = row.spec.as_ref().map(TaskSpec::stored);
            rows.push([
                (&row.id).into(),
                (&row.cluster).into(),
                row.instance_id.as_ref().into(),
                (&row.family).into(),
                row.revision.into(),
                spec.into(),
                (&row.desired).into(),
                row.stop_reason.as_ref().into(),
                row.last_status.as_ref().into(),
                row.correlation.as_ref().into(),
                row.version.into(),
            ]);
        }
        const UPDATE: &str = "(id) DO UPDATE SET cluster = excluded.cluster, \
             instance_id = excluded.instance_id, family = excluded.family, \
             revision = excluded.revision, spec = excluded.spec, desired = excluded.desired, \
             stop_reason = excluded.stop_reason, last_status = excluded.last_status, \
             correlation = excluded.correlation, version = excluded.version";
        bulk_upsert(connection, "ag_tasks", COLUMNS, UPDATE, &rows).await?;
        drop(rows);
        cache.stage_all(self.rows);
        Ok(())
    }
}

/// The task definition revisions of the task rows a batch writes, for `ag_task_definitions`:
/// a row is stored without its definition, so the definition must be there. (A row written
/// before that table existed holds its definition inline, and gets it into the table the
/// first time it is written again.)
pub(crate) struct DefinitionBatch<'a> {
    definitions: BTreeMap<(&'a str, u32), &'a str>,
}

impl<'a> DefinitionBatch<'a> {
    pub fn of(rows: impl Iterator<Item = &'a TaskRow>) -> Self {
        let mut definitions = BTreeMap::new();
        for row in rows {
            if let Some(spec) = &row.spec {
                definitions
                    .entry((row.family.as_str(), row.revision))
                    .or_insert(spec.definition.get());
            }
        }
        Self { definitions }
    }

    /// Writes the revisions `known` does not hold (an earlier batch wrote those), and leaves
    /// them all to `known`, which holds them once the transaction commits.
    pub async fn save(
        self,
        connection: &mut AnyConnection,
        known: &mut RowCache<(String, u32), ()>,
    ) -> Result<(), sqlx::Error> {
        let mut rows = Rows::new();
        let mut keys = Vec::with_capacity(self.definitions.len());
        for ((family, revision), definition) in self.definitions {
            let key = (family.to_owned(), revision);
            if known.take(&key).is_none() {
                rows.push([family.into(), revision.into(), definition.into()]);
            }
            keys.push(key);
        }
        bulk_upsert(
            connection,
            "ag_task_definitions",
            &[Text("family"), BigInt("revision"), Text("definition")],
            "(family, revision) DO NOTHING",
            &rows,
        )
        .await?;
        for key in keys {
            known.stage(key, ());
        }
        Ok(())
    }
}

/// One task by id.
pub(crate) async fn get(pool: &AnyPool, id: &str) -> Result<Option<TaskRow>, sqlx::Error> {
    let row = sqlx::query(&format!("{SELECT_ROWS} WHERE t.id = $1"))
        .bind(id)
        .fetch_optional(pool)
        .await?;
    row.as_ref().map(TaskRow::from_row).transpose()
}

/// The tasks with these ids that exist, by id.
pub(crate) async fn get_many(
    pool: &AnyPool,
    ids: &[String],
) -> Result<HashMap<String, TaskRow>, sqlx::Error> {
    let mut connection = pool.acquire().await?;
    let rows = fetch_by_ids(&mut connection, SELECT_ROWS, "t.id", ids).await?;
    rows.iter()
        .map(|row| TaskRow::from_row(row).map(|task| (task.id.clone(), task)))
        .collect()
}

/// [`LiveTasks`] loaded from the table, at start.
pub(crate) async fn load_live(pool: &AnyPool, live: &LiveTasks) -> Result<(), sqlx::Error> {
    // Streamed: the table can be large, and only the index is kept.
    let mut rows = sqlx::query_as::<_, (String, String)>(
        "SELECT instance_id, id FROM ag_tasks WHERE instance_id IS NOT NULL \
         AND (last_status IS NULL OR last_status <> 'STOPPED')",
    )
    .fetch(pool);
    while let Some((instance_id, id)) = rows.try_next().await? {
        live.insert(instance_id, id);
    }
    Ok(())
}

/// The rows of the tasks live on `instance_id` ([`LiveTasks`]), in the order of their last
/// events.
async fn rows_live_on(
    pool: &AnyPool,
    live: &LiveTasks,
    instance_id: &str,
) -> Result<Vec<TaskRow>, sqlx::Error> {
    let ids = live.keys(&instance_id.to_owned());
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let mut connection = pool.acquire().await?;
    let rows = fetch_by_ids(&mut connection, SELECT_ROWS, "t.id", &ids).await?;
    let mut tasks = rows
        .iter()
        .map(TaskRow::from_row)
        .collect::<Result<Vec<_>, _>>()?;
    // A row that stopped after the index was read is not live any more.
    tasks.retain(|task| task.live_on().is_some());
    tasks.sort_by_key(|task| task.version);
    Ok(tasks)
}

/// Tasks on `instance_id` the agent still has to be handed ([`TaskRow::needs_delivery`]).
pub(crate) async fn undelivered(
    pool: &AnyPool,
    live: &LiveTasks,
    instance_id: &str,
) -> Result<Vec<TaskRow>, sqlx::Error> {
    let mut tasks = rows_live_on(pool, live, instance_id).await?;
    tasks.retain(TaskRow::needs_delivery);
    Ok(tasks)
}

/// Tasks placed on `instance_id` that should run and have not stopped.
pub(crate) async fn wanted_on(
    pool: &AnyPool,
    live: &LiveTasks,
    instance_id: &str,
) -> Result<Vec<TaskRow>, sqlx::Error> {
    let mut tasks = rows_live_on(pool, live, instance_id).await?;
    tasks.retain(|task| task.desired == RUNNING);
    Ok(tasks)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_spec_is_stored_without_its_definition_and_loaded_with_it() {
        let spec = TaskSpec {
            definition: RawValue::from_string(r#"{"family":"web"}"#.into()).unwrap(),
            overrides: Some(RawValue::from_string(r#"{"cpu":"256"}"#.into()).unwrap()),
            ports: Vec::new(),
        };
        let stored = spec.stored();
        assert!(!stored.contains("family"), "{stored}");
        let loaded = TaskSpec::loaded(&stored, Some(r#"{"family":"web"}"#.into())).unwrap();
        assert_eq!(loaded, spec);
    }

    #[test]
    fn a_row_written_with_its_definition_inline_still_loads() {
        let older = r#"{"definition":{"family":"old"},"overrides":null,"ports":[]}"#;
        let loaded = TaskSpec::loaded(older, None).unwrap();
        assert_eq!(loaded.definition.get(), r#"{"family":"old"}"#);
    }
}
