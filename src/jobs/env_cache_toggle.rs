//! `env_cache_toggle`: the node made to match an environment's two cache flags
//! (domains-and-tls.md §6, jobs.md §11) by `pressluft node env-cache`
//! (src/node_helper/cache.rs) through `env-cache-toggle.yml`.
//!
//! The flags are the intent: `PATCH /api/environments/{id}/cache` writes them in the same
//! transaction that enqueues this job ([`crate::deploys::Deploys::set_cache`]), the payload
//! keeps what was requested for the record, and the playbook gets both flags as the database
//! holds them when the job runs (they win: of two quick toggles, each run converges to the
//! latest). The environment's server block is rendered on the controller from the env-vhost
//! role's template with those flags, and so are the active custom domains' blocks
//! (`pressluft-domain-<id>.conf`, issue 15: `domain_blocks_wanted`, the primary serving, the
//! others redirecting), which the helper rewrites too; their host names are among the hosts
//! whose FastCGI entries are purged. No
//! status changes (state-machines.md: cache jobs change none), so the kind has no transition
//! hooks.

use serde::{Deserialize, Serialize};

use super::kinds::{ResolvedVars, VarsContext, VarsError};
use super::lifecycle::{node_spec_vars, site_and_environment};
use super::payload::Attempts;
use crate::node_helper::spec::{EnvCacheSpec, CONTRACT_VERSION};
use crate::sites::layout::{url_host, EnvLayout};
use crate::store::environments::{domain_hostnames, EnvironmentRecord};
use crate::store::{JobRecord, StoreError};

super::kinds::job_kind!(EnvCacheToggle, "env-cache-toggle.yml", [extra_vars]);

/// The payload of `env_cache_toggle` (jobs.md §11): the flags as requested (both, the request's
/// values over the environment's at that time), kept for the record.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct EnvCacheTogglePayload {
    pub fastcgi_cache_enabled: bool,
    pub redis_cache_enabled: bool,
    #[serde(flatten)]
    pub attempts: Attempts,
}

/// The environment's own hosts: its preview host, then its custom domains.
pub(super) async fn environment_hosts(
    conn: &mut sqlx::AnyConnection,
    env: &EnvironmentRecord,
) -> Result<Vec<String>, StoreError> {
    let mut hosts = vec![url_host(&env.preview_url).to_ascii_lowercase()];
    for h in domain_hostnames(conn, &env.id).await? {
        if !hosts.contains(&h) {
            hosts.push(h);
        }
    }
    Ok(hosts)
}

/// Variables of `env-cache-toggle.yml`: `node_spec` ([`EnvCacheSpec`], the playbook adds the
/// rendered blocks and node facts) and, flat for the env-vhost template, what the preview block
/// is rendered from, with `fastcgi_cache_enabled` read now. No secrets.
async fn extra_vars(cx: &VarsContext<'_>, job: &JobRecord) -> Result<ResolvedVars, VarsError> {
    let mut conn = cx.store.pool().acquire().await.map_err(StoreError::from)?;
    let (site, env) = site_and_environment(&mut conn, job).await?;
    let layout = EnvLayout::new(&site.id, &env.id);
    let spec = EnvCacheSpec {
        contract_version: CONTRACT_VERSION,
        environment_id: env.id.clone(),
        env_root: layout.env_root.clone(),
        env_user: layout.env_user.clone(),
        fastcgi_cache_enabled: env.fastcgi_cache_enabled,
        redis_cache_enabled: env.redis_cache_enabled,
        hosts: environment_hosts(&mut conn, &env).await?,
        redis_prefix: layout.redis_prefix.clone(),
        server_block: Default::default(),
        domain_blocks: Vec::new(),
        node: Default::default(),
    };
    // The active custom domains' blocks, rendered by the playbook with the same flags: the
    // primary serves, the others redirect to it.
    let (active, primary) = super::domain_add::active_domains(&mut conn, &env).await?;
    let primary_host = primary
        .or_else(|| active.first().cloned())
        .map(|d| d.hostname)
        .unwrap_or_default();
    let with_tls: Vec<_> = active.iter().map(|d| (d, true)).collect();
    let domain_blocks = super::domain_add::render_list(&with_tls, &primary_host);
    let mut resolved = node_spec_vars(&env.id, &spec, Vec::new())?;
    let mut put = |k: &str, v: serde_json::Value| {
        resolved.vars.insert(k.to_string(), v);
    };
    put("site_slug", site.slug.clone().into());
    put("environment_slug", env.slug.clone().into());
    put("preview_host", url_host(&env.preview_url).into());
    put(
        "preview_tls",
        env.preview_url.starts_with("https://").into(),
    );
    put("env_root", layout.env_root.into());
    put("php_fpm_socket", layout.php_fpm_socket.into());
    put("fastcgi_cache_enabled", env.fastcgi_cache_enabled.into());
    put("redis_cache_enabled", env.redis_cache_enabled.into());
    put("domain_blocks_wanted", domain_blocks);
    Ok(resolved)
}
