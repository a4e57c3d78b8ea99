//! Variables of `env-promote.yml`: the [`crate::node_helper::spec::EnvPromoteSpec`] the node
//! helper reads. No secrets: the helper reaches both databases as root over the node's unix
//! socket and needs no backup storage (the gate backup is checked by the control plane at the
//! job's start and restored only by a rollback).

use sqlx::AnyConnection;

use crate::jobs::gate::{canonical_or_preview, go_live_spec};
use crate::jobs::kinds::{ResolvedVars, VarsContext, VarsError};
use crate::jobs::lifecycle::{node_spec_vars, site_and_environment};
use crate::jobs::payload;
use crate::node_helper::spec::{EnvPromoteSpec, PromoteSource, CONTRACT_VERSION};
use crate::sites::layout::{self, EnvLayout};
use crate::store::environments::fetch_environment;
use crate::store::releases::fetch_release;
use crate::store::{JobRecord, StoreError};

use super::{protected_paths, protected_tables, EnvPromotePayload};

/// The directory name of a release path (`…/releases/<name>`).
fn release_dir_name(path: &str) -> String {
    path.trim_end_matches('/')
        .rsplit('/')
        .next()
        .unwrap_or_default()
        .to_string()
}

/// The directory name of release `id`.
async fn release_dir(
    conn: &mut AnyConnection,
    id: Option<&str>,
    what: &'static str,
) -> Result<String, VarsError> {
    let id = id.ok_or(VarsError::Missing(what))?;
    let release = fetch_release(conn, id)
        .await?
        .ok_or(VarsError::Missing(what))?;
    Ok(release_dir_name(&release.path))
}

/// The source's newest clone-time baseline: its table and path checksums (JSON).
async fn baseline(
    conn: &mut AnyConnection,
    environment_id: &str,
) -> Result<(serde_json::Value, serde_json::Value), VarsError> {
    let baseline = crate::store::drift::fetch_baseline(conn, environment_id)
        .await?
        .ok_or(VarsError::Missing("the source's drift baseline"))?;
    let (tables, paths) = (baseline.db_checksums_json, baseline.file_checksums_json);
    let parse = |s: Option<String>| {
        s.and_then(|s| serde_json::from_str(&s).ok())
            .unwrap_or_else(|| serde_json::json!({}))
    };
    Ok((parse(tables), parse(paths)))
}

pub(super) async fn extra_vars(
    cx: &VarsContext<'_>,
    job: &JobRecord,
) -> Result<ResolvedVars, VarsError> {
    let mut conn = cx.store.pool().acquire().await.map_err(StoreError::from)?;
    let p = payload::read::<EnvPromotePayload>(job);
    let (site, env) = site_and_environment(&mut conn, job).await?;
    let source = fetch_environment(&mut conn, &p.source_environment_id)
        .await?
        .ok_or(VarsError::Missing("the source environment"))?;

    // Fixed at the first start (the engine's hook); else derived from the job, as stable.
    let release_name = p
        .release
        .release_name
        .clone()
        .unwrap_or_else(|| layout::release_name(&job.created_at, &job.id));
    let current = p
        .previous_release_id
        .clone()
        .or_else(|| env.current_release_id.clone());
    let current_release_name = release_dir(
        &mut conn,
        current.as_deref(),
        "the environment's current release",
    )
    .await?;
    let source_release_name = release_dir(
        &mut conn,
        source.current_release_id.as_deref(),
        "the source's current release",
    )
    .await?;
    let (baseline_tables, baseline_paths) = baseline(&mut conn, &source.id).await?;
    let source_layout = EnvLayout::new(&site.id, &source.id);
    let target_layout = EnvLayout::new(&site.id, &env.id);
    let spec = EnvPromoteSpec {
        contract_version: CONTRACT_VERSION,
        environment_id: env.id.clone(),
        release_name: release_name.clone(),
        current_release_name,
        source: PromoteSource {
            env_root: source_layout.env_root,
            env_user: source_layout.env_user,
            release_name: source_release_name,
            db_name: source_layout.db_name,
            canonical_url: canonical_or_preview(&mut conn, &source).await?,
        },
        db_name: target_layout.db_name,
        canonical_url: canonical_or_preview(&mut conn, &env).await?,
        promotion_preset: source.promotion_preset.clone(),
        protected_tables: protected_tables(&source.promotion_preset),
        protected_paths: protected_paths(&source.promotion_preset),
        baseline_tables,
        baseline_paths,
        go_live: go_live_spec(&mut conn, &site.id, &env).await?,
        node: Default::default(),
    };
    let mut resolved = node_spec_vars(&env.id, &spec, Vec::new())?;
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
            release_dir_name("/var/www/x/releases/20260101T000000Z-ab/"),
            "20260101T000000Z-ab"
        );
    }
}
