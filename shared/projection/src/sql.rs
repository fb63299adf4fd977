//! Bulk statements for projections: a batch of thousands of events is written back
//! (and its rows loaded) with a handful of statements, which is what makes replaying
//! the log fast.
//!
//! Each backend gets the form it executes fastest (measured, see
//! docs/benchmarks.md):
//! - SQLite: multi-row `VALUES (?, ...), (?, ...)` with anonymous parameters. sqlx
//!   resolves a *named* parameter (`$1`) by asking SQLite for its name, a linear
//!   walk per parameter, so named parameters cost quadratically in a large statement;
//!   anonymous ones cost nothing to resolve.
//! - PostgreSQL: all rows as one JSON parameter unpacked by `jsonb_array_elements`,
//!   which keeps the statement small and clear of the 65,535-parameter limit.

use std::borrow::Cow;

use sqlx::AnyConnection;
use sqlx::any::AnyRow;

/// A column of a [`bulk_upsert`] or a key of [`fetch_by_keys`]: its name and how
/// PostgreSQL types it.
#[derive(Debug, Clone, Copy)]
pub enum Column {
    Text(&'static str),
    BigInt(&'static str),
}

impl Column {
    fn name(self) -> &'static str {
        match self {
            Column::Text(name) | Column::BigInt(name) => name,
        }
    }
}

/// One value of a [`Rows`] row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SqlValue<'a> {
    Text(Cow<'a, str>),
    Int(i64),
    Null,
}

impl<'a> From<&'a str> for SqlValue<'a> {
    fn from(text: &'a str) -> Self {
        SqlValue::Text(Cow::Borrowed(text))
    }
}

impl<'a> From<&'a String> for SqlValue<'a> {
    fn from(text: &'a String) -> Self {
        SqlValue::Text(Cow::Borrowed(text))
    }
}

impl From<String> for SqlValue<'_> {
    fn from(text: String) -> Self {
        SqlValue::Text(Cow::Owned(text))
    }
}

impl From<i64> for SqlValue<'_> {
    fn from(n: i64) -> Self {
        SqlValue::Int(n)
    }
}

impl From<u32> for SqlValue<'_> {
    fn from(n: u32) -> Self {
        SqlValue::Int(n.into())
    }
}

impl From<u64> for SqlValue<'_> {
    /// Log sequences and versions: far below `i64::MAX`.
    fn from(n: u64) -> Self {
        SqlValue::Int(i64::try_from(n).unwrap_or(i64::MAX))
    }
}

impl From<bool> for SqlValue<'_> {
    fn from(b: bool) -> Self {
        SqlValue::Int(b.into())
    }
}

impl<'a, T: Into<SqlValue<'a>>> From<Option<T>> for SqlValue<'a> {
    fn from(value: Option<T>) -> Self {
        value.map_or(SqlValue::Null, Into::into)
    }
}

/// Rows (or keys) for a bulk statement, each with the same number of values.
#[derive(Debug, Default)]
pub struct Rows<'a> {
    values: Vec<SqlValue<'a>>,
    width: usize,
}

impl<'a> Rows<'a> {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn len(&self) -> usize {
        self.values.len().checked_div(self.width).unwrap_or(0)
    }

    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }

    /// Adds a row: one value per column, in the statement's column order.
    pub fn push<const N: usize>(&mut self, row: [SqlValue<'a>; N]) {
        debug_assert!(self.width == 0 || self.width == N, "rows of one width");
        self.width = N;
        self.values.extend(row);
    }

    /// The rows in statements of at most `max_rows` rows each. The statement sizes
    /// are powers of two, so a table needs only a few distinct prepared statements.
    fn chunks(&self, max_rows: usize) -> impl Iterator<Item = &[SqlValue<'a>]> {
        let mut rest = self.values.as_slice();
        let width = self.width.max(1);
        std::iter::from_fn(move || {
            let rows = rest.len() / width;
            if rows == 0 {
                return None;
            }
            let take = if rows >= max_rows {
                max_rows
            } else {
                1 << rows.ilog2()
            };
            let (chunk, tail) = rest.split_at(take * width);
            rest = tail;
            Some(chunk)
        })
    }

    /// These keys with the last one repeated until the rows split into full chunks and
    /// one power-of-two chunk: a lookup then takes one statement per `max_rows` keys
    /// (not one per set bit of the count), from the same few prepared statements. A key
    /// repeated in `IN (...)` matches nothing more.
    fn padded_for_lookup(&self, max_rows: usize) -> Self {
        let mut padded = Rows {
            values: self.values.clone(),
            width: self.width,
        };
        let rest = self.len() % max_rows;
        if rest == 0 {
            return padded;
        }
        let last = self.values[self.values.len() - self.width..].to_vec();
        for _ in rest..rest.next_power_of_two() {
            padded.values.extend(last.iter().cloned());
        }
        padded
    }
}

/// Rows per SQLite statement: 256 rows of up to ~12 columns stays far below SQLite's
/// 32,766 parameters.
const SQLITE_ROWS: usize = 256;
/// Rows per PostgreSQL statement (one JSON parameter each).
const POSTGRES_ROWS: usize = 2_000;

fn is_postgres(connection: &AnyConnection) -> bool {
    connection.backend_name().eq_ignore_ascii_case("postgresql")
}

fn names(columns: &[Column]) -> String {
    columns
        .iter()
        .map(|c| c.name())
        .collect::<Vec<_>>()
        .join(", ")
}

/// `VALUES (?, ?), (?, ?)` for `rows` rows of `width` columns.
fn sqlite_values(rows: usize, width: usize) -> String {
    let row = format!("({})", vec!["?"; width].join(", "));
    format!("VALUES {}", vec![row; rows].join(", "))
}

/// The rows of one JSON parameter (`$1`) as a table of `columns`, on PostgreSQL.
fn postgres_unpacked(columns: &[Column]) -> String {
    let selected = columns
        .iter()
        .enumerate()
        .map(|(i, column)| match column {
            Column::Text(_) => format!("(v ->> {i})::text"),
            Column::BigInt(_) => format!("(v ->> {i})::bigint"),
        })
        .collect::<Vec<_>>()
        .join(", ");
    format!("SELECT {selected} FROM jsonb_array_elements(CAST($1 AS jsonb)) AS v")
}

/// A chunk of rows as a JSON array of arrays.
fn json_rows(chunk: &[SqlValue<'_>], width: usize) -> String {
    let mut json = String::with_capacity(chunk.len() * 16);
    json.push('[');
    for (r, row) in chunk.chunks(width.max(1)).enumerate() {
        if r > 0 {
            json.push(',');
        }
        json.push('[');
        for (i, value) in row.iter().enumerate() {
            if i > 0 {
                json.push(',');
            }
            match value {
                SqlValue::Text(text) => {
                    json.push_str(&serde_json::to_string(text.as_ref()).unwrap_or_default())
                }
                SqlValue::Int(n) => json.push_str(&n.to_string()),
                SqlValue::Null => json.push_str("null"),
            }
        }
        json.push(']');
    }
    json.push(']');
    json
}

/// A statement over `chunk`: SQLite binds each value, PostgreSQL one JSON text.
fn bound<'q>(
    sql: &'q str,
    chunk: &'q [SqlValue<'_>],
    width: usize,
    postgres: bool,
) -> sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments<'q>> {
    let mut query = sqlx::query(sql);
    if postgres {
        return query.bind(json_rows(chunk, width));
    }
    for value in chunk {
        query = match value {
            SqlValue::Text(text) => query.bind(text.as_ref()),
            SqlValue::Int(n) => query.bind(*n),
            SqlValue::Null => query.bind(None::<i64>),
        };
    }
    query
}

/// One statement per chunk of `rows`: `statement(source)` where `source` is the chunk
/// as a row source, `VALUES (?, ...), ...` on SQLite or `SELECT ... FROM
/// jsonb_array_elements($1)` on PostgreSQL, paired with the chunk's values.
fn statements<'r, 'a>(
    postgres: bool,
    columns: &[Column],
    rows: &'r Rows<'a>,
    statement: impl Fn(&str) -> String,
) -> Vec<(String, &'r [SqlValue<'a>])> {
    let max_rows = if postgres { POSTGRES_ROWS } else { SQLITE_ROWS };
    rows.chunks(max_rows)
        .map(|chunk| {
            let source = if postgres {
                postgres_unpacked(columns)
            } else {
                sqlite_values(chunk.len() / columns.len(), columns.len())
            };
            (statement(&source), chunk)
        })
        .collect()
}

/// Inserts (or, on conflict, updates) many rows with few statements.
///
/// Each row of `rows` holds one value per column, in `columns` order; `on_conflict`
/// is everything after `ON CONFLICT`, e.g. `(id) DO UPDATE SET doc = excluded.doc`.
pub async fn bulk_upsert(
    connection: &mut AnyConnection,
    table: &str,
    columns: &[Column],
    on_conflict: &str,
    rows: &Rows<'_>,
) -> Result<(), sqlx::Error> {
    execute_chunked(connection, columns, rows, |names, source| {
        format!("INSERT INTO {table} ({names}) {source} ON CONFLICT {on_conflict}")
    })
    .await
}

/// Deletes the rows of `table` whose key columns hold one of `keys`, with few
/// statements.
pub async fn bulk_delete(
    connection: &mut AnyConnection,
    table: &str,
    key_columns: &[Column],
    keys: &Rows<'_>,
) -> Result<(), sqlx::Error> {
    execute_chunked(connection, key_columns, keys, |names, source| {
        format!("DELETE FROM {table} WHERE ({names}) IN ({source})")
    })
    .await
}

/// Executes `statement(column names, row source)` once per chunk of `rows` (see
/// [`statements`]).
async fn execute_chunked(
    connection: &mut AnyConnection,
    columns: &[Column],
    rows: &Rows<'_>,
    statement: impl Fn(&str, &str) -> String,
) -> Result<(), sqlx::Error> {
    let postgres = is_postgres(connection);
    let names = names(columns);
    let statements = statements(postgres, columns, rows, |source| statement(&names, source));
    for (sql, chunk) in statements {
        bound(&sql, chunk, columns.len(), postgres)
            .execute(&mut *connection)
            .await?;
    }
    Ok(())
}

/// The rows of `select` (`SELECT ... FROM table`) whose key columns hold one of
/// `keys`, with few statements.
pub async fn fetch_by_keys(
    connection: &mut AnyConnection,
    select: &str,
    key_columns: &[Column],
    keys: &Rows<'_>,
) -> Result<Vec<AnyRow>, sqlx::Error> {
    let postgres = is_postgres(connection);
    let names = names(key_columns);
    let padded;
    let keys = if postgres {
        keys
    } else {
        padded = keys.padded_for_lookup(SQLITE_ROWS);
        &padded
    };
    let statements = statements(postgres, key_columns, keys, |source| {
        format!("{select} WHERE ({names}) IN ({source})")
    });
    let mut rows = Vec::new();
    for (sql, chunk) in statements {
        let query = bound(&sql, chunk, key_columns.len(), postgres);
        rows.extend(query.fetch_all(&mut *connection).await?);
    }
    Ok(rows)
}

#[cfg(test)]
mod tests {
    use super::{Rows, SqlValue};

    #[test]
    fn chunks_are_powers_of_two_up_to_the_maximum() {
        let mut rows = Rows::new();
        for n in 0..(256 + 100i64) {
            rows.push([n.into(), SqlValue::Null]);
        }
        let sizes: Vec<usize> = rows.chunks(256).map(|c| c.len() / 2).collect();
        assert_eq!(sizes, [256, 64, 32, 4]);
        assert_eq!(rows.len(), 356);
    }

    #[test]
    fn lookups_pad_to_one_statement_per_chunk() {
        let mut keys = Rows::new();
        for n in 0..(256 + 100i64) {
            keys.push([n.into(), "k".into()]);
        }
        let padded = keys.padded_for_lookup(256);
        let sizes: Vec<usize> = padded.chunks(256).map(|c| c.len() / 2).collect();
        assert_eq!(sizes, [256, 128]);
        // The padding repeats the last key.
        assert_eq!(padded.values[padded.values.len() - 2..], keys.values[710..]);
        let mut exact = Rows::new();
        exact.push([1i64.into()]);
        assert_eq!(exact.padded_for_lookup(256).len(), 1);
        assert_eq!(Rows::new().padded_for_lookup(256).len(), 0);
    }

    #[test]
    fn postgres_rows_are_json_arrays() {
        let mut rows = Rows::new();
        rows.push(["a\"b".into(), 7i64.into(), SqlValue::Null]);
        assert_eq!(
            super::json_rows(&rows.values, rows.width),
            r#"[["a\"b",7,null]]"#
        );
    }

    #[test]
    fn sqlite_values_use_anonymous_parameters() {
        assert_eq!(super::sqlite_values(2, 2), "VALUES (?, ?), (?, ?)");
    }
}
