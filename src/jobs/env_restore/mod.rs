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
use sqlx::AnyConnection;

use super::backup_create::{fail_backup, start_backup};
use super::errors::JobErrorCode;
use super::gate::{self, check_result};
use super::kinds::JobKind;
use super::lifecycle::Unsuccessful;
use super::payload::{self, Attempts, Release};
use crate::domain::{BackupStatus, SiteStatus};
use crate::store::backups::fetch_backup;
use crate::store::environments::environment_site_id;
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
        check_result,
        on_success,
        on_partial_result,
        on_final_failure,
        on_cancel,
        extra_vars
    );
}

async fn validate_start(
    conn: &mut AnyConnection,
    job: &JobRecord,
) -> Result<Result<(), String>, StoreError> {
    if let Err(reason) = gate::validate_start_as(conn, job, BUSY).await? {
        return Ok(Err(reason));
    }
    let p = payload::read::<EnvRestorePayload>(job);
    if let Err(reason) = restorable(
        conn,
        job.site_id.as_deref().unwrap_or_default(),
        &p.backup_id,
    )
    .await?
    {
        return Ok(Err(reason));
    }
    gate::pre_backup_usable(conn, job, &p.pre_backup_id, "pre-restore").await
}

/// Whether `backup_id` may be restored into an environment of `site_id`: a `completed` backup
/// of one of the site's environments (the API's checks, again at the job's start).
pub async fn restorable(
    conn: &mut AnyConnection,
    site_id: &str,
    backup_id: &str,
) -> Result<Result<(), String>, StoreError> {
    let Some(backup) = fetch_backup(conn, backup_id).await? else {
        return Ok(Err(format!("the backup {backup_id} does not exist")));
    };
    let owner = environment_site_id(conn, &backup.environment_id).await?;
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
    conn: &mut AnyConnection,
    job: &mut JobRecord,
    now: &str,
) -> Result<(), StoreError> {
    gate::enter_fixing_release_as(conn, job, BUSY, now).await?;
    let p = payload::read::<EnvRestorePayload>(job);
    start_backup(conn, &p.pre_backup_id, now).await
}

/// A failed attempt that reported its pre-restore backup: `completed` (a retry keeps it).
async fn on_partial_result(
    conn: &mut AnyConnection,
    job: &JobRecord,
    result: &Value,
    now: &str,
) -> Result<(), StoreError> {
    let id = payload::read::<EnvRestorePayload>(job).pre_backup_id;
    gate::pre_backup_partial(conn, job, &id, result, "pre-restore", now).await
}

async fn on_success(
    conn: &mut AnyConnection,
    job: &JobRecord,
    result: &Value,
    now: &str,
) -> Result<(), StoreError> {
    let p = payload::read::<EnvRestorePayload>(job);
    let d = &result["durations_ms"];
    tracing::info!(
        job = %job.id,
        check_ms = d["check"].as_u64(),
        aside_ms = d["aside"].as_u64(),
        live_ms = d["live"].as_u64(),
        pre_backup_ms = d["pre_backup"].as_u64(),
        pre_backup_db_ms = d["pre_backup_db"].as_u64(),
        pre_backup_files_ms = d["pre_backup_files"].as_u64(),
        import_ms = d["import"].as_u64(),
        extract_ms = d["extract"].as_u64(),
        "restore phases on the node"
    );
    let backup_ok =
        gate::pre_backup_completed(conn, job, &p.pre_backup_id, result, "pre-restore", now).await?;
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
    gate::gate_built_release(conn, job, built, now).await
}

async fn unsuccessful(
    conn: &mut AnyConnection,
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
    gate::release_busy_as(conn, job, BUSY, ending, now).await
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
