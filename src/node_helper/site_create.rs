//! `pressluft node site-create`: the node work of `site_create` (jobs.md §11) in one call, so
//! `site-create.yml` runs a handful of tasks (it ran ~50 role tasks; Ansible costs half a
//! second to a second per task). The same library as `env-clone` (users, releases, database,
//! services), so one implementation creates an environment's user, pool, server block and
//! release, and one switches and prunes releases.
//!
//! 1. **Checks** (change nothing; exit [`spec::PRECONDITION_EXIT`], `PRECONDITION_FAILED`): the
//!    contract version, consistent names, a supported system, the files node_provision
//!    installs, no link where the environment's directories go.
//! 2. **Apply**: user and directories; WordPress fetched into a new release (a failure exits
//!    with [`SOURCE_FETCH_EXIT`], `SOURCE_FETCH_FAILED`); database and user; `wp-config.php`;
//!    the Redis ACL user and drop-in; the release completed (links to `shared/`, mu-plugin,
//!    modes); the PHP-FPM pool; WordPress installed through the PHP bridge; the preview server
//!    block; `current` switched; old releases pruned; PHP-FPM and Nginx reloaded. Prints JSON.
//!    Idempotent: a complete release is reused, a half-built one rebuilt, the install reports
//!    `already`.

use anyhow::{bail, Context};
use serde::Serialize;
use serde_json::Value;

use super::process::{timed, Steps};
use super::services::{self, REDIS_ACL_APPLY};
use super::spec::{self, SiteCreateSpec};
use super::{bridge, fetch, files, releases, users};

/// Exit code of a failed fetch of the WordPress source (the playbook reports
/// `SOURCE_FETCH_FAILED`).
pub const SOURCE_FETCH_EXIT: i32 = 4;

/// The table prefix of a new site.
const TABLE_PREFIX: &str = "wp_";
/// The administrator the install creates.
const ADMIN_USER: &str = "pressluft-admin";

/// What `site-create` prints (the playbook's result file takes its fields).
#[derive(Debug, Serialize)]
pub struct Created {
    pub release_path: String,
    /// The source this run installed from.
    pub source_ref: String,
    pub wordpress_version: String,
    pub table_prefix: String,
    /// What took how long, for the job log.
    pub steps: Vec<String>,
}

/// Reads the spec from stdin, checks the node, creates the environment, prints the result.
pub fn run() -> anyhow::Result<()> {
    spec::run_command(check, |spec, php_version: &String| apply(spec, php_version))
}

fn trimmed(path: &str) -> &str {
    path.trim_end_matches('/')
}

/// Read-only checks; returns the node's PHP version.
pub fn check(spec: &SiteCreateSpec) -> anyhow::Result<String> {
    let env_root = trimmed(&spec.env.env_root);
    let expected = format!("{env_root}/releases/{}", spec.env.release_name);
    if spec.env.release_path != expected || spec.env.release_name.contains('/') {
        bail!(
            "the job's variables are inconsistent: release_path {} does not match the release name",
            spec.env.release_path
        );
    }
    let depth = env_root.split('/').filter(|c| !c.is_empty()).count();
    if !env_root.starts_with('/') || depth < 3 {
        bail!("the job's variables are inconsistent: env_root {env_root} is not /…/<site>/<environment>");
    }
    if !(spec.wordpress_source.starts_with("dir:/")
        || spec.wordpress_source.starts_with("http://")
        || spec.wordpress_source.starts_with("https://"))
    {
        bail!("the job's variables are inconsistent: the WordPress source must be dir:/… or http(s)://…");
    }
    let sha = &spec.wordpress_source_sha256;
    if !(sha.is_empty() || (sha.len() == 64 && sha.bytes().all(|b| b.is_ascii_hexdigit()))) {
        bail!("the job's variables are inconsistent: wordpress_source_sha256 is not a SHA-256");
    }
    let f = &spec.files;
    if [
        &f.wp_config,
        &f.pool,
        &f.database_sql,
        &f.vhost,
        &f.vhost_without_ipv6,
        &f.redis_acl,
    ]
    .iter()
    .any(|c| c.is_empty())
    {
        bail!("the playbook did not render every configuration file");
    }
    let php_version = services::php_version(&spec.node.supported_os)?;
    let php_dir = &spec.node.php_dir;
    let required = [
        format!("{php_dir}/bridge.php"),
        format!("{php_dir}/pressluft-mu-plugin.php"),
        format!("{php_dir}/object-cache.php"),
        REDIS_ACL_APPLY.to_string(),
    ];
    let missing = files::missing(&required)?;
    if !missing.is_empty() {
        bail!(
            "Missing on the node: {} (node_provision installs them: provision the node again).",
            missing.join(", ")
        );
    }
    for dir in [
        env_root.to_string(),
        format!("{env_root}/releases"),
        format!("{env_root}/shared"),
    ] {
        files::refuse_link(&dir)?;
    }
    Ok(php_version)
}

/// Everything that changes the node.
pub fn apply(spec: &SiteCreateSpec, php_version: &str) -> anyhow::Result<Created> {
    let env_root = trimmed(&spec.env.env_root);
    let user = spec.env.env_user.as_str();
    let php_dir = spec.node.php_dir.as_str();
    let mut steps = Steps::default();
    users::ensure_user(user, env_root)?;
    users::ensure_directories(user, env_root)?;
    steps.done("user and directories");

    let build = releases::start(env_root, &spec.env.release_name, user)?;
    if let Some(build) = &build {
        if let Err(e) = fetch::fetch(
            &spec.wordpress_source,
            &spec.wordpress_source_sha256,
            spec.allow_loopback_sources,
            &build.dir,
            user,
        ) {
            eprintln!("error: {e:#}");
            std::process::exit(SOURCE_FETCH_EXIT);
        }
    }
    steps.done("fetch");

    // The database, wp-config.php and the Redis user while nothing needs them yet; the
    // release is completed meanwhile (it only links to shared/).
    let ((), configured) = std::thread::scope(|s| {
        let completed = build.map(|b| s.spawn(move || b.complete(user, php_dir)));
        let configured = timed(|| {
            super::database::ensure(&spec.files.database_sql)?;
            files::install(
                &format!("{env_root}/shared/wp-config.php"),
                &spec.files.wp_config,
                &format!("{user}:{user}"),
                0o600,
                None,
            )?;
            services::ensure_redis_user(&spec.env.environment_id, &spec.files.redis_acl)?;
            services::sync_object_cache(
                env_root,
                user,
                php_dir,
                spec.env.redis_cache_enabled,
                &spec.env.redis_prefix,
            )?;
            services::install_pool(php_version, &spec.env.environment_id, &spec.files.pool)
        });
        let completed = completed.map_or(Ok(()), super::process::join);
        completed.context("completing the release")?;
        configured
    })?;
    steps.done(&format!(
        "release, database, configuration (configuration {configured:.1} s)"
    ));

    let install = serde_json::json!({
        "url": spec.env.canonical_url,
        "title": spec.site_title,
        "admin_user": ADMIN_USER,
        "admin_email": spec.admin_email,
    });
    let answer = bridge::call(
        php_dir,
        user,
        &spec.env.release_path,
        Some(env_root),
        &["install", &install.to_string()],
    )
    .context("installing WordPress")?;
    if answer.get("installed").and_then(Value::as_bool) != Some(true) {
        bail!("the PHP bridge did not install WordPress: {answer}");
    }
    let wordpress_version = answer
        .get("version")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    steps.done("install");

    let vhost = if services::has_ipv6() {
        &spec.files.vhost
    } else {
        &spec.files.vhost_without_ipv6
    };
    services::install_server_block(&spec.env.environment_id, vhost)?;
    let before = releases::current(env_root)?;
    releases::switch_current(env_root, &spec.env.release_name, user)?;
    let mut protected = vec![spec.env.release_name.as_str()];
    protected.extend(before.as_deref());
    let pruned = releases::prune(env_root, spec.release_keep, &protected)?;
    services::reload(php_version)?;
    steps.done(&format!(
        "server block, switch, prune ({} removed), reloads",
        pruned.len()
    ));
    Ok(Created {
        release_path: spec.env.release_path.clone(),
        source_ref: spec.wordpress_source.clone(),
        wordpress_version,
        table_prefix: TABLE_PREFIX.to_string(),
        steps: steps.into_lines(),
    })
}
