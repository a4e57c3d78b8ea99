//! The control-plane database: the single source of truth (architecture.md §1).
//!
//! Only this module holds SQL. It opens the control plane's database — SQLite (the embedded
//! default, WAL mode with foreign keys and a busy timeout) or PostgreSQL (a database URL,
//! issue 17) — through sqlx's `Any` driver, applies the backend's embedded migrations, and
//! offers one method per question or change the rest of the program needs. The SQL is written
//! once for both backends; what differs lives in [`dialect`].

/// Declares `pub async fn $name(conn, id)`: the `$record` row of `$table` with that id, read
/// inside a transaction (one definition for every table group's `fetch_*`).
macro_rules! fetch_by_id {
    ($name:ident, $record:ty, $table:literal) => {
        #[doc = concat!("The `", $table, "` row with `id`, inside a transaction.")]
        pub async fn $name(
            conn: &mut sqlx::AnyConnection,
            id: &str,
        ) -> Result<Option<$record>, super::StoreError> {
            super::row_by_id(conn, $table, id).await
        }
    };
}

pub mod audit;
pub mod backups;
pub mod copy;
pub mod dialect;
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
pub mod replicas;
mod resource_feed;
pub mod safe_updates;
mod sessions;
pub mod settings;
pub mod sites;
mod users;
mod write_tx;

use std::path::Path;

use sqlx::any::AnyPoolOptions;
use sqlx::{AnyPool, Executor};

pub use dialect::{flag, query, query_as, query_scalar, Backend, Flag};

pub use jobs::{latest_succeeded_payload, site_jobs_in_flight, JobFilter, JobRecord};
pub use metrics::Metrics;
pub use resource_feed::{ResourceChange, ResourceStatus};
pub use sessions::SessionUser;
pub use users::UserRecord;
pub use write_tx::WriteTx;

/// SQLite's migrations, compiled into the binary (moved unchanged from `migrations/`, so
/// existing databases keep their checksums).
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");

/// PostgreSQL's migrations: the same versions with the same meaning, in PostgreSQL's types.
pub static PG_MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");

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
    /// The database URL names no supported backend.
    #[error("unsupported database URL (expected postgres://… or sqlite:…)")]
    UnsupportedUrl,
    /// A guarded change found the row's `state_version` moved on.
    #[error("{what} {id} changed concurrently")]
    LostUpdate { what: &'static str, id: String },
}

/// A record read from a row (`#[derive(FromRow)]`): what the generic reads below return.
trait Row: for<'r> sqlx::FromRow<'r, sqlx::any::AnyRow> + Send + Unpin {}

impl<T: for<'r> sqlx::FromRow<'r, sqlx::any::AnyRow> + Send + Unpin> Row for T {}

/// The row of `table` with `id` (`SELECT *`), on the pool or inside a transaction: the one
/// single-row read every table group shares.
async fn row_by_id<'c, T: Row>(
    executor: impl sqlx::Executor<'c, Database = sqlx::Any>,
    table: &'static str,
    id: &str,
) -> Result<Option<T>, StoreError> {
    Ok(query_as(&format!("SELECT * FROM {table} WHERE id = ?"))
        .bind(id)
        .fetch_optional(executor)
        .await?)
}

/// Sets the `status` of the row of `table` with `id` if it still has `state_version` (the
/// optimistic guard of state-machines.md), bumping the version and `updated_at`. False when a
/// concurrent change got there first.
async fn set_status_guarded(
    conn: &mut sqlx::AnyConnection,
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
    let update = query(&sql).bind(to).bind(now).bind(id).bind(state_version);
    updated_one(conn, update).await
}

/// Runs a guarded `UPDATE` (its `WHERE` names the state the row must still be in): true when
/// it changed the one row, false when the row had moved on.
pub(crate) async fn updated_one<'q, 'c, E>(
    conn: E,
    update: sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments<'q>>,
) -> Result<bool, StoreError>
where
    E: sqlx::Executor<'c, Database = sqlx::Any>,
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
    pool: AnyPool,
    /// The connections write transactions use. SQLite: one, so consecutive writes find their
    /// pages in its cache (SQLite drops a connection's cache whenever another connection
    /// wrote). PostgreSQL: the same pool as reads.
    writer: AnyPool,
    /// One writer at a time within this process (see [`WriteTx`]).
    write_gate: std::sync::Arc<tokio::sync::Mutex<()>>,
    backend: Backend,
    /// Where the database is, for the connections the store opens on its own (the queue
    /// writer, the change listener). Holds a password: never logged (`Debug` redacts it; logs use [`describe_url`]).
    url: DatabaseUrl,
}

/// A database URL. It may hold a password, so `Debug` and [`DatabaseUrl::redacted`] show only
/// where it points ([`describe_url`]); the URL itself goes only to the database driver. The
/// configuration's `--database-url` is one (PostgreSQL only); the store keeps its own, of
/// either backend, for the connections it opens by itself.
#[derive(Clone, PartialEq, Eq)]
pub struct DatabaseUrl(String);

impl DatabaseUrl {
    /// A `postgres://`/`postgresql://` URL; `None` for anything else (SQLite is configured
    /// as a file path).
    pub fn parse(v: &str) -> Option<DatabaseUrl> {
        (Backend::of_url(v) == Some(Backend::Postgres) && url::Url::parse(v).is_ok())
            .then(|| DatabaseUrl(v.to_string()))
    }

    /// The full URL, for connecting.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// `postgres://host:port/db` or the SQLite file: what logs may show.
    pub fn redacted(&self) -> String {
        describe_url(&self.0)
    }
}

impl std::fmt::Debug for DatabaseUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "DatabaseUrl({})", self.redacted())
    }
}

/// What `migrate` did, for the start-up log.
#[derive(Debug, Clone, Copy)]
pub struct MigrationReport {
    pub applied_now: usize,
    pub total: usize,
}

/// The `sqlite://` URL of a file (`?` `#` `%` percent-encoded, created when missing).
pub fn sqlite_url(path: &Path) -> String {
    let mut out = String::from("sqlite://");
    for c in path.to_string_lossy().chars() {
        match c {
            '%' => out.push_str("%25"),
            '?' => out.push_str("%3F"),
            '#' => out.push_str("%23"),
            c => out.push(c),
        }
    }
    out.push_str("?mode=rwc");
    out
}

/// Where a database URL points, without credentials: `host:port/db` for PostgreSQL, the file
/// for SQLite. What logs and errors may show.
pub fn describe_url(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(u) if u.scheme().starts_with("postgres") => format!(
            "postgres://{}{}{}",
            u.host_str().unwrap_or("(socket)"),
            u.port().map(|p| format!(":{p}")).unwrap_or_default(),
            u.path()
        ),
        _ => url.split('?').next().unwrap_or_default().to_string(),
    }
}

/// SQLite's per-connection settings: WAL, synchronous NORMAL (durable with WAL), foreign keys,
/// a 5 s busy timeout, 16 MiB of page cache (the queue's indexes stay in memory).
const SQLITE_PRAGMAS: &str = "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL;
PRAGMA foreign_keys = ON; PRAGMA busy_timeout = 5000; PRAGMA cache_size = -16384;";

impl Store {
    /// Opens (creating if missing) the SQLite database at `path`.
    pub async fn open(path: &Path) -> Result<Store, StoreError> {
        Store::connect(&sqlite_url(path)).await
    }

    /// Opens the database at `url`: `postgres://…` or `sqlite:…`.
    pub async fn connect(url: &str) -> Result<Store, StoreError> {
        sqlx::any::install_default_drivers();
        let backend = Backend::of_url(url).ok_or(StoreError::UnsupportedUrl)?;
        let (pool, writer) = match backend {
            Backend::Sqlite => {
                // A SQLite file connection does not go stale: no ping before each use.
                let options = || {
                    AnyPoolOptions::new()
                        .test_before_acquire(false)
                        .after_connect(|conn, _| {
                            Box::pin(async move {
                                conn.execute(SQLITE_PRAGMAS).await?;
                                Ok(())
                            })
                        })
                };
                let pool = options().max_connections(8).connect(url).await?;
                let writer = options().max_connections(1).connect(url).await?;
                (pool, writer)
            }
            Backend::Postgres => {
                let pool = AnyPoolOptions::new()
                    .max_connections(16)
                    .connect(url)
                    .await?;
                (pool.clone(), pool)
            }
        };
        Ok(Store {
            pool,
            writer,
            write_gate: Default::default(),
            backend,
            url: DatabaseUrl(url.to_string()),
        })
    }

    /// The backend this store talks to.
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// Applies pending embedded migrations; safe to run any number of times.
    ///
    /// SQLite's run on one connection with foreign keys off, as SQLite's table rebuilds need
    /// (`0006_job_types.sql`), and every reference is checked before the connection goes
    /// back to the pool with them on again. PostgreSQL's run under an advisory lock (sqlx's
    /// migrator takes it), so replicas starting together apply them once.
    pub async fn migrate(&self) -> Result<MigrationReport, StoreError> {
        let before = self.applied_migrations().await?;
        let migrator = match self.backend {
            Backend::Sqlite => &MIGRATOR,
            Backend::Postgres => &PG_MIGRATOR,
        };
        if self.backend == Backend::Postgres {
            migrator.run(&self.pool).await?;
        } else {
            let mut conn = self.pool.acquire().await?;
            query("PRAGMA foreign_keys = OFF")
                .execute(&mut *conn)
                .await?;
            let applied = migrator.run(&mut *conn).await;
            let dangling: Vec<(String,)> =
                query_as("SELECT \"table\" FROM pragma_foreign_key_check")
                    .fetch_all(&mut *conn)
                    .await?;
            query("PRAGMA foreign_keys = ON")
                .execute(&mut *conn)
                .await?;
            applied?;
            if let Some((table,)) = dangling.first() {
                return Err(StoreError::Integrity(format!(
                    "after the migrations, {table} references a missing row"
                )));
            }
        }
        let after = self.applied_migrations().await?;
        Ok(MigrationReport {
            applied_now: after.saturating_sub(before),
            total: migrator.iter().count(),
        })
    }

    async fn applied_migrations(&self) -> Result<usize, StoreError> {
        let sql = match self.backend {
            Backend::Sqlite => {
                "SELECT name FROM sqlite_master WHERE type = 'table' AND name = '_sqlx_migrations'"
            }
            Backend::Postgres => {
                "SELECT CAST(tablename AS TEXT) FROM pg_tables
                 WHERE schemaname = current_schema() AND tablename = '_sqlx_migrations'"
            }
        };
        let exists: Option<(String,)> = query_as(sql).fetch_optional(&self.pool).await?;
        if exists.is_none() {
            return Ok(0);
        }
        let (n,): (i64,) = query_as("SELECT COUNT(*) FROM _sqlx_migrations WHERE success")
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
        Ok(query_as(&format!(
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
        Ok(query_as(&format!(
            "SELECT * FROM {table} WHERE {column} = ? ORDER BY {order}"
        ))
        .bind(value)
        .fetch_all(&self.pool)
        .await?)
    }

    /// The newest `updated_at` of `from` (a table or subquery), where a change feed starts.
    async fn latest_change(&self, from: &str) -> Result<Option<String>, StoreError> {
        let (ts,): (Option<String>,) = query_as(&format!("SELECT MAX(updated_at) FROM {from}"))
            .fetch_one(&self.pool)
            .await?;
        Ok(ts)
    }

    /// `SELECT 1`, for the health endpoint.
    pub async fn ping(&self) -> Result<(), StoreError> {
        query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    /// The raw pool, for tests that need to arrange rows the product cannot create yet.
    pub fn pool(&self) -> &AnyPool {
        &self.pool
    }

    pub async fn close(&self) {
        self.writer.close().await;
        self.pool.close().await;
    }
}
