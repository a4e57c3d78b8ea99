//! Variables of `env-restore.yml`: the [`crate::node_helper::spec::EnvRestoreSpec`] the node
//! helper reads, with its secret values (the restored backup's data key, the pre-restore
//! backup's data key, the backup storage's credentials) in [`ResolvedVars::secrets`].

use super::EnvRestorePayload;
use crate::backups::storage::backup_access;
use crate::domain::BackupStatus;
use crate::jobs::backup_create::create_spec;
use crate::jobs::gate;
use crate::jobs::gate::go_live_spec;
use crate::jobs::kinds::{ResolvedVars, VarsContext, VarsError};
use crate::jobs::lifecycle::{environment_vars, node_spec_vars, var_str};
use crate::jobs::payload;
use crate::node_helper::spec::{EnvRestoreSpec, NodeFacts, RestoreBackup, CONTRACT_VERSION};
use crate::store::backups::fetch_backup;
use crate::store::{JobRecord, StoreError};

pub(super) async fn extra_vars(
    cx: &VarsContext<'_>,
    job: &JobRecord,
) -> Result<ResolvedVars, VarsError> {
    let p: EnvRestorePayload = payload::read(job);
    let (env_vars, site, env) = environment_vars(cx, job).await?;
    let (release_name, current_release_name) = gate::release_names(cx, job, &env).await?;
    let mut conn = cx.store.pool().acquire().await.map_err(StoreError::from)?;

    // The backup restored: completed (checked at the start, again here).
    let backup = fetch_backup(&mut conn, &p.backup_id)
        .await?
        .filter(|b| b.status == BackupStatus::Completed)
        .ok_or(VarsError::Missing("a completed backup to restore"))?;
    let checksum = backup
        .checksum
        .clone()
        .ok_or(VarsError::Missing("the backup's checksum"))?;
    let access = backup_access(&mut conn, cx.secrets, &backup).await?;
    let mut secrets = access.secrets;

    // The pre-restore backup: produced by this run unless an earlier attempt completed it.
    let pre_backup = match fetch_backup(&mut conn, &p.pre_backup_id).await? {
        Some(b) if b.status == BackupStatus::Completed => None,
        Some(b) => {
            let (spec, backup_secrets) = create_spec(&mut conn, cx.secrets, &b, &env).await?;
            secrets.extend(backup_secrets);
            Some(spec)
        }
        None => return Err(VarsError::Missing("the pre-restore backup")),
    };

    let spec = EnvRestoreSpec {
        contract_version: CONTRACT_VERSION,
        environment_id: env.id.clone(),
        release_name: release_name.clone(),
        current_release_name,
        backup: RestoreBackup {
            backup_id: backup.id.clone(),
            checksum,
            storage: access.storage,
            data_key: access.data_key.into(),
        },
        db_name: var_str(&env_vars.vars, "db_name")?,
        canonical_url: var_str(&env_vars.vars, "canonical_url")?,
        redis_cache_enabled: env.redis_cache_enabled,
        pre_backup,
        go_live: go_live_spec(&mut conn, &site.id, &env).await?,
        node: NodeFacts::default(),
    };
    let mut resolved = node_spec_vars(&env.id, &spec, secrets)?;
    resolved
        .vars
        .insert("release_name".into(), release_name.into());
    Ok(resolved)
}
