//! The health gate (jobs.md §3, §7, §8; backups-restore-promotion.md §6): what the job types
//! that change an existing environment's live release share — `env_deploy`, `env_update` and a
//! manual `release_rollback` — and what their follow-ups (`health_check`, then
//! `release_rollback`) do when the gate ends.
//!
//! A gated job makes its site and environment `deploying` at its start; its success records
//! the new current release and enqueues `health_check` in the same transaction, leaving both
//! `deploying` and its audit row `accepted` ([`super::kinds::JobKind::health_gated`]). The gate
//! ends the audit: `succeeded` when the check passed, `failed` when a rollback followed (or
//! the gate was cancelled or its rollback failed).
//!
//! What `env_deploy` and `env_update` share beyond that: the release name and rollback target
//! fixed at the first start ([`enter_fixing_release`]) and the success that records the built
//! release and enqueues its gate ([`gate_built_release`]). Also the part of the gated kinds'
//! node specs that makes a release live ([`go_live_spec`]).

use serde::{Deserialize, Serialize};
use serde_json::Value;
use sqlx::AnyConnection;
use uuid::Uuid;

use super::engine::Engine;
use super::errors::JobErrorCode;
use super::health_check::{own_hosts, HealthCheckPayload};
use super::lifecycle::{
    environment_to, fix_release_name, node_must_be_active, release_busy_environment,
    release_busy_site, site_and_environment, site_to, Unsuccessful,
};
use super::payload::{self, Release};
use crate::domain::{JobType, SiteStatus};
use crate::node_helper::releases::RELEASE_KEEP;
use crate::node_helper::spec::GoLive;
use crate::sites::layout::EnvLayout;
use crate::store::audit::finish_audit_for_job;
use crate::store::environments::{canonical_url, EnvironmentRecord};
use crate::store::queue::NewJob;
use crate::store::releases::{record_release, NewRelease};
use crate::store::{JobRecord, StoreError};

/// The status of a site and environment while a gated job or its gate runs.
pub const BUSY: SiteStatus = SiteStatus::Deploying;
/// Start-time check of a gated operation's pre-operation backup (`what`: "pre-update",
/// "pre-import"): it must exist, belong to the job's environment and not have failed.
pub async fn pre_backup_usable(
    conn: &mut AnyConnection,
    job: &JobRecord,
    id: &str,
    what: &str,
) -> Result<Result<(), String>, StoreError> {
    use crate::domain::BackupStatus;
    match crate::store::backups::fetch_backup(conn, id).await? {
        Some(b)
            if job.environment_id.as_deref() == Some(b.environment_id.as_str())
                && matches!(
                    b.status,
                    BackupStatus::Pending | BackupStatus::Running | BackupStatus::Completed
                ) =>
        {
            Ok(Ok(()))
        }
        Some(b) => Ok(Err(format!(
            "the {what} backup {id} is {} or of another environment",
            b.status
        ))),
        None => Ok(Err(format!("the {what} backup {id} does not exist"))),
    }
}

/// Start-time validation of a gated job (jobs.md §3): the environment and its site `active`
/// (a retry finds them `deploying` from its first run), the environment with a current
/// release, the node `active`.
pub async fn validate_start(
    conn: &mut AnyConnection,
    job: &JobRecord,
) -> Result<Result<(), String>, StoreError> {
    validate_start_as(conn, job, BUSY).await
}

/// [`validate_start`] of a gated kind whose busy status is `busy` (`restoring` for a restore
/// or an import).
pub async fn validate_start_as(
    conn: &mut AnyConnection,
    job: &JobRecord,
    busy: SiteStatus,
) -> Result<Result<(), String>, StoreError> {
    let (site, env) = site_and_environment(conn, job).await?;
    let ok = |s: SiteStatus| s == SiteStatus::Active || (job.attempt_count > 1 && s == busy);
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
    node_must_be_active(conn, job).await
}

/// Site and environment → `deploying` (a retry finds them there).
pub async fn enter(conn: &mut AnyConnection, job: &JobRecord, now: &str) -> Result<(), StoreError> {
    both_to(conn, job, BUSY, now).await
}

/// Site and environment → `to`.
pub async fn both_to(
    conn: &mut AnyConnection,
    job: &JobRecord,
    to: SiteStatus,
    now: &str,
) -> Result<(), StoreError> {
    let (site, env) = site_and_environment(conn, job).await?;
    site_to(conn, &site, to, now).await?;
    environment_to(conn, &env, to, now).await
}

/// Site and environment → `to`, and the job's own audit ended with `result`.
pub async fn end(
    conn: &mut AnyConnection,
    job: &JobRecord,
    to: SiteStatus,
    result: &str,
    now: &str,
) -> Result<(), StoreError> {
    both_to(conn, job, to, now).await?;
    finish_gated_audit(conn, &job.id, result).await
}

/// The part of a release-building gated job's payload fixed at its first start: the run-stable
/// `release_name` and the rollback target (the environment's current release then).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct FixedRelease {
    #[serde(flatten)]
    pub release: Release,
    pub previous_release_id: Option<String>,
}

/// [`enter`], then the payload's [`FixedRelease`] fixed (a retry keeps what the first start
/// fixed).
pub async fn enter_fixing_release(
    conn: &mut AnyConnection,
    job: &mut JobRecord,
    now: &str,
) -> Result<(), StoreError> {
    enter_fixing_release_as(conn, job, BUSY, now).await
}

/// [`enter_fixing_release`] of a gated kind whose busy status is `busy`.
pub async fn enter_fixing_release_as(
    conn: &mut AnyConnection,
    job: &mut JobRecord,
    busy: SiteStatus,
    now: &str,
) -> Result<(), StoreError> {
    both_to(conn, job, busy, now).await?;
    let (_, env) = site_and_environment(conn, job).await?;
    let id = job.id.clone();
    payload::update(conn, job, |p: &mut FixedRelease| {
        fix_release_name(&mut p.release, now, &id);
        if p.previous_release_id.is_none() {
            p.previous_release_id = env.current_release_id.clone();
        }
    })
    .await
    .map(drop)
}

/// Records a gated operation's pre-operation backup `id` from a successful run's
/// `result["pre_backup"]`: true when it is `completed` (now, or already by an earlier attempt);
/// a run that reported no valid one fails it (`what`: "pre-update", "pre-restore", …).
pub async fn pre_backup_completed(
    conn: &mut AnyConnection,
    job: &JobRecord,
    id: &str,
    result: &Value,
    what: &str,
    now: &str,
) -> Result<bool, StoreError> {
    use super::backup_create::{complete_backup_from, fail_backup, RESULT_WITHOUT_CHECKSUM};
    if complete_backup_from(conn, id, &result["pre_backup"], now).await? {
        return Ok(true);
    }
    let status = crate::store::backups::fetch_backup(conn, id)
        .await?
        .map(|b| b.status);
    if status == Some(crate::domain::BackupStatus::Completed) {
        return Ok(true);
    }
    tracing::warn!(job = %job.id, backup = %id, "{} reported no valid {what} backup; it failed", job.job_type);
    fail_backup(conn, id, Some(RESULT_WITHOUT_CHECKSUM), now).await?;
    Ok(false)
}

/// The `on_partial_result` of a gated operation with a pre-operation backup `id`: a failed
/// attempt that reported it leaves it `completed` (a retry finds it so and does not make it
/// again).
pub async fn pre_backup_partial(
    conn: &mut AnyConnection,
    job: &JobRecord,
    id: &str,
    result: &Value,
    what: &str,
    now: &str,
) -> Result<(), StoreError> {
    use super::backup_create::complete_backup_from;
    if complete_backup_from(conn, id, &result["pre_backup"], now).await? {
        tracing::info!(job = %job.id, backup = %id, "{what} backup completed before the run failed");
    }
    Ok(())
}

/// The release names a release-building gated job's vars need: the run-stable new release
/// (fixed at the first start) and the directory of the release it replaces (the rollback
/// target fixed then, else the environment's current release).
pub async fn release_names(
    cx: &super::kinds::VarsContext<'_>,
    job: &JobRecord,
    env: &EnvironmentRecord,
) -> Result<(String, String), super::kinds::VarsError> {
    let fixed: FixedRelease = payload::read(job);
    let release_name = fixed
        .release
        .release_name
        .ok_or(super::kinds::VarsError::Missing(
            "the release name (fixed at the job's start)",
        ))?;
    let previous = fixed
        .previous_release_id
        .or_else(|| env.current_release_id.clone());
    let current = super::lifecycle::release_dir_name(cx, previous).await?;
    Ok((release_name, current))
}

/// What a release-building gated job records of the release it built.
pub struct BuiltRelease<'a> {
    pub source_type: &'a str,
    pub source_ref: &'a str,
    pub notes: &'a str,
    /// The backup the gate's rollback restores the database from, if any.
    pub rollback_backup_id: Option<String>,
    /// Whether that rollback restores `shared/uploads` too (an import replaced them).
    pub rollback_restore_uploads: bool,
}

/// A release-building gated job's success (its result named the payload's release: the
/// kind's [`check_result`]): the release is recorded as current (health `unknown`) and its
/// `health_check` enqueued, rolling back to the payload's `previous_release_id`.
pub async fn gate_built_release(
    conn: &mut AnyConnection,
    job: &JobRecord,
    built: BuiltRelease<'_>,
    now: &str,
) -> Result<(), StoreError> {
    gate_built_release_skipping(conn, job, built, Vec::new(), now).await
}

/// [`gate_built_release`] whose rollback leaves `skip_tables` (without prefix) as they are
/// (`env_promote`: the preset's protected tables, backups-restore-promotion.md §5–6).
pub async fn gate_built_release_skipping(
    conn: &mut AnyConnection,
    job: &JobRecord,
    built: BuiltRelease<'_>,
    skip_tables: Vec<String>,
    now: &str,
) -> Result<(), StoreError> {
    // [`check_result`] accepted the run's result: it named the payload's release.
    let fixed = payload::read::<FixedRelease>(job);
    let name = fixed.release.release_name.unwrap_or_default();
    let (site, env) = site_and_environment(conn, job).await?;
    let path = EnvLayout::new(&site.id, &env.id).release_path(&name);
    let release_id = Uuid::new_v4().to_string();
    record_release(
        conn,
        &env,
        &NewRelease {
            id: &release_id,
            environment_id: &env.id,
            source_type: built.source_type,
            source_ref: built.source_ref,
            path: &path,
            notes: Some(built.notes),
            job_id: &job.id,
        },
        now,
    )
    .await?;
    let gate = HealthCheckPayload {
        release_id,
        gated_job_id: job.id.clone(),
        rollback_target_release_id: fixed.previous_release_id.unwrap_or_default(),
        rollback_backup_id: built.rollback_backup_id,
        rollback_restore_uploads: built.rollback_restore_uploads,
        rollback_skip_tables: skip_tables,
        ..Default::default()
    };
    enqueue_follow_up(conn, job, JobType::HealthCheck, &gate, now)
        .await
        .map(drop)
}

/// A gated job ended without success: site and environment back to `active` when nothing
/// changed (a pre-mutation failure, a refusal), `failed` otherwise
/// ([`release_busy_site`]'s rule, for both).
pub async fn release_busy(
    conn: &mut AnyConnection,
    job: &JobRecord,
    ending: Unsuccessful,
    now: &str,
) -> Result<(), StoreError> {
    release_busy_as(conn, job, BUSY, ending, now).await
}

/// [`release_busy`] of a gated kind whose busy status is `busy`.
pub async fn release_busy_as(
    conn: &mut AnyConnection,
    job: &JobRecord,
    busy: SiteStatus,
    ending: Unsuccessful,
    now: &str,
) -> Result<(), StoreError> {
    let (site, env) = site_and_environment(conn, job).await?;
    release_busy_site(conn, job, &site, busy, ending, now).await?;
    release_busy_environment(conn, job, &env, busy, ending, now).await
}

/// The `on_final_failure` hook of a gated job: [`release_busy`].
pub async fn on_final_failure(
    conn: &mut AnyConnection,
    job: &JobRecord,
    code: JobErrorCode,
    started: bool,
    now: &str,
) -> Result<(), StoreError> {
    release_busy(conn, job, Unsuccessful::Failed { code, started }, now).await
}

/// The `on_cancel` hook of a gated job: [`release_busy`].
pub async fn on_cancel(
    conn: &mut AnyConnection,
    job: &JobRecord,
    was_running: bool,
    now: &str,
) -> Result<(), StoreError> {
    release_busy(conn, job, Unsuccessful::Cancelled { was_running }, now).await
}

/// Enqueues a follow-up of `parent` (same site, environment and node; `parent_job_id` set)
/// inside the parent's completion transaction; the engine wakes a worker after the commit.
/// Returns the new job's id.
pub async fn enqueue_follow_up<P: Serialize>(
    conn: &mut AnyConnection,
    parent: &JobRecord,
    job_type: JobType,
    payload: &P,
    now: &str,
) -> Result<String, StoreError> {
    let id = Uuid::new_v4().to_string();
    let job = NewJob {
        id: id.clone(),
        job_type,
        site_id: parent.site_id.clone(),
        environment_id: parent.environment_id.clone(),
        node_id: parent.node_id.clone(),
        payload_json: super::payload::to_json(payload),
        max_attempts: super::kinds::kind(job_type).max_attempts(),
        parent_job_id: Some(parent.id.clone()),
    };
    Engine::enqueue(conn, &job, now).await?;
    Ok(id)
}

/// Ends the audit rows of the gated job `gated_job_id` (api.md §6) with `result`.
pub async fn finish_gated_audit(
    conn: &mut AnyConnection,
    gated_job_id: &str,
    result: &str,
) -> Result<(), StoreError> {
    let n = finish_audit_for_job(conn, gated_job_id, result).await?;
    if n > 0 {
        tracing::info!(
            job = gated_job_id,
            result,
            "gated job's audit finished by its gate"
        );
    }
    Ok(())
}

/// The `check_result` of a release-building gated kind: the run must report the release the
/// payload fixed (`release_name`); a run that reports another one, or none, did not do what
/// it was asked, and its job fails.
pub fn check_result(job: &JobRecord, result: &Value) -> Result<(), String> {
    let expected = payload::read::<FixedRelease>(job).release.release_name;
    let reported = result["release_name"].as_str();
    match (reported, expected.as_deref()) {
        (Some(r), Some(e)) if r == e => Ok(()),
        (Some(r), Some(e)) => Err(format!(
            "it reported release {r}, not {e} it was asked to build"
        )),
        (None, _) => Err("it reported no release".into()),
        (Some(_), None) => {
            Err("it reported a release, but none was fixed when the job started".into())
        }
    }
}

/// The environment's canonical URL: its primary domain's, else its preview URL.
pub async fn canonical_or_preview(
    conn: &mut AnyConnection,
    env: &EnvironmentRecord,
) -> Result<String, StoreError> {
    Ok(canonical_url(conn, &env.id)
        .await?
        .unwrap_or_else(|| env.preview_url.clone()))
}

/// The node spec's [`GoLive`] of `env` (of site `site_id`): what making a release live needs —
/// its root, user, own hosts (preview host, then primary domain), Redis prefix and how many
/// releases it keeps.
pub async fn go_live_spec(
    conn: &mut AnyConnection,
    site_id: &str,
    env: &EnvironmentRecord,
) -> Result<GoLive, StoreError> {
    let canonical = canonical_or_preview(conn, env).await?;
    let layout = EnvLayout::new(site_id, &env.id);
    Ok(GoLive {
        env_root: layout.env_root,
        env_user: layout.env_user,
        hosts: own_hosts(&env.preview_url, &canonical),
        redis_prefix: layout.redis_prefix,
        release_keep: RELEASE_KEEP,
    })
}
