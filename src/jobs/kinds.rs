//! Per-job-type behaviour, dispatched by [`JobType`]: start-time validation, the resource
//! transitions at start, success, final failure and cancellation, and the playbook.
//!
//! Adding a job type means a module like [`super::node_provision`] and one arm per function
//! here (see docs/adding-a-job-type.md). Types without an arm have no resource effects yet.

use serde_json::Value;

use super::errors::JobErrorCode;
use super::{env_create, node_provision, site_create};
use crate::domain::JobType;
use crate::store::{JobRecord, StoreError};

use sqlx::SqliteConnection;

/// The playbook file (in `ansible/playbooks/`) of a job type.
pub fn playbook(job_type: JobType) -> &'static str {
    match job_type {
        JobType::NodeProvision => "node-provision.yml",
        JobType::SiteCreate => "site-create.yml",
        JobType::SiteImport => "site-import.yml",
        JobType::EnvCreate => "env-create.yml",
        JobType::EnvDeploy => "env-deploy.yml",
        JobType::EnvUpdate => "env-update.yml",
        JobType::EnvRestore => "env-restore.yml",
        JobType::EnvPromote => "env-promote.yml",
        JobType::EnvCacheToggle => "env-cache-toggle.yml",
        JobType::CachePurge => "cache-purge.yml",
        JobType::BackupCreate => "backup-create.yml",
        JobType::DomainAdd => "domain-add.yml",
        JobType::DomainRemove => "domain-remove.yml",
        JobType::DriftCheck => "drift-check.yml",
        JobType::HealthCheck => "health-check.yml",
        JobType::BackupCleanup => "backup-cleanup.yml",
        JobType::ReleaseRollback => "release-rollback.yml",
    }
}

fn job_type(job: &JobRecord) -> JobType {
    job.job_type
        .parse()
        .expect("job_type constrained by the schema")
}

/// Start-time validation (jobs.md §3): `Err(message)` refuses the job with
/// `PRECONDITION_FAILED` before anything runs.
pub async fn validate_start(
    conn: &mut SqliteConnection,
    job: &JobRecord,
) -> Result<Result<(), String>, StoreError> {
    match job_type(job) {
        JobType::NodeProvision => node_provision::validate_start(conn, job).await,
        JobType::SiteCreate => site_create::validate_start(conn, job).await,
        JobType::EnvCreate => env_create::validate_start(conn, job).await,
        _ => Ok(Ok(())),
    }
}

/// Transitions when a run starts, and the run-stable payload fields (which update `job`).
pub async fn on_start(
    conn: &mut SqliteConnection,
    job: &mut JobRecord,
    now: &str,
) -> Result<(), StoreError> {
    match job_type(job) {
        JobType::NodeProvision => node_provision::on_start(conn, job, now).await,
        JobType::SiteCreate => site_create::on_start(conn, job, now).await,
        JobType::EnvCreate => env_create::on_start(conn, job, now).await,
        _ => Ok(()),
    }
}

/// Transitions and recorded results when a run succeeded.
pub async fn on_success(
    conn: &mut SqliteConnection,
    job: &JobRecord,
    result: &Value,
    now: &str,
) -> Result<(), StoreError> {
    match job_type(job) {
        JobType::NodeProvision => node_provision::on_success(conn, job, result, now).await,
        JobType::SiteCreate => site_create::on_success(conn, job, result, now).await,
        JobType::EnvCreate => env_create::on_success(conn, job, result, now).await,
        _ => Ok(()),
    }
}

/// Payload flag: an attempt that ended in a retry may have changed the node (it was not refused
/// by the node's reachability or a pre-mutation check). Set once, never cleared, so a later
/// refusal or a cancel of the queued retry applies the "it ran" transitions (jobs.md §3, §8).
pub const EARLIER_ATTEMPT_RAN: &str = "earlier_attempt_ran";

/// Whether a failed run with `code` may have changed the node.
pub fn may_have_changed(code: JobErrorCode) -> bool {
    !code.pre_mutation() && code != JobErrorCode::AnsibleHostUnreachable
}

/// Whether a failed run with `code` certainly reached the node (a task ran there or the
/// playbook reported a result from it), so the node's `last_seen_at` is refreshed. Unknown
/// cases (lost worker, timeouts, runs that never started) do not count.
pub fn reached_node(code: JobErrorCode) -> bool {
    use JobErrorCode as C;
    matches!(
        code,
        C::AnsibleHostFailed
            | C::PreconditionFailed
            | C::DriftDetected
            | C::BackupChecksumMismatch
            | C::ArchiveInvalid
            | C::SourceFetchFailed
    )
}

/// Whether an earlier attempt of `job` may have changed the node ([`EARLIER_ATTEMPT_RAN`]).
pub fn earlier_attempt_ran(job: &JobRecord) -> bool {
    serde_json::from_str::<Value>(&job.payload_json)
        .ok()
        .and_then(|p| p.get(EARLIER_ATTEMPT_RAN).and_then(Value::as_bool))
        .unwrap_or(false)
}

/// A failed attempt is retried: remember whether it may have changed the node.
pub async fn on_retry(
    conn: &mut SqliteConnection,
    job: &JobRecord,
    code: JobErrorCode,
) -> Result<(), StoreError> {
    if !may_have_changed(code) || earlier_attempt_ran(job) {
        return Ok(());
    }
    // The stored payload, not the in-memory one: it may hold fields fixed since the claim.
    let stored = crate::store::queue::fetch_job(conn, &job.id)
        .await?
        .map(|j| j.payload_json)
        .unwrap_or_else(|| job.payload_json.clone());
    let mut payload = match serde_json::from_str(&stored) {
        Ok(Value::Object(m)) => m,
        _ => serde_json::Map::new(),
    };
    payload.insert(EARLIER_ATTEMPT_RAN.into(), true.into());
    crate::store::queue::set_payload(conn, &job.id, &Value::Object(payload).to_string()).await
}

/// Transitions when the job failed finally (including a start-time refusal, `started = false`;
/// a type that distinguishes runs that changed things also consults [`earlier_attempt_ran`]).
pub async fn on_final_failure(
    conn: &mut SqliteConnection,
    job: &JobRecord,
    code: JobErrorCode,
    started: bool,
    now: &str,
) -> Result<(), StoreError> {
    match job_type(job) {
        JobType::NodeProvision => {
            node_provision::on_final_failure(conn, job, code, started, now).await
        }
        JobType::SiteCreate => site_create::on_final_failure(conn, job, code, started, now).await,
        JobType::EnvCreate => env_create::on_final_failure(conn, job, code, started, now).await,
        _ => Ok(()),
    }
}

/// Transitions when the job was cancelled (`was_running`: after its subprocess stopped; a
/// cancelled queued retry also consults [`earlier_attempt_ran`]).
pub async fn on_cancel(
    conn: &mut SqliteConnection,
    job: &JobRecord,
    was_running: bool,
    now: &str,
) -> Result<(), StoreError> {
    match job_type(job) {
        JobType::NodeProvision => node_provision::on_cancel(conn, job, was_running, now).await,
        JobType::SiteCreate => site_create::on_cancel(conn, job, was_running, now).await,
        JobType::EnvCreate => env_create::on_cancel(conn, job, was_running, now).await,
        _ => Ok(()),
    }
}

/// DB-resolved extra-vars of a run, and which of their values are secret (masked in output).
#[derive(Debug, Default)]
pub struct ResolvedVars {
    pub vars: serde_json::Map<String, Value>,
    pub secrets: Vec<String>,
}

/// Why a job's variables could not be resolved.
#[derive(Debug, thiserror::Error)]
pub enum VarsError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("reading a secret failed: {0}")]
    Secrets(#[from] crate::secrets::SecretsError),
    #[error("{0} is missing")]
    Missing(&'static str),
}

/// The extra-vars a job's playbook needs beyond its payload (jobs.md §12).
pub async fn extra_vars(
    store: &crate::store::Store,
    secrets: &crate::secrets::Secrets,
    config: &crate::config::Config,
    job: &JobRecord,
    node: &crate::store::nodes::NodeRecord,
) -> Result<ResolvedVars, VarsError> {
    match job_type(job) {
        JobType::NodeProvision => Ok(node_provision::extra_vars(store, config, node).await?),
        JobType::SiteCreate => site_create::extra_vars(store, secrets, job, node).await,
        JobType::EnvCreate => env_create::extra_vars(store, secrets, job, node).await,
        _ => Ok(ResolvedVars::default()),
    }
}
