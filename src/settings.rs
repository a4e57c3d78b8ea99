//! The settings service (`/_admin/settings`, api.md §7): effective values with their defaults,
//! and the validated replacement of a settings group, audited as `settings_update`.
//!
//! Every key of data-model.md is known for reading; the groups `wordpress` (with the safe
//! updates' retention), `backups`,
//! `acme` ([`acme`]) and `domain-config` ([`domain_config`], the one whose save enqueues the
//! reconciling `node_provision` jobs) are written here.

pub mod acme;
pub mod backups;
pub mod domain_config;

use crate::clock::SharedClock;
use crate::jobs::Engine;
use crate::secrets::Secrets;
use crate::services::{AuditEntry, Mutations, ServiceError};
use crate::store::settings::{fetch_setting, put_settings};
use crate::store::{Store, StoreError};

/// Where WordPress core comes from by default (data-model.md, settings keys).
pub const DEFAULT_WORDPRESS_SOURCE: &str = "https://wordpress.org/latest.tar.gz";

/// Every non-secret setting and its default.
pub const KEYS: &[(&str, Option<&str>)] = &[
    ("control_plane_domain", None),
    ("preview_domain", None),
    ("dns01_provider", None),
    ("acme_email", None),
    ("acme_directory_url", Some(acme::DEFAULT_DIRECTORY_URL)),
    ("acme_ca_bundle", None),
    ("backup_retention_days", Some("30")),
    ("backup_schedule_hours", Some("24")),
    ("backup_s3_endpoint", None),
    ("backup_s3_region", None),
    ("backup_s3_bucket", None),
    ("backup_s3_prefix", Some("pressluft")),
    ("wordpress_source", Some(DEFAULT_WORDPRESS_SOURCE)),
    ("wordpress_source_sha256", None),
    ("wordpress_update_source", None),
    // safe_updates::service::DEFAULT_RETENTION_DAYS
    ("safe_updates_retention_days", Some("30")),
];

/// Secret settings: only whether they are set is ever shown.
pub const SECRET_KEYS: &[&str] = &["dns01_credentials_json", "backup_s3_credentials_json"];

/// The `wordpress` group, before validation (`None` = null).
#[derive(Debug, Clone, Default)]
pub struct WordPressSettings {
    pub wordpress_source: Option<String>,
    pub wordpress_source_sha256: Option<String>,
    /// Where WordPress looks for updates instead of api.wordpress.org (null: there).
    pub wordpress_update_source: Option<String>,
    /// Days a finished safe-update run and its images are kept (null: the default, 30).
    pub safe_updates_retention_days: Option<String>,
}

/// Effective settings: every key with its value or default, and which secrets are set.
#[derive(Debug, Clone)]
pub struct SettingsView {
    pub values: Vec<(&'static str, Option<String>)>,
    pub secrets: Vec<(&'static str, bool)>,
}

impl SettingsView {
    pub fn get(&self, key: &str) -> Option<&str> {
        self.values
            .iter()
            .find(|(k, _)| *k == key)
            .and_then(|(_, v)| v.as_deref())
    }
}

pub(crate) fn invalid(field: &'static str, message: &str) -> ServiceError {
    tracing::info!(field, "settings validation failed");
    ServiceError::SettingsInvalid {
        field,
        message: message.to_string(),
    }
}

/// A WordPress source: an `http(s)://` URL of a tarball, or `dir:<absolute path on the node>`
/// (a node path, not a URL: no address rule applies). A URL's host must not be link-local, nor
/// loopback unless `allow_loopback` ([`crate::sources::check_source_host`]).
fn validate_wordpress_source(s: &str, allow_loopback: bool) -> Result<(), &'static str> {
    if s.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err("must not contain spaces or control characters");
    }
    if let Some(path) = s.strip_prefix("dir:") {
        if !path.starts_with('/') || path.split('/').any(|seg| seg == "..") {
            return Err("dir: must be followed by an absolute path without ..");
        }
        return Ok(());
    }
    let rest = s
        .strip_prefix("https://")
        .or_else(|| s.strip_prefix("http://"))
        .ok_or("must be an http(s):// URL or dir:<absolute path>")?;
    let host = rest.split(['/', '?', '#']).next().unwrap_or("");
    if host.is_empty() || host.starts_with(':') {
        return Err("the URL has no host");
    }
    let host = crate::sources::url_host(s).ok_or("the URL has no host")?;
    crate::sources::check_source_host(&host, allow_loopback)
}

/// The update source: an `http(s)://` base URL without credentials that stands in for
/// api.wordpress.org (same paths); its host must not be link-local, nor loopback unless
/// `allow_loopback` ([`crate::sources::check_source_host`]; the node checks the resolved
/// addresses again).
fn validate_update_source(s: &str, allow_loopback: bool) -> Result<(), &'static str> {
    if s.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err("must not contain spaces or control characters");
    }
    let rest = s
        .strip_prefix("https://")
        .or_else(|| s.strip_prefix("http://"))
        .ok_or("must be an http(s):// URL")?;
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    if authority.contains('@') {
        return Err("must not contain credentials");
    }
    if rest.contains(['?', '#']) {
        return Err("must be a base URL without query or fragment");
    }
    if authority.is_empty() || authority.starts_with(':') {
        return Err("the URL has no host");
    }
    let host = crate::sources::url_host(s).ok_or("the URL has no host")?;
    crate::sources::check_source_host(&host, allow_loopback)
}

impl WordPressSettings {
    /// Trims, treats empty strings as null, validates and normalises (sha256 lowercase).
    pub fn validate(self, allow_loopback: bool) -> Result<WordPressSettings, ServiceError> {
        let clean = |v: Option<String>| v.map(|s| s.trim().to_string()).filter(|s| !s.is_empty());
        let source = clean(self.wordpress_source);
        if let Some(s) = &source {
            validate_wordpress_source(s, allow_loopback)
                .map_err(|m| invalid("wordpress_source", m))?;
        }
        let sha = clean(self.wordpress_source_sha256).map(|s| s.to_ascii_lowercase());
        if let Some(s) = &sha {
            if s.len() != 64 || !s.bytes().all(|b| b.is_ascii_hexdigit()) {
                return Err(invalid(
                    "wordpress_source_sha256",
                    "must be 64 hexadecimal characters",
                ));
            }
        }
        let update_source = clean(self.wordpress_update_source);
        if let Some(s) = &update_source {
            validate_update_source(s, allow_loopback)
                .map_err(|m| invalid("wordpress_update_source", m))?;
        }
        Ok(WordPressSettings {
            wordpress_source: source,
            wordpress_source_sha256: sha,
            wordpress_update_source: update_source.map(|s| s.trim_end_matches('/').to_string()),
            safe_updates_retention_days: backups::integer_in(
                crate::safe_updates::service::RETENTION_SETTING,
                self.safe_updates_retention_days,
                1..=3650,
            )?,
        })
    }
}

/// The settings service.
#[derive(Clone)]
pub struct Settings {
    store: Store,
    mutations: Mutations,
    secrets: Secrets,
    /// `--allow-loopback-sources`.
    allow_loopback_sources: bool,
}

impl Settings {
    pub fn new(
        store: Store,
        engine: Engine,
        secrets: Secrets,
        clock: SharedClock,
        allow_loopback_sources: bool,
    ) -> Self {
        Self {
            mutations: Mutations::new(store.clone(), engine, clock),
            store,
            secrets,
            allow_loopback_sources,
        }
    }

    /// Every setting with its effective value, as shown to users: the user-info of a URL
    /// (credentials) reads `***`.
    pub async fn view(&self) -> Result<SettingsView, ServiceError> {
        let stored = self.store.all_settings().await?;
        let lookup = |key: &str| stored.iter().find(|(k, _)| k == key).map(|(_, v)| v);
        Ok(SettingsView {
            values: KEYS
                .iter()
                .map(|(k, default)| {
                    let value = lookup(k).cloned().or_else(|| default.map(str::to_string));
                    (
                        *k,
                        value.map(|v| crate::sources::redact_userinfo(&v).into_owned()),
                    )
                })
                .collect(),
            secrets: SECRET_KEYS
                .iter()
                .map(|k| (*k, lookup(k).is_some()))
                .collect(),
        })
    }

    /// Replaces the `wordpress` group after validation; audited for `user_id`.
    pub async fn put_wordpress(
        &self,
        user_id: &str,
        input: WordPressSettings,
    ) -> Result<SettingsView, ServiceError> {
        let mut valid = input.validate(self.allow_loopback_sources)?;
        let mut m = self.mutations.begin().await?;
        // The form and GET show the source with its credentials as `***`: sending that back
        // unchanged keeps the stored credentials.
        if let Some(shown) = &valid.wordpress_source {
            if let Some(stored) = fetch_setting(&mut m.tx, "wordpress_source").await? {
                if stored != *shown && crate::sources::redact_userinfo(&stored) == shown.as_str() {
                    valid.wordpress_source = Some(stored);
                }
            }
        }
        put_settings(
            &mut m.tx,
            &[
                ("wordpress_source", valid.wordpress_source.as_deref()),
                (
                    "wordpress_source_sha256",
                    valid.wordpress_source_sha256.as_deref(),
                ),
                (
                    "wordpress_update_source",
                    valid.wordpress_update_source.as_deref(),
                ),
                (
                    crate::safe_updates::service::RETENTION_SETTING,
                    valid.safe_updates_retention_days.as_deref(),
                ),
            ],
            &m.now,
        )
        .await?;
        let audit = AuditEntry {
            user_id,
            action: "settings_update",
            resource_type: "settings",
            resource_id: "wordpress",
        };
        self.mutations.complete(m, audit).await?;
        tracing::info!(group = "wordpress", "settings updated; audit written");
        self.view().await
    }
    /// Replaces the `backups` group after validation; audited for `user_id`. New credentials
    /// go to the secrets store before the commit (a failed commit leaves them unreferenced);
    /// deleted ones are removed after it.
    pub async fn put_backups(
        &self,
        user_id: &str,
        input: backups::BackupSettings,
    ) -> Result<SettingsView, ServiceError> {
        let mut m = self.mutations.begin().await?;
        let stored = fetch_setting(&mut m.tx, backups::CREDENTIALS_KEY)
            .await?
            .is_some();
        let valid = input.validate(self.allow_loopback_sources, stored)?;
        let mut values: Vec<(&str, Option<&str>)> = valid
            .values
            .iter()
            .map(|(k, v)| (*k, v.as_deref()))
            .collect();
        match &valid.credentials {
            backups::CredentialsChange::Keep => {}
            backups::CredentialsChange::Delete => values.push((backups::CREDENTIALS_KEY, None)),
            backups::CredentialsChange::Set(c) => {
                self.secrets.put(
                    crate::backups::storage::S3_CREDENTIALS_SECRET,
                    &backups::credentials_json(c),
                )?;
                values.push((
                    backups::CREDENTIALS_KEY,
                    Some(backups::CREDENTIALS_REFERENCE),
                ));
            }
        }
        put_settings(&mut m.tx, &values, &m.now).await?;
        let audit = AuditEntry {
            user_id,
            action: "settings_update",
            resource_type: "settings",
            resource_id: "backups",
        };
        self.mutations.complete(m, audit).await?;
        if matches!(valid.credentials, backups::CredentialsChange::Delete) {
            self.secrets
                .delete(crate::backups::storage::S3_CREDENTIALS_SECRET)?;
        }
        tracing::info!(group = "backups", "settings updated; audit written");
        self.view().await
    }
}

impl Settings {
    /// Replaces the `acme` group after validation; audited for `user_id`. Enqueues nothing:
    /// the next certificate request reads the values ([`acme::vars`]).
    pub async fn put_acme(
        &self,
        user_id: &str,
        input: acme::AcmeSettings,
    ) -> Result<SettingsView, ServiceError> {
        let valid = input.validate(self.allow_loopback_sources)?;
        let mut m = self.mutations.begin().await?;
        let values: Vec<(&str, Option<&str>)> = valid
            .values
            .iter()
            .map(|(k, v)| (*k, v.as_deref()))
            .collect();
        put_settings(&mut m.tx, &values, &m.now).await?;
        let audit = AuditEntry {
            user_id,
            action: "settings_update",
            resource_type: "settings",
            resource_id: "acme",
        };
        self.mutations.complete(m, audit).await?;
        tracing::info!(group = "acme", "settings updated; audit written");
        self.view().await
    }

    /// Replaces the `domain-config` group after validation (domains-and-tls.md §8) and enqueues
    /// the reconciling `node_provision` jobs (api.md §7) in the same transaction as the rows
    /// and the audit row; returns the view and the jobs' ids. New credentials go to the
    /// secrets store before the commit, deleted ones are removed after it.
    pub async fn put_domain_config(
        &self,
        user_id: &str,
        input: domain_config::DomainConfig,
    ) -> Result<(SettingsView, Vec<String>), ServiceError> {
        use domain_config::{CredentialsChange, CREDENTIALS_KEY, CREDENTIALS_REFERENCE};
        let mut m = self.mutations.begin().await?;
        let referenced = fetch_setting(&mut m.tx, CREDENTIALS_KEY).await?.is_some();
        let stored = if referenced {
            domain_config::stored_credentials(&self.secrets)?
        } else {
            None
        };
        let valid = input.validate(stored.as_ref())?;
        let old_control = fetch_setting(&mut m.tx, "control_plane_domain").await?;
        let old_preview = fetch_setting(&mut m.tx, "preview_domain").await?;
        let old_provider = fetch_setting(&mut m.tx, "dns01_provider").await?;
        let credentials_changed = match &valid.dns01_credentials {
            CredentialsChange::Keep => false,
            CredentialsChange::Delete => referenced,
            CredentialsChange::Set(c) => stored.as_ref() != Some(c),
        };
        let changes = domain_config::Changes {
            control_plane: old_control != valid.control_plane_domain,
            preview_or_dns01: old_preview != valid.preview_domain
                || old_provider != valid.dns01_provider
                || credentials_changed,
        };
        let mut values: Vec<(&str, Option<&str>)> = vec![
            (
                "control_plane_domain",
                valid.control_plane_domain.as_deref(),
            ),
            ("preview_domain", valid.preview_domain.as_deref()),
            ("dns01_provider", valid.dns01_provider.as_deref()),
        ];
        match &valid.dns01_credentials {
            CredentialsChange::Keep => {}
            CredentialsChange::Delete => values.push((CREDENTIALS_KEY, None)),
            CredentialsChange::Set(c) => {
                if credentials_changed {
                    self.secrets.put(
                        domain_config::CREDENTIALS_SECRET,
                        &domain_config::credentials_json(c),
                    )?;
                }
                values.push((CREDENTIALS_KEY, Some(CREDENTIALS_REFERENCE)));
            }
        }
        put_settings(&mut m.tx, &values, &m.now).await?;
        let nodes = crate::store::nodes::reconcile_targets(
            &mut m.tx,
            changes.preview_or_dns01,
            changes.control_plane,
        )
        .await?;
        let jobs = nodes
            .iter()
            .map(|node_id| crate::services::JobRequest {
                job_type: crate::domain::JobType::NodeProvision,
                site_id: None,
                environment_id: None,
                node_id,
                payload: crate::jobs::NodeProvisionPayload::default(),
            })
            .collect();
        let audit = AuditEntry {
            user_id,
            action: "settings_update",
            resource_type: "settings",
            resource_id: "domain-config",
        };
        let job_ids = self.mutations.complete_with_jobs(m, jobs, audit).await?;
        if matches!(valid.dns01_credentials, CredentialsChange::Delete) {
            self.secrets.delete(domain_config::CREDENTIALS_SECRET)?;
        }
        tracing::info!(
            group = "domain-config",
            control_plane_changed = changes.control_plane,
            preview_or_dns01_changed = changes.preview_or_dns01,
            jobs = job_ids.len(),
            "settings updated; audit written"
        );
        Ok((self.view().await?, job_ids))
    }
}

/// The effective WordPress source and its checksum (`""` when unset), read inside a
/// transaction.
pub async fn wordpress_source(
    conn: &mut sqlx::AnyConnection,
) -> Result<(String, String), StoreError> {
    let source = fetch_setting(conn, "wordpress_source")
        .await?
        .unwrap_or_else(|| DEFAULT_WORDPRESS_SOURCE.to_string());
    let sha = fetch_setting(conn, "wordpress_source_sha256")
        .await?
        .unwrap_or_default();
    Ok((source, sha))
}

/// The update source override (`wordpress_update_source`), `None` when WordPress asks
/// api.wordpress.org (the specs of `env-update` and `update-check`).
pub async fn wordpress_update_source(
    conn: &mut sqlx::AnyConnection,
) -> Result<Option<String>, StoreError> {
    Ok(fetch_setting(conn, "wordpress_update_source")
        .await?
        .filter(|s| !s.trim().is_empty()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn field(s: WordPressSettings) -> &'static str {
        match s.validate(false) {
            Err(ServiceError::SettingsInvalid { field, .. }) => field,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn wordpress_sources() {
        for ok in [
            "https://wordpress.org/latest.tar.gz",
            "http://mirror.test:8080/wp.tgz",
            "dir:/usr/share/wordpress",
        ] {
            assert!(validate_wordpress_source(ok, false).is_ok(), "{ok}");
        }
        for bad in [
            "ftp://x/y",
            "dir:relative",
            "dir:/a/../b",
            "https://",
            "https://x/a b",
            "/usr/share/wordpress",
        ] {
            assert!(validate_wordpress_source(bad, true).is_err(), "{bad}");
        }
        // Link-local never; loopback only when allowed; private ranges and node paths always.
        for (source, allowed, without_flag) in [
            ("http://169.254.169.254/latest/meta-data", false, false),
            ("http://[fe80::1]/wp.tgz", false, false),
            ("http://127.0.0.1:8080/wp.tgz", true, false),
            ("http://localhost/wp.tgz", true, false),
            ("http://[::1]/wp.tgz", true, false),
            ("http://10.1.2.3/wp.tgz", true, true),
            ("https://u:p@192.168.0.9/wp.tgz", true, true),
            ("dir:/srv/wordpress", true, true),
        ] {
            assert_eq!(
                validate_wordpress_source(source, true).is_ok(),
                allowed,
                "{source}"
            );
            assert_eq!(
                validate_wordpress_source(source, false).is_ok(),
                without_flag,
                "{source}"
            );
        }
        let v = WordPressSettings {
            wordpress_source: Some("  ".into()),
            wordpress_source_sha256: Some("AB".repeat(32)),
            ..Default::default()
        }
        .validate(false)
        .unwrap();
        assert_eq!(v.wordpress_source, None);
        assert_eq!(v.wordpress_source_sha256.unwrap(), "ab".repeat(32));
        assert_eq!(
            field(WordPressSettings {
                wordpress_source: Some("ftp://x".into()),
                ..Default::default()
            }),
            "wordpress_source"
        );
        assert_eq!(
            field(WordPressSettings {
                wordpress_source_sha256: Some("abc".into()),
                ..Default::default()
            }),
            "wordpress_source_sha256"
        );
    }

    #[test]
    fn update_sources() {
        for (source, loopback, ok) in [
            ("https://updates.example.org", false, true),
            ("http://10.0.0.5:8080/wp-api", false, true),
            ("http://127.0.0.1:9000", true, true),
            ("http://127.0.0.1:9000", false, false),
            ("http://169.254.169.254", true, false),
            ("http://[fe80::1]/", true, false),
            ("https://u:p@updates.example.org", true, false),
            ("https://updates.example.org/?x=1", true, false),
            ("ftp://updates.example.org", true, false),
            ("dir:/srv/updates", true, false),
            ("https://", true, false),
        ] {
            assert_eq!(
                validate_update_source(source, loopback).is_ok(),
                ok,
                "{source}"
            );
        }
        assert_eq!(
            field(WordPressSettings {
                wordpress_update_source: Some("file:///etc/passwd".into()),
                ..Default::default()
            }),
            "wordpress_update_source"
        );
        let v = WordPressSettings {
            wordpress_update_source: Some(" https://updates.example.org/ ".into()),
            ..Default::default()
        }
        .validate(false)
        .unwrap();
        assert_eq!(
            v.wordpress_update_source.as_deref(),
            Some("https://updates.example.org")
        );
    }
}
