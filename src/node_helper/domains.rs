//! `pressluft node domain-apply`: the node side of custom domains (domains-and-tls.md §3, §6,
//! §7; jobs `domain_add`, `domain_remove`).
//!
//! One command serves every step of both jobs that is not certbot's: the custom-domain server
//! blocks (`pressluft-domain-<domain id>.conf`, rendered by the playbook from the env-vhost
//! role's templates) installed after `nginx-validate` checked each, the removed domains' blocks
//! deleted, Nginx reloaded; then, when the canonical URL changes (a domain became primary, or
//! the primary went), the environment's database is rewritten in place — dumped in one
//! transaction through the serialized-safe URL rewrite into a private temporary file, imported
//! back into the same database, `home`/`siteurl` set to the new URL and the rewrite rules
//! cleared (WordPress rebuilds them) — and finally its FastCGI entries (all its hosts, exact
//! key match) and Redis keys (its prefix) are purged.
//!
//! The dump is written to a file before the import starts: importing while the dump still
//! reads would drop tables the dump holds a metadata lock on (a deadlock) or has not read yet.
//! Both ends run as `--skip-comments` / `--binary-mode` (src/node_helper/db_copy.rs: a table
//! name from the site cannot become a client command).
//!
//! Checks first, changing nothing when one fails (exit 3, `PRECONDITION_FAILED`): ids, hosts
//! and the Redis prefix well-formed and the environment's own, the blocks present, the database
//! name an identifier, the URLs http(s) and accepted by the rewrite.

use std::io::{Seek, SeekFrom};
use std::process::{Command, Stdio};

use anyhow::{bail, Context};
use search_replace::{Replacements, Rewriter};
use serde::Serialize;

use super::cache::{check_common, is_uuid};
use super::database::{self, is_identifier};
use super::db_copy::CLIENT_ARGS;
use super::process::wait_child;
use super::services;
use super::spec::{self, DomainApplySpec, DomainBlock, UrlRewrite};
use super::switch::{self, Purged};

/// Where Nginx reads the server blocks.
const NGINX_SITES: &str = "/etc/nginx/sites-enabled";

/// What `domain-apply` prints.
#[derive(Debug, Serialize)]
pub struct DomainApplied {
    /// Custom-domain blocks installed.
    pub domain_blocks: usize,
    /// Custom-domain blocks deleted (that existed).
    pub removed: usize,
    /// The rewrite's summary line, when the canonical URL changed.
    pub search_replace: Option<String>,
    /// The URL `home` and `siteurl` hold afterwards, when the canonical URL changed.
    pub canonical_url: Option<String>,
    #[serde(flatten)]
    pub purged: Purged,
}

/// `domain-apply`: reads the spec from stdin, checks, applies, prints [`DomainApplied`].
pub fn run() -> anyhow::Result<()> {
    spec::run_command(check, |s, ()| apply(s))
}

/// A URL without its trailing slash.
fn trimmed(url: &str) -> &str {
    url.trim().trim_end_matches('/')
}

fn is_http_url(url: &str) -> bool {
    let rest = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"));
    rest.is_some_and(|r| !r.is_empty() && !r.contains(char::is_whitespace))
}

/// `domain-apply`'s preconditions (changes nothing).
pub fn check(s: &DomainApplySpec) -> anyhow::Result<()> {
    check_common(&s.environment_id, &s.hosts, &s.redis_prefix)?;
    for DomainBlock { domain_id, block } in &s.domain_blocks {
        if !is_uuid(domain_id) {
            bail!("{domain_id:?} is not a domain id");
        }
        for v in [&block.vhost, &block.vhost_without_ipv6] {
            if !v.contains("server_name") {
                bail!("the rendered server block of domain {domain_id} is missing");
            }
        }
    }
    if let Some(d) = s.remove_domain_ids.iter().find(|d| !is_uuid(d)) {
        bail!("{d:?} is not a domain id");
    }
    if let Some(UrlRewrite { from, to }) = &s.rewrite {
        if !is_identifier(&s.db_name) {
            bail!("{:?} is not a database name", s.db_name);
        }
        if !is_http_url(trimmed(from)) || !is_http_url(trimmed(to)) {
            bail!("the canonical URLs must be http(s) URLs ({from:?} -> {to:?})");
        }
        if trimmed(from) != trimmed(to) {
            Replacements::url(trimmed(from), trimmed(to))
                .map_err(|e| anyhow::anyhow!("the URL rewrite {from} -> {to} is refused: {e}"))?;
        }
        if s.node.php_dir.is_empty() {
            bail!("the PHP bridge's directory is missing: provision the node again");
        }
        database::require_existing(&[&s.db_name])?;
    }
    Ok(())
}

/// The blocks, the reload, the rewrite, the purge.
pub fn apply(s: &DomainApplySpec) -> anyhow::Result<DomainApplied> {
    for DomainBlock { domain_id, block } in &s.domain_blocks {
        let vhost = if services::has_ipv6() {
            &block.vhost
        } else {
            &block.vhost_without_ipv6
        };
        services::install_domain_block(domain_id, vhost)?;
    }
    let mut removed = 0;
    for id in &s.remove_domain_ids {
        let path = format!("{NGINX_SITES}/pressluft-domain-{id}.conf");
        match std::fs::remove_file(&path) {
            Ok(()) => removed += 1,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(e).with_context(|| format!("deleting {path}")),
        }
    }
    services::reload_nginx()?;
    let (search_replace, canonical_url) = match &s.rewrite {
        Some(r) => {
            let summary = rewrite_database(s, r)?;
            (Some(summary), Some(trimmed(&r.to).to_string()))
        }
        None => (None, None),
    };
    let purged = if s.purge {
        switch::purge_environment(&s.hosts, Some(&s.redis_prefix))?
    } else {
        Purged::default()
    };
    Ok(DomainApplied {
        domain_blocks: s.domain_blocks.len(),
        removed,
        search_replace,
        canonical_url,
        purged,
    })
}

/// The environment's database rewritten in place from `r.from` to `r.to`, `home`/`siteurl`
/// set, the rewrite rules cleared. Returns the rewrite's summary.
fn rewrite_database(s: &DomainApplySpec, r: &UrlRewrite) -> anyhow::Result<String> {
    let (from, to) = (trimmed(&r.from), trimmed(&r.to));
    let root = s.env_root.trim_end_matches('/');
    let prefix =
        super::bridge::table_prefix(&s.node.php_dir, &s.env_user, &format!("{root}/current"))?;
    let summary = if from == to {
        "no rewrite (the URL is unchanged)".to_string()
    } else {
        let replacements = Replacements::url(from, to).context("invalid URL rewrite")?;
        let mut rewriter = Rewriter::new(replacements);
        // An unnamed file (unlinked at once, mode 0600): the dump never lies around.
        let mut file = tempfile::tempfile().context("creating the dump's temporary file")?;
        let mut dump = database::mysqldump(
            &[
                "--single-transaction",
                "--default-character-set=utf8mb4",
                "--skip-comments",
            ],
            &[],
            &s.db_name,
        )?;
        let stdout = dump.stdout.take().context("mysqldump's output")?;
        let report = rewriter
            .rewrite(stdout, &mut file)
            .context("rewriting the dump")?;
        wait_child(dump, "mysqldump")?;
        file.seek(SeekFrom::Start(0))?;
        let import = Command::new("mysql")
            .args(CLIENT_ARGS)
            .arg("--database")
            .arg(&s.db_name)
            .stdin(Stdio::from(file))
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .context("starting mysql")?;
        wait_child(import, "importing the rewritten database")?;
        report.to_string()
    };
    super::import::set_site_urls(&s.db_name, &prefix, to)?;
    database::mysql_lines(
        Some(&s.db_name),
        &format!(
            "UPDATE `{prefix}options` SET option_value = '' WHERE option_name = 'rewrite_rules';"
        ),
    )
    .context("clearing the rewrite rules")?;
    Ok(summary)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::node_helper::spec::ServerBlock;

    const ENV: &str = "0b7c6f3e-1d2a-4c5b-9e8f-7a6b5c4d3e2f";
    const DOMAIN: &str = "1b7c6f3e-1d2a-4c5b-9e8f-7a6b5c4d3e2f";

    fn spec() -> DomainApplySpec {
        DomainApplySpec {
            contract_version: spec::CONTRACT_VERSION,
            environment_id: ENV.into(),
            env_root: "/nonexistent/pl-test".into(),
            env_user: "nobody".into(),
            db_name: "wp_0b7c6f3e".into(),
            hosts: vec![
                "0b7c6f3e.127-0-0-1.sslip.io".into(),
                "shop.example.test".into(),
            ],
            redis_prefix: format!("pressluft_{ENV}:"),
            rewrite: None,
            purge: true,
            remove_domain_ids: vec![],
            domain_blocks: vec![],
            node: Default::default(),
        }
    }

    #[test]
    fn ids_blocks_and_urls_are_checked() {
        check(&spec()).unwrap();
        let mut s = spec();
        s.remove_domain_ids = vec!["../../nginx".into()];
        assert!(check(&s)
            .unwrap_err()
            .to_string()
            .contains("not a domain id"));
        let mut s = spec();
        s.domain_blocks = vec![DomainBlock {
            domain_id: DOMAIN.into(),
            block: ServerBlock::default(),
        }];
        assert!(check(&s).unwrap_err().to_string().contains("server block"));
        let mut s = spec();
        s.domain_blocks = vec![DomainBlock {
            domain_id: "x/../y".into(),
            block: ServerBlock::default(),
        }];
        assert!(check(&s)
            .unwrap_err()
            .to_string()
            .contains("not a domain id"));
        let mut s = spec();
        s.rewrite = Some(UrlRewrite {
            from: "http://0b7c6f3e.127-0-0-1.sslip.io".into(),
            to: "javascript:alert(1)".into(),
        });
        assert!(check(&s).unwrap_err().to_string().contains("http(s)"));
        let mut s = spec();
        s.db_name = "wp; DROP DATABASE x".into();
        s.rewrite = Some(UrlRewrite {
            from: "http://a.example.test".into(),
            to: "https://shop.example.test".into(),
        });
        assert!(check(&s).unwrap_err().to_string().contains("database name"));
        let mut s = spec();
        s.redis_prefix = "pressluft_".into();
        assert!(check(&s).is_err());
    }
}
