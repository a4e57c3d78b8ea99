//! `pressluft node env-cache` and `pressluft node cache-purge`: the node side of the cache
//! controls (domains-and-tls.md §6, jobs.md §11 `env_cache_toggle`, `cache_purge`).
//!
//! `env-cache` makes the node match the environment's two cache flags as the database holds
//! them when the job runs: the preview server block (`pressluft-env-<id>.conf`, rendered by the
//! playbook from the env-vhost role's template with or without the FastCGI cache directives)
//! is installed after `nginx-validate` checked it, the Redis drop-in `shared/object-cache.php`
//! is copied in or deleted ([`services::sync_object_cache`]; deleted, the release's link
//! dangles and WordPress uses its built-in cache), Nginx is reloaded, and the environment's
//! FastCGI entries and Redis keys are purged — both directions delete its Redis keys, so a
//! drop-in that comes back never reads entries from before. The blocks of the environment's
//! custom domains (`pressluft-domain-<domain id>.conf`) are rewritten the same way: the spec
//! carries them as a list ([`DomainBlock`]), empty until custom domains exist (issue 15 renders
//! them in `env-cache-toggle.yml`).
//!
//! `cache-purge` deletes only the environment's own cache: the FastCGI files whose stored key
//! names one of its hosts exactly ([`switch::purge_fastcgi`], the zone is shared by the node)
//! and the Redis keys under its prefix ([`services::purge_redis`], never FLUSHDB).
//!
//! Both check first and change nothing when a check fails (exit 3, `PRECONDITION_FAILED`): the
//! ids and hosts must be well-formed (they name files and match cache keys), the prefix must be
//! the environment's own, and for `env-cache` the environment's `shared/` must be a real
//! directory (never followed through a link) and the rendered blocks present.

use std::ffi::OsStr;
use std::os::fd::AsFd;
use std::path::Path;

use anyhow::bail;
use serde::Serialize;

use super::nofollow;
use super::services;
use super::spec::{self, CachePurgeSpec, DomainBlock, EnvCacheSpec, ServerBlock};
use super::switch::{self, Purged};

/// What `env-cache` prints.
#[derive(Debug, Serialize)]
pub struct CacheApplied {
    pub fastcgi_cache_enabled: bool,
    pub redis_cache_enabled: bool,
    /// Whether `shared/object-cache.php` exists afterwards.
    pub object_cache_present: bool,
    /// Custom-domain server blocks rewritten.
    pub domain_blocks: usize,
    #[serde(flatten)]
    pub purged: Purged,
}

/// `env-cache`: reads the spec from stdin, checks, applies, prints [`CacheApplied`].
pub fn run_toggle() -> anyhow::Result<()> {
    spec::run_command(check_toggle, |s, ()| apply_toggle(s))
}

/// `cache-purge`: reads the spec from stdin, checks, purges, prints [`Purged`].
pub fn run_purge() -> anyhow::Result<()> {
    spec::run_command(check_purge, |s, ()| apply_purge(s))
}

/// Whether `id` is a canonical (lower-case, hyphenated) UUID: it names files here.
pub fn is_uuid(id: &str) -> bool {
    id.len() == 36
        && id.bytes().enumerate().all(|(i, b)| match i {
            8 | 13 | 18 | 23 => b == b'-',
            _ => b.is_ascii_digit() || (b'a'..=b'f').contains(&b),
        })
}

/// Whether `host` is a plain lower-case host name (it is compared with cache keys).
pub fn is_host(host: &str) -> bool {
    !host.is_empty()
        && host.len() <= 253
        && !host.starts_with(['.', '-'])
        && host
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'.' || b == b'-')
}

/// The checks both commands share: the environment's id, its hosts and its own Redis prefix.
pub fn check_common(environment_id: &str, hosts: &[String], prefix: &str) -> anyhow::Result<()> {
    if !is_uuid(environment_id) {
        bail!("{environment_id:?} is not an environment id");
    }
    if hosts.is_empty() {
        bail!("the environment has no hosts");
    }
    if let Some(h) = hosts.iter().find(|h| !is_host(h)) {
        bail!("{h:?} is not a host name");
    }
    if prefix != format!("pressluft_{environment_id}:") {
        bail!("{prefix:?} is not the environment's Redis key prefix");
    }
    Ok(())
}

fn check_block(what: &str, block: &ServerBlock) -> anyhow::Result<()> {
    for v in [&block.vhost, &block.vhost_without_ipv6] {
        if !v.contains("server_name") {
            bail!("the rendered server block of {what} is missing");
        }
    }
    Ok(())
}

/// `env-cache`'s preconditions (changes nothing).
pub fn check_toggle(s: &EnvCacheSpec) -> anyhow::Result<()> {
    check_common(&s.environment_id, &s.hosts, &s.redis_prefix)?;
    check_block("the environment", &s.server_block)?;
    for d in &s.domain_blocks {
        if !is_uuid(&d.domain_id) {
            bail!("{:?} is not a domain id", d.domain_id);
        }
        check_block(&format!("domain {}", d.domain_id), &d.block)?;
    }
    let shared = format!("{}/shared", s.env_root.trim_end_matches('/'));
    nofollow::open_dir(Path::new(&shared)).map_err(|e| anyhow::anyhow!("{e}"))?;
    nofollow::user_ids(&s.env_user)?;
    if s.redis_cache_enabled {
        let drop_in = format!("{}/object-cache.php", s.node.php_dir);
        if s.node.php_dir.is_empty() || !Path::new(&drop_in).is_file() {
            bail!("the Redis drop-in {drop_in} is missing: provision the node again");
        }
    }
    Ok(())
}

/// The variant of `block` for this kernel.
fn for_this_kernel(block: &ServerBlock) -> &str {
    if services::has_ipv6() {
        &block.vhost
    } else {
        &block.vhost_without_ipv6
    }
}

/// `env-cache`: server blocks, drop-in, Nginx reload, purge.
pub fn apply_toggle(s: &EnvCacheSpec) -> anyhow::Result<CacheApplied> {
    services::install_server_block(&s.environment_id, for_this_kernel(&s.server_block))?;
    for DomainBlock { domain_id, block } in &s.domain_blocks {
        services::install_domain_block(domain_id, for_this_kernel(block))?;
    }
    let env_root = s.env_root.trim_end_matches('/');
    services::sync_object_cache(
        env_root,
        &s.env_user,
        &s.node.php_dir,
        s.redis_cache_enabled,
        &s.redis_prefix,
    )?;
    services::reload_nginx()?;
    // After the reload: no entry of the old configuration is left, and both directions
    // start the object cache empty.
    let purged = switch::purge_environment(&s.hosts, Some(&s.redis_prefix))?;
    let shared = nofollow::open_dir(Path::new(&format!("{env_root}/shared")))
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let object_cache_present =
        nofollow::kind_at(shared.as_fd(), OsStr::new("object-cache.php"))?.is_some();
    Ok(CacheApplied {
        fastcgi_cache_enabled: s.fastcgi_cache_enabled,
        redis_cache_enabled: s.redis_cache_enabled,
        object_cache_present,
        domain_blocks: s.domain_blocks.len(),
        purged,
    })
}

/// `cache-purge`'s preconditions (changes nothing).
pub fn check_purge(s: &CachePurgeSpec) -> anyhow::Result<()> {
    check_common(&s.environment_id, &s.hosts, &s.redis_prefix)
}

/// `cache-purge`: the environment's FastCGI entries and/or Redis keys.
pub fn apply_purge(s: &CachePurgeSpec) -> anyhow::Result<Purged> {
    let hosts: &[String] = if s.fastcgi { &s.hosts } else { &[] };
    switch::purge_environment(hosts, s.redis.then_some(s.redis_prefix.as_str()))
}

#[cfg(test)]
mod tests {
    use super::*;

    const ENV: &str = "0b7c6f3e-1d2a-4c5b-9e8f-7a6b5c4d3e2f";

    #[test]
    fn ids_and_hosts_are_strict() {
        assert!(is_uuid(ENV));
        assert!(!is_uuid(&ENV.to_uppercase()));
        assert!(!is_uuid("../../etc/nginx/nginx"));
        assert!(!is_uuid(&format!("{ENV}/x")));
        assert!(is_host("0b7c6f3e.127-0-0-1.sslip.io"));
        assert!(!is_host(""));
        assert!(!is_host("a b"));
        assert!(!is_host("Shop.Example"));
        assert!(!is_host(".example.test"));
    }

    #[test]
    fn only_the_environments_own_prefix_and_hosts_pass() {
        let hosts = vec!["a.example.test".to_string()];
        let prefix = format!("pressluft_{ENV}:");
        check_common(ENV, &hosts, &prefix).unwrap();
        // Another prefix, a wider one, no hosts, a host with a wildcard.
        let other = "pressluft_1b7c6f3e-1d2a-4c5b-9e8f-7a6b5c4d3e2f:";
        assert!(check_common(ENV, &hosts, other).is_err());
        assert!(check_common(ENV, &hosts, "pressluft_").is_err());
        assert!(check_common(ENV, &[], &prefix).is_err());
        assert!(check_common(ENV, &["*".to_string()], &prefix).is_err());
        assert!(check_common("x", &hosts, "pressluft_x:").is_err());
    }

    #[test]
    fn a_toggle_needs_its_rendered_blocks() {
        let spec = |block: ServerBlock, domains: Vec<DomainBlock>| EnvCacheSpec {
            contract_version: spec::CONTRACT_VERSION,
            environment_id: ENV.into(),
            env_root: "/nonexistent/pl-test".into(),
            env_user: "nobody".into(),
            fastcgi_cache_enabled: true,
            redis_cache_enabled: false,
            hosts: vec!["a.example.test".into()],
            redis_prefix: format!("pressluft_{ENV}:"),
            server_block: block,
            domain_blocks: domains,
            node: Default::default(),
        };
        let good = || ServerBlock {
            vhost: "server { server_name a; }".into(),
            vhost_without_ipv6: "server { server_name a; }".into(),
        };
        let err = check_toggle(&spec(ServerBlock::default(), vec![])).unwrap_err();
        assert!(err.to_string().contains("server block"), "{err}");
        let bad_domain = DomainBlock {
            domain_id: "../x".into(),
            block: good(),
        };
        let err = check_toggle(&spec(good(), vec![bad_domain])).unwrap_err();
        assert!(err.to_string().contains("not a domain id"), "{err}");
        // Past the spec's own checks, the missing environment directory is refused.
        let err = check_toggle(&spec(good(), vec![])).unwrap_err();
        assert!(err.to_string().contains("does not exist"), "{err}");
    }
}
