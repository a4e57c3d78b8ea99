//! The available-updates query (`GET /api/environments/{id}/updates`, the dashboard's "Apply
//! updates" list): one SSH command running `pressluft node update-check` on the environment's
//! node with an [`UpdateCheckSpec`] on stdin, answered within 10 s. Not a job: it changes
//! nothing, and the operator is waiting for it. The same way, [`menu_paths`]: a safe-update
//! run's default check pages (issue 16, `pressluft node menu-paths`).

use std::time::Duration;

use crate::config::Config;
use crate::domain::SiteStatus;
use crate::node_helper::spec::{
    AvailableUpdates, MenuPathsSpec, UpdateCheckSpec, CONTRACT_VERSION,
};
use crate::nodes::command::{self, CommandError};
use crate::secrets::Secrets;
use crate::sites::layout::EnvLayout;
use crate::store::environments::EnvironmentRecord;
use crate::store::nodes::NodeRecord;
use crate::store::{Store, StoreError};

/// The whole query's limit (connect, run, answer), as magic login's (backups-restore-promotion.md).
pub const LIMIT: Duration = Duration::from_secs(10);

/// Where node_provision installs the PHP bridge.
pub const PHP_DIR: &str = "/usr/local/lib/pressluft/php";

/// The setting naming a WordPress update service other than wordpress.org (issue 12).
pub const UPDATE_SOURCE_SETTING: &str = "wordpress_update_source";

/// The largest answer accepted from the node.
const MAX_ANSWER: usize = 1024 * 1024;

/// Why the list could not be read.
#[derive(Debug, thiserror::Error)]
pub enum UpdatesError {
    #[error("environment not found")]
    NotFound,
    /// 409 `environment_not_active`.
    #[error("the environment is {0}, not active")]
    NotActive(SiteStatus),
    /// 502 `node_unreachable`: SSH failed or the 10 s passed.
    #[error("the node could not be reached")]
    Unreachable,
    /// 502 `wp_cli_error`: the helper failed or answered something unreadable.
    #[error("WordPress could not list its updates{}", .0.as_deref().map(|c| format!(" ({c})")).unwrap_or_default())]
    Helper(Option<String>),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The default check pages of a safe-update run (issue 16): `/` and the same-host paths of
/// the environment's primary menu, at most 10, from `pressluft node menu-paths` over one SSH
/// command (the same limits and errors as [`available_updates`]).
pub async fn menu_paths(
    store: &Store,
    secrets: &Secrets,
    config: &Config,
    environment_id: &str,
) -> Result<Vec<String>, UpdatesError> {
    let (env, node) = active_environment(store, environment_id).await?;
    let layout = EnvLayout::new(&env.site_id, &env.id);
    let spec = MenuPathsSpec {
        contract_version: CONTRACT_VERSION,
        environment_id: env.id.clone(),
        env_root: layout.env_root,
        env_user: layout.env_user,
        php_dir: PHP_DIR.to_string(),
    };
    let spec = serde_json::to_string(&spec).expect("the spec serializes");
    let out = node_query(config, secrets, &node, "menu-paths", &spec).await?;
    let answer: serde_json::Value = serde_json::from_slice(&out).map_err(|e| {
        tracing::warn!(environment = %env.id, error = %e, "menu-paths answered unreadable JSON");
        UpdatesError::Helper(None)
    })?;
    // The node checked them; checked again here (the control plane trusts no answer).
    crate::node_helper::menu_paths::parse_answer(answer)
        .map(|m| m.paths)
        .map_err(|_| UpdatesError::Helper(None))
}

/// The environment (active) and its node.
async fn active_environment(
    store: &Store,
    environment_id: &str,
) -> Result<(EnvironmentRecord, NodeRecord), UpdatesError> {
    let env = store
        .get_environment(environment_id)
        .await?
        .ok_or(UpdatesError::NotFound)?;
    if env.status != SiteStatus::Active {
        return Err(UpdatesError::NotActive(env.status));
    }
    let node = store
        .get_node(&env.node_id)
        .await?
        .ok_or(UpdatesError::Unreachable)?;
    Ok((env, node))
}

/// One node-helper query over SSH within [`LIMIT`].
async fn node_query(
    config: &Config,
    secrets: &Secrets,
    node: &NodeRecord,
    subcommand: &'static str,
    spec: &str,
) -> Result<Vec<u8>, UpdatesError> {
    command::run(config, secrets, node, subcommand, spec, LIMIT, MAX_ANSWER)
        .await
        .map_err(|e| match e {
            CommandError::Unreachable => UpdatesError::Unreachable,
            CommandError::Failed { helper_code, .. } => UpdatesError::Helper(helper_code),
            CommandError::TooLarge => UpdatesError::Helper(None),
            CommandError::Local(_) => UpdatesError::Unreachable,
        })
}

/// Asks the environment's node which updates WordPress offers.
pub async fn available_updates(
    store: &Store,
    secrets: &Secrets,
    config: &Config,
    environment_id: &str,
) -> Result<AvailableUpdates, UpdatesError> {
    let (env, node) = active_environment(store, environment_id).await?;
    let layout = EnvLayout::new(&env.site_id, &env.id);
    let spec = UpdateCheckSpec {
        contract_version: CONTRACT_VERSION,
        environment_id: env.id.clone(),
        env_root: layout.env_root,
        env_user: layout.env_user,
        update_source: store.get_setting(UPDATE_SOURCE_SETTING).await?,
        allow_loopback_sources: config.allow_loopback_sources,
        php_dir: PHP_DIR.to_string(),
    };
    let spec = serde_json::to_string(&spec).expect("the spec serializes");
    let out = node_query(config, secrets, &node, "update-check", &spec).await?;
    serde_json::from_slice(&out).map_err(|e| {
        tracing::warn!(environment = %env.id, error = %e, "update-check answered unreadable JSON");
        UpdatesError::Helper(None)
    })
}
