//! `domain_add`: a custom domain attached to an environment (domains-and-tls.md §3, jobs.md
//! §11) through `domain-add.yml`: the DNS check from the node (its system resolver, so
//! `/etc/hosts` counts; `DNS_MISMATCH` with the spec's message unless an address is the node's
//! `public_ip`), the domain's port-80 block (ACME challenge, 301), an HTTP-01 certificate
//! (certbot role, `tasks_from: http01`), the TLS block, and — when the domain becomes the
//! primary — the URL rewrite from the current canonical URL to `https://<hostname>`; then
//! reload and purge (`pressluft node domain-apply`, src/node_helper/domains.rs).
//!
//! The first domain of an environment that becomes `active` is its primary; later ones answer
//! `301` to the primary on the same path (no endpoint changes the primary). Which blocks serve
//! and which redirect is decided here, from the database when the run starts (jobs of a site
//! never run in parallel). Success: `tls_status = active`, the primary set when there was none;
//! final failure or cancel: `failed` (a `DELETE` then removes what an attempt left behind).

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use sqlx::AnyConnection;

use super::env_cache_toggle::environment_hosts;
use super::errors::JobErrorCode;
use super::kinds::{ResolvedVars, VarsContext, VarsError};
use super::lifecycle::{node_spec_vars, site_and_environment};
use super::payload::{self, Attempts};
use crate::domain::TlsStatus;
use crate::node_helper::spec::{DomainApplySpec, UrlRewrite, CONTRACT_VERSION};
use crate::sites::layout::{url_host, EnvLayout};
use crate::store::domains::{
    environment_domains, fetch_domain, set_primary_domain, set_tls_status, DomainRecord,
};
use crate::store::environments::{canonical_url, fetch_environment, EnvironmentRecord};
use crate::store::nodes::fetch_node;
use crate::store::sites::SiteRecord;
use crate::store::{JobRecord, StoreError};

super::kinds::job_kind!(
    DomainAdd,
    "domain-add.yml",
    [
        validate_start,
        on_success,
        on_final_failure,
        on_cancel,
        extra_vars
    ]
);

/// The payload of `domain_add` (jobs.md §11).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct DomainAddPayload {
    pub domain_id: String,
    pub hostname: String,
    #[serde(flatten)]
    pub attempts: Attempts,
}

/// The entries of the env-vhost role's `domain_blocks` task: one per domain with a
/// certificate (`tls`), each naming the primary's host name (serve when equal, else 301 there).
pub(super) fn render_list(domains: &[(&DomainRecord, bool)], primary: &str) -> Value {
    Value::Array(
        domains
            .iter()
            .map(|(d, tls)| json!({"id": d.id, "hostname": d.hostname, "primary": primary, "tls": tls}))
            .collect(),
    )
}

/// The environment's active domains, oldest first, and its primary among them.
pub(super) async fn active_domains(
    conn: &mut AnyConnection,
    env: &EnvironmentRecord,
) -> Result<(Vec<DomainRecord>, Option<DomainRecord>), StoreError> {
    let active: Vec<DomainRecord> = environment_domains(conn, &env.id)
        .await?
        .into_iter()
        .filter(|d| d.tls_status == TlsStatus::Active)
        .collect();
    let primary = env
        .primary_domain_id
        .as_deref()
        .and_then(|p| active.iter().find(|d| d.id == p))
        .cloned();
    Ok((active, primary))
}

/// The variables every domain playbook renders the blocks with (flat, for the env-vhost
/// role), and the ACME settings certbot uses (`acme_email`, `acme_directory_url`,
/// `acme_ca_bundle`: [`crate::settings::acme::vars_in`]).
pub(super) async fn common_vars(
    conn: &mut AnyConnection,
    site: &SiteRecord,
    env: &EnvironmentRecord,
    layout: &EnvLayout,
    resolved: &mut ResolvedVars,
) -> Result<(), StoreError> {
    let acme = crate::settings::acme::vars_in(conn).await?;
    resolved.vars.extend(acme);
    let mut put = |k: &str, v: Value| {
        resolved.vars.insert(k.to_string(), v);
    };
    put("site_slug", site.slug.clone().into());
    put("environment_slug", env.slug.clone().into());
    put("preview_host", url_host(&env.preview_url).into());
    put("env_root", layout.env_root.clone().into());
    put("php_fpm_socket", layout.php_fpm_socket.clone().into());
    put("fastcgi_cache_enabled", env.fastcgi_cache_enabled.into());
    Ok(())
}

/// The helper's spec without blocks (the playbook adds them and the node facts).
pub(super) fn apply_spec(
    env: &EnvironmentRecord,
    layout: &EnvLayout,
    hosts: Vec<String>,
    rewrite: Option<UrlRewrite>,
    remove_domain_ids: Vec<String>,
) -> DomainApplySpec {
    DomainApplySpec {
        contract_version: CONTRACT_VERSION,
        environment_id: env.id.clone(),
        env_root: layout.env_root.clone(),
        env_user: layout.env_user.clone(),
        db_name: layout.db_name.clone(),
        hosts,
        redis_prefix: layout.redis_prefix.clone(),
        rewrite,
        purge: true,
        remove_domain_ids,
        domain_blocks: Vec::new(),
        node: Default::default(),
    }
}

/// The domain must still be waiting for this job, and the node must know its public IP (the
/// DNS check compares with it): otherwise `PRECONDITION_FAILED`.
async fn validate_start(
    conn: &mut AnyConnection,
    job: &JobRecord,
) -> Result<Result<(), String>, StoreError> {
    let p: DomainAddPayload = payload::read(job);
    let Some(domain) = fetch_domain(conn, &p.domain_id).await? else {
        return Ok(Err(format!("the domain {} no longer exists", p.hostname)));
    };
    if domain.tls_status != TlsStatus::Pending {
        return Ok(Err(format!(
            "the domain {} is {}, not pending",
            domain.hostname, domain.tls_status
        )));
    }
    let node = fetch_node(conn, &job.node_id).await?;
    if node
        .and_then(|n| n.public_ip)
        .filter(|ip| !ip.is_empty())
        .is_none()
    {
        return Ok(Err(format!(
            "the environment's node has no public_ip: the DNS of {} cannot be checked against it; \
             set the node's public IPv4 address first",
            domain.hostname
        )));
    }
    Ok(Ok(()))
}

async fn on_success(
    conn: &mut AnyConnection,
    job: &JobRecord,
    _result: &Value,
    now: &str,
) -> Result<(), StoreError> {
    let p: DomainAddPayload = payload::read(job);
    set_tls_status(conn, &p.domain_id, TlsStatus::Active, now).await?;
    let env_id = job.environment_id.as_deref().unwrap_or_default();
    if let Some(env) = fetch_environment(conn, env_id).await? {
        if env.primary_domain_id.is_none() {
            set_primary_domain(conn, &env.id, Some(&p.domain_id), now).await?;
        }
    }
    Ok(())
}

async fn on_final_failure(
    conn: &mut AnyConnection,
    job: &JobRecord,
    _code: JobErrorCode,
    _started: bool,
    now: &str,
) -> Result<(), StoreError> {
    let p: DomainAddPayload = payload::read(job);
    mark_failed(conn, &p.domain_id, now).await
}

async fn on_cancel(
    conn: &mut AnyConnection,
    job: &JobRecord,
    _was_running: bool,
    now: &str,
) -> Result<(), StoreError> {
    let p: DomainAddPayload = payload::read(job);
    mark_failed(conn, &p.domain_id, now).await
}

/// `pending` → `failed` (a domain already disabled or gone stays so).
async fn mark_failed(conn: &mut AnyConnection, id: &str, now: &str) -> Result<(), StoreError> {
    if let Some(d) = fetch_domain(conn, id).await? {
        if d.tls_status == TlsStatus::Pending {
            set_tls_status(conn, id, TlsStatus::Failed, now).await?;
        }
    }
    Ok(())
}

/// Variables of `domain-add.yml`: `node_spec` ([`DomainApplySpec`] of the final step),
/// `domain_id`, `domain_hostname`, `node_public_ip`, `domain_becomes_primary`,
/// `domain_blocks_wanted` (the env-vhost role's `env_vhost_domains`: this domain and the
/// other active ones, all naming the primary), the flat block variables and the ACME settings.
async fn extra_vars(cx: &VarsContext<'_>, job: &JobRecord) -> Result<ResolvedVars, VarsError> {
    let p: DomainAddPayload = payload::read(job);
    let mut conn = cx.store.pool().acquire().await.map_err(StoreError::from)?;
    let (site, env) = site_and_environment(&mut conn, job).await?;
    let layout = EnvLayout::new(&site.id, &env.id);
    let domain = fetch_domain(&mut conn, &p.domain_id)
        .await?
        .ok_or(VarsError::Missing("the domain"))?;
    let (active, primary) = active_domains(&mut conn, &env).await?;
    let becomes_primary = primary.is_none();
    let primary_host = primary
        .as_ref()
        .map_or(domain.hostname.clone(), |d| d.hostname.clone());
    let rewrite = if becomes_primary {
        let from = canonical_url(&mut conn, &env.id)
            .await?
            .unwrap_or_else(|| env.preview_url.clone());
        Some(UrlRewrite {
            from,
            to: format!("https://{}", domain.hostname),
        })
    } else {
        None
    };
    let mut blocks: Vec<(&DomainRecord, bool)> = active
        .iter()
        .filter(|d| d.id != domain.id)
        .map(|d| (d, true))
        .collect();
    blocks.push((&domain, true));
    let hosts = environment_hosts(&mut conn, &env).await?;
    let spec = apply_spec(&env, &layout, hosts, rewrite, Vec::new());
    let mut resolved = node_spec_vars(&env.id, &spec, Vec::new())?;
    common_vars(&mut conn, &site, &env, &layout, &mut resolved).await?;
    let public_ip = cx.node.public_ip.clone().unwrap_or_default();
    let mut put = |k: &str, v: Value| {
        resolved.vars.insert(k.to_string(), v);
    };
    put("domain_id", domain.id.clone().into());
    put("domain_hostname", domain.hostname.clone().into());
    put("node_public_ip", public_ip.into());
    put("domain_becomes_primary", becomes_primary.into());
    put("primary_domain_hostname", primary_host.clone().into());
    put("domain_blocks_wanted", render_list(&blocks, &primary_host));
    Ok(resolved)
}
