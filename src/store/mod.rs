//! The control-plane database: the single source of truth (architecture.md §1).
//!
//! Only this module holds SQL. It opens SQLite in WAL mode with foreign keys and a busy timeout,
//! applies the embedded migrations, and offers one method per question or change the rest of the
//! program needs. The SQL stays portable to PostgreSQL (no SQLite-only functions, `RETURNING`
//! allowed), so a second backend would only need its own connection setup and migrations.

/// Declares `pub async fn $name(conn, id)`: the `$record` row of `$table` with that id, read
/// inside a transaction (one definition for every table group's `fetch_*`).
macro_rules! fetch_by_id {
    ($name:ident, $record:ty, $table:literal) => {
        #[doc = concat!("The `", $table, "` row with `id`, inside a transaction.")]
        pub async fn $name(
            conn: &mut sqlx::SqliteConnection,
            id: &str,
        ) -> Result<Option<$record>, super::StoreError> {
            super::row_by_id(conn, $table, id).await
        }
    };
}

pub mod audit;
pub mod backups;
pub mod domains;
pub mod drift;
pub mod drills;
pub mod environments;
mod jobs;
pub mod login_attempts;
mod metrics;
pub mod nodes;
pub mod queue;
pub mod releases;
mod resource_feed;
pub mod safe_updates;
mod sessions;
pub mod settings;
pub mod sites;
mod users;
mod write_tx;

use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::SqlitePool;

pub use jobs::{JobFilter, JobRecord};
pub use metrics::Metrics;
pub use resource_feed::{ResourceChange, ResourceStatus};
pub use sessions::SessionUser;
pub use users::UserRecord;
pub use write_tx::WriteTx;

/// Migrations compiled into the binary.
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

/// Failures of the store layer.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database query failed")]
    Query(#[from] sqlx::Error),
    #[error("applying database migrations failed")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("a {0} with the same key already exists")]
    Duplicate(&'static str),
    /// A row the caller needed is missing (e.g. the site a job names).
    #[error("{what} {id} not found")]
    NotFound { what: &'static str, id: String },
    /// The database broke one of its own rules (found after the migrations).
    #[error("database integrity: {0}")]
    Integrity(String),
    /// A guarded change found the row's `state_version` moved on.
    #[error("{what} {id} changed concurrently")]
    LostUpdate { what: &'static str, id: String },
}

/// A record read from a row (`#[derive(FromRow)]`): what the generic reads below return.
trait Row: for<'r> sqlx::FromRow<'r, sqlx::sqlite::SqliteRow> + Send + Unpin {}

impl<T: for<'r> sqlx::FromRow<'r, sqlx::sqlite::SqliteRow> + Send + Unpin> Row for T {}

/// The row of `table` with `id` (`SELECT *`), on the pool or inside a transaction: the one
/// single-row read every table group shares.
async fn row_by_id<'c, T: Row>(
    executor: impl sqlx::SqliteExecutor<'c>,
    table: &'static str,
    id: &str,
) -> Result<Option<T>, StoreError> {
    Ok(
        sqlx::query_as(&format!("SELECT * FROM {table} WHERE id = ?"))
            .bind(id)
            .fetch_optional(executor)
            .await?,
    )
}

/// Sets the `status` of the row of `table` with `id` if it still has `state_version` (the
/// optimistic guard of state-machines.md), bumping the version and `updated_at`. False when a
/// concurrent change got there first.
async fn set_status_guarded(
    conn: &mut sqlx::SqliteConnection,
    table: &'static str,
    id: &str,
    state_version: i64,
    to: &'static str,
    now: &str,
) -> Result<bool, StoreError> {
    let sql = format!(
        "UPDATE {table} SET status = ?, state_version = state_version + 1, updated_at = ?
         WHERE id = ? AND state_version = ?"
    );
    let update = sqlx::query(&sql)
        .bind(to)
        .bind(now)
        .bind(id)
        .bind(state_version);
    updated_one(conn, update).await
}

/// Runs a guarded `UPDATE` (its `WHERE` names the state the row must still be in): true when
/// it changed the one row, false when the row had moved on.
pub(crate) async fn updated_one<'q, 'c, E>(
    conn: E,
    update: sqlx::query::Query<'q, sqlx::Sqlite, sqlx::sqlite::SqliteArguments<'q>>,
) -> Result<bool, StoreError>
where
    E: sqlx::Executor<'c, Database = sqlx::Sqlite>,
{
    Ok(update.execute(conn).await?.rows_affected() == 1)
}

/// A guarded status change that found the row's `state_version` moved on: impossible inside
/// the engine's write transaction, so refused loudly.
fn lost_update(what: &'static str, id: &str) -> StoreError {
    StoreError::LostUpdate {
        what,
        id: id.to_string(),
    }
}

impl StoreError {
    /// [`StoreError::NotFound`] for the row `what` with `id` (`(none)` when the caller had no id).
    pub fn not_found(what: &'static str, id: Option<&str>) -> StoreError {
        StoreError::NotFound {
            what,
            id: id.unwrap_or("(none)").to_string(),
        }
    }

    /// Turns a unique-constraint violation into [`StoreError::Duplicate`].
    fn unique(what: &'static str) -> impl FnOnce(sqlx::Error) -> StoreError {
        move |e| match e.as_database_error() {
            Some(d) if d.is_unique_violation() => StoreError::Duplicate(what),
            _ => StoreError::Query(e),
        }
    }
}

/// Handle to the database; cheap to clone.
#[derive(Debug, Clone)]
pub struct Store {
    pool: SqlitePool,
    /// The one connection write transactions use: consecutive writes then find their pages
    /// in its cache (SQLite drops a connection's cache whenever another connection wrote).
    writer: SqlitePool,
    /// One writer at a time within this process (see [`WriteTx`]).
    write_gate: std::sync::Arc<tokio::sync::Mutex<()>>,
}

/// What `migrate` did, for the start-up log.
#[derive(Debug, Clone, Copy)]
pub struct MigrationReport {
    pub applied_now: usize,
    pub total: usize,
}

impl Store {
    /// Opens (creating if missing) the SQLite database at `path`.
    pub async fn open(path: &Path) -> Result<Store, StoreError> {
        let options = SqliteConnectOptions::from_str("sqlite://")?
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .foreign_keys(true)
            .busy_timeout(Duration::from_millis(5000))
            // 16 MiB of page cache per connection: the queue's indexes stay in memory.
            .pragma("cache_size", "-16384");
        // A SQLite file connection does not go stale: no ping before each use.
        let pool = SqlitePoolOptions::new()
            .max_connections(8)
            .test_before_acquire(false)
            .connect_with(options.clone())
            .await?;
        let writer = SqlitePoolOptions::new()
            .max_connections(1)
            .test_before_acquire(false)
            .connect_with(options)
            .await?;
        Ok(Store {
            pool,
            writer,
            write_gate: Default::default(),
        })
    }

    /// Applies pending embedded migrations; safe to run any number of times.
    ///
    /// They run on one connection with foreign keys off, as SQLite's table rebuilds need
    /// (`0006_job_types.sql`), and every reference is checked before the connection goes
    /// back to the pool with them on again.
    pub async fn migrate(&self) -> Result<MigrationReport, StoreError> {
        let before = self.applied_migrations().await?;
        let mut conn = self.pool.acquire().await?;
        sqlx::query("PRAGMA foreign_keys = OFF")
            .execute(&mut *conn)
            .await?;
        let applied = MIGRATOR.run(&mut *conn).await;
        let dangling: Vec<(String,)> =
            sqlx::query_as("SELECT \"table\" FROM pragma_foreign_key_check")
                .fetch_all(&mut *conn)
                .await?;
        sqlx::query("PRAGMA foreign_keys = ON")
            .execute(&mut *conn)
            .await?;
        applied?;
        if let Some((table,)) = dangling.first() {
            return Err(StoreError::Integrity(format!(
                "after the migrations, {table} references a missing row"
            )));
        }
        let after = self.applied_migrations().await?;
        Ok(MigrationReport {
            applied_now: after.saturating_sub(before),
            total: MIGRATOR.iter().count(),
        })
    }

    async fn applied_migrations(&self) -> Result<usize, StoreError> {
        let exists: Option<(String,)> = sqlx::query_as(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name = '_sqlx_migrations'",
        )
        .fetch_optional(&self.pool)
        .await?;
        if exists.is_none() {
            return Ok(0);
        }
        let (n,): (i64,) =
            sqlx::query_as("SELECT COUNT(*) FROM _sqlx_migrations WHERE success = 1")
                .fetch_one(&self.pool)
                .await?;
        Ok(n as usize)
    }

    /// Rows of `select` (its table aliased `j`) whose `updated_at` is at or after `since`,
    /// oldest change first: what the job and resource change feeds read.
    async fn changed_since<T: Row>(
        &self,
        select: &str,
        since: &str,
        limit: i64,
    ) -> Result<Vec<T>, StoreError> {
        Ok(sqlx::query_as(&format!(
            "{select} WHERE j.updated_at >= ? ORDER BY j.updated_at, j.id LIMIT ?"
        ))
        .bind(since)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?)
    }

    /// Every row of `table` whose `column` equals `value`, in `order`: the children of a parent.
    async fn rows_where<T: Row>(
        &self,
        table: &'static str,
        column: &'static str,
        value: &str,
        order: &'static str,
    ) -> Result<Vec<T>, StoreError> {
        Ok(sqlx::query_as(&format!(
            "SELECT * FROM {table} WHERE {column} = ? ORDER BY {order}"
        ))
        .bind(value)
        .fetch_all(&self.pool)
        .await?)
    }

    /// The newest `updated_at` of `from` (a table or subquery), where a change feed starts.
    async fn latest_change(&self, from: &str) -> Result<Option<String>, StoreError> {
        let (ts,): (Option<String>,) =
            sqlx::query_as(&format!("SELECT MAX(updated_at) FROM {from}"))
                .fetch_one(&self.pool)
                .await?;
        Ok(ts)
    }

    /// `SELECT 1`, for the health endpoint.
    pub async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    /// The raw pool, for tests that need to arrange rows the product cannot create yet.
    pub fn pool(&self) -> &SqlitePool {
        &self.pool
    }

    pub async fn close(&self) {
        self.writer.close().await;
        self.pool.close().await;
    }
}
