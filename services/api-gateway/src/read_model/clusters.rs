//! Clusters in the read model.

use berth_events::{ClusterCreated, ClusterSetting, ClusterUpdated, Json, Tag};
use serde::{Deserialize, Serialize};
use sqlx::Row;

use berth_projection::sql::Column::{self, BigInt, Text};

use super::TableRow;
use berth_projection::sql::Rows;

pub(crate) const SCHEMA: &[&str] = &["CREATE TABLE IF NOT EXISTS clusters (
    name KEY_TEXT PRIMARY KEY,
    status TEXT NOT NULL,
    doc TEXT NOT NULL,
    tags TEXT NOT NULL,
    version BIGINT NOT NULL
)"];

/// The stored attributes of a cluster (everything but counts, which are derived).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ClusterDoc {
    #[serde(default)]
    pub settings: Vec<ClusterSetting>,
    #[serde(default)]
    pub configuration: Option<Json>,
    #[serde(default)]
    pub service_connect_defaults: Option<Json>,
    #[serde(default)]
    pub capacity_providers: Vec<String>,
    #[serde(default)]
    pub default_capacity_provider_strategy: Vec<Json>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ClusterRow {
    pub name: String,
    /// ACTIVE or INACTIVE.
    pub status: String,
    pub doc: ClusterDoc,
    pub tags: Vec<Tag>,
    /// Sequence of the aggregate's last event: the version to expect on append.
    pub version: u64,
}

impl ClusterRow {
    pub fn is_active(&self) -> bool {
        self.status == "ACTIVE"
    }

    pub(crate) fn created(&mut self, event: &ClusterCreated) {
        self.status = "ACTIVE".into();
        self.doc = ClusterDoc {
            settings: event.settings.clone(),
            configuration: event.configuration.clone(),
            service_connect_defaults: event.service_connect_defaults.clone(),
            capacity_providers: event.capacity_providers.clone(),
            default_capacity_provider_strategy: event.default_capacity_provider_strategy.clone(),
        };
        self.tags = event.tags.clone();
    }

    pub(crate) fn updated(&mut self, event: &ClusterUpdated) {
        if let Some(settings) = &event.settings {
            for setting in settings {
                match self
                    .doc
                    .settings
                    .iter_mut()
                    .find(|s| s.name == setting.name)
                {
                    Some(existing) => existing.value = setting.value.clone(),
                    None => self.doc.settings.push(setting.clone()),
                }
            }
        }
        if let Some(configuration) = &event.configuration {
            self.doc.configuration = Some(configuration.clone());
        }
        if let Some(defaults) = &event.service_connect_defaults {
            self.doc.service_connect_defaults = Some(defaults.clone());
        }
    }

    /// A fresh INACTIVE cluster, for the first event of one.
    pub(crate) fn empty(name: &str) -> Self {
        Self {
            name: name.to_owned(),
            status: "INACTIVE".into(),
            doc: ClusterDoc::default(),
            tags: Vec::new(),
            version: 0,
        }
    }

    fn from_row(row: &sqlx::any::AnyRow) -> Result<Self, sqlx::Error> {
        Ok(Self {
            name: row.try_get("name")?,
            status: row.try_get("status")?,
            doc: json_column(row, "doc")?,
            tags: json_column(row, "tags")?,
            version: row.try_get::<i64, _>("version")?.max(0) as u64,
        })
    }
}

/// Decodes a JSON text column.
pub(crate) fn json_column<T: serde::de::DeserializeOwned>(
    row: &sqlx::any::AnyRow,
    column: &str,
) -> Result<T, sqlx::Error> {
    let text: String = row.try_get(column)?;
    serde_json::from_str(&text).map_err(|e| sqlx::Error::ColumnDecode {
        index: column.to_owned(),
        source: Box::new(e),
    })
}

impl TableRow for ClusterRow {
    type Key = String;
    const TABLE: &'static str = "clusters";
    const SELECTED: &'static str = "name, status, doc, tags, version";
    const KEY_COLUMNS: &'static [Column] = &[Text("name")];
    const COLUMNS: &'static [Column] = &[
        Text("name"),
        Text("status"),
        Text("doc"),
        Text("tags"),
        BigInt("version"),
    ];
    const ON_CONFLICT: &'static str = "(name) DO UPDATE SET status = excluded.status, doc = excluded.doc, \
        tags = excluded.tags, version = excluded.version";
    // No secondary index.
    type Indexed = ();

    fn indexed(&self) {}

    fn key(&self) -> String {
        self.name.clone()
    }

    fn from_row(row: &sqlx::any::AnyRow) -> Result<Self, sqlx::Error> {
        ClusterRow::from_row(row)
    }

    fn push_key<'a>(key: &'a String, keys: &mut Rows<'a>) {
        keys.push([key.into()]);
    }

    fn push_values<'a>(&'a self, rows: &mut Rows<'a>) {
        let doc = serde_json::to_string(&self.doc).unwrap_or_default();
        let tags = serde_json::to_string(&self.tags).unwrap_or_default();
        rows.push([
            (&self.name).into(),
            (&self.status).into(),
            doc.into(),
            tags.into(),
            self.version.into(),
        ]);
    }
}

pub(crate) mod queries {
    use sqlx::AnyPool;

    use super::ClusterRow;

    const COLUMNS: &str = <ClusterRow as crate::read_model::TableRow>::SELECTED;

    pub async fn get(pool: &AnyPool, name: &str) -> Result<Option<ClusterRow>, sqlx::Error> {
        let row = sqlx::query(&format!("SELECT {COLUMNS} FROM clusters WHERE name = $1"))
            .bind(name)
            .fetch_optional(pool)
            .await?;
        row.as_ref().map(ClusterRow::from_row).transpose()
    }

    /// ACTIVE cluster names after `after`, in order, at most `limit`.
    pub async fn list_active(
        pool: &AnyPool,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<String>, sqlx::Error> {
        sqlx::query_scalar(
            "SELECT name FROM clusters WHERE status = 'ACTIVE' AND name > $1 ORDER BY name LIMIT $2",
        )
        .bind(after.unwrap_or(""))
        .bind(limit as i64)
        .fetch_all(pool)
        .await
    }
}
