//! Names and paths of an environment on its node (architecture.md §4, provisioning.md §6–8),
//! and preview URLs (domains-and-tls.md §2). Derived from ids only, so the control plane and the
//! playbooks never disagree; the playbooks receive them as variables and derive nothing.

/// Table names (without prefix) a drift baseline covers: the union of both presets
/// (data-model.md: "drift checksums always cover the union of both presets' tables"), which is
/// commerce-protect's list (a superset of content-protect's).
pub const DRIFT_TABLES: &[&str] = crate::domain::drift::COMMERCE_TABLES;

/// Paths (relative to a release root) a drift baseline covers; uploads are always protected.
pub const DRIFT_PATHS: &[&str] = &["wp-content/uploads"];

/// Where and as whom an environment lives on its node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnvLayout {
    pub env_root: String,
    pub env_user: String,
    pub db_name: String,
    pub db_user: String,
    pub php_fpm_socket: String,
    /// The environment's own Redis ACL user; it may touch only keys starting with `redis_prefix`.
    pub redis_user: String,
    pub redis_prefix: String,
}

impl EnvLayout {
    pub fn new(site_id: &str, environment_id: &str) -> Self {
        let uuid8 = &environment_id[..8];
        let redis_user = format!("pressluft_{environment_id}");
        EnvLayout {
            env_root: format!("/var/www/sites/{site_id}/{environment_id}"),
            env_user: format!("pl_{uuid8}"),
            db_name: format!("wp_{uuid8}"),
            db_user: format!("wp_{uuid8}"),
            php_fpm_socket: format!("/run/php/pressluft-{environment_id}.sock"),
            redis_prefix: format!("{redis_user}:"),
            redis_user,
        }
    }

    pub fn release_path(&self, release_name: &str) -> String {
        format!("{}/releases/{release_name}", self.env_root)
    }
}

/// The preview URL of a new environment: `https://{uuid8}.{preview_domain}` when a preview
/// domain is set, else `http://{uuid8}.{public ip with dashes}.sslip.io`.
pub fn preview_url(environment_id: &str, preview_domain: Option<&str>, public_ip: &str) -> String {
    let uuid8 = &environment_id[..8];
    match preview_domain {
        Some(domain) => format!("https://{uuid8}.{domain}"),
        None => format!("http://{uuid8}.{}.sslip.io", public_ip.replace('.', "-")),
    }
}

/// The host part of a URL (`http://host/…` → `host`).
pub fn url_host(url: &str) -> &str {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    rest.split(['/', ':', '?', '#']).next().unwrap_or(rest)
}

/// `release_name` = `YYYYMMDDTHHMMSSZ-<first 8 chars of the job id>` (architecture.md §4),
/// from a stored timestamp (`YYYY-MM-DDTHH:MM:SS.sssZ`).
pub fn release_name(now: &str, job_id: &str) -> String {
    let digits: String = now
        .chars()
        .take(19)
        .filter(|c| c.is_ascii_digit() || *c == 'T')
        .collect();
    format!("{digits}Z-{}", &job_id[..8])
}

#[cfg(test)]
mod tests {
    use super::*;

    const ENV: &str = "a1b2c3d4-0000-4000-8000-000000000000";

    #[test]
    fn names_follow_the_spec() {
        let l = EnvLayout::new("site-id", ENV);
        assert_eq!(l.env_root, format!("/var/www/sites/site-id/{ENV}"));
        assert_eq!(l.env_user, "pl_a1b2c3d4");
        assert_eq!(
            (l.db_name.as_str(), l.db_user.as_str()),
            ("wp_a1b2c3d4", "wp_a1b2c3d4")
        );
        assert_eq!(l.php_fpm_socket, format!("/run/php/pressluft-{ENV}.sock"));
        assert_eq!(l.redis_prefix, format!("pressluft_{ENV}:"));
        assert_eq!(l.redis_user, format!("pressluft_{ENV}"));
        assert_eq!(
            l.release_path("r1"),
            format!("/var/www/sites/site-id/{ENV}/releases/r1")
        );
    }

    #[test]
    fn preview_urls() {
        assert_eq!(
            preview_url(ENV, None, "203.0.113.5"),
            "http://a1b2c3d4.203-0-113-5.sslip.io"
        );
        assert_eq!(
            preview_url(ENV, Some("wp.example.com"), "203.0.113.5"),
            "https://a1b2c3d4.wp.example.com"
        );
        assert_eq!(
            url_host("http://a1b2c3d4.203-0-113-5.sslip.io"),
            "a1b2c3d4.203-0-113-5.sslip.io"
        );
        assert_eq!(url_host("https://x.test:8443/p"), "x.test");
    }

    #[test]
    fn release_names() {
        assert_eq!(
            release_name("2026-11-26T06:07:08.123Z", ENV),
            "20261126T060708Z-a1b2c3d4"
        );
    }
}
