//! The one place where SQLite and PostgreSQL differ (issue 17).
//!
//! The store talks to both backends through sqlx's `Any` driver, so every query is written
//! once. What cannot be written once lives here: the placeholder syntax (the program writes
//! SQLite's `?`/`?NNN`; both backends are sent `$N`), booleans (INTEGER 0/1 on both, read
//! through [`Flag`]), the way a write transaction opens, and the few statements whose
//! spelling differs (JSON array expansion, substring search).

use std::collections::HashMap;
use std::sync::{LazyLock, RwLock};

use sqlx::any::{Any, AnyArguments, AnyTypeInfo, AnyTypeInfoKind};
use sqlx::query::{Query, QueryAs, QueryScalar};

/// Which database the store talks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

impl Backend {
    /// The backend of a database URL (`postgres://`/`postgresql://` or `sqlite:`).
    pub fn of_url(url: &str) -> Option<Backend> {
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Some(Backend::Postgres)
        } else if url.starts_with("sqlite:") {
            Some(Backend::Sqlite)
        } else {
            None
        }
    }

    /// The backend of an open connection.
    pub fn of_conn(conn: &sqlx::AnyConnection) -> Backend {
        if conn.backend_name() == "PostgreSQL" {
            Backend::Postgres
        } else {
            Backend::Sqlite
        }
    }

    /// The statement that opens a write transaction. SQLite takes its one write lock up front
    /// (`BEGIN IMMEDIATE`); PostgreSQL takes the transaction-scoped advisory lock
    /// [`WRITE_LOCK_KEY`] as its first statement ([`Backend::write_lock_sql`]), so the writes
    /// of every replica run one at a time, as on SQLite (decisions.md, "Scale-out (issue 17):
    /// store").
    pub fn begin_write_sql(self) -> &'static str {
        match self {
            Backend::Sqlite => "BEGIN IMMEDIATE",
            Backend::Postgres => "BEGIN",
        }
    }

    /// The statement run right after [`Backend::begin_write_sql`], if any: on PostgreSQL the
    /// transaction-scoped advisory lock every write transaction holds (one writer at a time
    /// across replicas, as SQLite's `BEGIN IMMEDIATE` is within one file).
    pub fn write_lock_sql(self) -> Option<&'static str> {
        match self {
            Backend::Sqlite => None,
            Backend::Postgres => Some("SELECT 1 FROM pg_advisory_xact_lock(7243610017)"),
        }
    }
}

/// Rewrites SQLite placeholders (`?`, `?NNN`) into `$N`, which both backends accept with the
/// same meaning: a bare `?` is one more than the largest number so far (SQLite's rule).
/// Quoted text and identifiers are left alone. `None` when there is nothing to rewrite.
fn rewrite(sql: &str) -> Option<String> {
    if !sql.contains('?') {
        return None;
    }
    let mut out = String::with_capacity(sql.len() + 16);
    let mut max = 0u32;
    let mut quote: Option<char> = None;
    let mut chars = sql.chars().peekable();
    while let Some(c) = chars.next() {
        if let Some(q) = quote {
            out.push(c);
            if c == q {
                quote = None;
            }
            continue;
        }
        match c {
            '\'' | '"' => {
                quote = Some(c);
                out.push(c);
            }
            '?' => {
                let mut digits = String::new();
                while let Some(d) = chars.peek().filter(|d| d.is_ascii_digit()) {
                    digits.push(*d);
                    chars.next();
                }
                let n = if digits.is_empty() {
                    max + 1
                } else {
                    digits.parse().expect("digits")
                };
                max = max.max(n);
                out.push('$');
                out.push_str(&n.to_string());
            }
            _ => out.push(c),
        }
    }
    Some(out)
}

/// The `$N` form of `sql`, interned: sqlx's queries borrow their text, and the program's SQL
/// texts are a fixed set (tables and columns are never user data), so each is rewritten once.
fn portable(sql: &str) -> Option<&'static str> {
    static CACHE: LazyLock<RwLock<HashMap<String, &'static str>>> = LazyLock::new(Default::default);
    if !sql.contains('?') {
        return None;
    }
    if let Some(hit) = CACHE.read().expect("sql cache").get(sql) {
        return Some(hit);
    }
    let rewritten: &'static str = Box::leak(rewrite(sql)?.into_boxed_str());
    CACHE
        .write()
        .expect("sql cache")
        .insert(sql.to_string(), rewritten);
    Some(rewritten)
}

/// [`sqlx::query`] on either backend (placeholders rewritten, see [`rewrite`]).
pub fn query(sql: &str) -> Query<'_, Any, AnyArguments<'_>> {
    match portable(sql) {
        Some(s) => sqlx::query(s),
        None => sqlx::query(sql),
    }
}

/// [`sqlx::query_as`] on either backend.
pub fn query_as<'q, O>(sql: &'q str) -> QueryAs<'q, Any, O, AnyArguments<'q>>
where
    O: for<'r> sqlx::FromRow<'r, sqlx::any::AnyRow>,
{
    match portable(sql) {
        Some(s) => sqlx::query_as(s),
        None => sqlx::query_as(sql),
    }
}

/// [`sqlx::query_scalar`] on either backend.
pub fn query_scalar<'q, O>(sql: &'q str) -> QueryScalar<'q, Any, O, AnyArguments<'q>>
where
    (O,): for<'r> sqlx::FromRow<'r, sqlx::any::AnyRow>,
{
    match portable(sql) {
        Some(s) => sqlx::query_scalar(s),
        None => sqlx::query_scalar(sql),
    }
}

/// A boolean column (INTEGER 0/1 on both backends, data-model.md): sqlx's `Any` driver reads
/// `bool` only from a native boolean, so records read flags through this
/// (`#[sqlx(try_from = "Flag")]`) and bind them as `i64` ([`flag`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Flag(pub bool);

impl From<Flag> for bool {
    fn from(f: Flag) -> bool {
        f.0
    }
}

/// A boolean as the INTEGER 0/1 a flag column holds, for binding.
pub fn flag(b: bool) -> i64 {
    i64::from(b)
}

impl sqlx::Type<Any> for Flag {
    fn type_info() -> AnyTypeInfo {
        <i64 as sqlx::Type<Any>>::type_info()
    }
    fn compatible(ty: &AnyTypeInfo) -> bool {
        ty.kind().is_integer() || ty.kind() == AnyTypeInfoKind::Bool
    }
}

impl<'r> sqlx::Decode<'r, Any> for Flag {
    fn decode(value: sqlx::any::AnyValueRef<'r>) -> Result<Self, sqlx::error::BoxDynError> {
        use sqlx::ValueRef;
        if value.type_info().kind() == AnyTypeInfoKind::Bool {
            return Ok(Flag(<bool as sqlx::Decode<Any>>::decode(value)?));
        }
        Ok(Flag(<i64 as sqlx::Decode<Any>>::decode(value)? != 0))
    }
}

impl<'q> sqlx::Encode<'q, Any> for Flag {
    fn encode_by_ref(
        &self,
        buf: &mut <sqlx::Any as sqlx::Database>::ArgumentBuffer<'q>,
    ) -> Result<sqlx::encode::IsNull, sqlx::error::BoxDynError> {
        <i64 as sqlx::Encode<Any>>::encode_by_ref(&i64::from(self.0), buf)
    }
}

#[cfg(test)]
mod tests {
    use super::rewrite;

    #[test]
    fn placeholders_follow_sqlite_numbering() {
        assert_eq!(rewrite("SELECT 1"), None);
        assert_eq!(
            rewrite("a = ? AND b = ? AND c = '?'").as_deref(),
            Some("a = $1 AND b = $2 AND c = '?'")
        );
        assert_eq!(
            rewrite("x = ?2 OR y = ?1 OR z = ?").as_deref(),
            Some("x = $2 OR y = $1 OR z = $3")
        );
        assert_eq!(rewrite("\"we?rd\" = ?").as_deref(), Some("\"we?rd\" = $1"));
    }
}
