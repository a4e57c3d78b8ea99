//! `env_restore`: a completed backup of the site restored into one of its environments
//! (jobs.md §11, backups-restore-promotion.md §2), by `pressluft node env-restore` through
//! `env-restore.yml`, then health-gated.
//!
//! Any completed backup of the same site may be restored into any of its environments (a
//! production backup into staging: the node rewrites the URLs); the API checks that, and the
//! job checks it again at its start. Gated like `site_import` ([`super::gate`]) with its
//! pre-restore backup row (`payload.pre_backup_id`, inserted `pending` with the job by
//! [`crate::deploys::Deploys::restore`]); site and environment are `restoring` while it runs
//! (state-machines.md). The node verifies the backup before anything, the pre-restore backup
//! included: a `BACKUP_CHECKSUM_MISMATCH` (or `PRECONDITION_FAILED`) returns both to `active`
//! and fails the pre-restore backup row. The success records the release (`upload` /
//! `backup:<backup_id>`, data-model.md) and enqueues the `health_check`, whose rollback restores
//! the previous release, the database and the uploads from the pre-restore backup (and with the
//! database its table prefix).
//!
//! Submodules: [`vars`] (what the playbook and the node helper get).

mod vars;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use sqlx::SqliteConnection;

use super::backup_create::{
    complete_backup_from, fail_backup, start_backup, RESULT_WITHOUT_CHECKSUM,
};
use super::errors::JobErrorCode;
use super::gate;
use super::kinds::JobKind;
use super::lifecycle::{
    environment_to, fix_release_name, node_must_be_active, release_busy_environment,
    release_busy_site, site_and_environment, site_to, Unsuccessful,
};
use super::payload::{self, Attempts, Release};
use crate::domain::{BackupStatus, SiteStatus};
use crate::store::backups::fetch_backup;
use crate::store::{JobRecord, StoreError};
use vars::extra_vars;

/// The status of the site and the environment while a restore or its gate runs.
pub const BUSY: SiteStatus = SiteStatus::Restoring;

/// The `env_restore` job type (health-gated).
pub struct EnvRestore;

impl JobKind for EnvRestore {
    fn playbook(&self) -> &'static str {
        "env-restore.yml"
    }

    fn health_gated(&self, _job: &JobRecord) -> bool {
        true
    }

    super::kinds::job_hooks!(
        validate_start,
        on_start,
        on_success,
        on_partial_result,
        on_final_failure,
        on_cancel,
        extra_vars
    );
}

async fn validate_start(
    conn: &mut SqliteConnection,
    job: &JobRecord,
) -> Result<Result<(), String>, StoreError> {
    let (site, env) = site_and_environment(conn, job).await?;
    let ok = |s: SiteStatus| s == SiteStatus::Active || (job.attempt_count > 1 && s == BUSY);
    if !ok(site.status) {
        return Ok(Err(format!("the site is {}, not active", site.status)));
    }
    if !ok(env.status) {
        return Ok(Err(format!(
            "the environment is {}, not active",
            env.status
        )));
    }
    if env.current_release_id.is_none() {
        return Ok(Err("the environment has no current release".into()));
    }
    if let Err(reason) = node_must_be_active(conn, job).await? {
        return Ok(Err(reason));
    }
    let p = payload::read::<EnvRestorePayload>(job);
    if let Err(reason) = restorable(conn, &site.id, &p.backup_id).await? {
        return Ok(Err(reason));
    }
    gate::pre_backup_usable(conn, job, &p.pre_backup_id, "pre-restore").await
}

/// Whether `backup_id` may be restored into an environment of `site_id`: a `completed` backup
/// of one of the site's environments (the API's checks, again at the job's start).
pub async fn restorable(
    conn: &mut SqliteConnection,
    site_id: &str,
    backup_id: &str,
) -> Result<Result<(), String>, StoreError> {
    let Some(backup) = fetch_backup(conn, backup_id).await? else {
        return Ok(Err(format!("the backup {backup_id} does not exist")));
    };
    let owner: Option<String> = sqlx::query_scalar("SELECT site_id FROM environments WHERE id = ?")
        .bind(&backup.environment_id)
        .fetch_optional(&mut *conn)
        .await?;
    if owner.as_deref() != Some(site_id) {
        return Ok(Err(format!(
            "the backup {backup_id} belongs to another site"
        )));
    }
    if backup.status != BackupStatus::Completed || backup.checksum.is_none() {
        return Ok(Err(format!(
            "the backup {backup_id} is {}, not completed",
            backup.status
        )));
    }
    Ok(Ok(()))
}

async fn on_start(
    conn: &mut SqliteConnection,
    job: &mut JobRecord,
    now: &str,
) -> Result<(), StoreError> {
    let (site, env) = site_and_environment(conn, job).await?;
    site_to(conn, &site, BUSY, now).await?;
    environment_to(conn, &env, BUSY, now).await?;
    let id = job.id.clone();
    let current = env.current_release_id.clone();
    let p = payload::update(conn, job, |p: &mut EnvRestorePayload| {
        fix_release_name(&mut p.release, now, &id);
        if p.previous_release_id.is_none() {
            p.previous_release_id = current;
        }
    })
    .await?;
    start_backup(conn, &p.pre_backup_id, now).await
}

/// A failed attempt that reported its pre-restore backup: `completed` (a retry keeps it).
async fn on_partial_result(
    conn: &mut SqliteConnection,
    job: &JobRecord,
    result: &Value,
    now: &str,
) -> Result<(), StoreError> {
    let id = payload::read::<EnvRestorePayload>(job).pre_backup_id;
    if complete_backup_from(conn, &id, &result["pre_backup"], now).await? {
        tracing::info!(job = %job.id, backup = %id, "pre-restore backup completed before the run failed");
    }
    Ok(())
}

async fn on_success(
    conn: &mut SqliteConnection,
    job: &JobRecord,
    result: &Value,
    now: &str,
) -> Result<(), StoreError> {
    let p = payload::read::<EnvRestorePayload>(job);
    let backup_ok = complete_backup_from(conn, &p.pre_backup_id, &result["pre_backup"], now)
        .await?
        || fetch_backup(conn, &p.pre_backup_id)
            .await?
            .map(|b| b.status)
            == Some(BackupStatus::Completed);
    if !backup_ok {
        tracing::warn!(job = %job.id, backup = %p.pre_backup_id, "env_restore reported no valid pre-restore backup; it failed");
        fail_backup(conn, &p.pre_backup_id, Some(RESULT_WITHOUT_CHECKSUM), now).await?;
    }
    let text = |k: &str| result[k].as_str().unwrap_or("?").to_string();
    let notes = if result["search_replace"].is_string() {
        format!(
            "restored from backup {} ({} rewritten to {})",
            p.backup_id,
            text("source_url"),
            text("target_url")
        )
    } else {
        format!("restored from backup {}", p.backup_id)
    };
    let source_ref = format!("backup:{}", p.backup_id);
    let built = gate::BuiltRelease {
        source_type: "upload",
        source_ref: &source_ref,
        notes: &notes,
        rollback_backup_id: backup_ok.then_some(p.pre_backup_id.clone()),
        rollback_restore_uploads: backup_ok,
    };
    gate::gate_built_release(conn, job, result, built, now).await
}

async fn unsuccessful(
    conn: &mut SqliteConnection,
    job: &JobRecord,
    ending: Unsuccessful,
    now: &str,
) -> Result<(), StoreError> {
    let p = payload::read::<EnvRestorePayload>(job);
    let code = match ending {
        Unsuccessful::Failed { code, .. } => Some(code),
        Unsuccessful::Cancelled { .. } => None,
    };
    fail_backup(conn, &p.pre_backup_id, code, now).await?;
    let (site, env) = site_and_environment(conn, job).await?;
    release_busy_site(conn, job, &site, BUSY, ending, now).await?;
    release_busy_environment(conn, job, &env, BUSY, ending, now).await
}

async fn on_final_failure(
    conn: &mut SqliteConnection,
    job: &JobRecord,
    code: JobErrorCode,
    started: bool,
    now: &str,
) -> Result<(), StoreError> {
    unsuccessful(conn, job, Unsuccessful::Failed { code, started }, now).await
}

async fn on_cancel(
    conn: &mut SqliteConnection,
    job: &JobRecord,
    was_running: bool,
    now: &str,
) -> Result<(), StoreError> {
    unsuccessful(conn, job, Unsuccessful::Cancelled { was_running }, now).await
}

/// The payload of `env_restore` (jobs.md §11), built by [`crate::deploys::Deploys::restore`].
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct EnvRestorePayload {
    /// The completed backup restored (of the same site; any of its environments).
    pub backup_id: String,
    /// The pre-restore full backup, inserted `pending` with the job.
    pub pre_backup_id: String,
    #[serde(flatten)]
    pub release: Release,
    /// The environment's current release at the first start: the rollback target (run-stable).
    pub previous_release_id: Option<String>,
    #[serde(flatten)]
    pub attempts: Attempts,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::jobs::payload::to_json;

    #[test]
    fn the_payload_has_the_specified_fields() {
        let json: Value = serde_json::from_str(&to_json(&EnvRestorePayload::default())).unwrap();
        for key in [
            "backup_id",
            "pre_backup_id",
            "release_name",
            "previous_release_id",
        ] {
            assert!(json.get(key).is_some(), "{key} missing in {json}");
        }
    }
}
