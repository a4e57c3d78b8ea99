//! `safe_update` (issue 16; beyond the spec — docs/decisions.md "Safe updates (issue 16):
//! runs, decisions and scheduling"): production's available updates tried on a throwaway
//! clone first. ONE playbook (`safe-update.yml`) runs existing node-helper commands on the
//! site's node (`update-check`, `env-clone`, `env-update` with the exact versions,
//! `php-fatals`, `env-delete`) and the control plane's own `pressluft safe-update-shots` on
//! the controller (screenshots before and after, the comparison), and reports what it found.
//!
//! The job holds the site; its environment is production (what is checked and, on success,
//! updated). The temporary environment's row (type `clone`, slug `safe-update-<run8>`,
//! `cloning`) is created at the first start and kept in the payload (run-stable: a retry
//! first removes what an earlier attempt left, then clones again). The job ends only after
//! the temporary environment is gone: the playbook removes it in an `always:` block and fails
//! (and retries) when that removal fails.
//!
//! `on_success` decides from the result ([`crate::safe_updates::decide`]): nothing offered →
//! `no_updates` and the unused temporary environment row is deleted again (it never existed
//! on the node); every page passed and no PHP fatal → `applied` and production's `env_update`
//! with the same versions enqueued in the same transaction (its pre-update backup row uses the
//! data key prepared before the run, since hooks cannot write secrets); otherwise `held` with
//! the reasons, the job `succeeded`. A failed or cancelled job finishes the run `failed`; its
//! temporary environment becomes `deleted`, or `failed` (visible, deletable) when a run that
//! may have created it did not report its removal.

mod vars;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use sqlx::AnyConnection;

use super::errors::JobErrorCode;
use super::kinds::JobKind;
use super::lifecycle::{
    end_temporary_environment, fix_release_name, node_must_be_active, site_and_environment,
    Unsuccessful,
};
use super::payload::{self, Attempts, Release};
use crate::domain::{BackupScope, JobType, SafeUpdateOutcome, SiteStatus};
use crate::safe_updates::decide::{decide, summary};
use crate::sites::{environment_secret_keys, layout};
use crate::store::environments::{
    delete_unbuilt_environment, environment_prefix_taken, fetch_environment, insert_environment,
    NewEnvironment,
};
use crate::store::nodes::fetch_node;
use crate::store::queue::NewJob;
use crate::store::safe_updates::{
    clear_temp_environment, fetch_run, finish_run, set_temp_environment, RunFindings,
};
use crate::store::settings::fetch_setting;
use crate::store::{JobRecord, StoreError};
use vars::extra_vars;

/// The `safe_update` job type.
pub struct SafeUpdate;

impl JobKind for SafeUpdate {
    fn playbook(&self) -> &'static str {
        "safe-update.yml"
    }

    /// The temporary environment's passwords and salts live only as long as the run.
    fn secrets_to_forget(&self, job: &JobRecord) -> Vec<String> {
        match read(job).temp_environment_id {
            Some(id) => environment_secret_keys(&id),
            None => Vec::new(),
        }
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

/// The payload of `safe_update`, built by [`crate::safe_updates::SafeUpdates::start`].
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct SafeUpdatePayload {
    /// The run's record (`safe_update_runs.id`).
    pub run_id: String,
    /// The id the pre-update backup of an automatic apply gets (its data key is prepared
    /// before the run).
    pub apply_backup_id: String,
    /// The temporary environment (run-stable: fixed at the first start).
    pub temp_environment_id: Option<String>,
    /// Whether the last attempt reported the temporary environment removed.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub removed: bool,
    /// The temporary environment's release (run-stable).
    #[serde(flatten)]
    pub release: Release,
    #[serde(flatten)]
    pub attempts: Attempts,
}

fn read(job: &JobRecord) -> SafeUpdatePayload {
    payload::read::<SafeUpdatePayload>(job)
}

/// Production (the job's environment) is active, the run `running`, the node active.
async fn validate_start(
    conn: &mut AnyConnection,
    job: &JobRecord,
) -> Result<Result<(), String>, StoreError> {
    let p = read(job);
    let (site, env) = site_and_environment(conn, job).await?;
    if site.status.is_deletion() || site.status == SiteStatus::Failed {
        return Ok(Err(format!("the site is {}", site.status)));
    }
    if site.primary_environment_id.as_deref() != Some(env.id.as_str()) {
        return Ok(Err("the job's environment is not production".into()));
    }
    if env.status != SiteStatus::Active {
        return Ok(Err(format!("production is {}, not active", env.status)));
    }
    match fetch_run(conn, &p.run_id).await? {
        Some(r) if r.outcome == SafeUpdateOutcome::Running => {}
        _ => return Ok(Err("the run's record is not running".into())),
    }
    // The temporary environment's https:// preview host needs the node's wildcard certificate
    // (domains-and-tls.md §4), as a drill's does: refused before anything is created. Its
    // preview URL is the one `on_start` gives it (or gave it, on a retry).
    let preview_url = match &p.temp_environment_id {
        Some(id) => fetch_environment(conn, id).await?.map(|e| e.preview_url),
        None => None,
    };
    let preview_url = match preview_url {
        Some(url) => url,
        None => layout::preview_url(
            &uuid::Uuid::nil().to_string(),
            fetch_setting(conn, "preview_domain").await?.as_deref(),
            "0.0.0.0",
        ),
    };
    if let Err(m) =
        super::preview_certificate::required_for(conn, &job.node_id, &preview_url).await?
    {
        return Ok(Err(m));
    }
    node_must_be_active(conn, job).await
}

/// Fixes the release name and creates the temporary environment's row at the first start.
async fn on_start(
    conn: &mut AnyConnection,
    job: &mut JobRecord,
    now: &str,
) -> Result<(), StoreError> {
    let id = job.id.clone();
    let p = payload::update(conn, job, |p: &mut SafeUpdatePayload| {
        fix_release_name(&mut p.release, now, &id);
        p.removed = false;
    })
    .await?;
    if p.temp_environment_id.is_some() {
        return Ok(());
    }
    let (_, production) = site_and_environment(conn, job).await?;
    let node = fetch_node(conn, &job.node_id)
        .await?
        .ok_or_else(|| StoreError::not_found("node", Some(&job.node_id)))?;
    let preview_domain = fetch_setting(conn, "preview_domain").await?;
    let env_id = loop {
        let id = uuid::Uuid::new_v4().to_string();
        if !environment_prefix_taken(conn, &id).await? {
            break id;
        }
    };
    let preview_url = layout::preview_url(
        &env_id,
        preview_domain.as_deref(),
        node.public_ip.as_deref().unwrap_or_default(),
    );
    let run8: String = p.run_id.chars().take(8).collect();
    let slug = format!("safe-update-{run8}");
    let name = format!(
        "Safe update {}",
        now.get(..16).unwrap_or(now).replace('T', " ")
    );
    insert_environment(
        conn,
        &NewEnvironment {
            id: &env_id,
            site_id: &production.site_id,
            name: &name,
            slug: &slug,
            environment_type: "clone",
            status: SiteStatus::Cloning,
            node_id: &node.id,
            source_environment_id: Some(&production.id),
            promotion_preset: &production.promotion_preset,
            preview_url: &preview_url,
        },
        now,
    )
    .await?;
    set_temp_environment(conn, &p.run_id, &env_id, now).await?;
    payload::update(conn, job, |p: &mut SafeUpdatePayload| {
        p.temp_environment_id = Some(env_id.clone())
    })
    .await?;
    tracing::info!(job = %job.id, run = %p.run_id, environment = %env_id, "safe update: temporary environment row created");
    Ok(())
}

/// The temporary environment's end: `deleted` (or `failed` when it may still exist on the
/// node).
async fn end_temp_environment(
    conn: &mut AnyConnection,
    job: &JobRecord,
    env_left: bool,
    now: &str,
) -> Result<(), StoreError> {
    let Some(id) = read(job).temp_environment_id else {
        return Ok(());
    };
    let Some(env) = fetch_environment(conn, &id).await? else {
        return Ok(());
    };
    end_temporary_environment(conn, &env, env_left, now).await
}

/// A run that found nothing to update never created its temporary environment on the node:
/// its row goes again (the run records none).
async fn drop_unused_environment(
    conn: &mut AnyConnection,
    job: &JobRecord,
    run_id: &str,
) -> Result<(), StoreError> {
    let Some(id) = read(job).temp_environment_id else {
        return Ok(());
    };
    clear_temp_environment(conn, run_id).await?;
    delete_unbuilt_environment(conn, &id).await
}

/// Production's `env_update` with exactly `versions`, enqueued in this transaction, with its
/// pre-update backup row (`apply_backup_id`, whose data key was prepared before the run).
/// `Err(reason)` when production cannot be updated now.
async fn enqueue_apply(
    conn: &mut AnyConnection,
    job: &JobRecord,
    updates: &[crate::safe_updates::decide::FoundUpdate],
    now: &str,
) -> Result<Result<String, String>, StoreError> {
    let p = read(job);
    let (site, production) = site_and_environment(conn, job).await?;
    if site.status.is_deletion() || site.status == SiteStatus::Failed {
        return Ok(Err(format!("the site is {}", site.status)));
    }
    if production.status.is_deletion() || production.status == SiteStatus::Failed {
        return Ok(Err(format!("production is {}", production.status)));
    }
    if p.apply_backup_id.is_empty() {
        return Ok(Err("no pre-update backup was prepared".into()));
    }
    crate::backups::insert_pending(
        conn,
        &production,
        &p.apply_backup_id,
        BackupScope::Full,
        now,
    )
    .await?;
    let payload = crate::safe_updates::service::apply_payload(&p.apply_backup_id, updates);
    let apply = NewJob {
        id: uuid::Uuid::new_v4().to_string(),
        job_type: JobType::EnvUpdate,
        site_id: Some(site.id.clone()),
        environment_id: Some(production.id.clone()),
        node_id: production.node_id.clone(),
        payload_json: payload.to_string(),
        max_attempts: super::kinds::kind(JobType::EnvUpdate).max_attempts(),
        parent_job_id: None,
    };
    super::Engine::enqueue(conn, &apply, now).await?;
    Ok(Ok(apply.id))
}

async fn on_success(
    conn: &mut AnyConnection,
    job: &JobRecord,
    result: &Value,
    now: &str,
) -> Result<(), StoreError> {
    let p = read(job);
    let d = decide(result);
    let mut findings = RunFindings {
        updates_json: serde_json::to_string(&d.updates).unwrap_or_default(),
        pages_json: serde_json::to_string(&d.pages).unwrap_or_default(),
        fatals_json: serde_json::to_string(&d.fatals).unwrap_or_default(),
        ..Default::default()
    };
    let mut outcome = d.outcome;
    match outcome {
        SafeUpdateOutcome::NoUpdates => {
            drop_unused_environment(conn, job, &p.run_id).await?;
        }
        SafeUpdateOutcome::Applied => {
            end_temp_environment(conn, job, false, now).await?;
            match enqueue_apply(conn, job, &d.updates, now).await? {
                Ok(apply_job) => findings.apply_job_id = Some(apply_job),
                Err(reason) => {
                    outcome = SafeUpdateOutcome::Held;
                    findings.reason = Some(format!(
                        "every page passed, but production could not be updated: {reason}"
                    ));
                }
            }
        }
        _ => {
            end_temp_environment(conn, job, false, now).await?;
            let reasons = summary(&d);
            findings.reason = Some(reasons.join("; ").chars().take(1000).collect());
        }
    }
    finish_run(conn, &p.run_id, outcome, &findings, now).await?;
    tracing::info!(job = %job.id, run = %p.run_id, outcome = %outcome, updates = d.updates.len(), apply_job = findings.apply_job_id.as_deref().unwrap_or("-"), "safe-update run finished");
    Ok(())
}

/// A failed attempt's report: whether the temporary environment was removed.
async fn on_partial_result(
    conn: &mut AnyConnection,
    job: &JobRecord,
    result: &Value,
    _now: &str,
) -> Result<(), StoreError> {
    let removed = result["removed"] == Value::Bool(true);
    payload::update_stored(conn, job, |p: &mut SafeUpdatePayload| p.removed = removed).await
}

async fn unsuccessful(
    conn: &mut AnyConnection,
    job: &JobRecord,
    ending: Unsuccessful,
    now: &str,
) -> Result<(), StoreError> {
    // The stored payload: a partial result may have recorded the removal since the claim.
    let stored = crate::store::queue::fetch_job(conn, &job.id)
        .await?
        .unwrap_or_else(|| job.clone());
    let p = read(&stored);
    let env_left = ending.ran(job) && !p.removed;
    let mut reason = match ending {
        Unsuccessful::Failed { code, .. } => {
            let message = crate::store::queue::job_error_message(conn, &job.id).await?;
            if message.is_empty() {
                code.as_str().to_string()
            } else {
                format!("{code}: {message}")
            }
        }
        Unsuccessful::Cancelled { .. } => "cancelled".to_string(),
    }
    .chars()
    .take(500)
    .collect::<String>();
    if env_left {
        reason.push_str(" (the temporary environment may still exist on the node: delete it)");
    }
    end_temp_environment(conn, &stored, env_left, now).await?;
    let findings = RunFindings {
        reason: Some(reason),
        ..Default::default()
    };
    finish_run(conn, &p.run_id, SafeUpdateOutcome::Failed, &findings, now).await?;
    tracing::info!(job = %job.id, run = %p.run_id, env_left, "safe-update run failed");
    Ok(())
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_payload_round_trips() {
        let p = SafeUpdatePayload {
            run_id: "r".into(),
            apply_backup_id: "b".into(),
            temp_environment_id: Some("e".into()),
            ..Default::default()
        };
        let json = serde_json::to_value(&p).unwrap();
        assert_eq!(json["run_id"], "r");
        assert_eq!(json["temp_environment_id"], "e");
        let back: SafeUpdatePayload = serde_json::from_value(json).unwrap();
        assert_eq!(back, p);
    }
}
