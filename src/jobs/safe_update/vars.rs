//! Variables of `safe-update.yml` (docs/node-helper.md): for the temporary environment those
//! of `env-create.yml` (the playbook renders its configuration files from the same roles'
//! templates) and one node-helper spec per step, each built by the same types the step's own
//! job uses — `update-check` and `menu-paths` on production, `env-clone` (production → the
//! temporary environment, as `env_create` renders a clone), `env-update` of the temporary
//! environment (the playbook adds the exact `versions` update-check found, no pre-update
//! backup), `php-fatals` (the playbook adds `since`), `env-delete` (no final backup) — and the
//! controller step's `safe-update-shots` settings (run directory, preview host and the node's
//! address, the check pages, masks, threshold, chromium). The temporary environment's
//! passwords and salts are created here on the first attempt (hooks cannot write secrets) and
//! forgotten when the job ends; so is the data key of the automatic apply's pre-update backup
//! (kept only when that backup is made).

use serde_json::{json, Value};

use super::super::kinds::{ResolvedVars, VarsContext, VarsError};
use super::super::lifecycle::{environment_vars, new_environment, var_str};
use super::{read, SafeUpdatePayload};
use crate::jobs::gate::go_live_spec;
use crate::node_helper::spec::{
    DeleteEnvironment, EnvCloneSpec, EnvDeleteSpec, EnvUpdateSpec, MenuPathsSpec, PhpFatalsSpec,
    UpdateCheckSpec, CONTRACT_VERSION,
};
use crate::settings::wordpress_update_source;
use crate::sites::db_password_key;
use crate::sites::layout::{self, url_host, EnvLayout, DRIFT_PATHS, DRIFT_TABLES};
use crate::sites::secrets::create_environment_secrets;
use crate::store::environments::{canonical_url, fetch_environment};
use crate::store::releases::fetch_release;
use crate::store::sites::fetch_site;
use crate::store::{JobRecord, StoreError};

/// The chromium the screenshots use until the configuration names one.
pub const DEFAULT_CHROMIUM: &str = "/usr/lib/chromium/chromium";
/// At most this many check pages in all.
pub const MAX_PAGES: usize = 10;

fn to_value<T: serde::Serialize>(spec: &T) -> Result<Value, VarsError> {
    serde_json::to_value(spec).map_err(|_| VarsError::Missing("a node spec"))
}

pub(super) async fn extra_vars(
    cx: &VarsContext<'_>,
    job: &JobRecord,
) -> Result<ResolvedVars, VarsError> {
    let p: SafeUpdatePayload = read(job);
    let temp_id = p
        .temp_environment_id
        .clone()
        .ok_or(VarsError::Missing("the temporary environment"))?;
    // The temporary environment's secrets: created on the first attempt.
    if cx.secrets.get(&db_password_key(&temp_id))?.is_none() {
        create_environment_secrets(cx.secrets, &temp_id)?;
    }
    // The data key of the automatic apply's pre-update backup (its row is inserted only when
    // every page passed; otherwise the scheduler forgets the key).
    let key = crate::backups::data_key_secret(&p.apply_backup_id);
    if !p.apply_backup_id.is_empty() && cx.secrets.get(&key)?.is_none() {
        cx.secrets
            .put(&key, &crate::node_helper::backup::generate_data_key())?;
    }
    let mut temp_job = job.clone();
    temp_job.environment_id = Some(temp_id.clone());
    let (mut resolved, site, temp) = environment_vars(cx, &temp_job).await?;

    let mut conn = cx.store.pool().acquire().await.map_err(StoreError::from)?;
    let production_id = job
        .environment_id
        .clone()
        .ok_or(VarsError::Missing("the production environment"))?;
    let production = fetch_environment(&mut conn, &production_id)
        .await?
        .ok_or(VarsError::Missing("the production environment"))?;
    let release = match &production.current_release_id {
        Some(id) => fetch_release(&mut conn, id).await?,
        None => None,
    }
    .ok_or(VarsError::Missing("production's current release"))?;
    let production_url = canonical_url(&mut conn, &production.id)
        .await?
        .unwrap_or_else(|| production.preview_url.clone());
    let prod = EnvLayout::new(&site.id, &production.id);
    let tl = EnvLayout::new(&site.id, &temp.id);
    let php_dir = crate::deploys::updates::PHP_DIR.to_string();
    let update_source = wordpress_update_source(&mut conn).await?;
    let settings = fetch_site(&mut conn, &site.id)
        .await?
        .ok_or(VarsError::Missing("the site"))?;

    let check = UpdateCheckSpec {
        contract_version: CONTRACT_VERSION,
        environment_id: production.id.clone(),
        env_root: prod.env_root.clone(),
        env_user: prod.env_user.clone(),
        update_source: update_source.clone(),
        allow_loopback_sources: cx.config.allow_loopback_sources,
        php_dir: php_dir.clone(),
    };
    let menu = MenuPathsSpec {
        contract_version: CONTRACT_VERSION,
        environment_id: production.id.clone(),
        env_root: prod.env_root.clone(),
        env_user: prod.env_user.clone(),
        php_dir: php_dir.clone(),
    };
    let clone = EnvCloneSpec {
        contract_version: CONTRACT_VERSION,
        env: new_environment(&resolved.vars)?,
        db_name: var_str(&resolved.vars, "db_name")?,
        db_user: var_str(&resolved.vars, "db_user")?,
        source_env_root: prod.env_root.clone(),
        source_env_user: prod.env_user.clone(),
        source_db_name: prod.db_name.clone(),
        source_release_path: release.path.clone(),
        source_canonical_url: production_url.clone(),
        production_env_root: prod.env_root.clone(),
        production_db_name: prod.db_name.clone(),
        drift_tables: DRIFT_TABLES.iter().map(|t| t.to_string()).collect(),
        drift_paths: DRIFT_PATHS.iter().map(|p| p.to_string()).collect(),
        node: Default::default(),
        files: Default::default(),
    };
    let clone_release = var_str(&resolved.vars, "release_name")?;
    let update = EnvUpdateSpec {
        contract_version: CONTRACT_VERSION,
        environment_id: temp.id.clone(),
        // Distinct from the clone's release (its suffix is the job's id).
        release_name: layout::release_name(&job.created_at, &p.apply_backup_id),
        current_release_name: clone_release,
        scope: "all".into(),
        update_source,
        allow_loopback_sources: cx.config.allow_loopback_sources,
        // A throwaway clone: no pre-update backup.
        pre_backup: None,
        go_live: go_live_spec(&mut conn, &site.id, &temp).await?,
        node: Default::default(),
        // Added by the playbook: exactly what update-check found.
        versions: None,
    };
    let fatals = PhpFatalsSpec {
        contract_version: CONTRACT_VERSION,
        environment_id: temp.id.clone(),
        env_root: tl.env_root.clone(),
        env_user: tl.env_user.clone(),
        // Added by the playbook: the node's time before the update.
        since: String::new(),
    };
    let delete = EnvDeleteSpec {
        contract_version: CONTRACT_VERSION,
        site_id: site.id.clone(),
        remove_site_dir: false,
        environments: vec![DeleteEnvironment {
            environment_id: temp.id.clone(),
            env_root: tl.env_root.clone(),
            env_user: tl.env_user.clone(),
            database: tl.db_name.clone(),
            db_user: tl.db_user.clone(),
            redis_prefix: tl.redis_prefix.clone(),
            hosts: vec![url_host(&temp.preview_url).to_ascii_lowercase()],
            domain_ids: Vec::new(),
            certificates: Vec::new(),
            final_backup: None,
        }],
        node: Default::default(),
    };
    let paths: Vec<String> = serde_json::from_str(&settings.safe_updates_paths).unwrap_or_default();
    let masks: Value = serde_json::from_str(&settings.safe_updates_masks).unwrap_or(json!({}));
    let control_plane = match &cx.config.node_binary {
        Some(path) => path.clone(),
        None => std::env::current_exe().map_err(|_| VarsError::Missing("this program's path"))?,
    };
    let run_dir = crate::safe_updates::service::run_dir(&cx.config.data_dir, &p.run_id);
    let preview_host = url_host(&temp.preview_url).to_ascii_lowercase();
    let shots = json!({
        "run_dir": run_dir.to_string_lossy(),
        "base_url": format!("{}/", temp.preview_url.trim_end_matches('/')),
        "resolve": {"host": preview_host, "ip": cx.node.public_ip.clone().unwrap_or_default()},
        "masks": masks,
        "threshold_percent": settings.safe_updates_threshold,
        "chromium": DEFAULT_CHROMIUM,
    });

    let v = &mut resolved.vars;
    v.insert("run_id".into(), p.run_id.clone().into());
    v.insert("source_environment_id".into(), production.id.clone().into());
    v.insert("source_env_root".into(), prod.env_root.clone().into());
    v.insert("source_env_user".into(), prod.env_user.clone().into());
    v.insert("source_db_name".into(), prod.db_name.clone().into());
    v.insert("production_db_name".into(), prod.db_name.clone().into());
    v.insert("node_spec_check".into(), to_value(&check)?);
    v.insert("node_spec_menu".into(), to_value(&menu)?);
    v.insert("node_spec_clone".into(), to_value(&clone)?);
    v.insert("node_spec_update".into(), to_value(&update)?);
    v.insert("node_spec_fatals".into(), to_value(&fatals)?);
    v.insert("node_spec_delete".into(), to_value(&delete)?);
    v.insert("check_paths".into(), json!(paths));
    v.insert("max_pages".into(), MAX_PAGES.into());
    v.insert("shots".into(), shots);
    v.insert(
        "control_plane_binary".into(),
        control_plane.to_string_lossy().into_owned().into(),
    );
    // A retry first removes what an earlier attempt may have left of the temporary environment.
    v.insert("cleanup_first".into(), (job.attempt_count > 1).into());
    Ok(resolved)
}
