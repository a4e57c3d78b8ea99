//! The queue's state machine (jobs.md §2–8): claim with start-time validation, execution with
//! heartbeat, cancel watch and timeout, completion with retries, cancellation, recovery.
//!
//! Every state change of a job is one write transaction together with the resource transitions
//! it causes and the audit row's result; the live feed is woken after each commit.

use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;
use time::OffsetDateTime;
use tokio::sync::{watch, Notify};
use uuid::Uuid;

use super::errors::JobErrorCode;
use super::kinds;
use super::output::OutputSink;
use super::runner::{RunContext, RunOutcome, Runner, StopReason};
use crate::clock::{format_ts, SharedClock};
use crate::domain::JobStatus;
use crate::events::Events;
use crate::secrets::Secrets;
use crate::store::audit::{finish_audit_for_job, insert_audit, NewAudit};
use crate::store::queue::{
    fetch_job, finish_queued, finish_running, request_cancel, Finish, NewJob, QueueWriter,
};
use crate::store::{JobRecord, Store, StoreError};

/// How often a running job's lease is refreshed.
pub const HEARTBEAT_EVERY: Duration = Duration::from_secs(15);
/// A running job whose heartbeat is older than this has lost its worker.
pub const LEASE: time::Duration = time::Duration::seconds(60);
/// How long `cancel` waits for a running job to stop.
pub const CANCEL_WAIT: Duration = Duration::from_secs(15);
/// Extra time a runner gets after the timeout before the engine gives up on it.
const TIMEOUT_GRACE: Duration = Duration::from_secs(15);
/// Bytes of output used as `error_message` when a run reported no message of its own.
pub const ERROR_OUTPUT_BYTES: usize = 10 * 1024;

/// Backoff after the n-th failed attempt: 1, 5, then 15 minutes.
pub fn backoff(failed_attempts: i64) -> time::Duration {
    match failed_attempts {
        i64::MIN..=1 => time::Duration::minutes(1),
        2 => time::Duration::minutes(5),
        _ => time::Duration::minutes(15),
    }
}

/// The job engine; cheap to clone.
#[derive(Clone)]
pub struct Engine {
    inner: Arc<Inner>,
}

struct Inner {
    store: Store,
    clock: SharedClock,
    events: Events,
    runner: Arc<dyn Runner>,
    /// Where the secrets a kind names in [`kinds::JobKind::secrets_to_forget`] are deleted.
    secrets: Secrets,
    log_dir: std::path::PathBuf,
    job_timeout: Duration,
    wake: Notify,
    /// Claims of this process take turns: SQLite serializes writers anyway, and waiting here is
    /// cheaper and fairer than spinning on its busy timeout.
    claim_lock: tokio::sync::Mutex<()>,
    /// The write connection of claims and completions (fewer hand-offs per transaction).
    writer: QueueWriter,
    /// Jobs this process is running now ([`Engine::execute`]): never declared lost by this
    /// process's own recovery, whatever their heartbeat says.
    running_here: std::sync::Mutex<std::collections::HashSet<String>>,
}

/// Marks a job as running in this process while it lives.
struct RunningHere<'a> {
    set: &'a std::sync::Mutex<std::collections::HashSet<String>>,
    id: String,
}

impl<'a> RunningHere<'a> {
    fn enter(set: &'a std::sync::Mutex<std::collections::HashSet<String>>, id: &str) -> Self {
        set.lock().expect("running set").insert(id.to_string());
        Self {
            set,
            id: id.to_string(),
        }
    }
}

impl Drop for RunningHere<'_> {
    fn drop(&mut self) {
        self.set.lock().expect("running set").remove(&self.id);
    }
}

/// Result of a cancel request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CancelOutcome {
    /// The job's status after the request (`cancelled`, or `running` while still stopping).
    Status(JobStatus),
    NotFound,
    /// The job is already finished (`succeeded`, `failed` or `cancelled`).
    NotCancellable(JobStatus),
}

/// How a claimed run ended, as the engine records it.
#[derive(Debug)]
enum Ending {
    Succeeded(Value),
    Failed(JobErrorCode, String),
    Cancelled,
    /// The lease was lost: someone else owns the job now; record nothing.
    Abandoned,
}

impl Engine {
    pub fn new(
        store: Store,
        clock: SharedClock,
        events: Events,
        runner: Arc<dyn Runner>,
        secrets: Secrets,
        log_dir: std::path::PathBuf,
        job_timeout: Duration,
    ) -> Engine {
        Engine {
            inner: Arc::new(Inner {
                store,
                clock,
                events,
                runner,
                secrets,
                log_dir,
                job_timeout,
                wake: Notify::new(),
                claim_lock: tokio::sync::Mutex::new(()),
                writer: QueueWriter::default(),
                running_here: Default::default(),
            }),
        }
    }

    pub fn store(&self) -> &Store {
        &self.inner.store
    }

    /// Deletes the secrets that lived only as long as `job`, which just reached a terminal
    /// state (committed). A failure is logged, not fatal: the job's outcome stands.
    fn forget_secrets(&self, job: &JobRecord) {
        for key in kinds::of(job).secrets_to_forget(job) {
            match self.inner.secrets.delete(&key) {
                Ok(()) => tracing::info!(id = %job.id, key = %key, "job secret deleted"),
                Err(e) => {
                    tracing::error!(id = %job.id, key = %key, error = %e, "deleting a job secret failed")
                }
            }
        }
    }

    fn now(&self) -> OffsetDateTime {
        self.inner.clock.now()
    }

    /// The notifier idle workers wait on.
    pub fn wake_handle(&self) -> &Notify {
        &self.inner.wake
    }

    /// Called after a transaction that enqueued jobs committed: wakes idle workers and the
    /// live feed.
    pub fn enqueued(&self) {
        self.inner.wake.notify_waiters();
        self.inner.events.jobs_changed();
    }

    /// Inserts a job inside the caller's transaction (with the rows it creates and its audit
    /// row). Call [`Engine::enqueued`] after the commit.
    pub async fn enqueue(
        conn: &mut sqlx::AnyConnection,
        job: &NewJob,
        now: &str,
    ) -> Result<(), StoreError> {
        crate::store::queue::insert_job(conn, job, now).await?;
        tracing::info!(
            id = %job.id,
            r#type = job.job_type.as_str(),
            site = job.site_id.as_deref().unwrap_or("-"),
            env = job.environment_id.as_deref().unwrap_or("-"),
            node = %job.node_id,
            "job enqueued"
        );
        Ok(())
    }

    /// Claims the next runnable job for `worker`, refusing (and skipping past) jobs whose
    /// start-time validation fails.
    pub async fn claim(&self, worker: &str) -> Result<Option<JobRecord>, StoreError> {
        let _turn = self.inner.claim_lock.lock().await;
        loop {
            let now = format_ts(self.now());
            let (mut tx, job) = self
                .inner
                .writer
                .claim(&self.inner.store, worker, &now)
                .await?;
            let Some(mut job) = job else {
                tx.commit().await?;
                return Ok(None);
            };
            match kinds::of(&job).validate_start(&mut tx, &job).await? {
                Ok(()) => {
                    kinds::of(&job).on_start(&mut tx, &mut job, &now).await?;
                    tx.commit().await?;
                    tracing::info!(
                        id = %job.id, r#type = %job.job_type, worker,
                        attempt = format!("{}/{}", job.attempt_count, job.max_attempts),
                        "job claimed"
                    );
                    self.inner.events.jobs_changed();
                    return Ok(Some(job));
                }
                Err(reason) => {
                    let code = JobErrorCode::PreconditionFailed;
                    finish_running(
                        &mut tx,
                        &job.id,
                        Some(worker),
                        &Finish {
                            status: JobStatus::Failed,
                            run_after: None,
                            error_code: Some(code.as_str()),
                            error_message: Some(&reason),
                            output_tail: None,
                            now: &now,
                        },
                    )
                    .await?;
                    kinds::of(&job)
                        .on_final_failure(&mut tx, &job, code, false, &now)
                        .await?;
                    finish_audit_for_job(&mut tx, &job.id, "failed").await?;
                    tx.commit().await?;
                    self.forget_secrets(&job);
                    tracing::warn!(id = %job.id, code = code.as_str(), reason = %reason, "job refused at start");
                    self.inner.events.jobs_changed();
                }
            }
        }
    }

    /// Runs a claimed job to its end and records the outcome.
    pub async fn execute(&self, job: JobRecord, worker: &str) -> Result<(), StoreError> {
        let _running = RunningHere::enter(&self.inner.running_here, &job.id);
        let output = OutputSink::open(&self.inner.log_dir, &job.id, self.inner.events.clone());
        let (stop_tx, stop_rx) = watch::channel(None);
        let ctx = RunContext {
            stop: stop_rx,
            output: output.clone(),
        };
        let started = tokio::time::Instant::now();
        let mut run = self.inner.runner.run(&job, ctx);
        // The first look is a second in: a job cannot have been cancelled before it started.
        let mut ticker = tokio::time::interval_at(
            tokio::time::Instant::now() + Duration::from_secs(1),
            Duration::from_secs(1),
        );
        let mut last_heartbeat = tokio::time::Instant::now();
        let mut give_up_at: Option<tokio::time::Instant> = None;
        let outcome = loop {
            tokio::select! {
                outcome = &mut run => break outcome,
                _ = ticker.tick() => {
                    let stopping = stop_tx.borrow().is_some();
                    if !stopping && started.elapsed() >= self.inner.job_timeout {
                        tracing::warn!(id = %job.id, "job timeout reached; stopping the run");
                        let _ = stop_tx.send(Some(StopReason::Timeout));
                        give_up_at = Some(tokio::time::Instant::now() + TIMEOUT_GRACE);
                    } else if !stopping && self.inner.store.cancel_requested(&job.id).await? {
                        tracing::info!(id = %job.id, "cancel requested; stopping the run");
                        let _ = stop_tx.send(Some(StopReason::Cancel));
                    }
                    if last_heartbeat.elapsed() >= HEARTBEAT_EVERY {
                        last_heartbeat = tokio::time::Instant::now();
                        let now = format_ts(self.now());
                        if !self.inner.store.heartbeat(&job.id, worker, &now).await? && !stopping {
                            tracing::warn!(id = %job.id, worker, "lease lost; stopping the run");
                            let _ = stop_tx.send(Some(StopReason::LeaseLost));
                        }
                    }
                    if give_up_at.is_some_and(|t| tokio::time::Instant::now() >= t) {
                        break RunOutcome::Failed {
                            code: JobErrorCode::JobTimeout,
                            message: "the job did not finish within its timeout".into(),
                            result: None,
                        };
                    }
                }
            }
        };
        drop(run);
        let stop = *stop_tx.borrow();
        let mut partial = None;
        let ending = match (outcome, stop) {
            (RunOutcome::Succeeded { result }, _) => {
                match kinds::of(&job).check_result(&job, &result) {
                    Ok(()) => Ending::Succeeded(result),
                    Err(reason) => {
                        tracing::error!(id = %job.id, %reason, "the run reported success with a result it must not have; the job fails");
                        partial = Some(result);
                        Ending::Failed(
                            JobErrorCode::AnsibleUnexpectedError,
                            format!("the playbook reported success, but {reason}"),
                        )
                    }
                }
            }
            (_, Some(StopReason::LeaseLost)) => Ending::Abandoned,
            (RunOutcome::Stopped, Some(StopReason::Cancel)) => Ending::Cancelled,
            (RunOutcome::Stopped, _) => Ending::Failed(
                JobErrorCode::JobTimeout,
                "the job did not finish within its timeout".into(),
            ),
            (
                RunOutcome::Failed {
                    code,
                    message,
                    result,
                },
                _,
            ) => {
                partial = result;
                let message = if message.trim().is_empty() {
                    output.tail_bytes(ERROR_OUTPUT_BYTES)
                } else {
                    message
                };
                Ending::Failed(code, message)
            }
        };
        tracing::debug!(id = %job.id, duration_ms = started.elapsed().as_millis() as u64, "run ended");
        self.complete(&job, Some(worker), ending, Some(output.tail()), partial)
            .await
    }

    /// Records the end of a run in one transaction (`partial`: what a failed run reported,
    /// handed to the kind before its failure transitions).
    async fn complete(
        &self,
        job: &JobRecord,
        worker: Option<&str>,
        ending: Ending,
        output_tail: Option<String>,
        partial: Option<Value>,
    ) -> Result<(), StoreError> {
        let now_t = self.now();
        let now = format_ts(now_t);
        let tail = output_tail.as_deref();
        let (status, code, message, run_after) = match &ending {
            Ending::Abandoned => {
                tracing::warn!(id = %job.id, "run abandoned after losing its lease; nothing recorded");
                return Ok(());
            }
            Ending::Succeeded(_) => (JobStatus::Succeeded, None, None, None),
            Ending::Cancelled => (JobStatus::Cancelled, None, None, None),
            Ending::Failed(code, message) => {
                if code.retryable() && job.attempt_count < job.max_attempts {
                    let at = format_ts(now_t + backoff(job.attempt_count));
                    (
                        JobStatus::Queued,
                        Some(*code),
                        Some(message.as_str()),
                        Some(at),
                    )
                } else {
                    (JobStatus::Failed, Some(*code), Some(message.as_str()), None)
                }
            }
        };
        // The job row and its audit rows (api.md §6) in the transaction's first hand-off; a
        // pending cancel request turns anything but success into `cancelled`.
        let (mut tx, finished) = self
            .inner
            .writer
            .finish(
                &self.inner.store,
                &job.id,
                worker,
                &Finish {
                    status,
                    run_after: run_after.as_deref(),
                    error_code: code.map(|c| c.as_str()),
                    error_message: message,
                    output_tail: tail,
                    now: &now,
                },
                !kinds::of(job).health_gated(job),
            )
            .await?;
        let Some(actual) = finished.status else {
            tx.rollback().await?;
            tracing::warn!(id = %job.id, "job was no longer running under this worker; outcome dropped");
            return Ok(());
        };
        let cancel_won = actual == JobStatus::Cancelled && !matches!(ending, Ending::Cancelled);
        if let (Some(result), Ending::Failed(..)) = (&partial, &ending) {
            kinds::of(job)
                .on_partial_result(&mut tx, job, result, &now)
                .await?;
        }
        match (&ending, actual) {
            (_, JobStatus::Cancelled) => kinds::of(job).on_cancel(&mut tx, job, true, &now).await?,
            (Ending::Succeeded(result), _) => {
                kinds::of(job)
                    .on_success(&mut tx, job, result, &now)
                    .await?
            }
            (Ending::Failed(code, _), JobStatus::Failed) => {
                kinds::of(job)
                    .on_final_failure(&mut tx, job, *code, true, &now)
                    .await?
            }
            (Ending::Failed(code, _), JobStatus::Queued) => {
                kinds::on_retry(&mut tx, job, *code).await?
            }
            // The row ends as asked or `cancelled` (above): a failure never ends `succeeded`
            // or `running`, and Abandoned returned before writing anything.
            (Ending::Failed(..), JobStatus::Succeeded | JobStatus::Running)
            | (Ending::Cancelled, _)
            | (Ending::Abandoned, _) => {
                tracing::error!(id = %job.id, status = %actual, "run ended in a status it did not ask for");
            }
        }
        let reached = match (&ending, actual) {
            (Ending::Succeeded(_), JobStatus::Succeeded) => true,
            (Ending::Failed(code, _), JobStatus::Failed | JobStatus::Queued) => {
                kinds::reached_node(*code)
            }
            (Ending::Succeeded(_), _)
            | (Ending::Failed(..), _)
            | (Ending::Cancelled, _)
            | (Ending::Abandoned, _) => false,
        };
        if reached {
            crate::store::nodes::touch_last_seen(&mut tx, &job.node_id, &now).await?;
        }
        tx.commit().await?;
        if actual != JobStatus::Queued {
            self.forget_secrets(job);
        }
        if cancel_won {
            tracing::info!(id = %job.id, "a cancel was requested: the run ends cancelled, not {status}");
        }
        match actual {
            JobStatus::Queued => tracing::warn!(
                id = %job.id, code = code.map(|c| c.as_str()).unwrap_or(""),
                run_after = run_after.as_deref().unwrap_or(""),
                attempt = format!("{}/{}", job.attempt_count, job.max_attempts),
                "job requeued"
            ),
            JobStatus::Failed => {
                tracing::warn!(id = %job.id, code = code.map(|c| c.as_str()).unwrap_or(""), "job failed")
            }
            JobStatus::Running | JobStatus::Succeeded | JobStatus::Cancelled => {
                tracing::info!(id = %job.id, status = %actual, "job finished")
            }
        }
        tracing::info!(id = %job.id, "lock released");
        if finished.audited > 0 {
            tracing::info!(job = %job.id, result = %actual, "audit updated");
        }
        self.inner.events.jobs_changed();
        // A site and a node lock were released: that unblocks at most one job, so one idle
        // worker is enough (the finishing worker itself also looks again).
        self.inner.wake.notify_one();
        Ok(())
    }

    /// Handles running jobs whose worker stopped heartbeating: a retryable `WORKER_LOST`, or
    /// `cancelled` (with its transitions) when a cancel was requested meanwhile. Jobs running
    /// in this process are never taken for lost (their heartbeat may lag a clock jump).
    pub async fn recover_stale(&self) -> Result<usize, StoreError> {
        let stale_before = format_ts(self.now() - LEASE);
        let mut stale = self.inner.store.stale_running_jobs(&stale_before).await?;
        // A job this process runs is alive, whatever its heartbeat says: the clock may have
        // jumped past it (an NTP step; a test clock moved ahead) before its next heartbeat.
        stale.retain(|(id, _)| {
            let here = self
                .inner
                .running_here
                .lock()
                .expect("running set")
                .contains(id);
            if here {
                tracing::info!(id = %id, "heartbeat behind the clock, but the job runs in this process; not lost");
            }
            !here
        });
        for (id, worker) in &stale {
            let Some(job) = self.inner.store.get_job(id).await? else {
                continue;
            };
            tracing::warn!(id = %id, worker = %worker, "worker lost; recovering job");
            let message = format!("the worker {worker} stopped reporting while running the job");
            self.complete(
                &job,
                None,
                Ending::Failed(JobErrorCode::WorkerLost, message),
                None,
                None,
            )
            .await?;
        }
        Ok(stale.len())
    }

    /// Cancels a job for `user_id` (jobs.md §8), auditing the request.
    pub async fn cancel(&self, id: &str, user_id: &str) -> Result<CancelOutcome, StoreError> {
        let now = format_ts(self.now());
        let mut tx = self.inner.store.begin_write().await?;
        let Some(job) = fetch_job(&mut tx, id).await? else {
            tx.rollback().await?;
            return Ok(CancelOutcome::NotFound);
        };
        let audit_id = Uuid::new_v4().to_string();
        let audit = |result: &'static str| NewAudit {
            id: &audit_id,
            user_id,
            action: "job_cancel",
            resource_type: "job",
            resource_id: id,
            result,
            job_id: Some(id),
        };
        match job.status {
            JobStatus::Queued => {
                finish_queued(&mut tx, id, JobStatus::Cancelled, None, None, &now).await?;
                kinds::of(&job)
                    .on_cancel(&mut tx, &job, false, &now)
                    .await?;
                finish_audit_for_job(&mut tx, id, "cancelled").await?;
                insert_audit(&mut tx, &audit("succeeded"), &now).await?;
                tx.commit().await?;
                self.forget_secrets(&job);
                tracing::info!(id, "job cancelled while queued");
                self.inner.events.jobs_changed();
                Ok(CancelOutcome::Status(JobStatus::Cancelled))
            }
            JobStatus::Running => {
                request_cancel(&mut tx, id, &now).await?;
                insert_audit(&mut tx, &audit("succeeded"), &now).await?;
                tx.commit().await?;
                tracing::info!(id, "cancel of running job requested");
                self.inner.events.jobs_changed();
                let deadline = tokio::time::Instant::now() + CANCEL_WAIT;
                loop {
                    let Some(job) = self.inner.store.get_job(id).await? else {
                        return Ok(CancelOutcome::NotFound);
                    };
                    if job.status != JobStatus::Running || tokio::time::Instant::now() >= deadline {
                        return Ok(CancelOutcome::Status(job.status));
                    }
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
            }
            other @ (JobStatus::Succeeded | JobStatus::Failed | JobStatus::Cancelled) => {
                insert_audit(&mut tx, &audit("rejected"), &now).await?;
                tx.commit().await?;
                tracing::info!(id, status = %other, "cancel refused: job already finished");
                Ok(CancelOutcome::NotCancellable(other))
            }
        }
    }

    /// Claims and runs jobs until none is claimable (for tests and the worker loop).
    pub async fn run_until_idle(&self, worker: &str) -> Result<usize, StoreError> {
        let mut n = 0;
        while let Some(job) = self.claim(worker).await? {
            self.execute(job, worker).await?;
            n += 1;
        }
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_is_1_5_15_minutes() {
        assert_eq!(backoff(1), time::Duration::minutes(1));
        assert_eq!(backoff(2), time::Duration::minutes(5));
        assert_eq!(backoff(3), time::Duration::minutes(15));
        assert_eq!(backoff(9), time::Duration::minutes(15));
    }
}
