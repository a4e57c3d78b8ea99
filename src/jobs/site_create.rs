//! `site_create`: a new site's production environment on its node — Linux user, database,
//! PHP-FPM pool, preview server block, the first release with WordPress installed
//! (jobs.md §11). The site and the environment were inserted `deploying` for this job, so any
//! final failure or cancellation leaves both `failed` (state-machines.md).

use serde::{Deserialize, Serialize};
use serde_json::Value;
use sqlx::AnyConnection;

use super::errors::JobErrorCode;
use super::kinds::{ResolvedVars, VarsContext, VarsError};
use super::lifecycle::{
    environment_to, environment_vars, fix_release_name, new_environment, node_must_be_active,
    record_built_release, site_and_environment, site_to,
};
use super::payload::{self, Attempts, Release};
use crate::domain::SiteStatus;
use crate::node_helper::releases::RELEASE_KEEP;
use crate::node_helper::spec::{SiteCreateSpec, CONTRACT_VERSION};
use crate::settings::wordpress_source;
use crate::store::{JobRecord, StoreError};

super::kinds::job_kind!(SiteCreate, "site-create.yml", all_hooks);

/// The payload of `site_create`, built by [`crate::sites::Sites::create_site`].
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct SiteCreatePayload {
    pub site_title: String,
    pub wp_admin_email: String,
    #[serde(flatten)]
    pub release: Release,
    /// Run-stable: the WordPress source (and its checksum) as set when the job first started,
    /// so a retry installs from the same source even if the setting changed meanwhile.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub wordpress_source: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub wordpress_source_sha256: Option<String>,
    #[serde(flatten)]
    pub attempts: Attempts,
}

async fn validate_start(
    conn: &mut AnyConnection,
    job: &JobRecord,
) -> Result<Result<(), String>, StoreError> {
    let (site, env) = site_and_environment(conn, job).await?;
    let deploying = SiteStatus::Deploying;
    if site.status != deploying || env.status != deploying {
        return Ok(Err(format!(
            "the site is {} and its environment {}; site_create needs both deploying",
            site.status, env.status
        )));
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
    let (source, sha) = wordpress_source(conn).await?;
    let (id, now) = (job.id.clone(), now.to_string());
    payload::update(conn, job, |p: &mut SiteCreatePayload| {
        p.wordpress_source.get_or_insert(source);
        p.wordpress_source_sha256.get_or_insert(sha);
        fix_release_name(&mut p.release, &now, &id);
    })
    .await
    .map(drop)
}

/// The source the run used: what the playbook reported (`source_ref` in its result), else the
/// job's run-stable source (older results), else the current setting.
async fn used_source(
    conn: &mut AnyConnection,
    job: &JobRecord,
    result: &Value,
) -> Result<String, StoreError> {
    if let Some(s) = result["source_ref"].as_str().filter(|s| !s.is_empty()) {
        return Ok(s.to_string());
    }
    if let Some(s) = payload::read::<SiteCreatePayload>(job).wordpress_source {
        return Ok(s);
    }
    Ok(wordpress_source(conn).await?.0)
}

async fn on_success(
    conn: &mut AnyConnection,
    job: &JobRecord,
    result: &Value,
    now: &str,
) -> Result<(), StoreError> {
    let (site, env) = site_and_environment(conn, job).await?;
    let source = used_source(conn, job, result).await?;
    let notes = "WordPress installed";
    record_built_release(conn, job, &site, &env, ("upload", &source), notes, now).await?;
    site_to(conn, &site, SiteStatus::Active, now).await
}

/// The site and environment exist only for this job: whatever the failure, both are `failed`.
async fn on_final_failure(
    conn: &mut AnyConnection,
    job: &JobRecord,
    _code: JobErrorCode,
    _started: bool,
    now: &str,
) -> Result<(), StoreError> {
    let (site, env) = site_and_environment(conn, job).await?;
    environment_to(conn, &env, SiteStatus::Failed, now).await?;
    site_to(conn, &site, SiteStatus::Failed, now).await
}

async fn on_cancel(
    conn: &mut AnyConnection,
    job: &JobRecord,
    _was_running: bool,
    now: &str,
) -> Result<(), StoreError> {
    on_final_failure(conn, job, JobErrorCode::PreconditionFailed, false, now).await
}

/// Variables of `site-create.yml` (docs/node-helper.md): the flat ones its
/// templates use, and `node_spec`, what the node helper reads.
async fn extra_vars(cx: &VarsContext<'_>, job: &JobRecord) -> Result<ResolvedVars, VarsError> {
    let (mut resolved, _, _) = environment_vars(cx, job).await?;
    let payload = payload::read::<SiteCreatePayload>(job);
    let (source, sha) = match (payload.wordpress_source, payload.wordpress_source_sha256) {
        (Some(source), Some(sha)) => (source, sha),
        _ => {
            let mut conn = cx.store.pool().acquire().await.map_err(StoreError::from)?;
            wordpress_source(&mut conn).await?
        }
    };
    // Credentials in the source URL are secrets of this run (masked in output).
    if let Some(userinfo) = crate::sources::userinfo(&source) {
        let password = userinfo.split_once(':').map(|(_, p)| p);
        for part in [Some(userinfo), password].into_iter().flatten() {
            resolved.secrets.push(part.to_string());
            let decoded: String = form_urlencoded::parse(format!("x={part}").as_bytes())
                .map(|(_, v)| v.into_owned())
                .collect();
            resolved.secrets.push(decoded);
        }
    }
    let spec = SiteCreateSpec {
        contract_version: CONTRACT_VERSION,
        env: new_environment(&resolved.vars)?,
        site_title: payload.site_title,
        admin_email: payload.wp_admin_email,
        wordpress_source: source.clone(),
        wordpress_source_sha256: sha.clone(),
        allow_loopback_sources: cx.config.allow_loopback_sources,
        release_keep: RELEASE_KEEP,
        node: Default::default(),
        files: Default::default(),
    };
    let spec = serde_json::to_value(&spec).map_err(|_| VarsError::Missing("the node spec"))?;
    resolved.vars.insert("node_spec".into(), spec);
    resolved
        .vars
        .insert("wordpress_source".into(), source.into());
    resolved
        .vars
        .insert("wordpress_source_sha256".into(), sha.into());
    Ok(resolved)
}
