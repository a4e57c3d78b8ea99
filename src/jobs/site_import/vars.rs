//! Variables of `site-import.yml`: the [`crate::node_helper::spec::SiteImportSpec`] the node
//! helper reads, with its secret values (the environment's database password, the whole
//! archive URL when it had credentials, the S3 secret for an `s3://` archive, the pre-import
//! backup's storage credentials and data key) in [`ResolvedVars::secrets`]; and, for an
//! archive uploaded through the dashboard, `import_upload_src` (the control plane's file) and
//! `import_upload_dest` (the node path the playbook copies it to).

use super::SiteImportPayload;
use crate::backups::storage::s3_source_access;
use crate::deploys::source::Source;
use crate::domain::{BackupStatus, ReleaseSourceType};
use crate::jobs::backup_create::create_spec;
use crate::jobs::gate;
use crate::jobs::gate::go_live_spec;
use crate::jobs::kinds::{ResolvedVars, VarsContext, VarsError};
use crate::jobs::lifecycle::{environment_vars, node_spec_vars, revealed, var_str};
use crate::jobs::payload;
use crate::node_helper::spec::{NodeFacts, SiteImportSpec, CONTRACT_VERSION};
use crate::store::backups::fetch_backup;
use crate::store::{JobRecord, StoreError};

pub(super) async fn extra_vars(
    cx: &VarsContext<'_>,
    job: &JobRecord,
) -> Result<ResolvedVars, VarsError> {
    let p: SiteImportPayload = payload::read(job);
    let (env_vars, site, env) = environment_vars(cx, job).await?;
    let (release_name, current_release_name) = gate::release_names(cx, job, &env).await?;
    let mut conn = cx.store.pool().acquire().await.map_err(StoreError::from)?;

    let db_password = var_str(&env_vars.vars, "db_password")?;
    let mut secrets = vec![db_password.clone()];
    let archive_url = revealed(
        cx,
        p.archive_url_secret.as_deref(),
        &p.archive_url,
        "the archive URL's credentials",
        &mut secrets,
    )?;
    let source = crate::deploys::source::parse(
        ReleaseSourceType::Upload,
        &archive_url,
        cx.config.allow_loopback_sources,
    )
    .map_err(|_| VarsError::Missing("a valid archive_url"))?;
    let s3 = match source {
        Source::Upload { .. } if source.needs_s3() => {
            let access = s3_source_access(&mut conn, cx.secrets).await?;
            secrets.extend(access.secrets);
            Some(access.storage)
        }
        _ => None,
    };

    // The pre-import backup: produced by this run unless an earlier attempt completed it.
    let pre_backup = match fetch_backup(&mut conn, &p.pre_backup_id).await? {
        Some(b) if b.status == BackupStatus::Completed => None,
        Some(b) => {
            let (spec, backup_secrets) = create_spec(&mut conn, cx.secrets, &b, &env).await?;
            secrets.extend(backup_secrets);
            Some(spec)
        }
        None => return Err(VarsError::Missing("the pre-import backup")),
    };

    let spec = SiteImportSpec {
        contract_version: CONTRACT_VERSION,
        environment_id: env.id.clone(),
        release_name: release_name.clone(),
        current_release_name,
        archive_url,
        s3,
        allow_loopback_sources: cx.config.allow_loopback_sources,
        db_name: var_str(&env_vars.vars, "db_name")?,
        db_user: var_str(&env_vars.vars, "db_user")?,
        db_password,
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
    if let Some(file) = &p.upload_file {
        resolved
            .vars
            .insert("import_upload_src".into(), file.clone().into());
        resolved
            .vars
            .insert("import_upload_dest".into(), p.archive_url.clone().into());
    }
    Ok(resolved)
}
