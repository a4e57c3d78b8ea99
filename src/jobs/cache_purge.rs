//! `cache_purge`: an environment's caches purged on demand (domains-and-tls.md §6, jobs.md §11)
//! by `pressluft node cache-purge` (src/node_helper/cache.rs) through `cache-purge.yml`: the
//! FastCGI cache files whose key names one of its hosts exactly (preview host and custom
//! domains; the zone is shared by the node) and the Redis keys under its prefix — nobody
//! else's. No status changes (state-machines.md), so the kind has no transition hooks.

use serde::{Deserialize, Serialize};

use super::env_cache_toggle::environment_hosts;
use super::kinds::{ResolvedVars, VarsContext, VarsError};
use super::lifecycle::{node_spec_vars, site_and_environment};
use super::payload::{self, Attempts};
use crate::node_helper::spec::{CachePurgeSpec, CONTRACT_VERSION};
use crate::sites::layout::EnvLayout;
use crate::store::{JobRecord, StoreError};

super::kinds::job_kind!(CachePurge, "cache-purge.yml", [extra_vars]);

/// The payload of `cache_purge` (jobs.md §11): what to purge, both `true` from the API.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct CachePurgePayload {
    pub fastcgi: bool,
    pub redis: bool,
    #[serde(flatten)]
    pub attempts: Attempts,
}

impl Default for CachePurgePayload {
    fn default() -> Self {
        CachePurgePayload {
            fastcgi: true,
            redis: true,
            attempts: Attempts::default(),
        }
    }
}

/// Variables of `cache-purge.yml`: `node_spec` ([`CachePurgeSpec`]) and `environment_id`.
async fn extra_vars(cx: &VarsContext<'_>, job: &JobRecord) -> Result<ResolvedVars, VarsError> {
    let p: CachePurgePayload = payload::read(job);
    let mut conn = cx.store.pool().acquire().await.map_err(StoreError::from)?;
    let (site, env) = site_and_environment(&mut conn, job).await?;
    let layout = EnvLayout::new(&site.id, &env.id);
    let spec = CachePurgeSpec {
        contract_version: CONTRACT_VERSION,
        environment_id: env.id.clone(),
        hosts: environment_hosts(&mut conn, &env).await?,
        redis_prefix: layout.redis_prefix,
        fastcgi: p.fastcgi,
        redis: p.redis,
    };
    node_spec_vars(&env.id, &spec, Vec::new())
}
