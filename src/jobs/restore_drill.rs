//! `restore_drill` (issue 14, item 4; beyond the spec — docs/decisions.md "Restore and
//! promotion (issue 14): restore drills"): the site's latest completed full production backup
//! restored into a temporary environment, health-checked there, and the temporary
//! environment removed again, by ONE node-helper call (`pressluft node restore-drill`,
//! src/node_helper/drill.rs, through `restore-drill.yml`). The job ends only after the
//! temporary environment is gone: the helper removes it whatever the restore or the checks
//! found, and reports pass/fail, the reason and each step's duration.
//!
//! The request ([`crate::drills::Drills::start`]) inserted the temporary environment
//! (`cloning`) and the drill record (`running`). The site and production are never touched: a
//! failed drill never makes the site `failed`. A drill that did not pass fails its job with
//! `DRILL_FAILED` (the result file's code; message: the reason). At the end (success, final
//! failure, cancel) the drill record is finished (`passed`/`failed`, reason, duration) and the
//! temporary environment becomes `deleted` — unless a run that may have created it ended
//! without reporting its removal (a lost worker, a host failure after the retries): then it is
//! `failed`, visible, and removed with the environment deletion (`DELETE
//! /api/environments/{id}`). The temporary environment's secrets are forgotten at the end.

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use sqlx::AnyConnection;

use super::errors::JobErrorCode;
use super::gate::go_live_spec;
use super::kinds::{JobKind, ResolvedVars, VarsContext, VarsError};
use super::lifecycle::{
    end_temporary_environment, environment_vars, fix_release_name, new_environment,
    node_must_be_active, site_and_environment, var_str, Unsuccessful,
};
use super::payload::{self, Attempts, Release};
use crate::backups::storage::backup_access;
use crate::clock::parse_ts;
use crate::domain::{BackupStatus, DrillStatus, SiteStatus};
use crate::node_helper::spec::{
    DeleteEnvironment, EnvRestoreSpec, HealthCheckSpec, RestoreBackup, RestoreDrillSpec,
    CONTRACT_VERSION,
};
use crate::sites::environment_secret_keys;
use crate::sites::layout::{url_host, EnvLayout};
use crate::store::backups::fetch_backup;
use crate::store::drills::{fetch_drill, finish_drill, set_drill_timings};
use crate::store::{JobRecord, StoreError};

/// The `restore_drill` job type.
pub struct RestoreDrill;

impl JobKind for RestoreDrill {
    fn playbook(&self) -> &'static str {
        "restore-drill.yml"
    }

    /// The temporary environment's passwords and salts live only as long as the drill.
    fn secrets_to_forget(&self, job: &JobRecord) -> Vec<String> {
        match job.environment_id.as_deref() {
            Some(id) => environment_secret_keys(id),
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

/// The payload of `restore_drill`, built by [`crate::drills::Drills::start`].
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct RestoreDrillPayload {
    /// The drill's record (`restore_drills.id`).
    pub drill_id: String,
    /// The production backup restored.
    pub backup_id: String,
    #[serde(flatten)]
    pub release: Release,
    #[serde(flatten)]
    pub attempts: Attempts,
}

fn read(job: &JobRecord) -> RestoreDrillPayload {
    payload::read::<RestoreDrillPayload>(job)
}

/// The temporary environment is still `cloning`, the drill `running`, the backup a completed
/// full backup of the site's production environment, the node active.
async fn validate_start(
    conn: &mut AnyConnection,
    job: &JobRecord,
) -> Result<Result<(), String>, StoreError> {
    let p = read(job);
    let (site, env) = site_and_environment(conn, job).await?;
    if site.status.is_deletion() {
        return Ok(Err(format!("the site is {}", site.status)));
    }
    if env.status != SiteStatus::Cloning {
        return Ok(Err(format!(
            "the temporary environment is {}, not cloning",
            env.status
        )));
    }
    match fetch_drill(conn, &p.drill_id).await? {
        Some(d) if d.status == DrillStatus::Running && d.environment_id == env.id => {}
        _ => return Ok(Err("the drill's record is not running".into())),
    }
    match fetch_backup(conn, &p.backup_id).await? {
        Some(b)
            if b.status == BackupStatus::Completed
                && b.checksum.is_some()
                && site.primary_environment_id.as_deref() == Some(b.environment_id.as_str()) => {}
        _ => {
            return Ok(Err(format!(
                "the backup {} is not a completed backup of production",
                p.backup_id
            )))
        }
    }
    // An https:// preview host needs the node's wildcard certificate (domains-and-tls.md §4).
    if let Err(m) =
        super::preview_certificate::required_for(conn, &job.node_id, &env.preview_url).await?
    {
        return Ok(Err(m));
    }
    node_must_be_active(conn, job).await
}

async fn on_start(
    conn: &mut AnyConnection,
    job: &mut JobRecord,
    now: &str,
) -> Result<(), StoreError> {
    let id = job.id.clone();
    payload::update(conn, job, |p: &mut RestoreDrillPayload| {
        fix_release_name(&mut p.release, now, &id)
    })
    .await
    .map(drop)
}

/// What the node reported about the steps (`timings` and whether the temporary environment
/// was removed), kept on the drill record.
async fn record_report(
    conn: &mut AnyConnection,
    job: &JobRecord,
    result: &Value,
    now: &str,
) -> Result<(), StoreError> {
    if result.get("removed").is_none() && result.get("timings").is_none() {
        return Ok(());
    }
    let report = json!({
        "timings": result.get("timings").cloned().unwrap_or(Value::Null),
        "removed": result["removed"].as_bool() == Some(true),
        "checks": result.get("checks").cloned().unwrap_or(Value::Null),
    });
    set_drill_timings(conn, &read(job).drill_id, &report.to_string(), now).await
}

/// Whether the drill's record says the node removed the temporary environment.
async fn reported_removed(conn: &mut AnyConnection, job: &JobRecord) -> Result<bool, StoreError> {
    let drill = fetch_drill(conn, &read(job).drill_id).await?;
    Ok(drill
        .and_then(|d| d.timings_json)
        .and_then(|t| serde_json::from_str::<Value>(&t).ok())
        .is_some_and(|t| t["removed"] == Value::Bool(true)))
}

/// Finishes the record and the temporary environment (`deleted`, or `failed` when it may
/// still exist on the node).
async fn finish(
    conn: &mut AnyConnection,
    job: &JobRecord,
    status: DrillStatus,
    reason: Option<&str>,
    env_left: bool,
    now: &str,
) -> Result<(), StoreError> {
    let p = read(job);
    if let Some(drill) = fetch_drill(conn, &p.drill_id).await? {
        // The drill's own time as the node measured it (create, restore, checks, removal);
        // without a report (the run never got there), request to end on this clock.
        let reported = drill
            .timings_json
            .as_deref()
            .and_then(|t| serde_json::from_str::<Value>(t).ok())
            .and_then(|t| t["timings"]["total_ms"].as_i64());
        let duration = match (reported, parse_ts(&drill.started_at), parse_ts(now)) {
            (Some(ms), _, _) => ms,
            (None, Some(a), Some(b)) => (b - a).whole_milliseconds() as i64,
            _ => 0,
        };
        finish_drill(conn, &drill.id, status, reason, duration, now).await?;
        tracing::info!(job = %job.id, drill = %drill.id, status = %status, reason = reason.unwrap_or(""), "restore drill finished");
    }
    let (_, env) = site_and_environment(conn, job).await?;
    end_temporary_environment(conn, &env, env_left, now).await
}

async fn on_success(
    conn: &mut AnyConnection,
    job: &JobRecord,
    result: &Value,
    now: &str,
) -> Result<(), StoreError> {
    record_report(conn, job, result, now).await?;
    // The playbook fails a drill that did not pass with DRILL_FAILED; a success is a pass.
    finish(conn, job, DrillStatus::Passed, None, false, now).await
}

async fn on_partial_result(
    conn: &mut AnyConnection,
    job: &JobRecord,
    result: &Value,
    now: &str,
) -> Result<(), StoreError> {
    record_report(conn, job, result, now).await
}

/// The end of a drill that did not pass.
async fn unsuccessful(
    conn: &mut AnyConnection,
    job: &JobRecord,
    ending: Unsuccessful,
    now: &str,
) -> Result<(), StoreError> {
    let removed = reported_removed(conn, job).await?;
    let env_left = ending.ran(job) && !removed;
    let reason = match ending {
        Unsuccessful::Failed { code, .. } => {
            let message = crate::store::queue::job_error_message(conn, &job.id).await?;
            if code == JobErrorCode::DrillFailed && !message.is_empty() {
                message
            } else if message.is_empty() {
                code.as_str().to_string()
            } else {
                format!("{code}: {message}")
            }
        }
        Unsuccessful::Cancelled { .. } => "cancelled".to_string(),
    };
    let mut reason: String = reason.chars().take(500).collect();
    if env_left {
        reason.push_str(" (the temporary environment may still exist on the node: delete it)");
    }
    finish(conn, job, DrillStatus::Failed, Some(&reason), env_left, now).await
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

/// Variables of `restore-drill.yml` (docs/node-helper.md): those of `env-create.yml` for the
/// temporary environment (the playbook renders its configuration files from the roles'
/// templates) and `node_spec`, the helper's [`RestoreDrillSpec`]. The backup's data key, the
/// S3 secret key and the environment's passwords are secrets of the run.
async fn extra_vars(cx: &VarsContext<'_>, job: &JobRecord) -> Result<ResolvedVars, VarsError> {
    let p = read(job);
    let (mut resolved, site, env) = environment_vars(cx, job).await?;
    let mut conn = cx.store.pool().acquire().await.map_err(StoreError::from)?;
    let backup = fetch_backup(&mut conn, &p.backup_id)
        .await?
        .filter(|b| b.status == BackupStatus::Completed)
        .ok_or(VarsError::Missing("a completed backup"))?;
    let checksum = backup
        .checksum
        .clone()
        .ok_or(VarsError::Missing("the backup's checksum"))?;
    let access = backup_access(&mut conn, cx.secrets, &backup).await?;
    resolved.secrets.extend(access.secrets);
    let layout = EnvLayout::new(&site.id, &env.id);
    let go_live = go_live_spec(&mut conn, &site.id, &env).await?;
    let spec = RestoreDrillSpec {
        contract_version: CONTRACT_VERSION,
        site_id: site.id.clone(),
        env: new_environment(&resolved.vars)?,
        db_name: var_str(&resolved.vars, "db_name")?,
        db_user: var_str(&resolved.vars, "db_user")?,
        restore: EnvRestoreSpec {
            contract_version: CONTRACT_VERSION,
            environment_id: env.id.clone(),
            release_name: var_str(&resolved.vars, "release_name")?,
            // A new environment: no release yet (env-restore then needs the files artifact).
            current_release_name: String::new(),
            backup: RestoreBackup {
                backup_id: backup.id.clone(),
                checksum,
                storage: access.storage,
                data_key: access.data_key.into(),
            },
            db_name: layout.db_name.clone(),
            canonical_url: env.preview_url.clone(),
            redis_cache_enabled: env.redis_cache_enabled,
            pre_backup: None,
            go_live: go_live.clone(),
            node: Default::default(),
        },
        health: HealthCheckSpec {
            contract_version: CONTRACT_VERSION,
            environment_id: env.id.clone(),
            env_root: layout.env_root.clone(),
            env_user: layout.env_user.clone(),
            canonical_url: env.preview_url.clone(),
            hosts: go_live.hosts.clone(),
            php_dir: String::new(),
        },
        delete: DeleteEnvironment {
            environment_id: env.id.clone(),
            env_root: layout.env_root.clone(),
            env_user: layout.env_user.clone(),
            database: layout.db_name.clone(),
            db_user: layout.db_user.clone(),
            redis_prefix: layout.redis_prefix.clone(),
            hosts: vec![url_host(&env.preview_url).to_ascii_lowercase()],
            domain_ids: Vec::new(),
            certificates: Vec::new(),
            final_backup: None,
        },
        node: Default::default(),
        files: Default::default(),
    };
    let spec = serde_json::to_value(&spec).map_err(|_| VarsError::Missing("the node spec"))?;
    resolved.vars.insert("node_spec".into(), spec);
    resolved.vars.insert("drill_id".into(), p.drill_id.into());
    Ok(resolved)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_payload_round_trips() {
        let p = RestoreDrillPayload {
            drill_id: "d".into(),
            backup_id: "b".into(),
            ..Default::default()
        };
        let json = serde_json::to_value(&p).unwrap();
        assert_eq!(json["drill_id"], "d");
        assert_eq!(json["backup_id"], "b");
        let back: RestoreDrillPayload = serde_json::from_value(json).unwrap();
        assert_eq!(back, p);
    }
}
