//! The agent-gateway's read model.
//!
//! Projected from the log (by [`AgentGatewayProjection`]): the clusters agents may join, the
//! container instances and which session last connected them, and per task what an agent needs
//! (where it is placed, the definition and overrides it was requested with, the ports it was
//! given, what the control plane wants and what the agent last reported).
//!
//! Not projected: which payloads an agent acknowledged ([`deliveries`]). That is this gateway's
//! own bookkeeping, not a fact for the log, but it lives in the same database so it survives a
//! restart: only unacknowledged payloads are sent again. A rebuild keeps it.

pub(crate) mod clusters;
pub(crate) mod deliveries;
pub(crate) mod instances;
mod projection;
pub(crate) mod tasks;

pub use projection::AgentGatewayProjection;
pub(crate) use projection::Notice;

use berth_projection::sql::{self, Column, Rows};
use sqlx::any::AnyRow;
use sqlx::{AnyConnection, Row};

/// The rows of `select` (`SELECT ... FROM table`) whose text key column `key` holds one
/// of `ids`, in few statements.
pub(crate) async fn fetch_by_ids(
    connection: &mut AnyConnection,
    select: &str,
    key: &'static str,
    ids: &[String],
) -> Result<Vec<AnyRow>, sqlx::Error> {
    let mut keys = Rows::new();
    for id in ids {
        keys.push([id.into()]);
    }
    sql::fetch_by_keys(connection, select, &[Column::Text(key)], &keys).await
}

/// A `BIGINT` column holding a log sequence (never negative).
pub(crate) fn sequence_column(row: &AnyRow, column: &str) -> Result<u64, sqlx::Error> {
    Ok(row.try_get::<i64, _>(column)?.max(0) as u64)
}
