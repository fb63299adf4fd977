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
