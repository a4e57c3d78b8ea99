//! `backup_verify` (issue 11, beyond the spec's job types): re-reads every stored artifact of a
//! completed backup through `pressluft node backup-verify` and `backup-verify.yml`, checking
//! the manifest against the recorded checksum and each artifact against the manifest; records
//! `verified_at` and `verify_status` (`ok` / `mismatch`, the job failing with
//! `BACKUP_CHECKSUM_MISMATCH`, not retried). Any other failure (storage unreachable, the node
//! down) says nothing about the backup and leaves `verify_status` alone.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use sqlx::AnyConnection;

use super::errors::JobErrorCode;
use super::kinds::{ResolvedVars, VarsContext, VarsError};
use super::payload::{self, Attempts};
use crate::backups::storage::backup_access;
use crate::domain::{BackupStatus, VerifyStatus};
use crate::node_helper::backup::verify::VerifySpec;
use crate::node_helper::spec::CONTRACT_VERSION;
use crate::store::backups::{fetch_backup, record_verify, BackupRecord};
use crate::store::{JobRecord, StoreError};

super::kinds::job_kind!(
    BackupVerify,
    "backup-verify.yml",
    [validate_start, on_success, on_final_failure, extra_vars]
);

/// The payload of `backup_verify`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct BackupVerifyPayload {
    pub backup_id: String,
    #[serde(flatten)]
    pub attempts: Attempts,
}

/// The job's backup when it can be verified: `completed`, with its checksum.
async fn verifiable(
    conn: &mut AnyConnection,
    job: &JobRecord,
) -> Result<Result<(BackupRecord, String), String>, StoreError> {
    let id = payload::read::<BackupVerifyPayload>(job).backup_id;
    let Some(backup) = fetch_backup(conn, &id).await? else {
        return Ok(Err(format!("backup {id} does not exist")));
    };
    match (&backup.status, backup.checksum.clone()) {
        (BackupStatus::Completed, Some(checksum)) => Ok(Ok((backup, checksum))),
        (status, _) => Ok(Err(format!(
            "backup {id} is {status}; only a completed backup can be verified"
        ))),
    }
}

async fn validate_start(
    conn: &mut AnyConnection,
    job: &JobRecord,
) -> Result<Result<(), String>, StoreError> {
    Ok(verifiable(conn, job).await?.map(drop))
}

async fn on_success(
    conn: &mut AnyConnection,
    job: &JobRecord,
    _result: &Value,
    now: &str,
) -> Result<(), StoreError> {
    let id = payload::read::<BackupVerifyPayload>(job).backup_id;
    record_verify(conn, &id, VerifyStatus::Ok, now)
        .await
        .map(drop)
}

async fn on_final_failure(
    conn: &mut AnyConnection,
    job: &JobRecord,
    code: JobErrorCode,
    _started: bool,
    now: &str,
) -> Result<(), StoreError> {
    if code != JobErrorCode::BackupChecksumMismatch {
        return Ok(());
    }
    let id = payload::read::<BackupVerifyPayload>(job).backup_id;
    record_verify(conn, &id, VerifyStatus::Mismatch, now)
        .await
        .map(drop)
}

/// Variables of `backup-verify.yml` (docs/node-helper.md): `node_spec`, the helper's
/// [`VerifySpec`] (the recorded checksum, the storage and the data key), and `backup_id`. The
/// credentials and the key are secrets of the run; the playbook passes the spec on stdin with
/// `no_log`.
async fn extra_vars(cx: &VarsContext<'_>, job: &JobRecord) -> Result<ResolvedVars, VarsError> {
    let mut conn = cx.store.pool().acquire().await.map_err(StoreError::from)?;
    let (backup, checksum) = verifiable(&mut conn, job)
        .await?
        .map_err(|_| VarsError::Missing("a completed backup"))?;
    let access = backup_access(&mut conn, cx.secrets, &backup).await?;
    let spec = VerifySpec {
        contract_version: CONTRACT_VERSION,
        checksum,
        storage: access.storage,
        data_key: access.data_key.into(),
    };
    super::backup_create::playbook_vars(backup.id, &spec, access.secrets)
}
