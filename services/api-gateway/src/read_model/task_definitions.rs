//! Task definitions (one row per revision) and their families in the read model.

use std::collections::BTreeSet;

use berth_events::{EpochMillis, JsonText, Tag, TaskDefinitionRegistered};
use foldhash::HashMap;
use sqlx::{AnyConnection, Row};

use super::clusters::json_column;
use berth_projection::sql::Column::{BigInt, Text};
use berth_projection::sql::{Rows, bulk_upsert, fetch_by_keys};

pub(crate) const SCHEMA: &[&str] = &[
    "CREATE TABLE IF NOT EXISTS task_definitions (
    family KEY_TEXT NOT NULL,
    revision BIGINT NOT NULL,
    status TEXT NOT NULL,
    definition TEXT NOT NULL,
    tags TEXT NOT NULL,
    registered_at BIGINT NOT NULL,
    registered_by TEXT,
    deregistered_at BIGINT,
    deleted_at BIGINT,
    PRIMARY KEY (family, revision)
)",
    // Listing walks the primary key and filters on status. An index on status cost
    // a third of the replay speed (every registration inserted into it) and is
    // dropped where an earlier version created it.
    "DROP INDEX IF EXISTS task_definitions_by_status",
    "CREATE TABLE IF NOT EXISTS task_definition_families (
    family KEY_TEXT PRIMARY KEY,
    version BIGINT NOT NULL,
    last_revision BIGINT NOT NULL
)",
];

#[derive(Debug, Clone, PartialEq)]
pub struct TaskDefinitionRow {
    pub family: String,
    pub revision: u32,
    /// ACTIVE, INACTIVE or DELETE_IN_PROGRESS.
    pub status: String,
    pub definition: JsonText,
    pub tags: Vec<Tag>,
    pub registered_at: EpochMillis,
    pub registered_by: Option<String>,
    pub deregistered_at: Option<EpochMillis>,
    pub deleted_at: Option<EpochMillis>,
}

const COLUMNS: &str = "family, revision, status, definition, tags, registered_at, registered_by, deregistered_at, deleted_at";

impl TaskDefinitionRow {
    pub(crate) fn registered(event: &TaskDefinitionRegistered, at: EpochMillis) -> Self {
        Self {
            family: event.family.clone(),
            revision: event.revision,
            status: "ACTIVE".into(),
            definition: event.definition.clone(),
            tags: event.tags.clone(),
            registered_at: at,
            registered_by: event.registered_by.clone(),
            deregistered_at: None,
            deleted_at: None,
        }
    }

    fn from_row(row: &sqlx::any::AnyRow) -> Result<Self, sqlx::Error> {
        let millis = |column: &str| -> Result<Option<EpochMillis>, sqlx::Error> {
            Ok(row.try_get::<Option<i64>, _>(column)?.map(EpochMillis))
        };
        Ok(Self {
            family: row.try_get("family")?,
            revision: row.try_get::<i64, _>("revision")?.clamp(0, u32::MAX.into()) as u32,
            status: row.try_get("status")?,
            definition: JsonText::parse(row.try_get::<String, _>("definition")?).map_err(|e| {
                sqlx::Error::ColumnDecode {
                    index: "definition".into(),
                    source: Box::new(e),
                }
            })?,
            tags: json_column(row, "tags")?,
            registered_at: millis("registered_at")?.unwrap_or(EpochMillis(0)),
            registered_by: row.try_get("registered_by")?,
            deregistered_at: millis("deregistered_at")?,
            deleted_at: millis("deleted_at")?,
        })
    }
}

/// A family's optimistic-concurrency version and its highest revision.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FamilyRow {
    pub version: u64,
    pub last_revision: u32,
}

/// The families and revisions a batch touches.
#[derive(Default)]
pub(crate) struct TaskDefinitionBatch {
    families: HashMap<String, FamilyRow>,
    dirty_families: BTreeSet<String>,
    revisions: HashMap<(String, u32), TaskDefinitionRow>,
    dirty_revisions: BTreeSet<(String, u32)>,
}

impl TaskDefinitionBatch {
    /// Loads the families and the existing revisions (`revisions`) a batch changes.
    /// Newly registered revisions need no load.
    pub(crate) async fn load(
        connection: &mut AnyConnection,
        families: impl IntoIterator<Item = String>,
        revisions: impl IntoIterator<Item = (String, u32)>,
    ) -> Result<Self, sqlx::Error> {
        let mut batch = Self::default();
        let families: Vec<String> = families.into_iter().collect();
        let mut keys = Rows::new();
        for family in &families {
            keys.push([family.into()]);
        }
        let rows = fetch_by_keys(
            connection,
            "SELECT family, version, last_revision FROM task_definition_families",
            &[Text("family")],
            &keys,
        )
        .await?;
        for row in rows {
            let family: String = row.try_get("family")?;
            let version: i64 = row.try_get("version")?;
            let last_revision: i64 = row.try_get("last_revision")?;
            batch.families.insert(
                family,
                FamilyRow {
                    version: version.max(0) as u64,
                    last_revision: last_revision.clamp(0, u32::MAX.into()) as u32,
                },
            );
        }
        let revisions: Vec<(String, u32)> = revisions.into_iter().collect();
        let mut keys = Rows::new();
        for (family, revision) in &revisions {
            keys.push([family.into(), (*revision).into()]);
        }
        let rows = fetch_by_keys(
            connection,
            &format!("SELECT {COLUMNS} FROM task_definitions"),
            &[Text("family"), BigInt("revision")],
            &keys,
        )
        .await?;
        for row in &rows {
            let revision = TaskDefinitionRow::from_row(row)?;
            batch
                .revisions
                .insert((revision.family.clone(), revision.revision), revision);
        }
        Ok(batch)
    }

    /// Records an event on the family aggregate at `sequence`.
    pub(crate) fn touch_family(&mut self, family: &str, sequence: u64) -> &mut FamilyRow {
        self.dirty_families.insert(family.to_owned());
        let row = self.families.entry(family.to_owned()).or_default();
        row.version = sequence;
        row
    }

    pub(crate) fn insert(&mut self, row: TaskDefinitionRow) {
        let key = (row.family.clone(), row.revision);
        self.dirty_revisions.insert(key.clone());
        self.revisions.insert(key, row);
    }

    /// The revision to change, if it exists, marked for write-back.
    pub(crate) fn revision_mut(
        &mut self,
        family: &str,
        revision: u32,
    ) -> Option<&mut TaskDefinitionRow> {
        let key = (family.to_owned(), revision);
        let row = self.revisions.get_mut(&key)?;
        self.dirty_revisions.insert(key);
        Some(row)
    }

    pub(crate) async fn save(self, connection: &mut AnyConnection) -> Result<(), sqlx::Error> {
        let mut families = Rows::new();
        for family in &self.dirty_families {
            if let Some(row) = self.families.get(family) {
                families.push([family.into(), row.version.into(), row.last_revision.into()]);
            }
        }
        bulk_upsert(
            connection,
            "task_definition_families",
            &[Text("family"), BigInt("version"), BigInt("last_revision")],
            "(family) DO UPDATE SET version = excluded.version, last_revision = excluded.last_revision",
            &families,
        )
        .await?;
        let mut revisions = Rows::new();
        for row in self
            .dirty_revisions
            .iter()
            .filter_map(|key| self.revisions.get(key))
        {
            let tags = serde_json::to_string(&row.tags).unwrap_or_default();
            revisions.push([
                (&row.family).into(),
                row.revision.into(),
                (&row.status).into(),
                row.definition.as_str().into(),
                tags.into(),
                row.registered_at.0.into(),
                row.registered_by.as_ref().into(),
                row.deregistered_at.map(|t| t.0).into(),
                row.deleted_at.map(|t| t.0).into(),
            ]);
        }
        bulk_upsert(
            connection,
            "task_definitions",
            &[
                Text("family"),
                BigInt("revision"),
                Text("status"),
                Text("definition"),
                Text("tags"),
                BigInt("registered_at"),
                Text("registered_by"),
                BigInt("deregistered_at"),
                BigInt("deleted_at"),
            ],
            "(family, revision) DO UPDATE SET status = excluded.status, definition = excluded.definition, \
             tags = excluded.tags, deregistered_at = excluded.deregistered_at, deleted_at = excluded.deleted_at",
            &revisions,
        )
        .await
    }
}

/// Which families ListTaskDefinitionFamilies shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FamilyStatusFilter {
    /// Families with at least one ACTIVE revision.
    Active,
    /// Families with no ACTIVE revision.
    Inactive,
    All,
}

pub(crate) mod queries {
    use sqlx::AnyPool;

    use super::{COLUMNS, FamilyRow, FamilyStatusFilter, TaskDefinitionRow};

    pub async fn get(
        pool: &AnyPool,
        family: &str,
        revision: u32,
    ) -> Result<Option<TaskDefinitionRow>, sqlx::Error> {
        let row = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM task_definitions WHERE family = $1 AND revision = $2"
        ))
        .bind(family)
        .bind(i64::from(revision))
        .fetch_optional(pool)
        .await?;
        row.as_ref().map(TaskDefinitionRow::from_row).transpose()
    }

    /// The latest ACTIVE revision of a family.
    pub async fn latest_active(
        pool: &AnyPool,
        family: &str,
    ) -> Result<Option<TaskDefinitionRow>, sqlx::Error> {
        let row = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM task_definitions WHERE family = $1 AND status = 'ACTIVE' \
             ORDER BY revision DESC LIMIT 1"
        ))
        .bind(family)
        .fetch_optional(pool)
        .await?;
        row.as_ref().map(TaskDefinitionRow::from_row).transpose()
    }

    pub async fn family(pool: &AnyPool, family: &str) -> Result<FamilyRow, sqlx::Error> {
        let row: Option<(i64, i64)> = sqlx::query_as(
            "SELECT version, last_revision FROM task_definition_families WHERE family = $1",
        )
        .bind(family)
        .fetch_optional(pool)
        .await?;
        Ok(
            row.map_or_else(FamilyRow::default, |(version, last)| FamilyRow {
                version: version.max(0) as u64,
                last_revision: last.clamp(0, u32::MAX.into()) as u32,
            }),
        )
    }

    /// (family, revision) pairs with `status`, optionally of one family, in order
    /// (descending when `descending`), after the pair `after`.
    pub async fn list(
        pool: &AnyPool,
        family: Option<&str>,
        status: &str,
        descending: bool,
        after: Option<(String, u32)>,
        limit: usize,
    ) -> Result<Vec<(String, u32)>, sqlx::Error> {
        let (comparison, order) = if descending {
            ("<", "DESC")
        } else {
            (">", "ASC")
        };
        let mut sql =
            String::from("SELECT family, revision FROM task_definitions WHERE status = $1");
        let mut next = 2;
        if family.is_some() {
            sql.push_str(&format!(" AND family = ${next}"));
            next += 1;
        }
        if after.is_some() {
            sql.push_str(&format!(
                " AND (family {comparison} ${} OR (family = ${} AND revision {comparison} ${}))",
                next,
                next,
                next + 1
            ));
            next += 2;
        }
        sql.push_str(&format!(
            " ORDER BY family {order}, revision {order} LIMIT ${next}"
        ));
        let mut query = sqlx::query_as::<_, (String, i64)>(&sql).bind(status);
        if let Some(family) = family {
            query = query.bind(family);
        }
        if let Some((family, revision)) = &after {
            query = query.bind(family.clone()).bind(i64::from(*revision));
        }
        let rows = query.bind(limit as i64).fetch_all(pool).await?;
        Ok(rows
            .into_iter()
            .map(|(family, revision)| (family, revision.clamp(0, u32::MAX.into()) as u32))
            .collect())
    }

    /// Family names starting with `prefix`, filtered by status, after `after`.
    pub async fn list_families(
        pool: &AnyPool,
        prefix: Option<&str>,
        status: FamilyStatusFilter,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<String>, sqlx::Error> {
        let active = "EXISTS (SELECT 1 FROM task_definitions t WHERE t.family = f.family AND t.status = 'ACTIVE')";
        let status_condition = match status {
            FamilyStatusFilter::Active => active.to_owned(),
            FamilyStatusFilter::Inactive => format!("NOT {active}"),
            FamilyStatusFilter::All => "1 = 1".to_owned(),
        };
        let sql = format!(
            "SELECT f.family FROM task_definition_families f WHERE {status_condition} \
             AND f.family > $1 AND substr(f.family, 1, CAST($2 AS INTEGER)) = $3 ORDER BY f.family LIMIT $4"
        );
        let prefix = prefix.unwrap_or("");
        sqlx::query_scalar(&sql)
            .bind(after.unwrap_or(""))
            .bind(prefix.chars().count() as i64)
            .bind(prefix)
            .bind(limit as i64)
            .fetch_all(pool)
            .await
    }
}
