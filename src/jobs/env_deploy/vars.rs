//! Variables of `env-deploy.yml`: the [`crate::node_helper::spec::ReleaseDeploySpec`] the node
//! helper reads, with the secret values among them (the whole `source_ref` when it had
//! credentials, the site's deploy key for an SSH repository, the S3 secret for an `s3://`
//! archive) in [`ResolvedVars::secrets`].

use std::path::Path;

use super::EnvDeployPayload;
use crate::backups::storage::s3_source_access;
use crate::deploys::deploy_key;
use crate::jobs::kinds::{ResolvedVars, VarsContext, VarsError};
use crate::jobs::lifecycle::site_and_environment;
use crate::jobs::payload;
use crate::node_helper::releases::RELEASE_KEEP;
use crate::node_helper::spec::{GoLive, NodeFacts, ReleaseDeploySpec, CONTRACT_VERSION};
use crate::sites::layout::{url_host, EnvLayout};
use crate::store::environments::canonical_url;
use crate::store::{JobRecord, StoreError};

/// The environment's own hosts: its preview host, then its primary domain (as health_check).
fn own_hosts(preview_url: &str, canonical: &str) -> Vec<String> {
    let mut hosts = vec![url_host(preview_url).to_ascii_lowercase()];
    let primary = url_host(canonical).to_ascii_lowercase();
    if !hosts.contains(&primary) {
        hosts.push(primary);
    }
    hosts
}

pub(super) async fn extra_vars(
    cx: &VarsContext<'_>,
    job: &JobRecord,
) -> Result<ResolvedVars, VarsError> {
    let p: EnvDeployPayload = payload::read(job);
    let release_name = p.release.release_name.clone().ok_or(VarsError::Missing(
        "the release name (fixed at the job's start)",
    ))?;
    let mut conn = cx.store.pool().acquire().await.map_err(StoreError::from)?;
    let (site, env) = site_and_environment(&mut conn, job).await?;
    let current_id = env
        .current_release_id
        .clone()
        .ok_or(VarsError::Missing("the environment's current release"))?;
    let current = cx
        .store
        .get_release(&current_id)
        .await?
        .ok_or(VarsError::Missing("the environment's current release"))?;
    let current_release_name = Path::new(&current.path)
        .file_name()
        .and_then(|n| n.to_str())
        .ok_or(VarsError::Missing("the current release's directory name"))?
        .to_string();
    let canonical = canonical_url(&mut conn, &env.id)
        .await?
        .unwrap_or_else(|| env.preview_url.clone());
    let layout = EnvLayout::new(&site.id, &env.id);
    let mut secrets = Vec::new();

    let source_ref = match &p.source_ref_secret {
        Some(key) => {
            let full = cx
                .secrets
                .get(key)?
                .ok_or(VarsError::Missing("the source_ref's credentials"))?
                .expose()
                .to_string();
            secrets.push(full.clone());
            full
        }
        None => p.source_ref.clone(),
    };
    let source =
        crate::deploys::source::parse(p.source_type, &source_ref, cx.config.allow_loopback_sources)
            .map_err(|_| VarsError::Missing("a valid source_ref"))?;
    let git_ssh_key = if source.needs_deploy_key() {
        let key = deploy_key::private_key(cx.secrets, &site.id)?
            .ok_or(VarsError::Missing("the site's deploy key"))?;
        secrets.push(key.clone());
        Some(key)
    } else {
        None
    };
    let s3 = if source.needs_s3() {
        let access = s3_source_access(&mut conn, cx.secrets).await?;
        secrets.extend(access.secrets);
        Some(access.storage)
    } else {
        None
    };

    let spec = ReleaseDeploySpec {
        contract_version: CONTRACT_VERSION,
        environment_id: env.id.clone(),
        release_name,
        current_release_name,
        source_type: p.source_type.to_string(),
        source_ref,
        git_ssh_key,
        s3,
        allow_loopback_sources: cx.config.allow_loopback_sources,
        go_live: GoLive {
            env_root: layout.env_root,
            env_user: layout.env_user,
            hosts: own_hosts(&env.preview_url, &canonical),
            redis_prefix: layout.redis_prefix,
            release_keep: RELEASE_KEEP,
        },
        node: NodeFacts::default(),
    };
    let spec = serde_json::to_value(&spec).map_err(|_| VarsError::Missing("the node spec"))?;
    let mut resolved = ResolvedVars::default();
    resolved
        .vars
        .insert("environment_id".into(), env.id.clone().into());
    resolved.vars.insert("node_spec".into(), spec);
    resolved.secrets = secrets;
    Ok(resolved)
}
