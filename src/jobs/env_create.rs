//! `env_create`: a staging or clone environment copied from another environment of the site —
//! release files, uploads and the database rewritten to the new preview URL — plus the drift
//! baseline of production (jobs.md §11, backups-restore-promotion.md §3).
//!
//! The new environment exists only for this job (any failure leaves it `failed`); the site is
//! an existing one: `cloning` while the job runs, back to `active` on success, on a
//! pre-mutation failure or a refusal, `failed` when a run that changed things failed or was
//! cancelled. "A run that changed things" includes an earlier attempt of a retried job
//! ([`super::kinds::earlier_attempt_ran`]), and [`super::lifecycle::release_busy_site`] applies
//! the rule: a refused or cancelled retry never leaves the site `cloning`.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use sqlx::AnyConnection;
use uuid::Uuid;

use super::errors::JobErrorCode;
use super::kinds::{ResolvedVars, VarsContext, VarsError};
use super::lifecycle::{
    environment_to, environment_vars, fix_release_name, new_environment, node_must_be_active,
    record_built_release, release_busy_site, site_and_environment, site_to, var_str, Unsuccessful,
};
use super::payload::{self, Attempts, Release};
use crate::domain::{DriftStatus, SiteStatus};
use crate::node_helper::spec::{EnvCloneSpec, CONTRACT_VERSION};
use crate::sites::layout::{EnvLayout, DRIFT_PATHS, DRIFT_TABLES};
use crate::store::drift::{insert_drift_check, NewDriftCheck};
use crate::store::environments::{canonical_url, fetch_environment, EnvironmentRecord};
use crate::store::releases::fetch_release;
use crate::store::{JobRecord, StoreError};

super::kinds::job_kind!(EnvCreate, "env-create.yml", all_hooks);

/// The payload of `env_create`, built by [`crate::sites::Sites::create_environment`].
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct EnvCreatePayload {
    /// The environment copied.
    pub source_environment_id: String,
    #[serde(flatten)]
    pub release: Release,
    #[serde(flatten)]
    pub attempts: Attempts,
}

fn source_id(job: &JobRecord) -> String {
    payload::read::<EnvCreatePayload>(job).source_environment_id
}

async fn source(
    conn: &mut AnyConnection,
    job: &JobRecord,
) -> Result<Option<EnvironmentRecord>, StoreError> {
    fetch_environment(conn, &source_id(job)).await
}

async fn validate_start(
    conn: &mut AnyConnection,
    job: &JobRecord,
) -> Result<Result<(), String>, StoreError> {
    let (site, env) = site_and_environment(conn, job).await?;
    // A retry finds the site still `cloning` from its first run.
    let site_ok = site.status == SiteStatus::Active
        || (job.attempt_count > 1 && site.status == SiteStatus::Cloning);
    if !site_ok {
        return Ok(Err(format!("the site is {}, not active", site.status)));
    }
    if env.status != SiteStatus::Cloning {
        return Ok(Err(format!(
            "the new environment is {}, not cloning",
            env.status
        )));
    }
    match source(conn, job).await? {
        Some(s) if s.status == SiteStatus::Active && s.current_release_id.is_some() => {}
        Some(s) => {
            return Ok(Err(format!(
                "the source environment {} is {}, not active with a release",
                s.name, s.status
            )))
        }
        None => return Ok(Err("the source environment does not exist".into())),
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
    let (site, _) = site_and_environment(conn, job).await?;
    site_to(conn, &site, SiteStatus::Cloning, now).await?;
    let id = job.id.clone();
    payload::update(conn, job, |p: &mut EnvCreatePayload| {
        fix_release_name(&mut p.release, now, &id)
    })
    .await
    .map(drop)
}

async fn on_success(
    conn: &mut AnyConnection,
    job: &JobRecord,
    result: &Value,
    now: &str,
) -> Result<(), StoreError> {
    let (site, env) = site_and_environment(conn, job).await?;
    let src = source(conn, job).await?;
    let src_release = match src.as_ref().and_then(|s| s.current_release_id.clone()) {
        Some(id) => fetch_release(conn, &id).await?,
        None => None,
    };
    let (source_type, source_ref) = src_release
        .as_ref()
        .map(|r| (r.source_type.clone(), r.source_ref.clone()))
        .unwrap_or_else(|| ("upload".into(), format!("environment:{}", source_id(job))));
    let notes = format!(
        "cloned from {}",
        src.as_ref().map(|s| s.name.as_str()).unwrap_or("(unknown)")
    );
    let source = (source_type.as_str(), source_ref.as_str());
    record_built_release(conn, job, &site, &env, source, &notes, now).await?;
    let baseline = &result["drift_baseline"];
    let check_id = Uuid::new_v4().to_string();
    insert_drift_check(
        conn,
        &NewDriftCheck {
            id: &check_id,
            environment_id: &env.id,
            promotion_preset: &env.promotion_preset,
            status: DriftStatus::Clean,
            db_checksums_json: &baseline["tables"].to_string(),
            file_checksums_json: &baseline["paths"].to_string(),
            is_baseline: true,
        },
        now,
    )
    .await?;
    tracing::info!(environment = %env.id, drift_check = %check_id, "drift baseline recorded");
    site_to(conn, &site, SiteStatus::Active, now).await
}

async fn on_final_failure(
    conn: &mut AnyConnection,
    job: &JobRecord,
    code: JobErrorCode,
    started: bool,
    now: &str,
) -> Result<(), StoreError> {
    let (site, env) = site_and_environment(conn, job).await?;
    environment_to(conn, &env, SiteStatus::Failed, now).await?;
    let ending = Unsuccessful::Failed { code, started };
    release_busy_site(conn, job, &site, SiteStatus::Cloning, ending, now).await
}

async fn on_cancel(
    conn: &mut AnyConnection,
    job: &JobRecord,
    was_running: bool,
    now: &str,
) -> Result<(), StoreError> {
    let (site, env) = site_and_environment(conn, job).await?;
    environment_to(conn, &env, SiteStatus::Failed, now).await?;
    let ending = Unsuccessful::Cancelled { was_running };
    release_busy_site(conn, job, &site, SiteStatus::Cloning, ending, now).await
}

/// Variables of `env-create.yml` (docs/node-helper.md).
async fn extra_vars(cx: &VarsContext<'_>, job: &JobRecord) -> Result<ResolvedVars, VarsError> {
    let (mut resolved, site, _) = environment_vars(cx, job).await?;
    let mut conn = cx.store.pool().acquire().await.map_err(StoreError::from)?;
    let src = source(&mut conn, job)
        .await?
        .ok_or(VarsError::Missing("the source environment"))?;
    let src_release = match &src.current_release_id {
        Some(id) => fetch_release(&mut conn, id).await?,
        None => None,
    }
    .ok_or(VarsError::Missing(
        "the source environment's current release",
    ))?;
    let src_url = canonical_url(&mut conn, &src.id)
        .await?
        .unwrap_or_else(|| src.preview_url.clone());
    let prod_id = site
        .primary_environment_id
        .clone()
        .ok_or(VarsError::Missing("the production environment"))?;
    let src_layout = EnvLayout::new(&site.id, &src.id);
    let prod_layout = EnvLayout::new(&site.id, &prod_id);
    // What `pressluft node env-clone` reads (the playbook adds the node facts and the
    // rendered files).
    let spec = EnvCloneSpec {
        contract_version: CONTRACT_VERSION,
        env: new_environment(&resolved.vars)?,
        db_name: var_str(&resolved.vars, "db_name")?,
        db_user: var_str(&resolved.vars, "db_user")?,
        source_env_root: src_layout.env_root.clone(),
        source_env_user: src_layout.env_user.clone(),
        source_db_name: src_layout.db_name.clone(),
        source_release_path: src_release.path.clone(),
        source_canonical_url: src_url.clone(),
        production_env_root: prod_layout.env_root.clone(),
        production_db_name: prod_layout.db_name.clone(),
        drift_tables: DRIFT_TABLES.iter().map(|t| t.to_string()).collect(),
        drift_paths: DRIFT_PATHS.iter().map(|p| p.to_string()).collect(),
        node: Default::default(),
        files: Default::default(),
    };
    let spec = serde_json::to_value(&spec).map_err(|_| VarsError::Missing("the node spec"))?;
    let v = &mut resolved.vars;
    v.insert("source_environment_id".into(), src.id.clone().into());
    v.insert("source_env_root".into(), src_layout.env_root.into());
    v.insert("source_env_user".into(), src_layout.env_user.into());
    v.insert("source_db_name".into(), src_layout.db_name.into());
    v.insert("source_release_path".into(), src_release.path.into());
    v.insert("source_canonical_url".into(), src_url.into());
    v.insert("production_environment_id".into(), prod_id.into());
    v.insert("production_env_root".into(), prod_layout.env_root.into());
    v.insert("production_db_name".into(), prod_layout.db_name.into());
    v.insert("drift_tables".into(), DRIFT_TABLES.to_vec().into());
    v.insert("drift_paths".into(), DRIFT_PATHS.to_vec().into());
    v.insert("node_spec".into(), spec);
    Ok(resolved)
}
