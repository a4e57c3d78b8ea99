//! Writing jobs: enqueue, claim, heartbeat, cancel requests, completion, recovery.
//!
//! Functions taking a connection run inside a transaction the job engine owns, so a job's state
//! change and the resource transitions it causes commit together (architecture.md §1.4).

use sqlx::{Sqlite, SqliteConnection, Transaction};

use super::jobs::SELECT_JOB;
use super::{JobRecord, Store, StoreError};
use crate::domain::JobType;

/// A write transaction: `BEGIN IMMEDIATE` (the write lock up front, so two writers never
/// deadlock upgrading a read lock), entered through the process's write gate, so writers of
/// this process queue in order instead of starving on SQLite's busy timeout.
pub struct WriteTx {
    tx: Transaction<'static, Sqlite>,
    _turn: tokio::sync::OwnedMutexGuard<()>,
}

impl WriteTx {
    pub async fn commit(self) -> Result<(), sqlx::Error> {
        self.tx.commit().await
    }

    pub async fn rollback(self) -> Result<(), sqlx::Error> {
        self.tx.rollback().await
    }
}

impl std::ops::Deref for WriteTx {
    type Target = SqliteConnection;
    fn deref(&self) -> &SqliteConnection {
        &self.tx
    }
}

impl std::ops::DerefMut for WriteTx {
    fn deref_mut(&mut self) -> &mut SqliteConnection {
        &mut self.tx
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
    pub status: &'a str,
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
/// `ORDER BY CASE …`.
const CANDIDATE: &str = "(SELECT j.id FROM jobs j
  WHERE j.status = 'queued' AND (j.run_after IS NULL OR j.run_after <= ?1)
    AND j.job_type {kind} ('health_check', 'release_rollback')
    AND NOT EXISTS (SELECT 1 FROM jobs r WHERE r.status = 'running' AND r.node_id = j.node_id)
    AND (j.site_id IS NULL OR NOT EXISTS
          (SELECT 1 FROM jobs r WHERE r.status = 'running' AND r.site_id = j.site_id))
    AND (j.attempt_count > 0 OR j.job_type IN ('health_check', 'release_rollback')
      OR j.site_id IS NULL
      OR NOT EXISTS (SELECT 1 FROM jobs f WHERE f.status = 'queued' AND f.site_id = j.site_id
        AND (f.attempt_count > 0 OR f.job_type IN ('health_check', 'release_rollback'))))
  ORDER BY {order}
  LIMIT 1)";

fn claim_sql() -> &'static str {
    static SQL: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    SQL.get_or_init(|| {
        let follow_ups = CANDIDATE.replace("{kind}", "IN").replace(
            "{order}",
            "COALESCE(j.run_after, j.created_at) || '', j.created_at",
        );
        let others = CANDIDATE.replace("{kind}", "NOT IN").replace(
            "{order}",
            "j.status, COALESCE(j.run_after, j.created_at), j.created_at",
        );
        format!(
            "UPDATE jobs SET status = 'running', locked_at = ?1, locked_by = ?2, started_at = ?1,
               heartbeat_at = ?1, attempt_count = attempt_count + 1, updated_at = ?1
             WHERE id = COALESCE({follow_ups}, {others})
             RETURNING *, NULL AS site_name, NULL AS environment_name, NULL AS node_name"
        )
    })
}

impl Store {
    /// Opens a write transaction.
    pub async fn begin_write(&self) -> Result<WriteTx, StoreError> {
        let turn = self.write_gate.clone().lock_owned().await;
        let tx = self.writer.begin_with("BEGIN IMMEDIATE").await?;
        Ok(WriteTx { tx, _turn: turn })
    }

    /// Refreshes the lease of a job this worker runs; false when it is no longer ours.
    pub async fn heartbeat(&self, id: &str, worker: &str, now: &str) -> Result<bool, StoreError> {
        let r = sqlx::query(
            "UPDATE jobs SET heartbeat_at = ? WHERE id = ? AND status = 'running' AND locked_by = ?",
        )
        .bind(now)
        .bind(id)
        .bind(worker)
        .execute(&self.pool)
        .await?;
        Ok(r.rows_affected() == 1)
    }

    /// `cancel_requested_at` of a running job, if a cancel is pending.
    pub async fn cancel_requested(&self, id: &str) -> Result<bool, StoreError> {
        let row: Option<(Option<String>,)> = sqlx::query_as(
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
        Ok(sqlx::query_as(
            "SELECT id, COALESCE(locked_by, '') FROM jobs
             WHERE status = 'running' AND (heartbeat_at IS NULL OR heartbeat_at < ?)",
        )
        .bind(stale_before)
        .fetch_all(&self.pool)
        .await?)
    }

    /// Jobs in `queued` whose `run_after` is due, for the wake-up decision of idle workers.
    pub async fn count_claimable_soon(&self, now: &str) -> Result<i64, StoreError> {
        let (n,): (i64,) = sqlx::query_as(
            "SELECT COUNT(*) FROM jobs WHERE status = 'queued' AND (run_after IS NULL OR run_after <= ?)",
        )
        .bind(now)
        .fetch_one(&self.pool)
        .await?;
        Ok(n)
    }
}

pub async fn insert_job(
    conn: &mut SqliteConnection,
    job: &NewJob,
    now: &str,
) -> Result<(), StoreError> {
    sqlx::query(
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
    conn: &mut SqliteConnection,
    worker: &str,
    now: &str,
) -> Result<Option<JobRecord>, StoreError> {
    Ok(sqlx::query_as(claim_sql())
        .bind(now)
        .bind(worker)
        .fetch_optional(conn)
        .await?)
}

pub async fn fetch_job(
    conn: &mut SqliteConnection,
    id: &str,
) -> Result<Option<JobRecord>, StoreError> {
    Ok(sqlx::query_as(&format!("{SELECT_JOB} WHERE j.id = ?"))
        .bind(id)
        .fetch_optional(conn)
        .await?)
}

pub async fn set_payload(
    conn: &mut SqliteConnection,
    id: &str,
    payload_json: &str,
) -> Result<(), StoreError> {
    sqlx::query("UPDATE jobs SET payload_json = ? WHERE id = ?")
        .bind(payload_json)
        .bind(id)
        .execute(conn)
        .await?;
    Ok(())
}

/// Ends a run of a `running` job (held by `worker` when given). Retries clear the lock fields;
/// every end clears `cancel_requested_at`. False when the job was not in that state.
pub async fn finish_running(
    conn: &mut SqliteConnection,
    id: &str,
    worker: Option<&str>,
    f: &Finish<'_>,
) -> Result<bool, StoreError> {
    let terminal = f.status != "queued";
    let r = sqlx::query(
        "UPDATE jobs SET status = ?, run_after = ?, error_code = COALESCE(?, error_code),
           error_message = COALESCE(?, error_message),
           output_tail = COALESCE(?, output_tail),
           finished_at = CASE WHEN ? THEN ? ELSE NULL END,
           locked_at = NULL, locked_by = NULL, heartbeat_at = NULL, cancel_requested_at = NULL,
           updated_at = ?
         WHERE id = ? AND status = 'running' AND (? IS NULL OR locked_by = ?)",
    )
    .bind(f.status)
    .bind(f.run_after)
    .bind(f.error_code)
    .bind(f.error_message)
    .bind(f.output_tail)
    .bind(terminal)
    .bind(f.now)
    .bind(f.now)
    .bind(id)
    .bind(worker)
    .bind(worker)
    .execute(conn)
    .await?;
    Ok(r.rows_affected() == 1)
}

/// Ends a `queued` job without running it (cancel, or start-time refusal). False when it was
/// no longer queued.
pub async fn finish_queued(
    conn: &mut SqliteConnection,
    id: &str,
    status: &str,
    error_code: Option<&str>,
    error_message: Option<&str>,
    now: &str,
) -> Result<bool, StoreError> {
    let r = sqlx::query(
        "UPDATE jobs SET status = ?, error_code = ?, error_message = ?, finished_at = ?,
           run_after = NULL, updated_at = ?
         WHERE id = ? AND status = 'queued'",
    )
    .bind(status)
    .bind(error_code)
    .bind(error_message)
    .bind(now)
    .bind(now)
    .bind(id)
    .execute(conn)
    .await?;
    Ok(r.rows_affected() == 1)
}

/// Marks a cancel request on a running job; false when it is not running.
pub async fn request_cancel(
    conn: &mut SqliteConnection,
    id: &str,
    now: &str,
) -> Result<bool, StoreError> {
    let r = sqlx::query(
        "UPDATE jobs SET cancel_requested_at = COALESCE(cancel_requested_at, ?), updated_at = ?
         WHERE id = ? AND status = 'running'",
    )
    .bind(now)
    .bind(now)
    .bind(id)
    .execute(conn)
    .await?;
    Ok(r.rows_affected() == 1)
}

/// Whether a job of `job_type` for `node_id` is queued or running.
pub async fn job_pending_for_node(
    conn: &mut SqliteConnection,
    node_id: &str,
    job_type: JobType,
) -> Result<bool, StoreError> {
    node_has_job(conn, node_id, job_type, "status IN ('queued', 'running')").await
}

/// Whether a job of `job_type` for `node_id` ever succeeded.
pub async fn job_succeeded_for_node(
    conn: &mut SqliteConnection,
    node_id: &str,
    job_type: JobType,
) -> Result<bool, StoreError> {
    node_has_job(conn, node_id, job_type, "status = 'succeeded'").await
}

async fn node_has_job(
    conn: &mut SqliteConnection,
    node_id: &str,
    job_type: JobType,
    status_condition: &'static str,
) -> Result<bool, StoreError> {
    let (n,): (i64,) = sqlx::query_as(&format!(
        "SELECT COUNT(*) FROM jobs WHERE node_id = ? AND job_type = ? AND {status_condition}"
    ))
    .bind(node_id)
    .bind(job_type.as_str())
    .fetch_one(conn)
    .await?;
    Ok(n > 0)
}
