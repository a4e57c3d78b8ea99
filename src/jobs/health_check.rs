//! `health_check`: the health gate after a mutation of an environment (jobs.md §11,
//! backups-restore-promotion.md §6) — HTTP of the canonical URL, WordPress installed, database
//! reachable — run on the node by `pressluft node health-check` (src/node_helper/health.rs)
//! through `health-check.yml`.
//!
//! It is the gate of [`super::gate`]: the follow-up of a gated job (jobs.md §3: claimed first,
//! never refused at start). `passed: true` → the release `healthy`, environment and site
//! `active`, the gated job's audit `succeeded`. A final failure — `HEALTH_CHECK_FAILED` (the
//! message names the failing checks) or any other, which counts as unhealthy — marks the
//! release `unhealthy` with that message as a note and enqueues `release_rollback` from the
//! payload's `rollback_*` fields in the same transaction; environment and site stay
//! `deploying` until the rollback ends. A cancelled gate leaves both `failed` (jobs.md §8).

use serde::{Deserialize, Serialize};

use serde_json::Value;
use sqlx::AnyConnection;

use super::errors::JobErrorCode;
use super::gate;
use super::kinds::{JobKind, ResolvedVars, VarsContext, VarsError};
use super::lifecycle::site_and_environment;
use super::payload::{self, Attempts};
use super::release_rollback::ReleaseRollbackPayload;
use crate::domain::{HealthStatus, JobType, SiteStatus};
use crate::node_helper::spec::{HealthCheckSpec, CONTRACT_VERSION};
use crate::sites::layout::{url_host, EnvLayout};
use crate::store::queue::fetch_job;
use crate::store::releases::{fetch_release, set_release_health};
use crate::store::{JobRecord, StoreError};

/// The `health_check` job type.
pub struct HealthCheck;

impl JobKind for HealthCheck {
    fn playbook(&self) -> &'static str {
        "health-check.yml"
    }

    fn follow_up(&self) -> bool {
        true
    }

    super::kinds::job_hooks!(on_success, on_final_failure, on_cancel, extra_vars);
}

/// Sets the gated release's health; a payload naming no existing release (a gate enqueued by
/// hand) changes no release, logged.
async fn mark(
    conn: &mut AnyConnection,
    job: &JobRecord,
    release_id: &str,
    health: HealthStatus,
    note: Option<&str>,
    now: &str,
) -> Result<(), StoreError> {
    if fetch_release(conn, release_id).await?.is_none() {
        tracing::warn!(id = %job.id, release = release_id, "the gated release does not exist; no health recorded");
        return Ok(());
    }
    set_release_health(conn, release_id, health, note, now).await
}

/// The longest failing-checks text kept in a release note and a rollback's reason.
const REASON_CHARS: usize = 500;

async fn on_success(
    conn: &mut AnyConnection,
    job: &JobRecord,
    result: &Value,
    now: &str,
) -> Result<(), StoreError> {
    if result["passed"].as_bool() != Some(true) {
        // The playbook reports a failed check as HEALTH_CHECK_FAILED; a "success" without
        // `passed: true` is not a pass.
        let reason = format!(
            "health check failed: the checks did not pass: {}",
            result["checks"]
        );
        return unhealthy(conn, job, &reason, now).await;
    }
    let p = payload::read::<HealthCheckPayload>(job);
    mark(conn, job, &p.release_id, HealthStatus::Healthy, None, now).await?;
    gate::both_to(conn, job, SiteStatus::Active, now).await?;
    gate::finish_gated_audit(conn, &p.gated_job_id, "succeeded").await
}

async fn on_final_failure(
    conn: &mut AnyConnection,
    job: &JobRecord,
    code: JobErrorCode,
    _started: bool,
    now: &str,
) -> Result<(), StoreError> {
    // The engine wrote the error message to the row earlier in this transaction.
    let message = fetch_job(conn, &job.id)
        .await?
        .and_then(|j| j.error_message)
        .unwrap_or_default();
    let reason = failing_checks(code, &message);
    unhealthy(conn, job, &reason, now).await
}

/// The note and rollback reason of a failed gate: the message naming the failing checks, or
/// the code of another failure (which counts as unhealthy).
fn failing_checks(code: JobErrorCode, message: &str) -> String {
    let message = message.trim();
    let text = if code == JobErrorCode::HealthCheckFailed && !message.is_empty() {
        if message.starts_with("health check failed") {
            message.to_string()
        } else {
            format!("health check failed: {message}")
        }
    } else {
        format!("health check failed: {code}")
    };
    match text.char_indices().nth(REASON_CHARS) {
        Some((i, _)) => format!("{}…", &text[..i]),
        None => text,
    }
}

/// The gated release is unhealthy: marked so, and the rollback the payload describes enqueued
/// (site and environment stay `deploying`). Without a target there is nothing to roll back to:
/// both `failed`, the gated job's audit `failed`.
async fn unhealthy(
    conn: &mut AnyConnection,
    job: &JobRecord,
    reason: &str,
    now: &str,
) -> Result<(), StoreError> {
    let p = payload::read::<HealthCheckPayload>(job);
    let bad = HealthStatus::Unhealthy;
    mark(conn, job, &p.release_id, bad, Some(reason), now).await?;
    if p.rollback_target_release_id.is_empty() {
        tracing::error!(id = %job.id, "health gate failed with no release to roll back to");
        gate::both_to(conn, job, SiteStatus::Failed, now).await?;
        return gate::finish_gated_audit(conn, &p.gated_job_id, "failed").await;
    }
    let rollback = ReleaseRollbackPayload {
        failed_release_id: p.release_id.clone(),
        target_release_id: p.rollback_target_release_id.clone(),
        restore_backup_id: p.rollback_backup_id.clone(),
        restore_uploads: p.rollback_restore_uploads,
        restore_skip_tables: p.rollback_skip_tables.clone(),
        reason: reason.to_string(),
        attempts: Attempts::default(),
    };
    let id = gate::enqueue_follow_up(conn, job, JobType::ReleaseRollback, &rollback, now).await?;
    tracing::warn!(id = %job.id, release = %p.release_id, rollback = %id, "release unhealthy; rollback enqueued");
    Ok(())
}

/// A cancelled gate: the release's health stays unknown; environment and site `failed`
/// (jobs.md §8), the gated job's audit `failed`.
async fn on_cancel(
    conn: &mut AnyConnection,
    job: &JobRecord,
    _was_running: bool,
    now: &str,
) -> Result<(), StoreError> {
    let p = payload::read::<HealthCheckPayload>(job);
    gate::both_to(conn, job, SiteStatus::Failed, now).await?;
    gate::finish_gated_audit(conn, &p.gated_job_id, "failed").await
}

/// The payload of `health_check` (jobs.md §11): the release it gates, the job it follows and
/// what a rollback restores.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct HealthCheckPayload {
    /// The release the gated job made current.
    pub release_id: String,
    /// The job this one follows up.
    pub gated_job_id: String,
    /// The release current before the gated job.
    pub rollback_target_release_id: String,
    /// The backup a rollback restores from, if any.
    pub rollback_backup_id: Option<String>,
    pub rollback_restore_uploads: bool,
    /// Tables a rollback leaves alone (promotion only).
    pub rollback_skip_tables: Vec<String>,
    #[serde(flatten)]
    pub attempts: Attempts,
}

/// The environment's own hosts: its preview host and the canonical URL's host (its primary
/// domain, when it has one), without repeats.
pub(crate) fn own_hosts(preview_url: &str, canonical: &str) -> Vec<String> {
    let mut hosts = vec![url_host(preview_url).to_ascii_lowercase()];
    let primary = url_host(canonical).to_ascii_lowercase();
    if !hosts.contains(&primary) {
        hosts.push(primary);
    }
    hosts
}

/// Variables of `health-check.yml` (docs/node-helper.md): `node_spec` (what the helper reads;
/// the playbook adds `php_dir`) and `environment_id`. No secrets: the bridge reads the
/// database credentials from the environment's `wp-config.php` on the node.
async fn extra_vars(cx: &VarsContext<'_>, job: &JobRecord) -> Result<ResolvedVars, VarsError> {
    let mut conn = cx.store.pool().acquire().await.map_err(StoreError::from)?;
    let (site, env) = site_and_environment(&mut conn, job).await?;
    let canonical = super::gate::canonical_or_preview(&mut conn, &env).await?;
    let layout = EnvLayout::new(&site.id, &env.id);
    let spec = HealthCheckSpec {
        contract_version: CONTRACT_VERSION,
        environment_id: env.id.clone(),
        env_root: layout.env_root,
        env_user: layout.env_user,
        hosts: own_hosts(&env.preview_url, &canonical),
        canonical_url: canonical,
        php_dir: String::new(),
    };
    super::lifecycle::node_spec_vars(&env.id, &spec, Vec::new())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::jobs::payload::to_json;

    #[test]
    fn a_failed_gate_names_the_failing_checks_or_the_code() {
        let c = JobErrorCode::HealthCheckFailed;
        assert_eq!(
            failing_checks(c, "health check failed: http: HTTP 500"),
            "health check failed: http: HTTP 500"
        );
        assert_eq!(
            failing_checks(c, "db-ping: refused"),
            "health check failed: db-ping: refused"
        );
        assert_eq!(
            failing_checks(JobErrorCode::WorkerLost, "the worker w stopped"),
            "health check failed: WORKER_LOST"
        );
        let long = failing_checks(c, &"é".repeat(2000));
        assert_eq!(long.chars().count(), REASON_CHARS + 1);
    }

    #[test]
    fn the_hosts_are_the_preview_host_and_the_primary_domain() {
        let preview = "http://a1b2c3d4.127-0-0-1.sslip.io";
        assert_eq!(
            own_hosts(preview, preview),
            vec!["a1b2c3d4.127-0-0-1.sslip.io"]
        );
        assert_eq!(
            own_hosts(preview, "https://Shop.Example"),
            vec!["a1b2c3d4.127-0-0-1.sslip.io", "shop.example"]
        );
    }

    #[test]
    fn the_payload_has_the_specified_fields() {
        let json: serde_json::Value =
            serde_json::from_str(&to_json(&HealthCheckPayload::default())).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"release_id": "", "gated_job_id": "",
                "rollback_target_release_id": "", "rollback_backup_id": null,
                "rollback_restore_uploads": false, "rollback_skip_tables": []})
        );
    }
}
