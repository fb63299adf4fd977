//! Container instances: the cluster each belongs to, its status, its version (to re-register it
//! under optimistic concurrency) and the sequence of its last `AgentConnected` (to tell whether a
//! session is still the instance's current one).

use std::collections::BTreeSet;

use berth_projection::sql::Column::{BigInt, Text};
use berth_projection::sql::{Column, Rows, bulk_upsert};
use foldhash::HashMap;
use sqlx::{AnyConnection, AnyPool, Row};

use super::{fetch_by_ids, sequence_column};

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

const SELECTED: &str = "id, cluster, status, version, connected_seq";
const COLUMNS: &[Column] = &[
    Text("id"),
    Text("cluster"),
    Text("status"),
    BigInt("version"),
    BigInt("connected_seq"),
];

/// The instances one projection batch touches.
#[derive(Default)]
pub(crate) struct InstanceBatch {
    rows: HashMap<String, InstanceRow>,
    dirty: BTreeSet<String>,
}

impl InstanceBatch {
    pub async fn load(connection: &mut AnyConnection, ids: &[String]) -> Result<Self, sqlx::Error> {
        let rows = fetch_by_ids(
            connection,
            &format!("SELECT {SELECTED} FROM ag_instances"),
            "id",
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
        let mut rows = Rows::new();
        for row in self.dirty.iter().filter_map(|id| self.rows.get(id)) {
            rows.push([
                (&row.id).into(),
                (&row.cluster).into(),
                (&row.status).into(),
                row.version.into(),
                row.connected_seq.into(),
            ]);
        }
        bulk_upsert(
            connection,
            "ag_instances",
            COLUMNS,
            "(id) DO UPDATE SET cluster = excluded.cluster, status = excluded.status, \
             version = excluded.version, connected_seq = excluded.connected_seq",
            &rows,
        )
        .await
    }
}

/// The instance with this id, in any cluster.
pub(crate) async fn get(pool: &AnyPool, id: &str) -> Result<Option<InstanceRow>, sqlx::Error> {
    let row = sqlx::query(&format!(
        "SELECT {SELECTED} FROM ag_instances WHERE id = $1"
    ))
    .bind(id)
    .fetch_optional(pool)
    .await?;
    row.as_ref().map(InstanceRow::from_row).transpose()
}
