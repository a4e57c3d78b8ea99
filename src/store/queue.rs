//! Writing jobs: enqueue, claim, heartbeat, cancel requests, completion, recovery.
//!
//! Functions taking a connection run inside a transaction the job engine owns, so a job's state
//! change and the resource transitions it causes commit together (architecture.md §1.4).

use std::sync::Arc;

use sqlx::{AnyConnection, Connection, Executor};
use tokio::sync::{Mutex, OnceCell};

use super::jobs::job_by_id;
use super::write_tx::{WriteTx, WriterConn};
use super::{flag, updated_one, Backend, JobRecord, Store, StoreError};
use crate::domain::{JobStatus, JobType};

/// The job engine's write connection for claims and completions: a connection of its own
/// instead of the writer pool's, for speed — a pooled connection is pinged by sqlx every time
/// it goes back to the pool (one more hand-off to the connection's thread per transaction),
/// and sqlx's `begin` is a hand-off of its own, while here `BEGIN IMMEDIATE` goes out in one
/// batch with the transaction's first statement. Transactions still enter through the
/// process's write gate, one at a time with every other writer.
#[derive(Default)]
pub struct QueueWriter {
    conn: OnceCell<Arc<Mutex<WriterConn>>>,
}

/// WAL size (pages) after which a commit of the [`QueueWriter`] checkpoints (SQLite's default:
/// 1,000). Every claim and completion rewrites the same few hot pages of the job indexes; a
/// checkpoint copies each page once however often it changed, so checkpointing less often
/// saves most of that copying and its two fsyncs. Costs: the WAL file grows to about 16 MiB
/// (4 KiB pages) and stays that size; other connections keep the default and checkpoint when
/// they commit into a WAL over 1,000 pages.
const QUEUE_WRITER_CHECKPOINT_PAGES: u32 = 4_000;

/// What [`QueueWriter::finish`] changed.
#[derive(Debug, Clone)]
pub struct Finished {
    /// The job's new status when it was `running` (under the worker, when given); `None` when
    /// nothing may be committed (the audit rows below count only together with it). It differs
    /// from the status asked for when a cancel request won: `cancelled`.
    pub status: Option<JobStatus>,
    /// `accepted` audit rows of the job given their result.
    pub audited: u64,
}

impl Finished {
    /// Whether the job row changed (else roll back).
    pub fn job(&self) -> bool {
        self.status.is_some()
    }
}

/// A run that did not succeed while a cancel was requested ends `cancelled` (jobs.md §8: the
/// request must not be lost to a retry, e.g. `WORKER_LOST`). Evaluated on the row before the
/// update, like every right-hand side of an `UPDATE`.
const CANCEL_WINS: &str = "(cancel_requested_at IS NOT NULL AND ?1 <> 'succeeded')";

/// The finishing batch; `{cancel}` is [`CANCEL_WINS`]. A cancelled job keeps no error of an
/// earlier attempt (`error_code`/`error_message` NULL, jobs.md §8).
const FINISH_SQL_TEMPLATE: &str = "BEGIN IMMEDIATE;
{job};
{audit}";

/// The job part of the finishing batch (its parameters as in [`FINISH_SQL_TEMPLATE`]).
const FINISH_JOB_SQL: &str =
    "UPDATE jobs SET status = CASE WHEN {cancel} THEN 'cancelled' ELSE ?1 END,
  run_after = CASE WHEN {cancel} THEN NULL ELSE ?2 END,
  error_code = CASE WHEN {cancel} OR ?1 = 'cancelled' THEN NULL ELSE COALESCE(?3, error_code) END,
  error_message = CASE WHEN {cancel} OR ?1 = 'cancelled' THEN NULL
                  ELSE COALESCE(?4, error_message) END,
  output_tail = COALESCE(?5, output_tail),
  finished_at = CASE WHEN {cancel} OR ?1 <> 'queued' THEN ?6 END,
  locked_at = NULL, locked_by = NULL, heartbeat_at = NULL, cancel_requested_at = NULL,
  updated_at = ?6
WHERE id = ?7 AND status = 'running' AND (?8 IS NULL OR locked_by = ?8)
RETURNING 'job:' || status";

/// The audit part of the finishing batch; `{job}` and `{flag}` are the parameters holding the
/// job id and `audit_success`.
const FINISH_AUDIT_SQL: &str =
    "UPDATE audit_logs SET result = (SELECT status FROM jobs WHERE id = {job})
WHERE job_id = {job} AND result = 'accepted'
  AND (SELECT status FROM jobs WHERE id = {job}) IN ('succeeded', 'failed', 'cancelled')
  AND NOT ({flag} = 0 AND (SELECT status FROM jobs WHERE id = {job}) = 'succeeded')
RETURNING 'audit'";

/// SQLite's finishing batch: `BEGIN IMMEDIATE`, the job, its audit rows, in one hand-off.
fn finish_sql() -> &'static str {
    static SQL: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    SQL.get_or_init(|| {
        FINISH_SQL_TEMPLATE
            .replace("{job}", &finish_job_sql())
            .replace(
                "{audit}",
                &FINISH_AUDIT_SQL
                    .replace("{job}", "?7")
                    .replace("{flag}", "?9"),
            )
    })
}

fn finish_job_sql() -> String {
    FINISH_JOB_SQL.replace("{cancel}", CANCEL_WINS)
}

impl QueueWriter {
    /// The write turn and the connection, with a transaction about to open: the caller's first
    /// statement must start with `BEGIN IMMEDIATE;`.
    async fn enter(&self, store: &Store) -> Result<WriteTx, StoreError> {
        if store.backend == Backend::Postgres {
            return store.begin_write().await;
        }
        let turn = store.write_gate.clone().lock_owned().await;
        let cell = self
            .conn
            .get_or_try_init(|| async {
                let mut conn = AnyConnection::connect(&store.url.0).await?;
                conn.execute(super::SQLITE_PRAGMAS).await?;
                conn.execute(
                    format!("PRAGMA wal_autocheckpoint = {QUEUE_WRITER_CHECKPOINT_PAGES}").as_str(),
                )
                .await?;
                Ok::<_, sqlx::Error>(Arc::new(Mutex::new(WriterConn { conn, open: false })))
            })
            .await?;
        let mut w = cell.clone().lock_owned().await;
        if w.open {
            w.rollback().await;
        }
        w.open = true;
        Ok(WriteTx::dedicated(w, turn))
    }

    /// Opens a write transaction with the claim of [`claim_next`] as its first statement (one
    /// hand-off); the transaction stays open for start-time validation and transitions.
    pub async fn claim(
        &self,
        store: &Store,
        worker: &str,
        now: &str,
    ) -> Result<(WriteTx, Option<JobRecord>), StoreError> {
        let mut tx = self.enter(store).await?;
        let sql = match store.backend {
            Backend::Sqlite => claim_sql(ClaimSql::SqliteBatch),
            Backend::Postgres => claim_sql(ClaimSql::Postgres),
        };
        // `fetch_all`, not `fetch_optional`: through the `Any` driver, the latter stops at the
        // batch's first result, the `BEGIN`'s.
        let job = crate::store::query_as(sql)
            .bind(now)
            .bind(worker)
            .fetch_all(&mut *tx)
            .await?
            .into_iter()
            .next();
        Ok((tx, job))
    }

    /// Opens a write transaction that ends a run as [`finish_running`] does and, unless the
    /// run is retried (`queued`), sets the result of the job's `accepted` audit rows
    /// (api.md §6), all in one hand-off — except a success when `audit_success` is false (a
    /// health-gated job: its gate finishes the audit rows). The transaction stays open for the
    /// resource transitions; roll it back when `job` is false.
    pub async fn finish(
        &self,
        store: &Store,
        id: &str,
        worker: Option<&str>,
        f: &Finish<'_>,
        audit_success: bool,
    ) -> Result<(WriteTx, Finished), StoreError> {
        let mut tx = self.enter(store).await?;
        let sql = match store.backend {
            Backend::Sqlite => finish_sql(),
            Backend::Postgres => {
                static SQL: std::sync::OnceLock<String> = std::sync::OnceLock::new();
                SQL.get_or_init(finish_job_sql)
            }
        };
        let mut q = crate::store::query_scalar(sql)
            .bind(f.status)
            .bind(f.run_after)
            .bind(f.error_code)
            .bind(f.error_message)
            .bind(f.output_tail)
            .bind(f.now)
            .bind(id)
            .bind(worker);
        if store.backend == Backend::Sqlite {
            // `?9` of the audit part of SQLite's batch.
            q = q.bind(flag(audit_success));
        }
        let mut rows: Vec<String> = q.fetch_all(&mut *tx).await?;
        if store.backend == Backend::Postgres {
            // PostgreSQL prepares one statement at a time: the audit part on its own.
            static AUDIT: std::sync::OnceLock<String> = std::sync::OnceLock::new();
            let audit = AUDIT.get_or_init(|| {
                FINISH_AUDIT_SQL
                    .replace("{job}", "?1")
                    .replace("{flag}", "?2")
            });
            rows.extend(
                crate::store::query_scalar::<String>(audit)
                    .bind(id)
                    .bind(flag(audit_success))
                    .fetch_all(&mut *tx)
                    .await?,
            );
        }
        let finished = Finished {
            status: rows
                .iter()
                .find_map(|r| r.strip_prefix("job:"))
                .map(|s| {
                    s.parse().map_err(|e| sqlx::Error::ColumnDecode {
                        index: "status".into(),
                        source: Box::new(e),
                    })
                })
                .transpose()?,
            audited: rows.iter().filter(|r| *r == "audit").count() as u64,
        };
        Ok((tx, finished))
    }
}

/// A job to insert.
#[derive(Debug, Clone)]
pub struct NewJob {
    pub id: String,
    pub job_type: JobType,
    pub site_id: Option<String>,
    pub environment_id: Option<String>,
    pub node_id: String,
    pub payload_json: String,
    pub max_attempts: i64,
    pub parent_job_id: Option<String>,
}

/// How a run ends, as written to the row.
#[derive(Debug, Clone)]
pub struct Finish<'a> {
    /// `succeeded`, `failed`, `cancelled` or `queued` (retry).
    pub status: JobStatus,
    /// Set for a retry: not claimable before.
    pub run_after: Option<&'a str>,
    pub error_code: Option<&'a str>,
    pub error_message: Option<&'a str>,
    pub output_tail: Option<&'a str>,
    pub now: &'a str,
}

/// The claim of jobs.md §3 as one statement: at most one running job per site and per node;
/// a site with a queued follow-up or retry runs only that; follow-ups first. The candidate
/// search is split in two scalar subqueries joined by `COALESCE` — follow-ups (few rows, found
/// through `idx_jobs_status_type`; the `|| ''` keeps SQLite from walking the queue-order index
/// for them) and the rest, which walks `idx_jobs_queue_order` in queue order and stops at the
/// first eligible row instead of sorting every queued job. Same order as the spec's single
/// `ORDER BY CASE …`. `{follow_ups}` is the follow-up set from the job-kind registry
/// ([`crate::jobs::kinds::follow_up_sql_list`]), substituted once when the statement is built.
const CANDIDATE: &str = "(SELECT j.id FROM jobs j
  WHERE j.status = 'queued' AND (j.run_after IS NULL OR j.run_after <= ?1)
    AND j.job_type {kind} {follow_ups}
    AND NOT EXISTS (SELECT 1 FROM jobs r WHERE r.status = 'running' AND r.node_id = j.node_id)
    AND (j.site_id IS NULL OR NOT EXISTS
          (SELECT 1 FROM jobs r WHERE r.status = 'running' AND r.site_id = j.site_id))
    AND (j.attempt_count > 0 OR j.job_type IN {follow_ups}
      OR j.site_id IS NULL
      OR NOT EXISTS (SELECT 1 FROM jobs f WHERE f.status = 'queued' AND f.site_id = j.site_id
        AND (f.attempt_count > 0 OR f.job_type IN {follow_ups})))
  ORDER BY {order}
  LIMIT 1)";

/// Which form of the claim statement.
#[derive(Debug, Clone, Copy)]
enum ClaimSql {
    /// SQLite, inside an open transaction.
    Sqlite,
    /// SQLite, preceded by `BEGIN IMMEDIATE;` in the same batch.
    SqliteBatch,
    /// PostgreSQL: the candidate rows locked `FOR UPDATE SKIP LOCKED`.
    Postgres,
}

/// The claim statement in the given form.
fn claim_sql(form: ClaimSql) -> &'static str {
    static SQL: std::sync::OnceLock<[String; 3]> = std::sync::OnceLock::new();
    let [plain, begin, pg] = SQL.get_or_init(|| {
        let candidate =
            CANDIDATE.replace("{follow_ups}", &crate::jobs::kinds::follow_up_sql_list());
        let follow_ups = candidate.replace("{kind}", "IN").replace(
            "{order}",
            "COALESCE(j.run_after, j.created_at) || '', j.created_at",
        );
        let others = candidate.replace("{kind}", "NOT IN").replace(
            "{order}",
            "j.status, COALESCE(j.run_after, j.created_at), j.created_at",
        );
        let claim = format!(
            "UPDATE jobs SET status = 'running', locked_at = ?1, locked_by = ?2, started_at = ?1,
               heartbeat_at = ?1, attempt_count = attempt_count + 1, updated_at = ?1
             WHERE id = COALESCE({follow_ups}, {others})
             RETURNING *, NULL AS site_name, NULL AS environment_name, NULL AS node_name"
        );
        let pg = claim.replace("  LIMIT 1)", "  LIMIT 1 FOR UPDATE OF j SKIP LOCKED)");
        [claim.clone(), format!("BEGIN IMMEDIATE;\n{claim}"), pg]
    });
    match form {
        ClaimSql::Sqlite => plain,
        ClaimSql::SqliteBatch => begin,
        ClaimSql::Postgres => pg,
    }
}

impl Store {
    /// Refreshes the lease of a job this worker runs; false when it is no longer ours.
    pub async fn heartbeat(&self, id: &str, worker: &str, now: &str) -> Result<bool, StoreError> {
        let update = crate::store::query(
            "UPDATE jobs SET heartbeat_at = ? WHERE id = ? AND status = 'running' AND locked_by = ?",
        )
        .bind(now)
        .bind(id)
        .bind(worker);
        updated_one(&self.pool, update).await
    }

    /// `cancel_requested_at` of a running job, if a cancel is pending.
    pub async fn cancel_requested(&self, id: &str) -> Result<bool, StoreError> {
        let row: Option<(Option<String>,)> = crate::store::query_as(
            "SELECT cancel_requested_at FROM jobs WHERE id = ? AND status = 'running'",
        )
        .bind(id)
        .fetch_optional(&self.pool)
        .await?;
        Ok(matches!(row, Some((Some(_),))))
    }

    /// Ids and workers of running jobs whose heartbeat is older than `stale_before`.
    pub async fn stale_running_jobs(
        &self,
        stale_before: &str,
    ) -> Result<Vec<(String, String)>, StoreError> {
        Ok(crate::store::query_as(
            "SELECT id, COALESCE(locked_by, '') FROM jobs
             WHERE status = 'running' AND (heartbeat_at IS NULL OR heartbeat_at < ?)",
        )
        .bind(stale_before)
        .fetch_all(&self.pool)
        .await?)
    }

    /// Jobs in `queued` whose `run_after` is due, for the wake-up decision of idle workers.
    pub async fn count_claimable_soon(&self, now: &str) -> Result<i64, StoreError> {
        let (n,): (i64,) = crate::store::query_as(
            "SELECT COUNT(*) FROM jobs WHERE status = 'queued' AND (run_after IS NULL OR run_after <= ?)",
        )
        .bind(now)
        .fetch_one(&self.pool)
        .await?;
        Ok(n)
    }
}

pub async fn insert_job(
    conn: &mut AnyConnection,
    job: &NewJob,
    now: &str,
) -> Result<(), StoreError> {
    crate::store::query(
        "INSERT INTO jobs (id, job_type, status, site_id, environment_id, node_id, payload_json,
           attempt_count, max_attempts, parent_job_id, created_at, updated_at)
         VALUES (?, ?, 'queued', ?, ?, ?, ?, 0, ?, ?, ?, ?)",
    )
    .bind(&job.id)
    .bind(job.job_type.as_str())
    .bind(&job.site_id)
    .bind(&job.environment_id)
    .bind(&job.node_id)
    .bind(&job.payload_json)
    .bind(job.max_attempts)
    .bind(&job.parent_job_id)
    .bind(now)
    .bind(now)
    .execute(conn)
    .await?;
    Ok(())
}

/// Claims the next eligible job for `worker` and returns its row (display names not joined),
/// or `None` when nothing is claimable.
pub async fn claim_next(
    conn: &mut AnyConnection,
    worker: &str,
    now: &str,
) -> Result<Option<JobRecord>, StoreError> {
    let sql = match Backend::of_conn(conn) {
        Backend::Sqlite => claim_sql(ClaimSql::Sqlite),
        Backend::Postgres => claim_sql(ClaimSql::Postgres),
    };
    Ok(crate::store::query_as(sql)
        .bind(now)
        .bind(worker)
        .fetch_optional(conn)
        .await?)
}

pub async fn fetch_job(
    conn: &mut AnyConnection,
    id: &str,
) -> Result<Option<JobRecord>, StoreError> {
    job_by_id(conn, id).await
}

/// A job's recorded error message, empty when none (a finish writes it before the kind's
/// `on_finished` reads it in the same transaction).
pub async fn job_error_message(conn: &mut AnyConnection, id: &str) -> Result<String, StoreError> {
    let row: Option<(Option<String>,)> =
        crate::store::query_as("SELECT error_message FROM jobs WHERE id = ?")
            .bind(id)
            .fetch_optional(conn)
            .await?;
    Ok(row.and_then(|(m,)| m).unwrap_or_default())
}

pub async fn set_payload(
    conn: &mut AnyConnection,
    id: &str,
    payload_json: &str,
) -> Result<(), StoreError> {
    crate::store::query("UPDATE jobs SET payload_json = ? WHERE id = ?")
        .bind(payload_json)
        .bind(id)
        .execute(conn)
        .await?;
    Ok(())
}

/// Ends a run of a `running` job (held by `worker` when given). Retries clear the lock fields;
/// every end clears `cancel_requested_at`. False when the job was not in that state.
pub async fn finish_running(
    conn: &mut AnyConnection,
    id: &str,
    worker: Option<&str>,
    f: &Finish<'_>,
) -> Result<bool, StoreError> {
    let terminal = f.status != JobStatus::Queued;
    let update = crate::store::query(
        "UPDATE jobs SET status = ?, run_after = ?, error_code = COALESCE(?, error_code),
           error_message = COALESCE(?, error_message),
           output_tail = COALESCE(?, output_tail),
           finished_at = CASE WHEN ? = 1 THEN ? ELSE NULL END,
           locked_at = NULL, locked_by = NULL, heartbeat_at = NULL, cancel_requested_at = NULL,
           updated_at = ?
         WHERE id = ? AND status = 'running' AND (? IS NULL OR locked_by = ?)",
    )
    .bind(f.status)
    .bind(f.run_after)
    .bind(f.error_code)
    .bind(f.error_message)
    .bind(f.output_tail)
    .bind(flag(terminal))
    .bind(f.now)
    .bind(f.now)
    .bind(id)
    .bind(worker)
    .bind(worker);
    updated_one(conn, update).await
}

/// Ends a `queued` job without running it (cancel, or start-time refusal). False when it was
/// no longer queued.
pub async fn finish_queued(
    conn: &mut AnyConnection,
    id: &str,
    status: JobStatus,
    error_code: Option<&str>,
    error_message: Option<&str>,
    now: &str,
) -> Result<bool, StoreError> {
    let update = crate::store::query(
        "UPDATE jobs SET status = ?2, error_code = ?3, error_message = ?4, finished_at = ?5,
           run_after = NULL, updated_at = ?5
         WHERE id = ?1 AND status = 'queued'",
    )
    .bind(id)
    .bind(status)
    .bind(error_code)
    .bind(error_message)
    .bind(now);
    updated_one(conn, update).await
}

/// Marks a cancel request on a running job; false when it is not running.
pub async fn request_cancel(
    conn: &mut AnyConnection,
    id: &str,
    now: &str,
) -> Result<bool, StoreError> {
    let update = crate::store::query(
        "UPDATE jobs SET cancel_requested_at = COALESCE(cancel_requested_at, ?2), updated_at = ?2
         WHERE id = ?1 AND status = 'running'",
    )
    .bind(id)
    .bind(now);
    updated_one(conn, update).await
}

/// Whether a job of `job_type` for `node_id` is queued or running.
pub async fn job_pending_for_node(
    conn: &mut AnyConnection,
    node_id: &str,
    job_type: JobType,
) -> Result<bool, StoreError> {
    node_has_job(conn, node_id, job_type, "status IN ('queued', 'running')").await
}

/// Whether a job of `job_type` for `node_id` ever succeeded.
pub async fn job_succeeded_for_node(
    conn: &mut AnyConnection,
    node_id: &str,
    job_type: JobType,
) -> Result<bool, StoreError> {
    node_has_job(conn, node_id, job_type, "status = 'succeeded'").await
}

async fn node_has_job(
    conn: &mut AnyConnection,
    node_id: &str,
    job_type: JobType,
    status_condition: &'static str,
) -> Result<bool, StoreError> {
    let (n,): (i64,) = crate::store::query_as(&format!(
        "SELECT COUNT(*) FROM jobs WHERE node_id = ? AND job_type = ? AND {status_condition}"
    ))
    .bind(node_id)
    .bind(job_type.as_str())
    .fetch_one(conn)
    .await?;
    Ok(n > 0)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    const T0: &str = "2026-01-01T00:00:00.000000Z";
    const T1: &str = "2026-01-01T00:00:01.000000Z";

    async fn store(dir: &std::path::Path) -> Store {
        let store = Store::open(&dir.join("db.sqlite")).await.unwrap();
        store.migrate().await.unwrap();
        store
    }

    #[test]
    fn the_claim_takes_its_follow_up_set_from_the_registry() {
        for sql in [
            claim_sql(ClaimSql::Sqlite),
            claim_sql(ClaimSql::SqliteBatch),
            claim_sql(ClaimSql::Postgres),
        ] {
            assert!(!sql.contains('{'), "placeholder left in {sql}");
            // Each of the two candidate searches names the set three times.
            let set = "('health_check', 'release_rollback')";
            assert_eq!(sql.matches(set).count(), 6, "{sql}");
        }
    }

    /// The partial index of queued follow-ups and retries (migration 0012) is only used while
    /// its predicate is the claim's own: same follow-up set as the registry, on both backends.
    #[test]
    fn the_priority_index_has_the_claims_predicate() {
        let list = crate::jobs::kinds::follow_up_sql_list();
        let predicate =
            format!("WHERE status = 'queued' AND (attempt_count > 0 OR job_type IN {list})");
        for migration in [
            include_str!("../../migrations/sqlite/0012_queued_priority_index.sql"),
            include_str!("../../migrations/postgres/0012_queued_priority_index.sql"),
        ] {
            assert!(migration.contains(&predicate), "{migration}");
        }
        let held = format!(
            "f.status = 'queued' AND f.site_id = j.site_id\n        AND (f.attempt_count > 0 OR f.job_type IN {list})"
        );
        assert!(claim_sql(ClaimSql::Postgres).contains(&held));
    }

    fn finish(status: JobStatus, run_after: Option<&str>) -> Finish<'_> {
        Finish {
            status,
            run_after,
            error_code: None,
            error_message: None,
            output_tail: None,
            now: T1,
        }
    }

    async fn audit_result(store: &Store) -> String {
        let (r,): (String,) =
            crate::store::query_as("SELECT result FROM audit_logs WHERE id = 'a'")
                .fetch_one(store.pool())
                .await
                .unwrap();
        r
    }

    #[tokio::test]
    async fn a_dropped_queue_transaction_rolls_back_before_the_next_writer() {
        let dir = tempfile::tempdir().unwrap();
        let store = store(dir.path()).await;
        let writer = QueueWriter::default();
        let (mut tx, job) = writer.claim(&store, "w", T0).await.unwrap();
        assert!(job.is_none());
        crate::store::query("CREATE TABLE scratch (x)")
            .execute(&mut *tx)
            .await
            .unwrap();
        drop(tx);
        // Another connection gets the write lock at once (not after the 5 s busy timeout)…
        let tx = tokio::time::timeout(Duration::from_secs(2), store.begin_write())
            .await
            .expect("write lock released")
            .unwrap();
        tx.rollback().await.unwrap();
        // …and nothing of the dropped transaction is left; the writer works on.
        let (n,): (i64,) =
            crate::store::query_as("SELECT COUNT(*) FROM sqlite_master WHERE name = 'scratch'")
                .fetch_one(store.pool())
                .await
                .unwrap();
        assert_eq!(n, 0);
        let (tx, _) = writer.claim(&store, "w", T0).await.unwrap();
        tx.commit().await.unwrap();
    }

    #[tokio::test]
    async fn finish_updates_the_audit_row_only_when_the_job_ends() {
        let dir = tempfile::tempdir().unwrap();
        let store = store(dir.path()).await;
        for sql in [
            "INSERT INTO users (id, email, display_name, role, password_hash, created_at, updated_at)
             VALUES ('u', 'a@example.com', 'A', 'admin', 'x', 't', 't')",
            "INSERT INTO nodes (id, name, hostname, status, created_at, updated_at)
             VALUES ('n', 'n', 'h', 'active', 't', 't')",
            "INSERT INTO jobs (id, job_type, status, node_id, payload_json, created_at, updated_at)
             VALUES ('j', 'backup_create', 'queued', 'n', '{}', 't', 't')",
            "INSERT INTO audit_logs (id, user_id, action, resource_type, resource_id, result, job_id, created_at)
             VALUES ('a', 'u', 'backup_create', 'node', 'n', 'accepted', 'j', 't')",
        ] {
            crate::store::query(sql).execute(store.pool()).await.unwrap();
        }
        let writer = QueueWriter::default();
        let (tx, job) = writer.claim(&store, "w", T0).await.unwrap();
        assert_eq!(job.unwrap().status, JobStatus::Running);
        tx.commit().await.unwrap();

        // Not this worker's run: nothing changes.
        let (tx, done) = writer
            .finish(
                &store,
                "j",
                Some("other"),
                &finish(JobStatus::Failed, None),
                true,
            )
            .await
            .unwrap();
        assert!(!done.job());
        tx.rollback().await.unwrap();

        // A retry leaves the audit row `accepted`.
        let (tx, done) = writer
            .finish(
                &store,
                "j",
                Some("w"),
                &finish(JobStatus::Queued, Some(T0)),
                true,
            )
            .await
            .unwrap();
        assert!(done.job());
        assert_eq!(done.audited, 0);
        tx.commit().await.unwrap();
        assert_eq!(audit_result(&store).await, "accepted");

        // The final end sets its result.
        let (tx, job) = writer.claim(&store, "w", T1).await.unwrap();
        assert_eq!(job.unwrap().attempt_count, 2);
        tx.commit().await.unwrap();
        let (tx, done) = writer
            .finish(
                &store,
                "j",
                Some("w"),
                &finish(JobStatus::Failed, None),
                true,
            )
            .await
            .unwrap();
        assert!(done.job());
        assert_eq!(done.audited, 1);
        tx.commit().await.unwrap();
        assert_eq!(audit_result(&store).await, "failed");
        let (status, finished_at): (String, Option<String>) =
            crate::store::query_as("SELECT status, finished_at FROM jobs WHERE id = 'j'")
                .fetch_one(store.pool())
                .await
                .unwrap();
        assert_eq!(
            (status.as_str(), finished_at.as_deref()),
            ("failed", Some(T1))
        );
    }
}
