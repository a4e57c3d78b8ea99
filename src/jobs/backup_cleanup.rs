//! `backup_cleanup` (jobs.md §9 and §11, backups-restore-promotion.md §1 "Cleanup"): deletes the
//! stored artifacts of a site's backups past their retention, through `pressluft node
//! backup-delete` (src/node_helper/backup/delete.rs) and `backup-cleanup.yml`, on the production
//! environment's node. Enqueued by the scheduler ([`crate::backups::schedule`]) with the ids it
//! selected; at run time only those still `completed`/`failed` and not needed by another queued
//! or running job are sent (a restore accepted since then keeps its backup). The backups the
//! helper reports deleted become `expired` (their data keys are removed by the scheduler's next
//! look, [`crate::backups::Backups::remove_expired_keys`]); a failed run is retried, and after the
//! last attempt the backups it could not delete keep the job's error code.

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use sqlx::AnyConnection;

use super::errors::JobErrorCode;
use super::kinds::{ResolvedVars, VarsContext, VarsError};
use super::payload::{self, Attempts};
use crate::backups::schedule::BACKUP_IN_USE;
use crate::backups::storage::backup_access;
use crate::domain::BackupStatus;
use crate::node_helper::spec::CONTRACT_VERSION;
use crate::store::backups::{fetch_backup, set_backup_status, BackupRecord};
use crate::store::{JobRecord, StoreError};

super::kinds::job_kind!(
    BackupCleanup,
    "backup-cleanup.yml",
    [on_success, on_final_failure, extra_vars]
);

/// The payload of `backup_cleanup` (jobs.md §11).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct BackupCleanupPayload {
    pub backup_ids: Vec<String>,
    #[serde(flatten)]
    pub attempts: Attempts,
}

/// The job's backups that may still be deleted: `completed`/`failed` and not named by another
/// queued or running job.
async fn deletable(
    conn: &mut AnyConnection,
    job: &JobRecord,
) -> Result<Vec<BackupRecord>, StoreError> {
    let named = payload::read::<BackupCleanupPayload>(job).backup_ids;
    if named.is_empty() {
        return Ok(Vec::new());
    }
    let list = (0..named.len())
        .map(|i| format!("?{}", i + 2))
        .collect::<Vec<_>>()
        .join(", ");
    let sql = format!(
        "SELECT b.id FROM backups b
          WHERE b.id IN ({list})
            AND b.status IN ('completed', 'failed') AND NOT {BACKUP_IN_USE}
          ORDER BY b.retention_until, b.id"
    );
    let mut q = crate::store::query_scalar(&sql).bind(&job.id);
    for id in &named {
        q = q.bind(id);
    }
    let ids: Vec<String> = q.fetch_all(&mut *conn).await?;
    let mut backups = Vec::new();
    for id in ids {
        if let Some(b) = fetch_backup(conn, &id).await? {
            backups.push(b);
        }
    }
    Ok(backups)
}

/// Variables of `backup-cleanup.yml` (docs/node-helper.md): `delete_spec`, what the helper
/// reads on stdin (each backup's id and storage, S3 credentials included: secret, never in
/// argv), and `backup_count`. Every secret value is masked in the output.
async fn extra_vars(cx: &VarsContext<'_>, job: &JobRecord) -> Result<ResolvedVars, VarsError> {
    let mut conn = cx.store.pool().acquire().await.map_err(StoreError::from)?;
    let backups = deletable(&mut conn, job).await?;
    let mut resolved = ResolvedVars::default();
    let mut targets = Vec::new();
    for backup in &backups {
        let access = backup_access(&mut conn, cx.secrets, backup).await?;
        resolved.secrets.extend(access.secrets);
        let storage =
            serde_json::to_value(&access.storage).map_err(|_| VarsError::Missing("a storage"))?;
        targets.push(json!({"backup_id": backup.id, "storage": storage}));
    }
    resolved
        .vars
        .insert("backup_count".into(), targets.len().into());
    resolved.vars.insert(
        "delete_spec".into(),
        json!({"contract_version": CONTRACT_VERSION, "backups": targets}),
    );
    Ok(resolved)
}

/// The backups the helper deleted (and this job named) become `expired`.
async fn on_success(
    conn: &mut AnyConnection,
    job: &JobRecord,
    result: &Value,
    now: &str,
) -> Result<(), StoreError> {
    let named = payload::read::<BackupCleanupPayload>(job).backup_ids;
    let deleted = result["backups"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|b| b["status"] == "deleted")
        .filter_map(|b| b["backup_id"].as_str())
        .filter(|id| named.iter().any(|n| n == id));
    let from = [BackupStatus::Completed, BackupStatus::Failed];
    for id in deleted {
        if set_backup_status(conn, id, &from, BackupStatus::Expired, None, now).await? {
            tracing::info!(backup = %id, job = %job.id, "backup expired");
        }
    }
    Ok(())
}

/// After the last attempt, the backups still not expired keep the job's error code (their
/// status stays; the next cleanup, [`crate::backups::CLEANUP_EVERY`] later, tries again).
async fn on_final_failure(
    conn: &mut AnyConnection,
    job: &JobRecord,
    code: JobErrorCode,
    _started: bool,
    now: &str,
) -> Result<(), StoreError> {
    for id in payload::read::<BackupCleanupPayload>(job).backup_ids {
        let Some(backup) = fetch_backup(conn, &id).await? else {
            continue;
        };
        if matches!(
            backup.status,
            BackupStatus::Completed | BackupStatus::Failed
        ) {
            let status = [backup.status];
            set_backup_status(conn, &id, &status, backup.status, Some(code.as_str()), now).await?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::jobs::payload::to_json;

    #[test]
    fn the_payload_has_the_specified_fields() {
        let payload = BackupCleanupPayload {
            backup_ids: vec!["b1".into()],
            ..Default::default()
        };
        let json: Value = serde_json::from_str(&to_json(&payload)).unwrap();
        assert_eq!(json, json!({"backup_ids": ["b1"]}));
    }
}
