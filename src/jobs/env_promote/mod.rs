//! `env_promote`: a non-production environment's code and unprotected data made its site's
//! production (jobs.md §11, backups-restore-promotion.md §4–6), made live by
//! `pressluft node env-promote` through `env-promote.yml`, then health-gated.
//!
//! The request's gates (drift, backup) are the service's ([`crate::deploys::promote`]); the
//! job re-checks what can change while it waits: at its start the gate backup must still be
//! `completed` and of the target, the source must still have a current release; on the node
//! the drift comparison runs again (`DRIFT_DETECTED`) and the table prefixes must match
//! (`PRECONDITION_FAILED`), both before anything changes. Gated like `env_update`
//! ([`super::gate`]): the target (production) and its site `deploying` while it runs; the
//! success records the release (source copied from the source's current release, notes
//! `promoted from <source>`) and enqueues the gate, whose rollback restores the previous
//! release and the database from the gate backup **except the preset's protected tables**
//! (`rollback_skip_tables`), so content written since the backup survives. The source is only
//! read.
//!
//! Submodules: [`vars`] (what the playbook and the node helper get).

mod vars;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use sqlx::AnyConnection;

use super::errors::JobErrorCode;
use super::gate::{self, check_result};
use super::kinds::JobKind;
use super::payload::{self, Attempts, Release};
use crate::domain::{BackupStatus, PromotionPreset};
use crate::store::backups::fetch_backup;
use crate::store::environments::fetch_environment;
use crate::store::releases::fetch_release;
use crate::store::{JobRecord, StoreError};
use vars::extra_vars;

/// The `env_promote` job type (health-gated).
pub struct EnvPromote;

impl JobKind for EnvPromote {
    fn playbook(&self) -> &'static str {
        "env-promote.yml"
    }

    fn health_gated(&self, _job: &JobRecord) -> bool {
        true
    }

    super::kinds::job_hooks!(
        validate_start,
        on_start,
        check_result,
        on_success,
        on_final_failure,
        on_cancel,
        extra_vars
    );
}

/// The payload of `env_promote` (jobs.md §11), built by [`crate::deploys::Deploys::promote`].
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct EnvPromotePayload {
    /// The non-production environment promoted (read only).
    pub source_environment_id: String,
    /// The target's newest fresh full backup at the request: the rollback's database source.
    pub gate_backup_id: String,
    /// The source's clean drift check the request passed with.
    pub drift_check_id: String,
    #[serde(flatten)]
    pub release: Release,
    /// The target's current release at the first start: the rollback target (run-stable).
    pub previous_release_id: Option<String>,
    #[serde(flatten)]
    pub attempts: Attempts,
}

/// The protected tables (without prefix) of `preset` (the source's), as the node and the
/// rollback take them.
pub fn protected_tables(preset: &str) -> Vec<String> {
    preset_of(preset)
        .protected_tables()
        .iter()
        .map(|t| t.to_string())
        .collect()
}

/// The protected paths (relative to a release root) of `preset`.
pub fn protected_paths(preset: &str) -> Vec<String> {
    preset_of(preset)
        .protected_paths()
        .iter()
        .map(|t| t.to_string())
        .collect()
}

/// The stored preset; one that does not parse protects the most.
fn preset_of(preset: &str) -> PromotionPreset {
    preset
        .parse::<PromotionPreset>()
        .unwrap_or(PromotionPreset::CommerceProtect)
}

async fn validate_start(
    conn: &mut AnyConnection,
    job: &JobRecord,
) -> Result<Result<(), String>, StoreError> {
    if let Err(reason) = gate::validate_start(conn, job).await? {
        return Ok(Err(reason));
    }
    let p = payload::read::<EnvPromotePayload>(job);
    match fetch_backup(conn, &p.gate_backup_id).await? {
        Some(b)
            if b.status == BackupStatus::Completed
                && job.environment_id.as_deref() == Some(b.environment_id.as_str()) => {}
        Some(b) => {
            return Ok(Err(format!(
                "the gate backup {} is {} or of another environment; request the promotion again",
                b.id, b.status
            )))
        }
        None => {
            return Ok(Err(format!(
                "the gate backup {} does not exist",
                p.gate_backup_id
            )))
        }
    }
    match fetch_environment(conn, &p.source_environment_id).await? {
        Some(s) if s.deleted_at.is_none() && s.current_release_id.is_some() => Ok(Ok(())),
        Some(_) => Ok(Err(
            "the source environment has been deleted or has no current release".into(),
        )),
        None => Ok(Err("the source environment does not exist".into())),
    }
}

async fn on_start(
    conn: &mut AnyConnection,
    job: &mut JobRecord,
    now: &str,
) -> Result<(), StoreError> {
    gate::enter_fixing_release(conn, job, now).await
}

async fn on_success(
    conn: &mut AnyConnection,
    job: &JobRecord,
    _result: &Value,
    now: &str,
) -> Result<(), StoreError> {
    let p = payload::read::<EnvPromotePayload>(job);
    let source = fetch_environment(conn, &p.source_environment_id).await?;
    let source_release = match source.as_ref().and_then(|s| s.current_release_id.clone()) {
        Some(id) => fetch_release(conn, &id).await?,
        None => None,
    };
    // data-model.md: a promotion's release is copied from the source's current release.
    let (source_type, source_ref) = source_release
        .map(|r| (r.source_type, r.source_ref))
        .unwrap_or_else(|| {
            (
                "upload".into(),
                format!("environment:{}", p.source_environment_id),
            )
        });
    let (source_name, preset) = source
        .map(|s| (s.name, s.promotion_preset))
        .unwrap_or_else(|| ("(unknown)".into(), String::new()));
    let notes = format!("promoted from {source_name}");
    let built = gate::BuiltRelease {
        source_type: &source_type,
        source_ref: &source_ref,
        notes: &notes,
        // The rollback matrix: previous release + the replaced tables from the gate backup.
        rollback_backup_id: Some(p.gate_backup_id),
        rollback_restore_uploads: false,
    };
    let skip = protected_tables(&preset);
    gate::gate_built_release_skipping(conn, job, built, skip, now).await
}

async fn on_final_failure(
    conn: &mut AnyConnection,
    job: &JobRecord,
    code: JobErrorCode,
    started: bool,
    now: &str,
) -> Result<(), StoreError> {
    gate::on_final_failure(conn, job, code, started, now).await
}

async fn on_cancel(
    conn: &mut AnyConnection,
    job: &JobRecord,
    was_running: bool,
    now: &str,
) -> Result<(), StoreError> {
    gate::on_cancel(conn, job, was_running, now).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unknown_preset_protects_the_most() {
        assert!(protected_tables("content-protect").contains(&"posts".to_string()));
        assert!(!protected_tables("content-protect").contains(&"users".to_string()));
        assert!(protected_tables("commerce-protect").contains(&"wc_orders".to_string()));
        assert_eq!(
            protected_tables("bogus"),
            protected_tables("commerce-protect")
        );
    }
}
