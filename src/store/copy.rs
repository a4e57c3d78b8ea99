//! `pressluft migrate --from-sqlite FILE` (issue 17): an existing SQLite control plane copied
//! into an empty PostgreSQL database — every table, parents before children, in one
//! transaction, so the target ends with all of it or nothing.

use sqlx::any::AnyRow;
use sqlx::{Column, Row, TypeInfo, ValueRef};

use super::{query, query_as, Backend, Store, StoreError};

/// The tables in an order where every reference points at a table copied earlier, except the
/// forward references that PostgreSQL's 0001 declares `DEFERRABLE` (checked at commit).
pub const TABLES: [&str; 15] = [
    "users",
    "nodes",
    "sites",
    "environments",
    "releases",
    "backups",
    "domains",
    "jobs",
    "drift_checks",
    "auth_sessions",
    "audit_logs",
    "settings",
    "login_attempts",
    "restore_drills",
    "safe_update_runs",
];

/// Tables whose PostgreSQL form has an explicit `rowid` (SQLite's implicit one, copied so the
/// insertion order of equal `created_at` survives).
const WITH_ROWID: [&str; 2] = ["jobs", "audit_logs"];

/// What was copied: rows per table, in copy order.
#[derive(Debug, Clone, Default)]
pub struct CopyReport {
    pub tables: Vec<(&'static str, u64)>,
}

/// A value read from SQLite.
enum Value {
    Null,
    Int(i64),
    Real(f64),
    Text(String),
}

fn value(row: &AnyRow, i: usize) -> Result<Value, sqlx::Error> {
    let raw = row.try_get_raw(i)?;
    if raw.is_null() {
        return Ok(Value::Null);
    }
    let kind = raw.type_info().name().to_ascii_uppercase();
    Ok(match kind.as_str() {
        "BIGINT" | "INTEGER" | "SMALLINT" | "BOOLEAN" => Value::Int(row.try_get(i)?),
        "DOUBLE" | "REAL" => Value::Real(row.try_get(i)?),
        _ => Value::Text(row.try_get(i)?),
    })
}

impl Store {
    /// Copies every table of `source` (a migrated SQLite store) into this store (a migrated,
    /// empty PostgreSQL one) in one transaction. Refuses a target that holds any row.
    pub async fn copy_from_sqlite(&self, source: &Store) -> Result<CopyReport, StoreError> {
        if self.backend != Backend::Postgres || source.backend != Backend::Sqlite {
            return Err(StoreError::Integrity(
                "copy from SQLite needs a SQLite source and a PostgreSQL target".into(),
            ));
        }
        let mut tx = self.begin_write().await?;
        for table in TABLES {
            let (n,): (i64,) = query_as(&format!("SELECT COUNT(*) FROM {table}"))
                .fetch_one(&mut *tx)
                .await?;
            if n > 0 {
                return Err(StoreError::Integrity(format!(
                    "the target database is not empty ({table} holds {n} rows): refusing to copy"
                )));
            }
        }
        query("SET CONSTRAINTS ALL DEFERRED")
            .execute(&mut *tx)
            .await?;
        let mut report = CopyReport::default();
        // One read transaction over every table: one snapshot of the source, even if its
        // control plane still writes (WAL readers see the state as of their first read).
        let mut read = source.pool.begin().await?;
        for table in TABLES {
            // The target's column types, for typed NULLs.
            let types: Vec<(String, String)> = query_as(
                "SELECT CAST(column_name AS TEXT), CAST(data_type AS TEXT)
                   FROM information_schema.columns
                  WHERE table_schema = current_schema() AND table_name = ?",
            )
            .bind(table)
            .fetch_all(&mut *tx)
            .await?;
            let rowid = if WITH_ROWID.contains(&table) {
                "rowid, "
            } else {
                ""
            };
            let rows = query(&format!("SELECT {rowid}* FROM {table} ORDER BY rowid"))
                .fetch_all(&mut *read)
                .await?;
            // The statement and each column's target type, from the table's first row (every
            // row of a table has the same columns).
            let (names, column_types) = match rows.first() {
                None => (Vec::new(), Vec::new()),
                Some(row) => {
                    let names: Vec<String> =
                        row.columns().iter().map(|c| c.name().to_string()).collect();
                    let column_types = names
                        .iter()
                        .map(|name| {
                            types
                                .iter()
                                .find(|(c, _)| c == name)
                                .map(|(_, t)| t.as_str())
                                .ok_or_else(|| {
                                    StoreError::Integrity(format!(
                                        "{table}.{name} has no column in the target"
                                    ))
                                })
                        })
                        .collect::<Result<Vec<_>, _>>()?;
                    (names, column_types)
                }
            };
            let sql = format!(
                "INSERT INTO {table} ({}) VALUES ({})",
                names.join(", "),
                vec!["?"; names.len()].join(", ")
            );
            let mut copied = 0u64;
            for row in &rows {
                let mut q = query(&sql);
                for (i, &ty) in column_types.iter().enumerate() {
                    q = match value(row, i)? {
                        Value::Null if ty == "bigint" => q.bind(None::<i64>),
                        Value::Null if ty == "double precision" => q.bind(None::<f64>),
                        Value::Null => q.bind(None::<String>),
                        Value::Int(v) => q.bind(v),
                        Value::Real(v) => q.bind(v),
                        Value::Text(v) => q.bind(v),
                    };
                }
                q.execute(&mut *tx).await?;
                copied += 1;
            }
            if !rowid.is_empty() {
                query(&format!(
                    "SELECT 1 FROM setval(pg_get_serial_sequence('{table}', 'rowid'),
                       COALESCE((SELECT MAX(rowid) FROM {table}), 0) + 1, false)"
                ))
                .execute(&mut *tx)
                .await?;
            }
            report.tables.push((table, copied));
        }
        read.rollback().await?;
        tx.commit().await?;
        Ok(report)
    }
}
