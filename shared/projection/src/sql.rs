//! Small helpers for the portable SQL projections write.

/// `($1, $2), ($3, $4)` for `rows` rows of `columns` parameters: multi-row
/// statements amortise a statement's cost over many rows, which is what makes
/// replaying the log fast.
pub fn values_placeholders(rows: usize, columns: usize) -> String {
    let mut out = String::with_capacity(rows * columns * 5);
    for row in 0..rows {
        if row > 0 {
            out.push_str(", ");
        }
        out.push('(');
        for column in 0..columns {
            if column > 0 {
                out.push_str(", ");
            }
            out.push('$');
            out.push_str(&(row * columns + column + 1).to_string());
        }
        out.push(')');
    }
    out
}

/// `$first, $first+1, ...` for an `IN (...)` list of `count` parameters.
pub fn list_placeholders(first: usize, count: usize) -> String {
    (first..first + count)
        .map(|n| format!("${n}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Rows per multi-row statement. Measured (benches/rebuild.rs of the api-gateway):
/// sqlx's SQLite binding grows faster than linearly with the parameters of one
/// statement, so 500-row statements replayed at 12k events/s and 16 to 50 rows at
/// 25k events/s.
pub const ROWS_PER_STATEMENT: usize = 32;

#[cfg(test)]
mod tests {
    #[test]
    fn placeholders() {
        assert_eq!(super::values_placeholders(2, 2), "($1, $2), ($3, $4)");
        assert_eq!(super::list_placeholders(3, 3), "$3, $4, $5");
    }
}

/// A column of a [`bulk_upsert`]: its name and how PostgreSQL types it.
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

/// Rows per bulk statement (one JSON parameter each).
const BULK_ROWS: usize = 2_000;

/// Inserts (or, on conflict, updates) many rows with one statement per 2,000 rows,
/// all values travelling as one JSON parameter that the database unpacks itself
/// (`json_each` on SQLite, `jsonb_array_elements` on PostgreSQL). Binding thousands of
/// parameters instead costs sqlx's SQLite driver more than linearly, which made
/// replaying the log slow (see docs/benchmarks.md).
///
/// Each row holds one JSON value per column, in `columns` order (strings, integers
/// or null); `on_conflict` is everything after `ON CONFLICT`, e.g.
/// `(id) DO UPDATE SET doc = excluded.doc`.
pub async fn bulk_upsert(
    connection: &mut sqlx::AnyConnection,
    table: &str,
    columns: &[Column],
    on_conflict: &str,
    rows: &[Vec<serde_json::Value>],
) -> Result<(), sqlx::Error> {
    if rows.is_empty() {
        return Ok(());
    }
    let names = columns
        .iter()
        .map(|c| c.name())
        .collect::<Vec<_>>()
        .join(", ");
    let postgres = connection.backend_name().eq_ignore_ascii_case("postgresql");
    let selected = columns
        .iter()
        .enumerate()
        .map(|(i, column)| match (postgres, column) {
            (false, _) => format!("value ->> {i}"),
            (true, Column::Text(_)) => format!("(v ->> {i})::text"),
            (true, Column::BigInt(_)) => format!("(v ->> {i})::bigint"),
        })
        .collect::<Vec<_>>()
        .join(", ");
    // SQLite needs the WHERE to tell an upsert's ON CONFLICT from a join's ON.
    let sql = if postgres {
        format!(
            "INSERT INTO {table} ({names}) SELECT {selected} FROM jsonb_array_elements(CAST($1 AS jsonb)) AS v \
             ON CONFLICT {on_conflict}"
        )
    } else {
        format!(
            "INSERT INTO {table} ({names}) SELECT {selected} FROM json_each($1) WHERE true ON CONFLICT {on_conflict}"
        )
    };
    for chunk in rows.chunks(BULK_ROWS) {
        let json = serde_json::to_string(chunk).map_err(|e| sqlx::Error::Encode(Box::new(e)))?;
        sqlx::query(&sql)
            .bind(json)
            .execute(&mut *connection)
            .await?;
    }
    Ok(())
}
