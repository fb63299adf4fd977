//! Clusters: only whether an agent may join them, and the version to expect when the gateway
//! creates `default`.

use std::collections::BTreeSet;

use berth_projection::sql::Column::{BigInt, Text};
use berth_projection::sql::{Column, Rows, bulk_upsert};
use foldhash::HashMap;
use sqlx::{AnyConnection, AnyPool, Row};

use super::{fetch_by_ids, sequence_column};

pub(crate) const SCHEMA: &[&str] = &["CREATE TABLE IF NOT EXISTS ag_clusters (
    name KEY_TEXT PRIMARY KEY,
    status TEXT NOT NULL,
    version BIGINT NOT NULL
)"];

pub(crate) const TABLES: &[&str] = &["ag_clusters"];

/// ACTIVE, or INACTIVE after DeleteCluster.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ClusterRow {
    pub name: String,
    pub status: String,
    /// Sequence of the cluster aggregate's last event.
    pub version: u64,
}

impl ClusterRow {
    pub fn is_active(&self) -> bool {
        self.status == "ACTIVE"
    }

    fn from_row(row: &sqlx::any::AnyRow) -> Result<Self, sqlx::Error> {
        Ok(Self {
            name: row.try_get("name")?,
            status: row.try_get("status")?,
            version: sequence_column(row, "version")?,
        })
    }
}

/// The clusters one projection batch touches.
#[derive(Default)]
pub(crate) struct ClusterBatch {
    rows: HashMap<String, ClusterRow>,
    dirty: BTreeSet<String>,
}

impl ClusterBatch {
    pub async fn load(
        connection: &mut AnyConnection,
        names: &[String],
    ) -> Result<Self, sqlx::Error> {
        let rows = fetch_by_ids(
            connection,
            "SELECT name, status, version FROM ag_clusters",
            "name",
            names,
        )
        .await?;
        let mut batch = Self::default();
        for row in &rows {
            let cluster = ClusterRow::from_row(row)?;
            batch.rows.insert(cluster.name.clone(), cluster);
        }
        Ok(batch)
    }

    /// Records the cluster's new status at `sequence`.
    pub fn set_status(&mut self, name: &str, status: &str, sequence: u64) {
        self.dirty.insert(name.to_owned());
        let row = self
            .rows
            .entry(name.to_owned())
            .or_insert_with(|| ClusterRow {
                name: name.to_owned(),
                status: String::new(),
                version: 0,
            });
        row.status = status.to_owned();
        row.version = sequence;
    }

    /// Records a cluster event that changes nothing the gateway keeps, but moves the version.
    pub fn bump(&mut self, name: &str, sequence: u64) {
        if let Some(row) = self.rows.get_mut(name) {
            row.version = sequence;
            self.dirty.insert(name.to_owned());
        }
    }

    pub async fn save(self, connection: &mut AnyConnection) -> Result<(), sqlx::Error> {
        const COLUMNS: &[Column] = &[Text("name"), Text("status"), BigInt("version")];
        let mut rows = Rows::new();
        for row in self.dirty.iter().filter_map(|name| self.rows.get(name)) {
            rows.push([(&row.name).into(), (&row.status).into(), row.version.into()]);
        }
        bulk_upsert(
            connection,
            "ag_clusters",
            COLUMNS,
            "(name) DO UPDATE SET status = excluded.status, version = excluded.version",
            &rows,
        )
        .await
    }
}

/// The cluster named `name`, if the log has ever mentioned it.
pub(crate) async fn get(pool: &AnyPool, name: &str) -> Result<Option<ClusterRow>, sqlx::Error> {
    let row = sqlx::query("SELECT name, status, version FROM ag_clusters WHERE name = $1")
        .bind(name)
        .fetch_optional(pool)
        .await?;
    row.as_ref().map(ClusterRow::from_row).transpose()
}
