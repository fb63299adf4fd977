//! Container instances in the read model.

use berth_events::{Attribute, ContainerInstanceRegistered, EpochMillis, InstanceResources, Tag};
use sqlx::Row;

use super::clusters::json_column;
use berth_projection::sql::Column::{self, BigInt, Text};

use super::TableRow;
use berth_projection::sql::Rows;

pub(crate) const SCHEMA: &[&str] = &["CREATE TABLE IF NOT EXISTS container_instances (
    cluster KEY_TEXT NOT NULL,
    id KEY_TEXT NOT NULL,
    status TEXT NOT NULL,
    agent_connected BIGINT NOT NULL,
    doc TEXT NOT NULL,
    version BIGINT NOT NULL,
    PRIMARY KEY (cluster, id)
)"];

const COLUMNS: &str = "cluster, id, status, agent_connected, doc, version";

/// What the read model keeps of an instance beyond its key columns.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct InstanceDoc {
    pub ec2_instance_id: String,
    pub resources: InstanceResources,
    /// Reported by the agent at registration (built-in and `--attribute`).
    pub agent_attributes: Vec<Attribute>,
    /// Set with PutAttributes; kept across re-registrations.
    pub custom_attributes: Vec<Attribute>,
    pub agent_version: String,
    pub driver: String,
    pub registered_at: i64,
    #[serde(default)]
    pub tags: Vec<Tag>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct InstanceRow {
    pub cluster: String,
    pub id: String,
    /// ACTIVE, DRAINING or INACTIVE.
    pub status: String,
    pub agent_connected: bool,
    pub doc: InstanceDoc,
    pub version: u64,
}

impl InstanceRow {
    /// Every attribute: the agent's, overridden by custom ones of the same name.
    pub fn attributes(&self) -> Vec<Attribute> {
        let mut attributes = self.doc.agent_attributes.clone();
        for custom in &self.doc.custom_attributes {
            match attributes.iter_mut().find(|a| a.name == custom.name) {
                Some(existing) => existing.value = custom.value.clone(),
                None => attributes.push(custom.clone()),
            }
        }
        attributes
    }

    pub(crate) fn registered(&mut self, event: &ContainerInstanceRegistered, at: EpochMillis) {
        let first = self.version == 0 || self.status == "INACTIVE";
        self.doc.ec2_instance_id = event.ec2_instance_id.clone();
        self.doc.resources = event.resources.clone();
        self.doc.agent_attributes = event.attributes.clone();
        self.doc.agent_version = event.agent_version.clone();
        self.doc.driver = event.driver.clone();
        if first {
            self.status = "ACTIVE".into();
            self.doc.registered_at = at.0;
        }
    }

    fn from_row(row: &sqlx::any::AnyRow) -> Result<Self, sqlx::Error> {
        Ok(Self {
            cluster: row.try_get("cluster")?,
            id: row.try_get("id")?,
            status: row.try_get("status")?,
            agent_connected: row.try_get::<i64, _>("agent_connected")? != 0,
            doc: json_column(row, "doc")?,
            version: row.try_get::<i64, _>("version")?.max(0) as u64,
        })
    }
}

impl TableRow for InstanceRow {
    type Key = (String, String);
    const TABLE: &'static str = "container_instances";
    const SELECTED: &'static str = COLUMNS;
    const KEY_COLUMNS: &'static [Column] = &[Text("cluster"), Text("id")];
    const COLUMNS: &'static [Column] = &[
        Text("cluster"),
        Text("id"),
        Text("status"),
        BigInt("agent_connected"),
        Text("doc"),
        BigInt("version"),
    ];
    const ON_CONFLICT: &'static str = "(cluster, id) DO UPDATE SET status = excluded.status, \
        agent_connected = excluded.agent_connected, doc = excluded.doc, version = excluded.version";
    // No secondary index.
    type Indexed = ();

    fn indexed(&self) {}

    fn key(&self) -> (String, String) {
        (self.cluster.clone(), self.id.clone())
    }

    fn from_row(row: &sqlx::any::AnyRow) -> Result<Self, sqlx::Error> {
        InstanceRow::from_row(row)
    }

    fn push_key<'a>(key: &'a (String, String), keys: &mut Rows<'a>) {
        super::push_cluster_key(key, keys);
    }

    fn push_values<'a>(&'a self, rows: &mut Rows<'a>) {
        let doc = serde_json::to_string(&self.doc).unwrap_or_default();
        rows.push([
            (&self.cluster).into(),
            (&self.id).into(),
            (&self.status).into(),
            self.agent_connected.into(),
            doc.into(),
            self.version.into(),
        ]);
    }
}

impl InstanceRow {
    /// A fresh INACTIVE row, for the first event of an instance.
    pub(crate) fn empty(cluster: &str, id: &str) -> Self {
        Self {
            cluster: cluster.to_owned(),
            id: id.to_owned(),
            status: "INACTIVE".into(),
            agent_connected: false,
            doc: InstanceDoc::default(),
            version: 0,
        }
    }
}

pub(crate) mod queries {
    use sqlx::AnyPool;

    use super::{COLUMNS, InstanceRow};

    pub async fn get(
        pool: &AnyPool,
        cluster: &str,
        id: &str,
    ) -> Result<Option<InstanceRow>, sqlx::Error> {
        let row = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM container_instances WHERE cluster = $1 AND id = $2"
        ))
        .bind(cluster)
        .bind(id)
        .fetch_optional(pool)
        .await?;
        row.as_ref().map(InstanceRow::from_row).transpose()
    }

    /// Every instance of a cluster that is not INACTIVE, by id.
    pub async fn of_cluster(
        pool: &AnyPool,
        cluster: &str,
    ) -> Result<Vec<InstanceRow>, sqlx::Error> {
        let rows = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM container_instances WHERE cluster = $1 AND status <> 'INACTIVE' ORDER BY id"
        ))
        .bind(cluster)
        .fetch_all(pool)
        .await?;
        rows.iter().map(InstanceRow::from_row).collect()
    }

    /// Whether the cluster has a registered instance (stops at the first one found).
    pub async fn any_registered(pool: &AnyPool, cluster: &str) -> Result<bool, sqlx::Error> {
        let found: Option<i64> = sqlx::query_scalar(
            "SELECT 1 FROM container_instances WHERE cluster = $1 AND status <> 'INACTIVE' LIMIT 1",
        )
        .bind(cluster)
        .fetch_optional(pool)
        .await?;
        Ok(found.is_some())
    }

    pub async fn count_registered(pool: &AnyPool, cluster: &str) -> Result<i64, sqlx::Error> {
        sqlx::query_scalar(
            "SELECT COUNT(*) FROM container_instances WHERE cluster = $1 AND status <> 'INACTIVE'",
        )
        .bind(cluster)
        .fetch_one(pool)
        .await
    }
}
