//! Variables of `env-update.yml`: the [`crate::node_helper::spec::EnvUpdateSpec`] the node
//! helper reads, with the secret values among them (the pre-update backup's storage
//! credentials and data key: `ResolvedVars.secrets`, masked in output; the playbook passes the
//! spec on stdin with `no_log`).

use crate::domain::BackupStatus;
use crate::jobs::backup_create::create_spec;
use crate::jobs::health_check::own_hosts;
use crate::jobs::kinds::{ResolvedVars, VarsContext, VarsError};
use crate::jobs::lifecycle::site_and_environment;
use crate::jobs::payload;
use crate::node_helper::releases::RELEASE_KEEP;
use crate::node_helper::spec::{EnvUpdateSpec, GoLive, CONTRACT_VERSION};
use crate::settings::wordpress_update_source;
use crate::sites::layout::{self, EnvLayout};
use crate::store::backups::fetch_backup;
use crate::store::environments::canonical_url;
use crate::store::releases::fetch_release;
use crate::store::{JobRecord, StoreError};

use super::EnvUpdatePayload;

/// The directory name of a release path (`…/releases/<name>`).
fn release_dir_name(path: &str) -> String {
    path.trim_end_matches('/')
        .rsplit('/')
        .next()
        .unwrap_or_default()
        .to_string()
}

pub(super) async fn extra_vars(
    cx: &VarsContext<'_>,
    job: &JobRecord,
) -> Result<ResolvedVars, VarsError> {
    let mut conn = cx.store.pool().acquire().await.map_err(StoreError::from)?;
    let p = payload::read::<EnvUpdatePayload>(job);
    let (site, env) = site_and_environment(&mut conn, job).await?;
    let layout = EnvLayout::new(&site.id, &env.id);

    // Fixed at the first start (the engine's hook); a job that has none yet gets the name
    // derived from its own creation time and id, which is as stable across retries.
    let release_name = p
        .release
        .release_name
        .clone()
        .unwrap_or_else(|| layout::release_name(&job.created_at, &job.id));
    let current_id = p
        .previous_release_id
        .clone()
        .or_else(|| env.current_release_id.clone())
        .ok_or(VarsError::Missing("the environment's current release"))?;
    let current = fetch_release(&mut conn, &current_id)
        .await?
        .ok_or(VarsError::Missing("the environment's current release"))?;

    // The pre-update backup: produced by this run unless an earlier attempt completed it.
    let mut secrets = Vec::new();
    let pre_backup = match fetch_backup(&mut conn, &p.pre_backup_id).await? {
        Some(b) if b.status == BackupStatus::Completed => None,
        Some(b) => {
            let (spec, backup_secrets) = create_spec(&mut conn, cx.secrets, &b, &env).await?;
            secrets = backup_secrets;
            Some(spec)
        }
        None if p.pre_backup_id.is_empty() => None,
        None => return Err(VarsError::Missing("the pre-update backup")),
    };

    let canonical = canonical_url(&mut conn, &env.id)
        .await?
        .unwrap_or_else(|| env.preview_url.clone());
    let update_source = wordpress_update_source(&mut conn).await?;
    let spec = EnvUpdateSpec {
        contract_version: CONTRACT_VERSION,
        environment_id: env.id.clone(),
        release_name: release_name.clone(),
        current_release_name: release_dir_name(&current.path),
        scope: p.scope.to_string(),
        update_source,
        allow_loopback_sources: cx.config.allow_loopback_sources,
        pre_backup,
        go_live: GoLive {
            env_root: layout.env_root,
            env_user: layout.env_user,
            hosts: own_hosts(&env.preview_url, &canonical),
            redis_prefix: layout.redis_prefix,
            release_keep: RELEASE_KEEP,
        },
        node: Default::default(),
    };
    let spec = serde_json::to_value(&spec).map_err(|_| VarsError::Missing("the node spec"))?;
    let mut resolved = ResolvedVars {
        secrets,
        ..Default::default()
    };
    resolved
        .vars
        .insert("environment_id".into(), env.id.clone().into());
    resolved
        .vars
        .insert("release_name".into(), release_name.into());
    resolved.vars.insert("node_spec".into(), spec);
    Ok(resolved)
}

#[cfg(test)]
mod tests {
    use super::release_dir_name;

    #[test]
    fn the_release_name_is_the_paths_last_part() {
        assert_eq!(
            release_dir_name("/var/www/sites/s/e/releases/20260101T000000Z-abcd1234/"),
            "20260101T000000Z-abcd1234"
        );
    }
}
