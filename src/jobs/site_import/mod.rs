//! `site_import`: another WordPress brought into a site's production environment from an
//! archive (`db.sql`, `files/`, optional `meta.json`; jobs.md §11, backups-restore-promotion.md
//! §9), by `pressluft node site-import` through `site-import.yml`, then health-gated.
//!
//! Gated like `env_update` ([`super::gate`]) with its pre-import backup row
//! (`payload.pre_backup_id`, inserted `pending` with the job by
//! [`crate::deploys::Deploys::import`]), but site and environment are `restoring` while it
//! runs (state-machines.md). A failure before anything live changed (`SOURCE_FETCH_FAILED`,
//! `ARCHIVE_INVALID`, `PRECONDITION_FAILED`) returns both to `active`. The success records the
//! release (`upload` / the archive URL, notes naming the source URL and table prefix) and
//! enqueues the `health_check`, whose rollback restores the previous release, the database and
//! the uploads from the pre-import backup (and with the database its table prefix).
//!
//! An archive uploaded through the dashboard is a control-plane file (`payload.upload_file`)
//! the playbook copies to the node; it is deleted when the job ends, however it ends. A URL's
//! credentials live in the secrets store only (`payload.archive_url_secret`), deleted by the
//! engine when the job ends.
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
use crate::domain::SiteStatus;
use crate::store::{JobRecord, StoreError};
use vars::extra_vars;

/// The status of the site and its production environment while an import or its gate runs.
pub const BUSY: SiteStatus = SiteStatus::Restoring;

/// The `site_import` job type (health-gated).
pub struct SiteImport;

impl JobKind for SiteImport {
    fn playbook(&self) -> &'static str {
        "site-import.yml"
    }

    fn health_gated(&self, _job: &JobRecord) -> bool {
        true
    }

    fn secrets_to_forget(&self, job: &JobRecord) -> Vec<String> {
        payload::read::<SiteImportPayload>(job)
            .archive_url_secret
            .into_iter()
            .collect()
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
    let id = payload::read::<SiteImportPayload>(job).pre_backup_id;
    gate::pre_backup_usable(conn, job, &id, "pre-import").await
}

async fn on_start(
    conn: &mut AnyConnection,
    job: &mut JobRecord,
    now: &str,
) -> Result<(), StoreError> {
    gate::enter_fixing_release_as(conn, job, BUSY, now).await?;
    let p = payload::read::<SiteImportPayload>(job);
    start_backup(conn, &p.pre_backup_id, now).await
}

/// A failed attempt that reported its pre-import backup: `completed` (a retry keeps it).
async fn on_partial_result(
    conn: &mut AnyConnection,
    job: &JobRecord,
    result: &Value,
    now: &str,
) -> Result<(), StoreError> {
    let id = payload::read::<SiteImportPayload>(job).pre_backup_id;
    gate::pre_backup_partial(conn, job, &id, result, "pre-import", now).await
}

async fn on_success(
    conn: &mut AnyConnection,
    job: &JobRecord,
    result: &Value,
    now: &str,
) -> Result<(), StoreError> {
    let p = payload::read::<SiteImportPayload>(job);
    forget_upload(&p);
    let backup_ok =
        gate::pre_backup_completed(conn, job, &p.pre_backup_id, result, "pre-import", now).await?;
    let text = |k: &str| result[k].as_str().unwrap_or("?").to_string();
    let notes = format!(
        "imported from {} (table prefix {})",
        text("source_url"),
        text("table_prefix")
    );
    let source_ref = match &p.upload_name {
        Some(name) => format!("upload:{name}"),
        None => p.archive_url.clone(),
    };
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
    let p = payload::read::<SiteImportPayload>(job);
    forget_upload(&p);
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

/// Deletes the control plane's copy of an uploaded archive (the job ended; best effort).
fn forget_upload(p: &SiteImportPayload) {
    if let Some(path) = &p.upload_file {
        match std::fs::remove_file(path) {
            Ok(()) => tracing::info!(path = %path, "uploaded import archive deleted"),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => {
                tracing::warn!(path = %path, error = %e, "deleting the uploaded import archive failed")
            }
        }
    }
}

/// The payload of `site_import` (jobs.md §11), built by [`crate::deploys::Deploys::import`].
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct SiteImportPayload {
    /// As requested (credentials replaced by `***`), or the node path of an uploaded archive.
    pub archive_url: String,
    /// The secrets-store key of the whole `archive_url` when it had credentials.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub archive_url_secret: Option<String>,
    /// An archive uploaded through the dashboard: its file on the control plane (copied to the
    /// node path `archive_url` by the playbook, deleted when the job ends) and its name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub upload_file: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub upload_name: Option<String>,
    /// The pre-import full backup, inserted `pending` with the job.
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
        let json: Value = serde_json::from_str(&to_json(&SiteImportPayload::default())).unwrap();
        for key in [
            "archive_url",
            "pre_backup_id",
            "release_name",
            "previous_release_id",
        ] {
            assert!(json.get(key).is_some(), "{key} missing in {json}");
        }
    }
}
