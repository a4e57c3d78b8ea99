//! `env_delete` and `site_delete` (issue 13; the spec leaves deletion out, docs/decisions.md
//! "Operator toolkit (issue 13): delete"): one staging or clone environment, or a whole site
//! with every environment it has, removed from the node by `pressluft node env-delete`
//! (src/node_helper/delete.rs) through `env-delete.yml` / `site-delete.yml`, after a final full
//! backup of each environment that has a release. The two kinds share this module: they differ
//! only in their playbook and in what becomes of the site.
//!
//! The request (src/sites/delete.rs) moved the targets (and, for `site_delete`, the site) to
//! `deleting` and inserted the final backups `pending`; the payload remembers the statuses
//! before it. A row that is `deleting` is changed by nothing but these kinds
//! (`store::sites::set_lifecycle_status`). At the start the backups become `running`; a
//! success completes them from the result, moves the targets (and the site) to `deleted` with
//! `deleted_at` and removes the targets' domain rows. A failed attempt that reported completed
//! backups keeps them (a retry does not make them again). A final failure or a cancel: when
//! the job may have changed the node the targets (and the site) are `failed` (a delete can be
//! asked again from there), otherwise they go back to the statuses before the request; backups
//! not completed are `failed`.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use sqlx::AnyConnection;

use super::backup_create::{complete_backup_from, create_spec, fail_backup, start_backup};
use super::errors::JobErrorCode;
use super::kinds::{JobKind, ResolvedVars, VarsContext, VarsError};
use super::lifecycle::{node_must_be_active, Unsuccessful};
use super::payload::{self, Attempts};
use crate::domain::{BackupStatus, SiteStatus};
use crate::node_helper::spec::CONTRACT_VERSION;
use crate::node_helper::spec::{DeleteEnvironment, EnvDeleteSpec};
use crate::sites::layout::{url_host, EnvLayout};
use crate::store::backups::fetch_backup;
use crate::store::environments::{fetch_environment, EnvironmentRecord};
use crate::store::sites::{fetch_site, set_deletion_status, SiteRecord};
use crate::store::{JobRecord, StoreError};

/// The `env_delete` job type: one non-production environment.
pub struct EnvDelete;

/// The `site_delete` job type: every environment of a site, then the site.
pub struct SiteDelete;

impl JobKind for EnvDelete {
    fn playbook(&self) -> &'static str {
        "env-delete.yml"
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

impl JobKind for SiteDelete {
    fn playbook(&self) -> &'static str {
        "site-delete.yml"
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

/// One environment a delete job removes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DeleteTarget {
    pub environment_id: String,
    /// Its status before the request (restored when the job ends without having run).
    pub previous_status: SiteStatus,
    /// Its final full backup (`None`: it never had a release, so there is nothing to keep).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub final_backup_id: Option<String>,
}

/// The payload of `env_delete` and `site_delete`, built by [`crate::sites::Deletions`].
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct DeletePayload {
    pub environments: Vec<DeleteTarget>,
    /// `site_delete`: the site's status before the request; `None` for `env_delete`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub site_previous_status: Option<SiteStatus>,
    #[serde(flatten)]
    pub attempts: Attempts,
}

fn is_site_delete(job: &JobRecord) -> bool {
    job.job_type == crate::domain::JobType::SiteDelete
}

async fn job_site(conn: &mut AnyConnection, job: &JobRecord) -> Result<SiteRecord, StoreError> {
    let id = job.site_id.as_deref();
    fetch_site(conn, id.unwrap_or_default())
        .await?
        .ok_or_else(|| StoreError::not_found("site", id))
}

async fn target_env(conn: &mut AnyConnection, id: &str) -> Result<EnvironmentRecord, StoreError> {
    fetch_environment(conn, id)
        .await?
        .ok_or_else(|| StoreError::not_found("environment", Some(id)))
}

/// The targets are still `deleting` (set at the request; nothing else moves them), their final
/// backups still to be made or made, the node active.
async fn validate_start(
    conn: &mut AnyConnection,
    job: &JobRecord,
) -> Result<Result<(), String>, StoreError> {
    let p = payload::read::<DeletePayload>(job);
    let site = job_site(conn, job).await?;
    if is_site_delete(job) && site.status != SiteStatus::Deleting {
        return Ok(Err(format!("the site is {}, not deleting", site.status)));
    }
    if p.environments.is_empty() && !is_site_delete(job) {
        return Ok(Err("the job names no environment".into()));
    }
    for t in &p.environments {
        let env = target_env(conn, &t.environment_id).await?;
        if env.site_id != site.id {
            return Ok(Err(format!("environment {} is of another site", env.id)));
        }
        if env.status != SiteStatus::Deleting {
            return Ok(Err(format!(
                "environment {} is {}, not deleting",
                env.id, env.status
            )));
        }
        if let Some(id) = &t.final_backup_id {
            match fetch_backup(conn, id).await? {
                Some(b)
                    if b.environment_id == env.id
                        && matches!(
                            b.status,
                            BackupStatus::Pending | BackupStatus::Running | BackupStatus::Completed
                        ) => {}
                _ => return Ok(Err(format!("the final backup {id} cannot be made"))),
            }
        }
    }
    node_must_be_active(conn, job).await
}

async fn on_start(
    conn: &mut AnyConnection,
    job: &mut JobRecord,
    now: &str,
) -> Result<(), StoreError> {
    for t in payload::read::<DeletePayload>(job).environments {
        if let Some(id) = &t.final_backup_id {
            start_backup(conn, id, now).await?;
        }
    }
    Ok(())
}

/// Completes the final backups the result reports (`final_backups`, by environment).
async fn complete_final_backups(
    conn: &mut AnyConnection,
    job: &JobRecord,
    result: &Value,
    now: &str,
) -> Result<(), StoreError> {
    let p = payload::read::<DeletePayload>(job);
    for reported in result["final_backups"].as_array().into_iter().flatten() {
        let Some(t) = p.environments.iter().find(|t| {
            t.final_backup_id.as_deref() == reported["backup_id"].as_str()
                && Some(t.environment_id.as_str()) == reported["environment_id"].as_str()
        }) else {
            continue;
        };
        let id = t.final_backup_id.as_deref().unwrap_or_default();
        if complete_backup_from(conn, id, reported, now).await? {
            tracing::info!(job = %job.id, backup = %id, environment = %t.environment_id, "final backup completed");
        }
    }
    Ok(())
}

async fn on_partial_result(
    conn: &mut AnyConnection,
    job: &JobRecord,
    result: &Value,
    now: &str,
) -> Result<(), StoreError> {
    complete_final_backups(conn, job, result, now).await
}

/// Moves a target environment with the delete kinds' own status change.
async fn env_to(
    conn: &mut AnyConnection,
    id: &str,
    to: SiteStatus,
    now: &str,
) -> Result<(), StoreError> {
    let env = target_env(conn, id).await?;
    let from = (env.status, env.state_version);
    set_deletion_status(conn, "environment", &env.id, from, to, now).await
}

async fn site_to(
    conn: &mut AnyConnection,
    job: &JobRecord,
    to: SiteStatus,
    now: &str,
) -> Result<(), StoreError> {
    let site = job_site(conn, job).await?;
    let from = (site.status, site.state_version);
    set_deletion_status(conn, "site", &site.id, from, to, now).await
}

async fn on_success(
    conn: &mut AnyConnection,
    job: &JobRecord,
    result: &Value,
    now: &str,
) -> Result<(), StoreError> {
    complete_final_backups(conn, job, result, now).await?;
    let p = payload::read::<DeletePayload>(job);
    for t in &p.environments {
        if let Some(id) = &t.final_backup_id {
            if fetch_backup(conn, id).await?.map(|b| b.status) != Some(BackupStatus::Completed) {
                tracing::warn!(job = %job.id, backup = %id, "the delete reported no valid final backup; it failed");
                fail_backup(
                    conn,
                    id,
                    Some(super::backup_create::RESULT_WITHOUT_CHECKSUM),
                    now,
                )
                .await?;
            }
        }
        // Its domains are gone from the node: their rows go (hostnames free again).
        crate::store::domains::delete_environment_domains(conn, &t.environment_id).await?;
        env_to(conn, &t.environment_id, SiteStatus::Deleted, now).await?;
    }
    if is_site_delete(job) {
        site_to(conn, job, SiteStatus::Deleted, now).await?;
    }
    Ok(())
}

/// The end of a job that did not succeed: `failed` when it may have changed the node, else
/// back to the statuses before the request; final backups not completed `failed`.
async fn unsuccessful(
    conn: &mut AnyConnection,
    job: &JobRecord,
    ending: Unsuccessful,
    code: Option<JobErrorCode>,
    now: &str,
) -> Result<(), StoreError> {
    let p = payload::read::<DeletePayload>(job);
    let ran = ending.ran(job);
    for t in &p.environments {
        if let Some(id) = &t.final_backup_id {
            fail_backup(conn, id, code, now).await?;
        }
        let to = if ran {
            SiteStatus::Failed
        } else {
            t.previous_status
        };
        env_to(conn, &t.environment_id, to, now).await?;
    }
    if let Some(previous) = p.site_previous_status {
        let to = if ran { SiteStatus::Failed } else { previous };
        site_to(conn, job, to, now).await?;
    }
    Ok(())
}

async fn on_final_failure(
    conn: &mut AnyConnection,
    job: &JobRecord,
    code: JobErrorCode,
    started: bool,
    now: &str,
) -> Result<(), StoreError> {
    let ending = Unsuccessful::Failed { code, started };
    unsuccessful(conn, job, ending, Some(code), now).await
}

async fn on_cancel(
    conn: &mut AnyConnection,
    job: &JobRecord,
    was_running: bool,
    now: &str,
) -> Result<(), StoreError> {
    unsuccessful(
        conn,
        job,
        Unsuccessful::Cancelled { was_running },
        None,
        now,
    )
    .await
}

/// Variables of `env-delete.yml` / `site-delete.yml` (docs/node-helper.md): `node_spec`, the
/// helper's [`EnvDeleteSpec`] (the playbook adds `node`), and `site_id`. The final backups'
/// storage credentials and data keys are secrets of the run (masked in output); the playbook
/// passes the spec on stdin with `no_log`.
async fn extra_vars(cx: &VarsContext<'_>, job: &JobRecord) -> Result<ResolvedVars, VarsError> {
    let mut conn = cx.store.pool().acquire().await.map_err(StoreError::from)?;
    let p = payload::read::<DeletePayload>(job);
    let site = job_site(&mut conn, job).await?;
    let mut secrets = Vec::new();
    let mut environments = Vec::new();
    for t in &p.environments {
        let env = target_env(&mut conn, &t.environment_id).await?;
        let layout = EnvLayout::new(&site.id, &env.id);
        let domains = crate::store::domains::environment_domains(&mut conn, &env.id).await?;
        let mut hosts = vec![url_host(&env.preview_url).to_ascii_lowercase()];
        hosts.extend(domains.iter().map(|d| d.hostname.clone()));
        let final_backup = match &t.final_backup_id {
            Some(id) => match fetch_backup(&mut conn, id).await? {
                Some(b) if b.status == BackupStatus::Completed => None,
                Some(b) => {
                    let (spec, s) = create_spec(&mut conn, cx.secrets, &b, &env).await?;
                    secrets.extend(s);
                    Some(spec)
                }
                None => return Err(VarsError::Missing("a final backup")),
            },
            None => None,
        };
        environments.push(DeleteEnvironment {
            environment_id: env.id.clone(),
            env_root: layout.env_root,
            env_user: layout.env_user,
            database: layout.db_name,
            db_user: layout.db_user,
            redis_prefix: layout.redis_prefix,
            hosts,
            domain_ids: domains.iter().map(|d| d.id.clone()).collect(),
            certificates: domains.into_iter().map(|d| d.hostname).collect(),
            final_backup,
        });
    }
    let spec = EnvDeleteSpec {
        contract_version: CONTRACT_VERSION,
        site_id: site.id.clone(),
        remove_site_dir: is_site_delete(job),
        environments,
        node: Default::default(),
    };
    let spec = serde_json::to_value(&spec).map_err(|_| VarsError::Missing("the node spec"))?;
    let mut resolved = ResolvedVars {
        secrets,
        ..Default::default()
    };
    resolved.vars.insert("site_id".into(), site.id.into());
    resolved.vars.insert("node_spec".into(), spec);
    Ok(resolved)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_payload_round_trips_and_reads_old_rows() {
        let p = DeletePayload {
            environments: vec![DeleteTarget {
                environment_id: "e".into(),
                previous_status: SiteStatus::Failed,
                final_backup_id: Some("b".into()),
            }],
            site_previous_status: Some(SiteStatus::Active),
            attempts: Attempts::default(),
        };
        let json = serde_json::to_value(&p).unwrap();
        assert_eq!(json["environments"][0]["previous_status"], "failed");
        assert_eq!(json["site_previous_status"], "active");
        let back: DeletePayload = serde_json::from_value(json).unwrap();
        assert_eq!(back, p);
        let empty: DeletePayload = serde_json::from_str("{}").unwrap();
        assert!(empty.environments.is_empty());
    }
}
