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

use sqlx::any::{AnyArguments, AnyRow};
use sqlx::query::Query;
use sqlx::{AnyConnection, Row};

/// A query of the `Any` driver, as the helpers below build them.
pub(crate) type AnyQuery<'q> = Query<'q, sqlx::Any, AnyArguments<'q>>;

/// Runs `sql_for(values)` once per chunk of rows, binding each row's parameters with `bind`:
/// multi-row upserts keep a batch of thousands of events to a handful of statements.
pub(crate) async fn upsert_rows<T>(
    connection: &mut AnyConnection,
    rows: &[T],
    columns: usize,
    sql_for: impl Fn(&str) -> String,
    bind: impl for<'q> Fn(AnyQuery<'q>, &'q T) -> AnyQuery<'q>,
) -> Result<(), sqlx::Error> {
    for chunk in rows.chunks(berth_projection::sql::ROWS_PER_STATEMENT) {
        let sql = sql_for(&berth_projection::sql::values_placeholders(
            connection,
            chunk.len(),
            columns,
        ));
        let mut query = sqlx::query(&sql);
        for row in chunk {
            query = bind(query, row);
        }
        query.execute(&mut *connection).await?;
    }
    Ok(())
}

/// Fetches the rows whose single text key is in `keys`, in chunks.
pub(crate) async fn fetch_by_keys(
    connection: &mut AnyConnection,
    select_where_key_in: impl Fn(&str) -> String,
    keys: &[String],
) -> Result<Vec<AnyRow>, sqlx::Error> {
    let mut rows = Vec::new();
    for chunk in keys.chunks(berth_projection::sql::ROWS_PER_STATEMENT) {
        let sql = select_where_key_in(&berth_projection::sql::list_placeholders(
            connection,
            chunk.len(),
        ));
        let mut query = sqlx::query(&sql);
        for key in chunk {
            query = query.bind(key.as_str());
        }
        rows.extend(query.fetch_all(&mut *connection).await?);
    }
    Ok(rows)
}

/// A `BIGINT` column holding a log sequence (never negative).
pub(crate) fn sequence_column(row: &AnyRow, column: &str) -> Result<u64, sqlx::Error> {
    Ok(row.try_get::<i64, _>(column)?.max(0) as u64)
}

/// A sequence as the `BIGINT` SQL stores (sequences stay far below `i64::MAX`).
pub(crate) fn sql_sequence(sequence: u64) -> i64 {
    i64::try_from(sequence).unwrap_or(i64::MAX)
}
