//! The api-gateway's read model: what Describe* and List* answer from.
//!
//! One projection ([`GatewayProjection`]) folds the log into one table per entity.
//! Each batch is applied in three steps: load every row the batch touches in bulk
//! (from the projection's [`RowCache`] where it holds them), fold the events into
//! those rows in memory, write the changed rows back with multi-row upserts. A batch
//! of thousands of events costs a handful of statements, which is what makes
//! replaying the whole log fast.

mod catalog;
mod clusters;
mod container_instances;
mod projection;
mod task_definitions;
mod tasks;

pub use catalog::{Catalog, CatalogVersion};
pub use clusters::{ClusterDoc, ClusterRow};
pub use container_instances::{InstanceDoc, InstanceRow};
pub use projection::{Decided, DecidedRequests, GatewayProjection};
pub use task_definitions::{FamilyStatusFilter, TaskDefinitionRow};
pub use tasks::{
    ContainerDoc, PLACEMENT_FAILED, PLACEMENT_PENDING, PLACEMENT_PLACED, TaskDoc, TaskFilter,
    TaskIndexes, TaskRow,
};

/// How long task events folded into memory may wait before their rows are written (a
/// query of tasks has them written at once): a task requested, placed and reported
/// running within it costs the table one row write instead of three. Folding stops
/// while a write runs, and RunTask waits for its tasks to be folded, so a longer
/// interval means longer stalls: at 1 s the bench's RunTask p99 was 180-190 ms, at
/// 250 ms 95-100 ms, for the same throughput (docs/benchmarks.md, session 15).
pub const TASK_WRITE_INTERVAL: std::time::Duration = std::time::Duration::from_millis(250);

pub(crate) use clusters::queries as cluster_queries;
pub(crate) use container_instances::queries as instance_queries;
pub(crate) use task_definitions::queries as task_definition_queries;
pub(crate) use tasks::counts as task_counts;
pub(crate) use tasks::queries as task_queries;

use std::collections::BTreeSet;

use berth_projection::RowCache;
use berth_projection::sql::{Column, Rows, bulk_upsert, fetch_by_keys};
use foldhash::HashMap;
use sqlx::AnyConnection;
use sqlx::any::AnyRow;

/// Writes a `(cluster, id)` key, the key of instances and tasks.
pub(crate) fn push_cluster_key<'a>((cluster, id): &'a (String, String), keys: &mut Rows<'a>) {
    keys.push([cluster.into(), id.into()]);
}

/// A row of one read-model table, as [`RowBatch`] loads and writes it.
pub(crate) trait TableRow: Sized {
    type Key: Ord + std::hash::Hash + Clone;
    const TABLE: &'static str;
    /// The columns [`TableRow::from_row`] reads, as a `SELECT` list.
    const SELECTED: &'static str;
    /// The primary key, in the order [`TableRow::push_key`] writes it.
    const KEY_COLUMNS: &'static [Column];
    /// In the order [`TableRow::push_values`] writes them.
    const COLUMNS: &'static [Column];
    /// What follows `ON CONFLICT` in the upsert.
    const ON_CONFLICT: &'static str;
    /// What the row is filed under in an index the projection keeps in memory
    /// ([`berth_projection::MemoryIndex`]); `()` for a table without one.
    type Indexed: PartialEq;

    fn indexed(&self) -> Self::Indexed;

    fn key(&self) -> Self::Key;
    fn push_key<'a>(key: &'a Self::Key, keys: &mut Rows<'a>);
    fn from_row(row: &AnyRow) -> Result<Self, sqlx::Error>;
    fn push_values<'a>(&'a self, rows: &mut Rows<'a>);
}

/// The rows of `keys` that exist, in bulk (no statement for no keys).
pub(crate) async fn fetch_rows<R: TableRow>(
    connection: &mut AnyConnection,
    keys: &[R::Key],
) -> Result<Vec<R>, sqlx::Error> {
    if keys.is_empty() {
        return Ok(Vec::new());
    }
    let mut key_rows = Rows::new();
    for key in keys {
        R::push_key(key, &mut key_rows);
    }
    let select = format!("SELECT {} FROM {}", R::SELECTED, R::TABLE);
    let rows = fetch_by_keys(connection, &select, R::KEY_COLUMNS, &key_rows).await?;
    rows.iter().map(R::from_row).collect()
}

/// Writes `rows` with one multi-row upsert per chunk (no statement for no rows).
pub(crate) async fn upsert_rows<'a, R: TableRow + 'a>(
    connection: &mut AnyConnection,
    rows: impl Iterator<Item = &'a R>,
) -> Result<(), sqlx::Error> {
    let mut values = Rows::new();
    for row in rows {
        row.push_values(&mut values);
    }
    bulk_upsert(connection, R::TABLE, R::COLUMNS, R::ON_CONFLICT, &values).await
}

/// The rows of one table a batch touches: loaded in one go, changed in memory,
/// written back in one go.
pub(crate) struct RowBatch<R: TableRow> {
    rows: HashMap<R::Key, R>,
    dirty: BTreeSet<R::Key>,
    /// [`TableRow::indexed`] of the rows as loaded.
    loaded: HashMap<R::Key, R::Indexed>,
}

impl<R: TableRow> RowBatch<R> {
    /// The rows of `keys` that exist: from `cache` where it has them, the rest in bulk
    /// from the database.
    pub(crate) async fn load(
        connection: &mut AnyConnection,
        keys: impl IntoIterator<Item = R::Key>,
        cache: &mut RowCache<R::Key, R>,
    ) -> Result<Self, sqlx::Error> {
        let (mut rows, missing) = cache.take_many(keys);
        for row in fetch_rows::<R>(connection, &missing).await? {
            rows.insert(row.key(), row);
        }
        let loaded = rows
            .iter()
            .map(|(key, row)| (key.clone(), row.indexed()))
            .collect();
        Ok(Self {
            rows,
            dirty: BTreeSet::new(),
            loaded,
        })
    }

    /// Adds a row the caller holds in memory, not yet written: it is written with the
    /// batch whether or not the batch changes it.
    pub(crate) fn adopt(&mut self, row: R) {
        let key = row.key();
        self.loaded.insert(key.clone(), row.indexed());
        self.dirty.insert(key.clone());
        self.rows.insert(key, row);
    }

    /// The row to change, created by `new` when missing; marked for write-back.
    pub(crate) fn entry(&mut self, key: R::Key, new: impl FnOnce() -> R) -> &mut R {
        self.dirty.insert(key.clone());
        self.rows.entry(key).or_insert_with(new)
    }

    pub(crate) fn get(&self, key: &R::Key) -> Option<&R> {
        self.rows.get(key)
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

    /// The changed rows whose [`TableRow::indexed`] differs from the one loaded: each key
    /// with the value as loaded (`None` for a new row) and as it is now.
    pub(crate) fn index_moves(
        &self,
    ) -> impl Iterator<Item = (&R::Key, Option<&R::Indexed>, R::Indexed)> {
        self.dirty.iter().filter_map(|key| {
            let now = self.rows.get(key)?.indexed();
            let loaded = self.loaded.get(key);
            (loaded != Some(&now)).then_some((key, loaded, now))
        })
    }

    /// Writes the changed rows back, and leaves every row of the batch to `cache` (which
    /// serves them once the transaction commits).
    pub(crate) async fn save(
        self,
        connection: &mut AnyConnection,
        cache: &mut RowCache<R::Key, R>,
    ) -> Result<(), sqlx::Error> {
        let dirty = self.dirty.iter().filter_map(|key| self.rows.get(key));
        upsert_rows(connection, dirty).await?;
        cache.stage_all(self.rows);
        Ok(())
    }
}
