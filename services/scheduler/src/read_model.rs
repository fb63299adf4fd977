//! The scheduler's read model: a snapshot of its state in SQL, so a restarted
//! scheduler rebuilds its index from there instead of replaying the whole log.
//!
//! Each batch is folded into the in-memory state at once (idempotently: every record
//! remembers the sequence of its last event); the records it touched are written at
//! most once a second ([`WRITE_INTERVAL`]), with the checkpoint. Tasks that stopped are
//! deleted. A restart loads the snapshot and replays the log after its checkpoint.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};

use berth_eventlog::RecordedEvent;
use berth_events::Aggregate;
use berth_projection::sql::Column::{self, Text};
use berth_projection::sql::{Rows, bulk_delete, bulk_upsert};
use berth_projection::{Projection, ProjectionError};
use sqlx::{AnyConnection, AnyPool, Executor, Row};

use crate::state::{InstanceRecord, SchedulerState, TaskPhase, TaskRecord, lock};

/// How long folded events may wait before the snapshot is written: a task requested,
/// placed and reported running within it costs one row write instead of three.
pub const WRITE_INTERVAL: std::time::Duration = std::time::Duration::from_secs(1);

pub struct SchedulerProjection {
    state: Arc<Mutex<SchedulerState>>,
    /// Records folded since the last write: (is an instance, cluster, id).
    unwritten: BTreeSet<(bool, String, String)>,
}

impl SchedulerProjection {
    pub fn new(state: Arc<Mutex<SchedulerState>>) -> Self {
        Self {
            state,
            unwritten: BTreeSet::new(),
        }
    }
}

const SCHEMA: &[&str] = &[
    "CREATE TABLE IF NOT EXISTS scheduler_instances (cluster KEY_TEXT NOT NULL, id KEY_TEXT NOT NULL, \
     doc TEXT NOT NULL, PRIMARY KEY (cluster, id))",
    "CREATE TABLE IF NOT EXISTS scheduler_tasks (cluster KEY_TEXT NOT NULL, id KEY_TEXT NOT NULL, \
     doc TEXT NOT NULL, PRIMARY KEY (cluster, id))",
];

enum Write {
    Instance {
        cluster: String,
        id: String,
        doc: String,
    },
    Task {
        cluster: String,
        id: String,
        doc: Option<String>,
    },
}

impl Projection for SchedulerProjection {
    fn name(&self) -> &'static str {
        "scheduler"
    }

    fn schema(&self) -> &'static [&'static str] {
        SCHEMA
    }

    fn tables(&self) -> &'static [&'static str] {
        &["scheduler_instances", "scheduler_tasks"]
    }

    fn fold(&mut self, events: &[RecordedEvent]) -> bool {
        let mut state = lock(&self.state);
        for recorded in events {
            if !state.apply(recorded) {
                continue;
            }
            match &recorded.aggregate {
                Aggregate::ContainerInstance { cluster, id } => {
                    self.unwritten.insert((true, cluster.clone(), id.clone()));
                }
                Aggregate::Task { cluster, id } => {
                    self.unwritten.insert((false, cluster.clone(), id.clone()));
                }
                _ => {}
            }
        }
        true
    }

    fn committed(&mut self) {
        self.unwritten.clear();
    }

    async fn apply(
        &mut self,
        connection: &mut AnyConnection,
        events: &[RecordedEvent],
    ) -> Result<(), ProjectionError> {
        self.fold(events);
        let writes = self.unwritten_records();
        let (mut instances, mut tasks, mut stopped) = (Rows::new(), Rows::new(), Rows::new());
        for write in &writes {
            match write {
                Write::Instance { cluster, id, doc } => {
                    instances.push([cluster.into(), id.into(), doc.into()])
                }
                Write::Task {
                    cluster,
                    id,
                    doc: Some(doc),
                } => tasks.push([cluster.into(), id.into(), doc.into()]),
                Write::Task {
                    cluster,
                    id,
                    doc: None,
                } => stopped.push([cluster.into(), id.into()]),
            }
        }
        const ROW: &[Column] = &[Text("cluster"), Text("id"), Text("doc")];
        const KEY: &[Column] = &[Text("cluster"), Text("id")];
        const UPDATE_DOC: &str = "(cluster, id) DO UPDATE SET doc = excluded.doc";
        bulk_upsert(
            connection,
            "scheduler_instances",
            ROW,
            UPDATE_DOC,
            &instances,
        )
        .await?;
        bulk_upsert(connection, "scheduler_tasks", ROW, UPDATE_DOC, &tasks).await?;
        bulk_delete(connection, "scheduler_tasks", KEY, &stopped).await?;
        Ok(())
    }
}

impl SchedulerProjection {
    /// The rows of every record folded since the last committed write, as they stand
    /// now.
    fn unwritten_records(&self) -> Vec<Write> {
        let state = lock(&self.state);
        self.unwritten
            .iter()
            .cloned()
            .filter_map(|(is_instance, cluster, id)| {
                let cluster_state = state.clusters.get(&cluster)?;
                if is_instance {
                    let record = cluster_state.instances.get(&id)?;
                    let doc = serde_json::to_string(record).ok()?;
                    return Some(Write::Instance { cluster, id, doc });
                }
                let doc = cluster_state.tasks.get(&id).map(|task| {
                    // A decision not yet confirmed by the log is not a fact: persist
                    // the task as still pending.
                    let mut persisted = task.clone();
                    if matches!(persisted.phase, TaskPhase::InFlight { .. }) {
                        persisted.phase = TaskPhase::Pending;
                    }
                    serde_json::to_string(&persisted).unwrap_or_default()
                });
                Some(Write::Task { cluster, id, doc })
            })
            .collect()
    }
}

/// Everything persisted, for [`SchedulerState::restore`].
#[allow(clippy::type_complexity)]
pub async fn load(
    pool: &AnyPool,
) -> Result<
    (
        Vec<(String, String, InstanceRecord)>,
        Vec<(String, String, TaskRecord)>,
    ),
    ProjectionError,
> {
    let mut instances = Vec::new();
    for row in pool
        .fetch_all("SELECT cluster, id, doc FROM scheduler_instances")
        .await?
    {
        instances.push((
            row.try_get("cluster")?,
            row.try_get("id")?,
            decode(row.try_get("doc")?)?,
        ));
    }
    let mut tasks = Vec::new();
    for row in pool
        .fetch_all("SELECT cluster, id, doc FROM scheduler_tasks")
        .await?
    {
        tasks.push((
            row.try_get("cluster")?,
            row.try_get("id")?,
            decode(row.try_get("doc")?)?,
        ));
    }
    Ok((instances, tasks))
}

fn decode<T: serde::de::DeserializeOwned>(text: String) -> Result<T, ProjectionError> {
    serde_json::from_str(&text).map_err(|e| ProjectionError::Invalid(e.to_string()))
}
