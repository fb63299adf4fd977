//! Tasks: everything needed to hand a task to its agent, and to judge what an agent reports.

use std::collections::{BTreeSet, HashMap};

use berth_agent_protocol::DesiredStatus;
use berth_events::{Json, PortAssignment, TaskRequested};
use serde::{Deserialize, Serialize};
use sqlx::{AnyConnection, AnyPool, Row};

use super::{fetch_by_keys, sequence_column, sql_sequence, upsert_rows};

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
    "CREATE INDEX IF NOT EXISTS ag_tasks_instance ON ag_tasks (instance_id)",
];

pub(crate) const TABLES: &[&str] = &["ag_tasks"];

pub(crate) const RUNNING: &str = "RUNNING";
pub(crate) const STOPPED: &str = "STOPPED";

/// What the agent needs to run the task: the definition and overrides as requested, and the
/// host ports the scheduler chose.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub(crate) struct TaskSpec {
    pub definition: Json,
    #[serde(default)]
    pub overrides: Option<Json>,
    #[serde(default)]
    pub ports: Vec<PortAssignment>,
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
        }
    }

    pub fn requested(&mut self, event: &TaskRequested, correlation: Option<String>) {
        self.family = event.family.clone();
        self.revision = event.revision;
        self.spec = Some(TaskSpec {
            definition: event.definition.clone(),
            overrides: event.overrides.clone(),
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

    fn from_row(row: &sqlx::any::AnyRow) -> Result<Self, sqlx::Error> {
        let spec: Option<String> = row.try_get("spec")?;
        let spec = spec
            .map(|text| serde_json::from_str::<TaskSpec>(&text))
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
        })
    }
}

const COLUMNS: &str = "id, cluster, instance_id, family, revision, spec, desired, stop_reason, \
                       last_status, correlation, version";

/// The same columns qualified with the `t` alias, for joins.
const T_COLUMNS: &str = "t.id, t.cluster, t.instance_id, t.family, t.revision, t.spec, \
                         t.desired, t.stop_reason, t.last_status, t.correlation, t.version";

/// The tasks one projection batch touches.
#[derive(Default)]
pub(crate) struct TaskBatch {
    rows: HashMap<String, TaskRow>,
    dirty: BTreeSet<String>,
}

impl TaskBatch {
    pub async fn load(connection: &mut AnyConnection, ids: &[String]) -> Result<Self, sqlx::Error> {
        let rows = fetch_by_keys(
            &mut *connection,
            |keys| format!("SELECT {COLUMNS} FROM ag_tasks WHERE id IN ({keys})"),
            ids,
        )
        .await?;
        let mut batch = Self::default();
        for row in &rows {
            let task = TaskRow::from_row(row)?;
            batch.rows.insert(task.id.clone(), task);
        }
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

    pub async fn save(self, connection: &mut AnyConnection) -> Result<(), sqlx::Error> {
        let rows: Vec<(&TaskRow, Option<String>)> = self
            .dirty
            .iter()
            .filter_map(|id| self.rows.get(id))
            .map(|row| {
                let spec = row
                    .spec
                    .as_ref()
                    .map(|spec| serde_json::to_string(spec).unwrap_or_default());
                (row, spec)
            })
            .collect();
        upsert_rows(
            connection,
            &rows,
            11,
            |values| {
                format!(
                    "INSERT INTO ag_tasks ({COLUMNS}) VALUES {values} \
                     ON CONFLICT (id) DO UPDATE SET cluster = excluded.cluster, \
                     instance_id = excluded.instance_id, family = excluded.family, \
                     revision = excluded.revision, spec = excluded.spec, \
                     desired = excluded.desired, stop_reason = excluded.stop_reason, \
                     last_status = excluded.last_status, correlation = excluded.correlation, \
                     version = excluded.version"
                )
            },
            |query, (row, spec)| {
                query
                    .bind(row.id.as_str())
                    .bind(row.cluster.as_str())
                    .bind(row.instance_id.as_deref())
                    .bind(row.family.as_str())
                    .bind(i64::from(row.revision))
                    .bind(spec.as_deref())
                    .bind(row.desired.as_str())
                    .bind(row.stop_reason.as_deref())
                    .bind(row.last_status.as_deref())
                    .bind(row.correlation.as_deref())
                    .bind(sql_sequence(row.version))
            },
        )
        .await
    }
}

/// One task by id.
pub(crate) async fn get(pool: &AnyPool, id: &str) -> Result<Option<TaskRow>, sqlx::Error> {
    let row = sqlx::query(&format!("SELECT {COLUMNS} FROM ag_tasks WHERE id = $1"))
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
    let rows = fetch_by_keys(
        &mut connection,
        |keys| format!("SELECT {COLUMNS} FROM ag_tasks WHERE id IN ({keys})"),
        ids,
    )
    .await?;
    rows.iter()
        .map(|row| TaskRow::from_row(row).map(|task| (task.id.clone(), task)))
        .collect()
}

/// Tasks on `instance_id` whose agent has not acknowledged what the control plane now wants:
/// never delivered, or stopped since the start was delivered. A task the agent has already
/// reported has reached it, unless it must now stop; a stopped task needs nothing more.
pub(crate) async fn undelivered(
    pool: &AnyPool,
    instance_id: &str,
) -> Result<Vec<TaskRow>, sqlx::Error> {
    let rows = sqlx::query(&format!(
        "SELECT {T_COLUMNS} FROM ag_tasks t LEFT JOIN ag_deliveries d ON d.task_id = t.id \
         WHERE t.instance_id = $1 \
         AND (t.last_status IS NULL OR t.last_status <> 'STOPPED') \
         AND (d.acked IS NULL OR d.acked <> t.desired) \
         AND (t.desired = 'STOPPED' OR t.last_status IS NULL) \
         ORDER BY t.version"
    ))
    .bind(instance_id)
    .fetch_all(pool)
    .await?;
    rows.iter().map(TaskRow::from_row).collect()
}

/// Tasks placed on `instance_id` that should run and have not stopped.
pub(crate) async fn wanted_on(
    pool: &AnyPool,
    instance_id: &str,
) -> Result<Vec<TaskRow>, sqlx::Error> {
    let rows = sqlx::query(&format!(
        "SELECT {COLUMNS} FROM ag_tasks WHERE instance_id = $1 AND desired = 'RUNNING' \
         AND (last_status IS NULL OR last_status <> 'STOPPED') ORDER BY version"
    ))
    .bind(instance_id)
    .fetch_all(pool)
    .await?;
    rows.iter().map(TaskRow::from_row).collect()
}
