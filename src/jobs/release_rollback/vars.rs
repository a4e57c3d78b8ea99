//! Variables of `release-rollback.yml`: the [`crate::node_helper::spec::ReleaseRollbackSpec`]
//! the node helper reads (`node_spec`, passed on stdin with `no_log`), with the secret values
//! among them (the backup's data key, the S3 secret key) in [`ResolvedVars::secrets`].
//!
//! The release names are the last component of the releases' recorded paths; the restore comes
//! from `restore_backup_id` (a completed backup with a recorded checksum, its storage and data
//! key through [`backup_access`]) into the environment's own database.

use super::ReleaseRollbackPayload;
use crate::backups::storage::backup_access;
use crate::domain::BackupStatus;
use crate::jobs::gate::go_live_spec;
use crate::jobs::kinds::{ResolvedVars, VarsContext, VarsError};
use crate::jobs::lifecycle::{node_spec_vars, site_and_environment};
use crate::jobs::payload;
use crate::node_helper::spec::{ReleaseRollbackSpec, RollbackRestore, CONTRACT_VERSION};
use crate::sites::layout::EnvLayout;
use crate::store::backups::fetch_backup;
use crate::store::releases::fetch_release;
use crate::store::{JobRecord, StoreError};

/// The directory name of a release from its recorded path (`…/releases/<name>`).
pub(super) fn release_name(path: &str) -> Option<String> {
    let name = path.trim_end_matches('/').rsplit('/').next()?;
    (!name.is_empty() && name != "." && name != "..").then(|| name.to_string())
}

/// The directory name of the environment's release `id`, if it is one.
async fn name_of(
    conn: &mut sqlx::AnyConnection,
    environment_id: &str,
    id: &str,
) -> Result<Option<String>, StoreError> {
    Ok(fetch_release(conn, id)
        .await?
        .filter(|r| r.environment_id == environment_id)
        .and_then(|r| release_name(&r.path)))
}

pub(super) async fn extra_vars(
    cx: &VarsContext<'_>,
    job: &JobRecord,
) -> Result<ResolvedVars, VarsError> {
    let payload = payload::read::<ReleaseRollbackPayload>(job);
    let mut conn = cx.store.pool().acquire().await.map_err(StoreError::from)?;
    let (site, env) = site_and_environment(&mut conn, job).await?;
    let target = name_of(&mut conn, &env.id, &payload.target_release_id)
        .await?
        .ok_or(VarsError::Missing("the target release"))?;
    let failed = name_of(&mut conn, &env.id, &payload.failed_release_id)
        .await?
        .ok_or(VarsError::Missing("the failed release"))?;
    let layout = EnvLayout::new(&site.id, &env.id);
    let mut secrets = Vec::new();
    let restore = match &payload.restore_backup_id {
        None => None,
        Some(id) => {
            let backup = fetch_backup(&mut conn, id)
                .await?
                .filter(|b| b.environment_id == env.id && b.status == BackupStatus::Completed)
                .ok_or(VarsError::Missing("a completed backup of the environment"))?;
            let checksum = backup
                .checksum
                .clone()
                .ok_or(VarsError::Missing("the backup's checksum"))?;
            let access = backup_access(&mut conn, cx.secrets, &backup).await?;
            secrets = access.secrets;
            Some(RollbackRestore {
                checksum,
                storage: access.storage,
                data_key: access.data_key.into(),
                database: layout.db_name.clone(),
                skip_tables: payload.restore_skip_tables.clone(),
                uploads: payload.restore_uploads,
            })
        }
    };
    let spec = ReleaseRollbackSpec {
        contract_version: CONTRACT_VERSION,
        environment_id: env.id.clone(),
        target_release_name: target,
        failed_release_name: failed,
        restore,
        go_live: go_live_spec(&mut conn, &site.id, &env).await?,
        node: Default::default(),
    };
    node_spec_vars(&env.id, &spec, secrets)
}

#[cfg(test)]
mod tests {
    use super::release_name;

    #[test]
    fn the_release_name_is_the_last_path_component() {
        assert_eq!(
            release_name("/var/www/sites/s/e/releases/20261202T101010Z-ab12/").as_deref(),
            Some("20261202T101010Z-ab12")
        );
        assert_eq!(release_name("/"), None);
        assert_eq!(release_name(".."), None);
    }
}
