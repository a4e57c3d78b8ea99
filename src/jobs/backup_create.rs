//! `backup_create`: one backup of an environment (jobs.md §11, backups-restore-promotion.md §1),
//! streamed by `pressluft node backup-create` (src/node_helper/backup/) through
//! `backup-create.yml`. The row is inserted `pending` by the backup service
//! ([`crate::backups`]); this kind moves it `running → completed | failed`
//! (state-machines.md, Backup): `running` when a run starts (a retry finds it running),
//! `completed` only with the result's `sha256:` checksum and size, `failed` with the job's
//! error code after the last attempt, a refusal or a cancel.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use sqlx::AnyConnection;

use super::errors::JobErrorCode;
use super::kinds::{ResolvedVars, VarsContext, VarsError};
use super::lifecycle::site_and_environment;
use super::payload::{self, Attempts};
use crate::backups::storage::backup_access;
use crate::domain::{BackupScope, BackupStatus};
use crate::node_helper::backup::create::{BackupMeta, CreateSpec};
use crate::node_helper::spec::CONTRACT_VERSION;
use crate::sites::layout::EnvLayout;
use crate::store::backups::{complete_backup, fetch_backup, set_backup_status, BackupRecord};
use crate::store::environments::{canonical_url, EnvironmentRecord};
use crate::store::{JobRecord, StoreError};

super::kinds::job_kind!(
    BackupCreate,
    "backup-create.yml",
    [
        validate_start,
        on_start,
        check_result,
        on_success,
        on_final_failure,
        on_cancel,
        extra_vars
    ]
);

/// The payload of `backup_create` (jobs.md §11).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BackupCreatePayload {
    pub backup_id: String,
    pub backup_scope: BackupScope,
    #[serde(flatten)]
    pub attempts: Attempts,
}

impl Default for BackupCreatePayload {
    fn default() -> Self {
        Self {
            backup_id: String::new(),
            backup_scope: BackupScope::Full,
            attempts: Attempts::default(),
        }
    }
}

/// The error code a backup gets when the run reported success without a `sha256:` checksum
/// and a size: the playbook's result is not what it must be (docs/decisions.md).
pub const RESULT_WITHOUT_CHECKSUM: JobErrorCode = JobErrorCode::AnsibleUnexpectedError;

/// The job's backup row.
async fn backup_of(conn: &mut AnyConnection, job: &JobRecord) -> Result<BackupRecord, StoreError> {
    let id = payload::read::<BackupCreatePayload>(job).backup_id;
    fetch_backup(conn, &id)
        .await?
        .ok_or_else(|| StoreError::not_found("backup", Some(id.as_str())))
}

/// A backup is produced once: only a `pending` one (or a `running` one, on a retry) of the
/// job's own environment.
async fn validate_start(
    conn: &mut AnyConnection,
    job: &JobRecord,
) -> Result<Result<(), String>, StoreError> {
    let id = payload::read::<BackupCreatePayload>(job).backup_id;
    let Some(backup) = fetch_backup(conn, &id).await? else {
        return Ok(Err(format!("backup {id} does not exist")));
    };
    if job.environment_id.as_deref() != Some(backup.environment_id.as_str()) {
        return Ok(Err(format!("backup {id} is not of this job's environment")));
    }
    if !matches!(backup.status, BackupStatus::Pending | BackupStatus::Running) {
        return Ok(Err(format!(
            "backup {id} is {}; only a pending backup is created",
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
    let backup = backup_of(conn, job).await?;
    start_backup(conn, &backup.id, now).await
}

/// A backup row `pending → running` (a retry finds it `running` already: nothing changes).
/// Shared with `env_update`'s pre-update backup, as are [`complete_backup_from`] and
/// [`fail_backup`].
pub(super) async fn start_backup(
    conn: &mut AnyConnection,
    id: &str,
    now: &str,
) -> Result<(), StoreError> {
    let (from, to) = ([BackupStatus::Pending], BackupStatus::Running);
    set_backup_status(conn, id, &from, to, None, now)
        .await
        .map(drop)
}

/// The backup row `completed` with the checksum and size `result` reports, when both are valid
/// ([`checksum_and_size`]); whether it became so.
pub(super) async fn complete_backup_from(
    conn: &mut AnyConnection,
    id: &str,
    result: &Value,
    now: &str,
) -> Result<bool, StoreError> {
    match checksum_and_size(result) {
        Some((checksum, size)) => complete_backup(conn, id, checksum, size, now).await,
        None => Ok(false),
    }
}

/// A backup row `pending | running → failed` with `code`.
pub(super) async fn fail_backup(
    conn: &mut AnyConnection,
    id: &str,
    code: Option<JobErrorCode>,
    now: &str,
) -> Result<(), StoreError> {
    let from = [BackupStatus::Pending, BackupStatus::Running];
    let code = code.map(|c| c.as_str());
    set_backup_status(conn, id, &from, BackupStatus::Failed, code, now)
        .await
        .map(drop)
}

/// The checksum and size the run reported, when both are what a completed backup needs.
fn checksum_and_size(result: &Value) -> Option<(&str, i64)> {
    let checksum = result["checksum"].as_str().filter(|c| {
        c.strip_prefix("sha256:")
            .is_some_and(|h| h.len() == 64 && h.bytes().all(|b| b.is_ascii_hexdigit()))
    })?;
    let size = result["size_bytes"].as_i64().filter(|s| *s > 0)?;
    Some((checksum, size))
}

/// A backup is never `completed` without a checksum: a run that reports none fails the job
/// (and, through its final failure, the backup with [`RESULT_WITHOUT_CHECKSUM`]).
fn check_result(_job: &JobRecord, result: &Value) -> Result<(), String> {
    match checksum_and_size(result) {
        Some(_) => Ok(()),
        None => Err("it reported no sha256 checksum and size of the backup".into()),
    }
}

async fn on_success(
    conn: &mut AnyConnection,
    job: &JobRecord,
    result: &Value,
    now: &str,
) -> Result<(), StoreError> {
    let backup = backup_of(conn, job).await?;
    if complete_backup_from(conn, &backup.id, result, now).await? {
        return Ok(());
    }
    // [`check_result`] accepted the result, yet the row was not `running` (it cannot be
    // completed): never `completed` without this run's checksum, so a `pending` one fails.
    tracing::warn!(job = %job.id, backup = %backup.id, status = ?backup.status, "backup_create succeeded but its backup was not running; it fails");
    fail(conn, job, Some(RESULT_WITHOUT_CHECKSUM), now).await
}

/// `pending | running → failed` with `code` (the node helper removed what the run wrote).
async fn fail(
    conn: &mut AnyConnection,
    job: &JobRecord,
    code: Option<JobErrorCode>,
    now: &str,
) -> Result<(), StoreError> {
    let id = payload::read::<BackupCreatePayload>(job).backup_id;
    fail_backup(conn, &id, code, now).await
}

async fn on_final_failure(
    conn: &mut AnyConnection,
    job: &JobRecord,
    code: JobErrorCode,
    _started: bool,
    now: &str,
) -> Result<(), StoreError> {
    fail(conn, job, Some(code), now).await
}

/// A cancelled backup is `failed` without an error code (the job says it was cancelled).
async fn on_cancel(
    conn: &mut AnyConnection,
    job: &JobRecord,
    _was_running: bool,
    now: &str,
) -> Result<(), StoreError> {
    fail(conn, job, None, now).await
}

/// Variables of `backup-create.yml` (docs/node-helper.md): `node_spec`, the helper's
/// [`CreateSpec`] without `php_dir` (the playbook adds it), and `backup_id`. The storage
/// credentials and the data key are secrets of the run (masked in output); the playbook passes
/// the spec on stdin with `no_log`.
async fn extra_vars(cx: &VarsContext<'_>, job: &JobRecord) -> Result<ResolvedVars, VarsError> {
    let mut conn = cx.store.pool().acquire().await.map_err(StoreError::from)?;
    let backup = backup_of(&mut conn, job).await?;
    let (_site, env) = site_and_environment(&mut conn, job).await?;
    let (spec, secrets) = create_spec(&mut conn, cx.secrets, &backup, &env).await?;
    playbook_vars(backup.id, &spec, secrets)
}

/// The helper's [`CreateSpec`] for `backup` of `env` (without `php_dir`: the playbook or the
/// node helper adds it) and the secret values in it (storage credentials, data key). Shared
/// with `env_update`, whose pre-update backup is made by the same library call.
pub async fn create_spec(
    conn: &mut AnyConnection,
    secrets: &crate::secrets::Secrets,
    backup: &BackupRecord,
    env: &EnvironmentRecord,
) -> Result<(CreateSpec, Vec<String>), VarsError> {
    let canonical = canonical_url(conn, &env.id)
        .await?
        .unwrap_or_else(|| env.preview_url.clone());
    let access = backup_access(conn, secrets, backup).await?;
    let layout = EnvLayout::new(&env.site_id, &env.id);
    let spec = CreateSpec {
        contract_version: CONTRACT_VERSION,
        backup: BackupMeta {
            backup_id: backup.id.clone(),
            environment_id: env.id.clone(),
            scope: backup.backup_scope,
            created_at: backup.created_at.clone(),
            canonical_url: canonical,
            // Known only on the node: read there (node_helper::backup::meta).
            table_prefix: String::new(),
            wordpress_version: String::new(),
        },
        release: format!("{}/current", layout.env_root).into(),
        env_root: layout.env_root.into(),
        database: layout.db_name,
        storage: access.storage,
        data_key: access.data_key.into(),
        env_user: layout.env_user,
        php_dir: String::new(),
        fast: false,
    };
    Ok((spec, access.secrets))
}

/// The variables of a backup playbook: `backup_id` and `node_spec` (the helper's spec), with
/// the secret values among them (storage credentials, data key) for the output masking.
pub(super) fn playbook_vars(
    backup_id: String,
    spec: &impl Serialize,
    secrets: Vec<String>,
) -> Result<ResolvedVars, VarsError> {
    let spec = serde_json::to_value(spec).map_err(|_| VarsError::Missing("the node spec"))?;
    let mut resolved = ResolvedVars {
        secrets,
        ..Default::default()
    };
    resolved.vars.insert("backup_id".into(), backup_id.into());
    resolved.vars.insert("node_spec".into(), spec);
    Ok(resolved)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn only_a_sha256_checksum_and_a_size_complete_a_backup() {
        let hex = "a".repeat(64);
        let ok = json!({"checksum": format!("sha256:{hex}"), "size_bytes": 10});
        assert_eq!(
            checksum_and_size(&ok),
            Some((&*format!("sha256:{hex}"), 10))
        );
        for bad in [
            json!({}),
            json!({"checksum": format!("sha256:{hex}")}),
            json!({"checksum": hex, "size_bytes": 10}),
            json!({"checksum": "sha256:xyz", "size_bytes": 10}),
            json!({"checksum": format!("sha256:{hex}"), "size_bytes": 0}),
        ] {
            assert_eq!(checksum_and_size(&bad), None, "{bad}");
        }
    }
}
