//! The api-gateway's read model: what Describe* and List* answer from.
//!
//! One projection ([`GatewayProjection`]) folds the log into one table per entity.
//! Each batch is applied in three steps: load every row the batch touches in bulk,
//! fold the events into those rows in memory, write the changed rows back with
//! multi-row upserts. A batch of thousands of events costs a handful of statements,
//! which is what makes replaying the whole log fast.

mod clusters;
mod container_instances;
mod projection;
mod task_definitions;
mod tasks;

pub use clusters::{ClusterDoc, ClusterRow};
pub use container_instances::{InstanceDoc, InstanceRow};
pub use projection::GatewayProjection;
pub use task_definitions::{FamilyStatusFilter, TaskDefinitionRow};
pub use tasks::{
    ContainerDoc, PLACEMENT_FAILED, PLACEMENT_PENDING, PLACEMENT_PLACED, TaskDoc, TaskFilter,
    TaskRow,
};

pub(crate) use clusters::queries as cluster_queries;
pub(crate) use container_instances::queries as instance_queries;
pub(crate) use task_definitions::queries as task_definition_queries;
pub(crate) use tasks::counts as task_counts;
pub(crate) use tasks::queries as task_queries;

use std::collections::{BTreeSet, HashMap};

use berth_projection::sql::{Column, bulk_upsert};
use sqlx::AnyConnection;
use sqlx::any::AnyRow;

/// Fetches rows whose single text key is in `keys`, in chunks.
pub(crate) async fn fetch_by_keys(
    connection: &mut AnyConnection,
    select_where_key_in: impl Fn(&str) -> String,
    keys: &[String],
) -> Result<Vec<AnyRow>, sqlx::Error> {
    let mut rows = Vec::new();
    for chunk in keys.chunks(berth_projection::sql::ROWS_PER_STATEMENT) {
        let sql = select_where_key_in(&berth_projection::sql::list_placeholders(1, chunk.len()));
        let mut query = sqlx::query(&sql);
        for key in chunk {
            query = query.bind(key.as_str());
        }
        rows.extend(query.fetch_all(&mut *connection).await?);
    }
    Ok(rows)
}

/// Fetches rows whose two-column key is in `keys`, in chunks.
/// `select_where` is everything before the condition, e.g. `SELECT ... FROM t WHERE`.
pub(crate) async fn fetch_by_pairs<B>(
    connection: &mut AnyConnection,
    select_where: &str,
    first: &str,
    second: &str,
    keys: &[(String, B)],
) -> Result<Vec<AnyRow>, sqlx::Error>
where
    B: for<'q> sqlx::Encode<'q, sqlx::Any> + sqlx::Type<sqlx::Any> + Clone + Send + 'static,
{
    let mut rows = Vec::new();
    for chunk in keys.chunks(200) {
        let condition = (0..chunk.len())
            .map(|i| format!("({first} = ${} AND {second} = ${})", 2 * i + 1, 2 * i + 2))
            .collect::<Vec<_>>()
            .join(" OR ");
        let sql = format!("{select_where} {condition}");
        let mut query = sqlx::query(&sql);
        for (a, b) in chunk {
            query = query.bind(a.as_str()).bind(b.clone());
        }
        rows.extend(query.fetch_all(&mut *connection).await?);
    }
    Ok(rows)
}

/// A row of one read-model table, as [`RowBatch`] loads and writes it.
pub(crate) trait TableRow: Sized {
    type Key: Ord + std::hash::Hash + Clone;
    const TABLE: &'static str;
    /// In the order [`TableRow::values`] gives them.
    const COLUMNS: &'static [Column];
    /// What follows `ON CONFLICT` in the upsert.
    const ON_CONFLICT: &'static str;

    fn key(&self) -> Self::Key;
    fn from_row(row: &AnyRow) -> Result<Self, sqlx::Error>;
    fn values(&self) -> Vec<serde_json::Value>;
    /// The existing rows with these keys.
    fn fetch(
        connection: &mut AnyConnection,
        keys: &[Self::Key],
    ) -> impl std::future::Future<Output = Result<Vec<AnyRow>, sqlx::Error>> + Send;
}

/// The rows of one table a batch touches: loaded in one go, changed in memory,
/// written back in one go.
pub(crate) struct RowBatch<R: TableRow> {
    rows: HashMap<R::Key, R>,
    dirty: BTreeSet<R::Key>,
}

impl<R: TableRow> RowBatch<R> {
    pub(crate) async fn load(
        connection: &mut AnyConnection,
        keys: Vec<R::Key>,
    ) -> Result<Self, sqlx::Error> {
        let mut rows = HashMap::new();
        for row in R::fetch(connection, &keys).await? {
            let row = R::from_row(&row)?;
            rows.insert(row.key(), row);
        }
        Ok(Self {
            rows,
            dirty: BTreeSet::new(),
        })
    }

    /// The row to change, created by `new` when missing; marked for write-back.
    pub(crate) fn entry(&mut self, key: R::Key, new: impl FnOnce() -> R) -> &mut R {
        self.dirty.insert(key.clone());
        self.rows.entry(key).or_insert_with(new)
    }

    /// The row to change, if it exists; marked for write-back.
    pub(crate) fn get_mut(&mut self, key: &R::Key) -> Option<&mut R> {
        let row = self.rows.get_mut(key)?;
        self.dirty.insert(key.clone());
        Some(row)
    }

    pub(crate) fn insert(&mut self, row: R) {
        let key = row.key();
        self.dirty.insert(key.clone());
        self.rows.insert(key, row);
    }

    pub(crate) async fn save(self, connection: &mut AnyConnection) -> Result<(), sqlx::Error> {
        let values: Vec<Vec<serde_json::Value>> = self
            .dirty
            .iter()
            .filter_map(|key| self.rows.get(key))
            .map(TableRow::values)
            .collect();
        bulk_upsert(connection, R::TABLE, R::COLUMNS, R::ON_CONFLICT, &values).await
    }
}
