//! `release_rollback`: an environment back on an earlier release (jobs.md §11,
//! backups-restore-promotion.md §6) — the follow-up of a failed health gate, or a manual
//! rollback to a kept healthy release — by `pressluft node release-rollback` through
//! `release-rollback.yml`: `current` switched back, the database (and uploads) restored from
//! the pre-operation backup when the payload names one, reload and purge.
//!
//! Two roles ([`super::gate`]):
//! - the follow-up of a failed `health_check` (`parent_job_id` set): never refused at start;
//!   success makes the target current again, notes "rolled back: <reason>" on the failed
//!   release, returns environment and site to `active` and ends the ORIGINAL gated job's audit
//!   `failed`; a final failure or a cancel leaves both `failed` (and that audit `failed`).
//! - a manual rollback (no parent, enqueued by [`crate::deploys::Deploys::rollback`] with its
//!   own audit row): validated and made `deploying` like a gated job, and itself gated: success
//!   makes the target current and enqueues a `health_check` whose rollback target is the
//!   release current before (no backup); its audit is finished by that gate.
//!
//! Submodules: [`vars`] (what the playbook and the node helper get).

mod vars;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use sqlx::AnyConnection;

use super::errors::JobErrorCode;
use super::gate;
use super::health_check::HealthCheckPayload;
use super::kinds::JobKind;
use super::lifecycle::Unsuccessful;
use super::payload::{self, Attempts};
use crate::domain::{JobType, SiteStatus};
use crate::store::queue::fetch_job;
use crate::store::releases::{append_release_note, fetch_release, set_current_release};
use crate::store::{JobRecord, StoreError};
use vars::extra_vars;

/// The `release_rollback` job type (a follow-up: claimed first, holding its site).
pub struct ReleaseRollback;

impl JobKind for ReleaseRollback {
    fn playbook(&self) -> &'static str {
        "release-rollback.yml"
    }

    fn follow_up(&self) -> bool {
        true
    }

    /// A manual rollback is gated; the follow-up of a failed gate is not.
    fn health_gated(&self, job: &JobRecord) -> bool {
        is_manual(job)
    }

    super::kinds::job_hooks!(
        validate_start,
        on_start,
        on_success,
        on_final_failure,
        on_cancel,
        extra_vars
    );
}

/// A manual rollback has no parent; a follow-up's parent is the failed `health_check`.
fn is_manual(job: &JobRecord) -> bool {
    job.parent_job_id.is_none()
}

/// The gated job whose gate failed (the follow-up's parent's `gated_job_id`).
async fn gated_job_id(
    conn: &mut AnyConnection,
    job: &JobRecord,
) -> Result<Option<String>, StoreError> {
    let Some(parent) = &job.parent_job_id else {
        return Ok(None);
    };
    Ok(fetch_job(conn, parent)
        .await?
        .map(|h| payload::read::<HealthCheckPayload>(&h).gated_job_id))
}

async fn validate_start(
    conn: &mut AnyConnection,
    job: &JobRecord,
) -> Result<Result<(), String>, StoreError> {
    if !is_manual(job) {
        return Ok(Ok(())); // follow-ups are exempt (jobs.md §3)
    }
    if let Err(reason) = gate::validate_start(conn, job).await? {
        return Ok(Err(reason));
    }
    let p = payload::read::<ReleaseRollbackPayload>(job);
    match fetch_release(conn, &p.target_release_id).await? {
        Some(r) if job.environment_id.as_deref() == Some(r.environment_id.as_str()) => Ok(Ok(())),
        _ => Ok(Err(format!(
            "release {} is not a release of this environment",
            p.target_release_id
        ))),
    }
}

async fn on_start(
    conn: &mut AnyConnection,
    job: &mut JobRecord,
    now: &str,
) -> Result<(), StoreError> {
    // A follow-up finds both `deploying` from the gated job.
    if is_manual(job) {
        gate::enter(conn, job, now).await?;
    }
    Ok(())
}

async fn on_success(
    conn: &mut AnyConnection,
    job: &JobRecord,
    _result: &Value,
    now: &str,
) -> Result<(), StoreError> {
    let p = payload::read::<ReleaseRollbackPayload>(job);
    let env_id = job.environment_id.clone().unwrap_or_default();
    set_current_release(conn, &env_id, &p.target_release_id, now).await?;
    if !p.failed_release_id.is_empty() {
        let note = format!("rolled back: {}", p.reason);
        append_release_note(conn, &p.failed_release_id, &note, now).await?;
    }
    if is_manual(job) {
        let gate = HealthCheckPayload {
            release_id: p.target_release_id.clone(),
            gated_job_id: job.id.clone(),
            rollback_target_release_id: p.failed_release_id.clone(),
            ..Default::default()
        };
        return gate::enqueue_follow_up(conn, job, JobType::HealthCheck, &gate, now)
            .await
            .map(drop);
    }
    gate::both_to(conn, job, SiteStatus::Active, now).await?;
    if let Some(gated) = gated_job_id(conn, job).await? {
        gate::finish_gated_audit(conn, &gated, "failed").await?;
    }
    tracing::info!(id = %job.id, environment = %env_id, release = %p.target_release_id, "rolled back");
    Ok(())
}

async fn unsuccessful(
    conn: &mut AnyConnection,
    job: &JobRecord,
    ending: Unsuccessful,
    now: &str,
) -> Result<(), StoreError> {
    if is_manual(job) {
        return gate::release_busy(conn, job, ending, now).await;
    }
    // The failed release may still be live: nothing is known to work.
    gate::both_to(conn, job, SiteStatus::Failed, now).await?;
    if let Some(gated) = gated_job_id(conn, job).await? {
        gate::finish_gated_audit(conn, &gated, "failed").await?;
    }
    Ok(())
}

async fn on_final_failure(
    conn: &mut AnyConnection,
    job: &JobRecord,
    code: JobErrorCode,
    started: bool,
    now: &str,
) -> Result<(), StoreError> {
    unsuccessful(conn, job, Unsuccessful::Failed { code, started }, now).await
}

async fn on_cancel(
    conn: &mut AnyConnection,
    job: &JobRecord,
    was_running: bool,
    now: &str,
) -> Result<(), StoreError> {
    unsuccessful(conn, job, Unsuccessful::Cancelled { was_running }, now).await
}

/// The payload of `release_rollback` (jobs.md §11).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ReleaseRollbackPayload {
    /// The release rolled back from (current when the rollback was decided).
    pub failed_release_id: String,
    /// The release made current again.
    pub target_release_id: String,
    /// The pre-operation backup the database (and uploads) come back from, if any.
    pub restore_backup_id: Option<String>,
    pub restore_uploads: bool,
    /// Tables (without prefix) not restored (promotion only).
    pub restore_skip_tables: Vec<String>,
    /// Why: the failing checks, or who asked for a manual rollback.
    pub reason: String,
    #[serde(flatten)]
    pub attempts: Attempts,
}
