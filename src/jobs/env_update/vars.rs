//! Variables of `env-update.yml`: the [`crate::node_helper::spec::EnvUpdateSpec`] the node
//! helper reads, with the secret values among them (the pre-update backup's storage
//! credentials and data key: `ResolvedVars.secrets`, masked in output; the playbook passes the
//! spec on stdin with `no_log`).

use crate::domain::BackupStatus;
use crate::jobs::backup_create::create_spec;
use crate::jobs::gate::go_live_spec;
use crate::jobs::kinds::{ResolvedVars, VarsContext, VarsError};
use crate::jobs::lifecycle::{node_spec_vars, site_and_environment};
use crate::jobs::payload;
use crate::node_helper::spec::{EnvUpdateSpec, CONTRACT_VERSION};
use crate::settings::wordpress_update_source;
use crate::sites::layout;
use crate::store::backups::fetch_backup;
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
        versions: p.versions.clone().filter(|v| !v.is_empty()),
        go_live: go_live_spec(&mut conn, &site.id, &env).await?,
        node: Default::default(),
    };
    let mut resolved = node_spec_vars(&env.id, &spec, secrets)?;
    resolved
        .vars
        .insert("release_name".into(), release_name.into());
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
