//! Making a release live, the one implementation every command that switches releases uses
//! (`release-deploy`, `env-update`, `release-rollback`; restore, promotion and import later):
//! the atomic `current` switch, the PHP-FPM reload (Nginx follows `$realpath_root`), the purge
//! of the environment's FastCGI cache entries and Redis keys, and pruning to the releases kept
//! (architecture.md §5, steps 4–5).
//!
//! The FastCGI cache is one zone shared by the node's environments, so the purge deletes only
//! the entries whose cache key (`$scheme$request_method$host$request_uri`, the env-vhost
//! role's `fastcgi_cache_key`) names one of the environment's own hosts ([`key_host_matches`]);
//! other environments keep their cache.

use std::io::Read;
use std::path::Path;

use anyhow::Context;
use serde::Serialize;

use super::releases;
use super::services;
use super::spec::GoLive;

/// Where node_provision's nginx-base role keeps the FastCGI cache
/// (`nginx_base_fastcgi_cache_dir`).
pub const FASTCGI_CACHE_DIR: &str = "/var/cache/nginx/fastcgi";

/// What going live did.
#[derive(Debug, Default, Serialize)]
pub struct WentLive {
    /// FastCGI cache entries removed.
    pub fastcgi_purged: usize,
    /// Releases pruned.
    pub pruned: Vec<String>,
}

/// Switches `current` to `release_name`, reloads PHP-FPM and Nginx, purges the environment's
/// FastCGI entries and Redis keys, and prunes (never `protected`, the release before the
/// switch). A pruning failure is reported, not fatal: the release is live.
pub fn go_live(
    live: &GoLive,
    release_name: &str,
    protected: &[&str],
    php_version: &str,
) -> anyhow::Result<WentLive> {
    releases::switch_current(&live.env_root, release_name, &live.env_user)?;
    services::reload(php_version)?;
    let purged = purge_environment(&live.hosts, Some(&live.redis_prefix))?;
    let mut keep: Vec<&str> = vec![release_name];
    keep.extend_from_slice(protected);
    let pruned = match releases::prune(&live.env_root, live.release_keep, &keep) {
        Ok(pruned) => pruned,
        Err(e) => {
            eprintln!("warning: pruning old releases failed: {e:#}");
            Vec::new()
        }
    };
    Ok(WentLive {
        fastcgi_purged: purged.fastcgi_purged,
        pruned,
    })
}

/// What purging an environment's caches removed.
#[derive(Debug, Default, Serialize)]
pub struct Purged {
    /// FastCGI cache entries removed.
    pub fastcgi_purged: usize,
    /// Redis keys removed.
    pub redis_purged: usize,
}

/// Purges the environment's caches: its FastCGI entries (the node's shared zone, by its
/// `hosts`) and, when `redis_prefix` is given, its Redis keys. Used by [`go_live`] and by the
/// cache commands (src/node_helper/cache.rs).
pub fn purge_environment(hosts: &[String], redis_prefix: Option<&str>) -> anyhow::Result<Purged> {
    let fastcgi_purged = purge_fastcgi(Path::new(FASTCGI_CACHE_DIR), hosts)?;
    let redis_purged = match redis_prefix {
        Some(prefix) => services::purge_redis(prefix)?,
        None => 0,
    };
    Ok(Purged {
        fastcgi_purged,
        redis_purged,
    })
}

/// Removes the cache files under `dir` whose key names one of `hosts`; returns how many.
/// Links and anything that is not a regular file are left alone.
pub fn purge_fastcgi(dir: &Path, hosts: &[String]) -> anyhow::Result<usize> {
    if !dir.is_dir() {
        return Ok(0);
    }
    let mut removed = 0;
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let entries = match std::fs::read_dir(&d) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(e).with_context(|| format!("listing {}", d.display())),
        };
        for entry in entries {
            let entry = entry?;
            let kind = entry.file_type()?;
            if kind.is_dir() {
                stack.push(entry.path());
            } else if kind.is_file() {
                let key = cache_key(&entry.path());
                if key.is_some_and(|k| hosts.iter().any(|h| key_host_matches(&k, h))) {
                    match std::fs::remove_file(entry.path()) {
                        Ok(()) => removed += 1,
                        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                        Err(e) => return Err(e).context("removing a cache file"),
                    }
                }
            }
        }
    }
    Ok(removed)
}

/// The `KEY: …` line of an Nginx cache file's header.
fn cache_key(path: &Path) -> Option<String> {
    let mut head = vec![0u8; 4096];
    let mut file = std::fs::File::open(path).ok()?;
    let n = file.read(&mut head).ok()?;
    let head = &head[..n];
    let at = head.windows(6).position(|w| w == b"\nKEY: ")? + 6;
    let end = head[at..].iter().position(|b| *b == b'\n')? + at;
    Some(String::from_utf8_lossy(&head[at..end]).into_owned())
}

/// Whether the cache key `$scheme$request_method$host$request_uri` is for `host`: the scheme
/// (`http`/`https`), an upper-case method, then exactly the host followed by the URI.
pub fn key_host_matches(key: &str, host: &str) -> bool {
    let rest = key
        .strip_prefix("https")
        .or_else(|| key.strip_prefix("http"))
        .unwrap_or("");
    let method_len = rest.bytes().take_while(u8::is_ascii_uppercase).count();
    if method_len == 0 {
        return false;
    }
    let rest = &rest[method_len..];
    match rest.get(..host.len()) {
        Some(h) if h.eq_ignore_ascii_case(host) => {
            matches!(
                rest.as_bytes().get(host.len()),
                None | Some(b'/') | Some(b'?')
            )
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_environments_own_hosts_match() {
        let host = "a1b2c3d4.127-0-0-1.sslip.io";
        assert!(key_host_matches(
            "httpGETa1b2c3d4.127-0-0-1.sslip.io/",
            host
        ));
        assert!(key_host_matches(
            "httpsHEADa1b2c3d4.127-0-0-1.sslip.io/?p=1",
            host
        ));
        assert!(key_host_matches("httpGETa1b2c3d4.127-0-0-1.sslip.io", host));
        assert!(!key_host_matches(
            "httpGETa1b2c3d4.127-0-0-1.sslip.io.evil/",
            host
        ));
        assert!(!key_host_matches(
            "httpGETxa1b2c3d4.127-0-0-1.sslip.io/",
            host
        ));
        assert!(!key_host_matches("GETa1b2c3d4.127-0-0-1.sslip.io/", host));
    }

    #[test]
    fn the_purge_removes_only_matching_cache_files() {
        let dir = tempfile::tempdir().unwrap();
        let sub = dir.path().join("a/bc");
        std::fs::create_dir_all(&sub).unwrap();
        let entry = |name: &str, key: &str| {
            let mut body = vec![0u8; 40];
            body.extend_from_slice(format!("\nKEY: {key}\nHTTP/1.1 200 OK\n").as_bytes());
            std::fs::write(sub.join(name), body).unwrap();
        };
        entry("1", "httpGETmine.test/");
        entry("2", "httpGETother.test/");
        entry("3", "httpsGETmine.test/page");
        let n = purge_fastcgi(dir.path(), &["mine.test".to_string()]).unwrap();
        assert_eq!(n, 2);
        assert!(sub.join("2").exists());
        assert!(!sub.join("1").exists());
    }
}
