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
