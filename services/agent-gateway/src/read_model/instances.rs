//! Container instances: the cluster each belongs to, its status, its version (to re-register it
//! under optimistic concurrency) and the sequence of its last `AgentConnected` (to tell whether a
//! session is still the instance's current one).

use std::collections::{BTreeSet, HashMap};

use sqlx::{AnyConnection, AnyPool, Row};

use super::{fetch_by_keys, sequence_column, sql_sequence, upsert_rows};

pub(crate) const SCHEMA: &[&str] = &["CREATE TABLE IF NOT EXISTS ag_instances (
    id KEY_TEXT PRIMARY KEY,
    cluster TEXT NOT NULL,
    status TEXT NOT NULL,
    version BIGINT NOT NULL,
    connected_seq BIGINT NOT NULL
)"];

pub(crate) const TABLES: &[&str] = &["ag_instances"];

/// INACTIVE: deregistered; agents with this id are refused, as ECS refuses them.
pub(crate) const INACTIVE: &str = "INACTIVE";

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct InstanceRow {
    pub id: String,
    pub cluster: String,
    /// ACTIVE, DRAINING or INACTIVE.
    pub status: String,
    /// Sequence of the instance aggregate's last event.
    pub version: u64,
    /// Sequence of its last `AgentConnected`; 0 when never connected.
    pub connected_seq: u64,
}

impl InstanceRow {
    fn from_row(row: &sqlx::any::AnyRow) -> Result<Self, sqlx::Error> {
        Ok(Self {
            id: row.try_get("id")?,
            cluster: row.try_get("cluster")?,
            status: row.try_get("status")?,
            version: sequence_column(row, "version")?,
            connected_seq: sequence_column(row, "connected_seq")?,
        })
    }
}

const COLUMNS: &str = "id, cluster, status, version, connected_seq";

/// The instances one projection batch touches.
#[derive(Default)]
pub(crate) struct InstanceBatch {
    rows: HashMap<String, InstanceRow>,
    dirty: BTreeSet<String>,
}

impl InstanceBatch {
    pub async fn load(connection: &mut AnyConnection, ids: &[String]) -> Result<Self, sqlx::Error> {
        let rows = fetch_by_keys(
            &mut *connection,
            |keys| format!("SELECT {COLUMNS} FROM ag_instances WHERE id IN ({keys})"),
            ids,
        )
        .await?;
        let mut batch = Self::default();
        for row in &rows {
            let instance = InstanceRow::from_row(row)?;
            batch.rows.insert(instance.id.clone(), instance);
        }
        Ok(batch)
    }

    /// The row to change (a fresh one if unknown) with its version moved to `sequence`.
    pub fn touch(&mut self, cluster: &str, id: &str, sequence: u64) -> &mut InstanceRow {
        self.dirty.insert(id.to_owned());
        let row = self
            .rows
            .entry(id.to_owned())
            .or_insert_with(|| InstanceRow {
                id: id.to_owned(),
                cluster: cluster.to_owned(),
                status: "ACTIVE".to_owned(),
                version: 0,
                connected_seq: 0,
            });
        row.version = sequence;
        row
    }

    pub async fn save(self, connection: &mut AnyConnection) -> Result<(), sqlx::Error> {
        let rows: Vec<&InstanceRow> = self
            .dirty
            .iter()
            .filter_map(|id| self.rows.get(id))
            .collect();
        upsert_rows(
            connection,
            &rows,
            5,
            |values| {
                format!(
                    "INSERT INTO ag_instances ({COLUMNS}) VALUES {values} \
                     ON CONFLICT (id) DO UPDATE SET cluster = excluded.cluster, \
                     status = excluded.status, version = excluded.version, \
                     connected_seq = excluded.connected_seq"
                )
            },
            |query, row| {
                query
                    .bind(row.id.as_str())
                    .bind(row.cluster.as_str())
                    .bind(row.status.as_str())
                    .bind(sql_sequence(row.version))
                    .bind(sql_sequence(row.connected_seq))
            },
        )
        .await
    }
}

/// The instance with this id, in any cluster.
pub(crate) async fn get(pool: &AnyPool, id: &str) -> Result<Option<InstanceRow>, sqlx::Error> {
    let row = sqlx::query(&format!("SELECT {COLUMNS} FROM ag_instances WHERE id = $1"))
        .bind(id)
        .fetch_optional(pool)
        .await?;
    row.as_ref().map(InstanceRow::from_row).transpose()
}
