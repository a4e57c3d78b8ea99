//! The `acme` settings group (api.md §7, data-model.md settings): the ACME account e-mail, the
//! ACME directory URL and the CA bundle certbot trusts for that server's own TLS certificate.
//!
//! They exist so that every certificate request (custom domains, the wildcard preview
//! certificate, the control plane's) talks to the same ACME server the operator chose —
//! Let's Encrypt by default, an enterprise CA or Pebble in tests. Saving enqueues nothing: the
//! values are read by the next job that requests a certificate ([`vars`]).

use serde_json::{Map, Value};

use super::invalid;
use crate::services::ServiceError;
use crate::store::settings::fetch_setting;
use crate::store::{Store, StoreError};

/// The default directory (data-model.md): Let's Encrypt production.
pub const DEFAULT_DIRECTORY_URL: &str = "https://acme-v02.api.letsencrypt.org/directory";

/// The `acme` group, before validation (`None` or an empty string = unset).
#[derive(Debug, Clone, Default)]
pub struct AcmeSettings {
    pub acme_email: Option<String>,
    pub acme_directory_url: Option<String>,
    pub acme_ca_bundle: Option<String>,
}

/// The group after validation: the rows to store (`None` = delete the row: the default).
#[derive(Debug, Clone, PartialEq)]
pub struct ValidAcmeSettings {
    pub values: [(&'static str, Option<String>); 3],
}

fn clean(v: Option<String>) -> Option<String> {
    v.map(|s| s.trim().to_string()).filter(|s| !s.is_empty())
}

/// An ACME directory URL: `https://` (an `http://` one only for a loopback host, and only with
/// `--allow-loopback-sources`), no credentials, no spaces; the host as for downloads: never
/// link-local, loopback only with the flag ([`crate::sources::check_source_host`]). certbot
/// contacts it from the node.
pub fn validate_directory_url(s: &str, allow_loopback: bool) -> Result<(), &'static str> {
    if s.len() > 2048 || s.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err("must be a URL without spaces or control characters");
    }
    let (https, rest) = match (s.strip_prefix("https://"), s.strip_prefix("http://")) {
        (Some(rest), _) => (true, rest),
        (None, Some(rest)) => (false, rest),
        _ => return Err("must be an https:// URL"),
    };
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    if authority.contains('@') {
        return Err("must not contain credentials");
    }
    if authority.is_empty() || authority.starts_with(':') {
        return Err("the URL has no host");
    }
    if s.contains(['"', '\'', '\\', '<', '>', '`']) {
        return Err("must not contain quotes, backslashes or angle brackets");
    }
    let host = crate::sources::url_host(s).ok_or("the URL has no host")?;
    crate::sources::check_source_host(&host, allow_loopback)?;
    if !https {
        let loopback = host == "localhost"
            || host.ends_with(".localhost")
            || host
                .parse::<std::net::IpAddr>()
                .is_ok_and(crate::sources::is_loopback);
        if !(loopback && allow_loopback) {
            return Err("must be an https:// URL (http:// only for a loopback test server with --allow-loopback-sources)");
        }
    }
    Ok(())
}

/// A CA bundle path on the node: absolute, at most 4096 bytes, segments of letters, digits,
/// `.`, `_`, `-` and `+`, no `.`/`..` segment and no empty one.
pub fn validate_ca_bundle(s: &str) -> Result<(), &'static str> {
    let rule = "must be an absolute path on the node (letters, digits, '.', '_', '-', '+' and '/'; no '..')";
    let Some(rest) = s.strip_prefix('/') else {
        return Err(rule);
    };
    if s.len() > 4096 || rest.is_empty() {
        return Err(rule);
    }
    for segment in rest.split('/') {
        if segment.is_empty() || segment == "." || segment == ".." {
            return Err(rule);
        }
        if !segment
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-+".contains(&b))
        {
            return Err(rule);
        }
    }
    Ok(())
}

impl AcmeSettings {
    /// Trims, treats empty strings as unset, validates and normalises (e-mail lower-case).
    pub fn validate(self, allow_loopback: bool) -> Result<ValidAcmeSettings, ServiceError> {
        let email = clean(self.acme_email)
            .map(|e| crate::domain::Email::parse(&e).map(|e| e.as_str().to_string()))
            .transpose()
            .map_err(|m| invalid("acme_email", m))?;
        let directory = clean(self.acme_directory_url);
        if let Some(d) = &directory {
            validate_directory_url(d, allow_loopback)
                .map_err(|m| invalid("acme_directory_url", m))?;
        }
        let bundle = clean(self.acme_ca_bundle);
        if let Some(b) = &bundle {
            validate_ca_bundle(b).map_err(|m| invalid("acme_ca_bundle", m))?;
        }
        Ok(ValidAcmeSettings {
            values: [
                ("acme_email", email),
                ("acme_directory_url", directory),
                ("acme_ca_bundle", bundle),
            ],
        })
    }
}

/// The ACME extra-vars every certificate-requesting playbook gets (`node_provision`,
/// `domain_add`): `acme_email` (`""` = register without an e-mail), `acme_directory_url` (the
/// default when unset) and `acme_ca_bundle` (`""` = certbot's own trust; otherwise the path
/// on the node to give certbot as `REQUESTS_CA_BUNDLE`). None of them is secret.
pub async fn vars(store: &Store) -> Result<Map<String, Value>, StoreError> {
    let mut conn = store.pool().acquire().await?;
    vars_in(&mut conn).await
}

/// [`vars`] on a connection (inside a transaction).
pub async fn vars_in(conn: &mut sqlx::AnyConnection) -> Result<Map<String, Value>, StoreError> {
    let mut out = Map::new();
    let email = fetch_setting(conn, "acme_email").await?.unwrap_or_default();
    let directory = fetch_setting(conn, "acme_directory_url")
        .await?
        .unwrap_or_else(|| DEFAULT_DIRECTORY_URL.to_string());
    let bundle = fetch_setting(conn, "acme_ca_bundle")
        .await?
        .unwrap_or_default();
    out.insert("acme_email".into(), email.into());
    out.insert("acme_directory_url".into(), directory.into());
    out.insert("acme_ca_bundle".into(), bundle.into());
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn field(s: AcmeSettings, loopback: bool) -> &'static str {
        match s.validate(loopback) {
            Err(e) => e.field().expect("a field error"),
            Ok(v) => panic!("accepted: {v:?}"),
        }
    }

    #[test]
    fn directory_urls() {
        for (url, loopback, ok) in [
            (
                "https://acme-v02.api.letsencrypt.org/directory",
                false,
                true,
            ),
            ("https://acme.internal.example:8443/dir", false, true),
            ("https://127.0.0.1:14000/dir", true, true),
            ("https://127.0.0.1:14000/dir", false, false),
            ("https://localhost:14000/dir", true, true),
            ("http://127.0.0.1:14000/dir", true, true),
            ("http://127.0.0.1:14000/dir", false, false),
            ("http://acme.example.org/directory", true, false),
            ("http://10.0.0.5/directory", true, false),
            ("https://169.254.169.254/latest", true, false),
            ("https://u:p@acme.example.org/dir", true, false),
            ("ftp://acme.example.org/dir", true, false),
            ("acme.example.org/dir", true, false),
            ("https://", true, false),
            ("https://acme.example.org/a b", true, false),
            ("https://acme.example.org/\"x", true, false),
        ] {
            assert_eq!(
                validate_directory_url(url, loopback).is_ok(),
                ok,
                "{url} {loopback}"
            );
        }
    }

    #[test]
    fn ca_bundles() {
        for ok in [
            "/etc/ssl/certs/ca-certificates.crt",
            "/var/lib/pressluft/acme-test/pebble.minica.pem",
            "/opt/ca+bundle/x_y-z.pem",
        ] {
            assert!(validate_ca_bundle(ok).is_ok(), "{ok}");
        }
        for bad in [
            "relative/ca.pem",
            "/",
            "/etc/../etc/passwd",
            "/etc/./ssl",
            "/etc//ssl",
            "/etc/ssl/ca pem",
            "/etc/ssl/$(id)",
            "/etc/ssl/ca.pem\n",
            "~/ca.pem",
        ] {
            assert!(validate_ca_bundle(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn each_refusal_names_its_field() {
        let s = |e: &str, d: &str, b: &str| AcmeSettings {
            acme_email: Some(e.into()),
            acme_directory_url: Some(d.into()),
            acme_ca_bundle: Some(b.into()),
        };
        assert_eq!(field(s("not-an-email", "", ""), true), "acme_email");
        assert_eq!(field(s("a b@x.org", "", ""), true), "acme_email");
        assert_eq!(
            field(s("", "http://acme.example.org/dir", ""), true),
            "acme_directory_url"
        );
        assert_eq!(field(s("", "", "ca.pem"), true), "acme_ca_bundle");
        let v = s(" Ops@Example.ORG ", " https://127.0.0.1:14000/dir ", "")
            .validate(true)
            .unwrap();
        assert_eq!(
            v.values,
            [
                ("acme_email", Some("ops@example.org".into())),
                (
                    "acme_directory_url",
                    Some("https://127.0.0.1:14000/dir".into())
                ),
                ("acme_ca_bundle", None),
            ]
        );
    }
}
