//! The node's shared services as one environment uses them: the supported system and its PHP
//! version, the PHP-FPM pool and the Nginx server block (rendered by the playbook from the
//! roles' templates, validated before they replace the real ones), the Redis ACL user and
//! object-cache drop-in (with the purge of the environment's keys), and the reloads.

use std::collections::BTreeMap;
use std::ffi::OsStr;
use std::os::fd::AsFd;
use std::path::Path;

use anyhow::{bail, Context};

use super::files;
use super::nofollow;
use super::process::{join, run_cmd};
use super::users::WEB_GROUP;

const NGINX_VALIDATE: &str = "/usr/local/lib/pressluft/nginx-validate";
/// Installed by the redis-server role (node_provision).
const REDIS_ADMIN: &str = "/usr/local/lib/pressluft/redis-admin";
pub const REDIS_ACL_APPLY: &str = "/usr/local/lib/pressluft/redis-acl-apply";
const REDIS_ACL_DIR: &str = "/etc/redis/acl.d";

/// `"debian 12"` / `"ubuntu 24.04"` from /etc/os-release (Debian by major version, as the
/// playbooks' distribution facts do).
pub fn os_key(os_release: &str) -> String {
    let field = |name: &str| {
        os_release
            .lines()
            .find_map(|l| l.strip_prefix(name)?.strip_prefix('='))
            .map(|v| v.trim().trim_matches('"').to_lowercase())
            .unwrap_or_default()
    };
    let (id, version) = (field("ID"), field("VERSION_ID"));
    let version = if id == "debian" {
        version.split('.').next().unwrap_or_default().to_string()
    } else {
        version
    };
    format!("{id} {version}")
}

/// The PHP version of this node's system (`supported_os`: `"debian 12"` → `"8.2"`), or an
/// error naming the unsupported system.
pub fn php_version(supported_os: &BTreeMap<String, String>) -> anyhow::Result<String> {
    let os_release = std::fs::read_to_string("/etc/os-release").unwrap_or_default();
    let os = os_key(&os_release);
    match supported_os.get(&os) {
        Some(v) => Ok(v.clone()),
        None => bail!("the node runs {os:?}; Pressluft needs Ubuntu 24.04 or Debian 12"),
    }
}

/// Whether the kernel has IPv6 (a server block listens on `[::]:80` only then).
pub fn has_ipv6() -> bool {
    Path::new("/proc/net/if_inet6").exists()
}

/// The environment's Redis ACL user: its fragment (rendered by the playbook from the
/// redis-acl-user role's template) in `/etc/redis/acl.d`, then the ACL file rebuilt and loaded
/// as the redis-acl-user role does (`redis-acl-apply`).
pub fn ensure_redis_user(environment_id: &str, fragment: &str) -> anyhow::Result<()> {
    let line = fragment.trim();
    if line.lines().count() != 1 || !line.starts_with("user ") {
        bail!("the rendered Redis ACL fragment must be one user line");
    }
    files::install(
        &format!("{REDIS_ACL_DIR}/env-{environment_id}.acl"),
        &format!("{line}\n"),
        "root:root",
        0o600,
        None,
    )?;
    run_cmd(REDIS_ACL_APPLY, &[]).context("loading the Redis ACL file")?;
    Ok(())
}

/// Installs (`enabled`) or removes the Redis drop-in `shared/object-cache.php`, and purges the
/// environment's keys when it comes or goes (as the redis-object-cache role's handler: a new
/// drop-in must not read another life's entries).
pub fn sync_object_cache(
    env_root: &str,
    user: &str,
    php_dir: &str,
    enabled: bool,
    redis_prefix: &str,
) -> anyhow::Result<()> {
    let drop_in = format!("{env_root}/shared/object-cache.php");
    // Read and removed through the opened shared/ directory, never through a link.
    let shared = nofollow::open_dir(Path::new(&format!("{env_root}/shared")))?;
    let in_shared = nofollow::fd_path(&shared).join("object-cache.php");
    let existing = match nofollow::kind_at(shared.as_fd(), OsStr::new("object-cache.php"))? {
        Some(libc::S_IFREG) => std::fs::read_to_string(&in_shared).ok(),
        Some(_) => Some(String::new()), // not ours: replaced below
        None => None,
    };
    if enabled {
        let content = std::fs::read_to_string(format!("{php_dir}/object-cache.php"))
            .context("reading the Redis drop-in")?;
        let owner = format!("{user}:{WEB_GROUP}");
        files::install(&drop_in, &content, &owner, 0o640, None)?;
        if existing.as_deref() != Some(content.as_str()) {
            purge_redis(redis_prefix)?;
        }
    } else if existing.is_some() {
        std::fs::remove_file(&in_shared)?;
        purge_redis(redis_prefix)?;
    }
    Ok(())
}

/// Installs the environment's PHP-FPM pool, checked by `php-fpm -t` first.
pub fn install_pool(php_version: &str, environment_id: &str, pool: &str) -> anyhow::Result<()> {
    let php_fpm = format!("/usr/sbin/php-fpm{php_version}");
    let dest = format!("/etc/php/{php_version}/fpm/pool.d/pressluft-{environment_id}.conf");
    let check = |candidate: &str| run_cmd(&php_fpm, &["-t", "-y", candidate]).map(drop);
    files::install(&dest, pool, "root:root", 0o644, Some(&check))
}

/// Installs the environment's server block, checked by `nginx-validate` first.
pub fn install_server_block(environment_id: &str, vhost: &str) -> anyhow::Result<()> {
    install_nginx_block(&format!("pressluft-env-{environment_id}.conf"), vhost)
}

/// Installs the server block of one of the environment's custom domains
/// (`pressluft-domain-<domain id>.conf`, domains-and-tls.md §6), checked like the
/// environment's own.
pub fn install_domain_block(domain_id: &str, vhost: &str) -> anyhow::Result<()> {
    install_nginx_block(&format!("pressluft-domain-{domain_id}.conf"), vhost)
}

/// Installs `/etc/nginx/sites-enabled/<file_name>`, checked by `nginx-validate` first.
fn install_nginx_block(file_name: &str, vhost: &str) -> anyhow::Result<()> {
    if file_name.contains('/') || file_name.starts_with('.') {
        bail!("{file_name:?} is not a server block's file name");
    }
    let dest = format!("/etc/nginx/sites-enabled/{file_name}");
    // The candidate sits in the same directory as the server block; nginx-validate copies it
    // to the destination for the test, so the temporary name is never included by nginx.
    let check = |candidate: &str| run_cmd(NGINX_VALIDATE, &[candidate, &dest]).map(drop);
    files::install(&dest, vhost, "root:root", 0o644, Some(&check))
}

/// Deletes the environment's Redis keys (never FLUSHDB: Redis is shared by the node), as the
/// admin user; returns how many there were.
pub fn purge_redis(prefix: &str) -> anyhow::Result<usize> {
    // The prefix is `pressluft_<uuid>:` (sites::layout); anything else could widen the
    // pattern to other environments' keys.
    if !prefix.ends_with(':') || prefix.len() < 2 || prefix.contains(['*', '?', '[', ']', '\\']) {
        bail!("{prefix:?} is not an environment's Redis key prefix");
    }
    let pattern = format!("{prefix}*");
    let keys = run_cmd(REDIS_ADMIN, &["--scan", "--pattern", &pattern])?;
    let keys: Vec<&str> = keys.lines().filter(|k| !k.is_empty()).collect();
    for batch in keys.chunks(500) {
        let mut args = vec!["unlink"];
        args.extend_from_slice(batch);
        run_cmd(REDIS_ADMIN, &args)?;
    }
    Ok(keys.len())
}

/// Checks and reloads PHP-FPM and Nginx, both at once (`service` works with and without
/// systemd).
pub fn reload(php_version: &str) -> anyhow::Result<()> {
    std::thread::scope(|s| {
        let php = s.spawn(|| {
            run_cmd(&format!("/usr/sbin/php-fpm{php_version}"), &["-t"])?;
            run_cmd("service", &[&format!("php{php_version}-fpm"), "reload"]).map(drop)
        });
        let nginx = s.spawn(reload_nginx);
        join(php).and(join(nginx))
    })
}

/// Checks and reloads Nginx alone (a server block changed, PHP did not).
pub fn reload_nginx() -> anyhow::Result<()> {
    run_cmd("nginx", &["-t", "-q"])?;
    run_cmd("service", &["nginx", "reload"]).map(drop)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn os_keys_match_the_playbooks_distribution_facts() {
        let debian =
            "PRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\nID=debian\nVERSION_ID=\"12\"\n";
        assert_eq!(os_key(debian), "debian 12");
        let ubuntu = "NAME=\"Ubuntu\"\nVERSION_ID=\"24.04\"\nID=ubuntu\nID_LIKE=debian\n";
        assert_eq!(os_key(ubuntu), "ubuntu 24.04");
        assert_eq!(os_key(""), " ");
    }
}
