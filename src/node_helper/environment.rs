//! Creating an environment's infrastructure on the node, shared by `env-clone` (a staging or
//! clone environment, src/node_helper/env_clone.rs) and `restore-drill` (a drill's temporary
//! environment, src/node_helper/drill.rs), so there is one implementation: the Linux user and
//! its directories, the database and its user, the Redis ACL user ([`create_base`]), then the
//! files the playbook rendered from the roles' templates — `wp-config.php`, the Redis drop-in,
//! the PHP-FPM pool and the preview server block, each validated before it is put in place
//! ([`install_files`]). Both are idempotent.

use anyhow::Result;

use super::services;
use super::spec::{Files, NewEnvironment, NodeFacts};
use super::{files, users};

/// The user and directories, the database, its user and grant, and the Redis ACL user.
pub fn create_base(env: &NewEnvironment, rendered: &Files) -> Result<()> {
    let env_root = env.env_root.trim_end_matches('/');
    users::ensure_user(&env.env_user, env_root)?;
    users::ensure_directories(&env.env_user, env_root)?;
    super::database::ensure(&rendered.database_sql)?;
    services::ensure_redis_user(&env.environment_id, &rendered.redis_acl)
}

/// `wp_config` (the table prefix in place) and the Redis drop-in, the PHP-FPM pool and the
/// server block `vhost` (the variant for this kernel). PHP-FPM and Nginx are not reloaded.
pub fn install_files(
    env: &NewEnvironment,
    node: &NodeFacts,
    rendered: &Files,
    wp_config: &str,
    vhost: &str,
    php_version: &str,
) -> Result<()> {
    let env_root = env.env_root.trim_end_matches('/');
    files::install(
        &format!("{env_root}/shared/wp-config.php"),
        wp_config,
        &format!("{0}:{0}", env.env_user),
        0o600,
        None,
    )?;
    services::sync_object_cache(
        env_root,
        &env.env_user,
        &node.php_dir,
        env.redis_cache_enabled,
        &env.redis_prefix,
    )?;
    services::install_pool(php_version, &env.environment_id, &rendered.pool)?;
    services::install_server_block(&env.environment_id, vhost)
}
