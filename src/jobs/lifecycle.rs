//! What the site-lifecycle job types share: loading the job's site and environment inside the
//! engine's transaction, status transitions, the run-stable `release_name`, and the
//! environment variables every environment playbook receives (jobs.md §12), and the
//! `environment_id` + `node_spec` variables of a playbook that hands a spec to the node helper.

use serde_json::{Map, Value};
use sqlx::AnyConnection;

use super::errors::JobErrorCode;
use super::kinds::{earlier_attempt_ran, ResolvedVars, VarsContext, VarsError};
use super::payload::{self, Release};
use crate::domain::{NodeStatus, SiteStatus};
use crate::sites::layout::{self, EnvLayout};
use crate::sites::{db_password_key, new_password, redis_password_key, wp_salts_key};
use crate::store::environments::{fetch_environment, set_environment_status, EnvironmentRecord};
use crate::store::releases::{record_release_and_activate, NewRelease};
use crate::store::sites::{fetch_site, set_deletion_status, set_site_status, SiteRecord};
use crate::store::{JobRecord, StoreError};

/// The job's site and target environment.
pub async fn site_and_environment(
    conn: &mut AnyConnection,
    job: &JobRecord,
) -> Result<(SiteRecord, EnvironmentRecord), StoreError> {
    let site_id = job.site_id.as_deref();
    let env_id = job.environment_id.as_deref();
    let site = fetch_site(conn, site_id.unwrap_or_default())
        .await?
        .ok_or_else(|| StoreError::not_found("site", site_id))?;
    let env = fetch_environment(conn, env_id.unwrap_or_default())
        .await?
        .ok_or_else(|| StoreError::not_found("environment", env_id))?;
    Ok((site, env))
}

/// Moves a site to `to` unless it is there already.
pub async fn site_to(
    conn: &mut AnyConnection,
    site: &SiteRecord,
    to: SiteStatus,
    now: &str,
) -> Result<(), StoreError> {
    if site.status == to {
        return Ok(());
    }
    set_site_status(conn, site, to, now).await
}

/// Moves an environment to `to` unless it is there already.
pub async fn environment_to(
    conn: &mut AnyConnection,
    env: &EnvironmentRecord,
    to: SiteStatus,
    now: &str,
) -> Result<(), StoreError> {
    if env.status == to {
        return Ok(());
    }
    set_environment_status(conn, env, to, now).await
}

/// The end of a temporary environment's row (a restore drill's, a safe-update run's): the job
/// removed it from the node inside its own run, so the row becomes `deleted` — or `failed`
/// when `env_left` (its removal did not finish; the operator sees what is left).
pub async fn end_temporary_environment(
    conn: &mut AnyConnection,
    env: &EnvironmentRecord,
    env_left: bool,
    now: &str,
) -> Result<(), StoreError> {
    let to = if env_left {
        SiteStatus::Failed
    } else {
        SiteStatus::Deleted
    };
    set_deletion_status(
        conn,
        "environment",
        &env.id,
        (env.status, env.state_version),
        to,
        now,
    )
    .await
}

/// How a job that did not succeed ended, for [`release_busy_site`].
#[derive(Debug, Clone, Copy)]
pub enum Unsuccessful {
    /// Failed finally; `started = false` for a start-time refusal.
    Failed { code: JobErrorCode, started: bool },
    /// Cancelled; `was_running`: after its subprocess stopped.
    Cancelled { was_running: bool },
}

impl Unsuccessful {
    /// Whether the job may have changed the node: this run got past its pre-mutation checks,
    /// or an earlier attempt did ([`earlier_attempt_ran`]).
    pub fn ran(self, job: &JobRecord) -> bool {
        earlier_attempt_ran(job)
            || match self {
                Unsuccessful::Failed { code, started } => started && !code.pre_mutation(),
                Unsuccessful::Cancelled { was_running } => was_running,
            }
    }
}

/// The rule for an existing site a job made `busy` at its start (`cloning`, …) when the job
/// ends without success (state-machines.md): `failed` when the job ran ([`Unsuccessful::ran`]),
/// otherwise back to `active` — but only a site this job made busy: a final failure finds it
/// `busy`; a cancelled queued job made it busy only if it was claimed before (a retry).
pub async fn release_busy_site(
    conn: &mut AnyConnection,
    job: &JobRecord,
    site: &SiteRecord,
    busy: SiteStatus,
    ending: Unsuccessful,
    now: &str,
) -> Result<(), StoreError> {
    match after_busy(job, site.status == busy, ending) {
        Some(to) => site_to(conn, site, to, now).await,
        None => Ok(()),
    }
}

/// [`release_busy_site`]'s rule for an existing environment the job made `busy` at its start
/// (`deploying`, …).
pub async fn release_busy_environment(
    conn: &mut AnyConnection,
    job: &JobRecord,
    env: &EnvironmentRecord,
    busy: SiteStatus,
    ending: Unsuccessful,
    now: &str,
) -> Result<(), StoreError> {
    match after_busy(job, env.status == busy, ending) {
        Some(to) => environment_to(conn, env, to, now).await,
        None => Ok(()),
    }
}

/// Where a resource the job made busy goes when the job ends without success (`None`: it
/// stays): see [`release_busy_site`].
fn after_busy(job: &JobRecord, is_busy: bool, ending: Unsuccessful) -> Option<SiteStatus> {
    match (ending, ending.ran(job)) {
        (Unsuccessful::Failed { .. }, ran) if is_busy => Some(if ran {
            SiteStatus::Failed
        } else {
            SiteStatus::Active
        }),
        (Unsuccessful::Failed { .. }, _) => None,
        (Unsuccessful::Cancelled { .. }, true) => Some(SiteStatus::Failed),
        (Unsuccessful::Cancelled { .. }, false) => {
            (job.attempt_count > 0 && is_busy).then_some(SiteStatus::Active)
        }
    }
}

/// Whether the node the job runs on is `active`; `Err(reason)` otherwise.
pub async fn node_must_be_active(
    conn: &mut AnyConnection,
    job: &JobRecord,
) -> Result<Result<(), String>, StoreError> {
    let node = crate::store::nodes::fetch_node(conn, &job.node_id).await?;
    Ok(match node {
        Some(n) if n.status == NodeStatus::Active => Ok(()),
        Some(n) => Err(format!("node {} is {}, not active", n.name, n.status)),
        None => Err("the job's node does not exist".into()),
    })
}

/// Fixes the run-stable `release_name` at the first start so retries reuse it (jobs.md §3).
pub fn fix_release_name(release: &mut Release, now: &str, job_id: &str) {
    release
        .release_name
        .get_or_insert_with(|| layout::release_name(now, job_id));
}

/// The payload's `release_name` (set at the first start).
pub fn release_name(job: &JobRecord) -> Option<String> {
    payload::read::<Release>(job).release_name
}

/// Records the release the job built (at the path its `release_name` gives) as the
/// environment's current one and makes the environment `active`.
pub async fn record_built_release(
    conn: &mut AnyConnection,
    job: &JobRecord,
    site: &SiteRecord,
    env: &EnvironmentRecord,
    source: (&str, &str),
    notes: &str,
    now: &str,
) -> Result<(), StoreError> {
    let name = release_name(job).unwrap_or_default();
    let path = EnvLayout::new(&site.id, &env.id).release_path(&name);
    let id = uuid::Uuid::new_v4().to_string();
    record_release_and_activate(
        conn,
        env,
        &NewRelease {
            id: &id,
            environment_id: &env.id,
            source_type: source.0,
            source_ref: source.1,
            path: &path,
            notes: Some(notes),
            job_id: &job.id,
        },
        now,
    )
    .await
}

/// The variables of a playbook that passes `spec` to the node helper: `environment_id` and
/// `node_spec`, with the spec's secret values (masked in output).
pub fn node_spec_vars<S: serde::Serialize>(
    environment_id: &str,
    spec: &S,
    secrets: Vec<String>,
) -> Result<ResolvedVars, VarsError> {
    let spec = serde_json::to_value(spec).map_err(|_| VarsError::Missing("the node spec"))?;
    let mut resolved = ResolvedVars {
        secrets,
        ..Default::default()
    };
    resolved
        .vars
        .insert("environment_id".into(), environment_id.into());
    resolved.vars.insert("node_spec".into(), spec);
    Ok(resolved)
}

/// A string variable [`environment_vars`] put in `vars` (for the node helper's spec).
pub fn var_str(vars: &Map<String, Value>, key: &str) -> Result<String, VarsError> {
    vars.get(key)
        .and_then(Value::as_str)
        .map(str::to_string)
        .ok_or(VarsError::Missing("an environment variable"))
}

/// The node helper's description of the new environment, from [`environment_vars`]' `vars`.
pub fn new_environment(
    vars: &Map<String, Value>,
) -> Result<crate::node_helper::spec::NewEnvironment, VarsError> {
    let var = |key: &str| var_str(vars, key);
    Ok(crate::node_helper::spec::NewEnvironment {
        environment_id: var("environment_id")?,
        env_root: var("env_root")?,
        env_user: var("env_user")?,
        release_name: var("release_name")?,
        release_path: var("release_path")?,
        canonical_url: var("canonical_url")?,
        redis_cache_enabled: vars.get("redis_cache_enabled").and_then(Value::as_bool) == Some(true),
        redis_prefix: var("redis_prefix")?,
    })
}
/// The directory name of release `id` (`None`: the environment has no current release): what
/// a new release copies its core from.
pub async fn release_dir_name(
    cx: &VarsContext<'_>,
    id: Option<String>,
) -> Result<String, VarsError> {
    let id = id.ok_or(VarsError::Missing("the environment's current release"))?;
    let release = cx
        .store
        .get_release(&id)
        .await?
        .ok_or(VarsError::Missing("the environment's current release"))?;
    std::path::Path::new(&release.path)
        .file_name()
        .and_then(|n| n.to_str())
        .map(str::to_string)
        .ok_or(VarsError::Missing("the current release's directory name"))
}

/// A payload value whose credential-bearing form lives in the secrets store under `key`
/// (`None`: the payload holds it whole): the full value, listed in `secrets` so the runner
/// masks it.
pub fn revealed(
    cx: &VarsContext<'_>,
    key: Option<&str>,
    plain: &str,
    what: &'static str,
    secrets: &mut Vec<String>,
) -> Result<String, VarsError> {
    let Some(key) = key else {
        return Ok(plain.to_string());
    };
    let full = cx
        .secrets
        .get(key)?
        .ok_or(VarsError::Missing(what))?
        .expose()
        .to_string();
    secrets.push(full.clone());
    Ok(full)
}

/// The variables of an environment playbook about the target environment (the contract in
/// docs/node-helper.md), with its database and Redis passwords and salts as secrets.
pub async fn environment_vars(
    cx: &VarsContext<'_>,
    job: &JobRecord,
) -> Result<(ResolvedVars, SiteRecord, EnvironmentRecord), VarsError> {
    let (store, secrets, node) = (cx.store, cx.secrets, cx.node);
    let mut conn = store.pool().acquire().await.map_err(StoreError::from)?;
    let (site, env) = site_and_environment(&mut conn, job).await?;
    let canonical = crate::store::environments::canonical_url(&mut conn, &env.id)
        .await?
        .unwrap_or_else(|| env.preview_url.clone());
    let l = EnvLayout::new(&site.id, &env.id);
    let release = release_name(job).ok_or(VarsError::Missing("release_name"))?;
    let password = secrets
        .get(&db_password_key(&env.id))?
        .ok_or(VarsError::Missing("the database password"))?;
    let salts_json = secrets
        .get(&wp_salts_key(&env.id))?
        .ok_or(VarsError::Missing("the WordPress salts"))?;
    let salts: Vec<String> =
        serde_json::from_str(salts_json.expose()).map_err(|_| VarsError::Missing("valid salts"))?;
    // Created at enqueue; an environment from before Redis ACLs gets its password here, once
    // (one job per site runs at a time, so two runs never race for it).
    let redis_password = match secrets.get(&redis_password_key(&env.id))? {
        Some(p) => p,
        None => {
            let created = new_password();
            secrets.put(&redis_password_key(&env.id), &created)?;
            crate::secrets::Secret::new(created)
        }
    };

    let mut v = Map::new();
    let mut put = |k: &str, val: Value| {
        v.insert(k.to_string(), val);
    };
    put("site_id", site.id.clone().into());
    put("site_slug", site.slug.clone().into());
    put("environment_id", env.id.clone().into());
    put("environment_slug", env.slug.clone().into());
    put("environment_type", env.environment_type.clone().into());
    put(
        "node_public_ip",
        node.public_ip.clone().unwrap_or_default().into(),
    );
    put("env_root", l.env_root.clone().into());
    put("env_user", l.env_user.clone().into());
    put("db_name", l.db_name.clone().into());
    put("db_user", l.db_user.clone().into());
    put("db_password", password.expose().into());
    put("wp_salts", salts.clone().into());
    put("php_fpm_socket", l.php_fpm_socket.clone().into());
    put("preview_url", env.preview_url.clone().into());
    put("preview_host", layout::url_host(&env.preview_url).into());
    // https:// previews are served with the wildcard certificate (env-vhost role).
    put(
        "preview_tls",
        env.preview_url.starts_with("https://").into(),
    );
    put("canonical_url", canonical.into());
    put("release_name", release.clone().into());
    put("release_path", l.release_path(&release).into());
    put("fastcgi_cache_enabled", env.fastcgi_cache_enabled.into());
    put("redis_cache_enabled", env.redis_cache_enabled.into());
    put("redis_prefix", l.redis_prefix.clone().into());
    put("redis_user", l.redis_user.clone().into());
    put("redis_password", redis_password.expose().into());
    let mut secret_values = vec![
        password.expose().to_string(),
        redis_password.expose().to_string(),
    ];
    secret_values.extend(salts);
    Ok((
        ResolvedVars {
            vars: v,
            secrets: secret_values,
        },
        site,
        env,
    ))
}
