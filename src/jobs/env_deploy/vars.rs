//! Variables of `env-deploy.yml`: the [`crate::node_helper::spec::ReleaseDeploySpec`] the node
//! helper reads, with the secret values among them (the whole `source_ref` when it had
//! credentials, the site's deploy key for an SSH repository, the S3 secret for an `s3://`
//! archive) in [`ResolvedVars::secrets`].

use super::EnvDeployPayload;
use crate::backups::storage::s3_source_access;
use crate::deploys::deploy_key;
use crate::jobs::gate::go_live_spec;
use crate::jobs::kinds::{ResolvedVars, VarsContext, VarsError};
use crate::jobs::lifecycle::{node_spec_vars, release_dir_name, revealed, site_and_environment};
use crate::jobs::payload;
use crate::node_helper::spec::{NodeFacts, ReleaseDeploySpec, CONTRACT_VERSION};
use crate::store::{JobRecord, StoreError};

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
    let current_release_name = release_dir_name(cx, env.current_release_id.clone()).await?;
    let mut secrets = Vec::new();

    let source_ref = revealed(
        cx,
        p.source_ref_secret.as_deref(),
        &p.source_ref,
        "the source_ref's credentials",
        &mut secrets,
    )?;
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
        go_live: go_live_spec(&mut conn, &site.id, &env).await?,
        node: NodeFacts::default(),
    };
    node_spec_vars(&env.id, &spec, secrets)
}
