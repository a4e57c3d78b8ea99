//! The `domain-config` settings group (api.md §7, domains-and-tls.md §8): the control-plane
//! domain, the preview domain and the DNS-01 provider with its credentials, validated together.
//!
//! These are what `node_provision` consumes (the control-plane vhost, the wildcard preview
//! certificate), so a save that changes them enqueues the reconciling `node_provision` jobs
//! ([`targets`]). The credentials live only in the secrets store (`dns01_credentials`); the
//! settings row holds a reference, reads show only whether they are set, and the playbook gets
//! them as secret extra-vars ([`provision_vars`]).

use std::collections::BTreeMap;

use super::invalid;
use crate::domain::hostname::{check_fqdn, is_under};
use crate::secrets::Secrets;
use crate::services::ServiceError;

/// The secrets-store key of the DNS-01 credentials (data-model.md).
pub const CREDENTIALS_SECRET: &str = "dns01_credentials";
/// The settings key that refers to them.
pub const CREDENTIALS_KEY: &str = "dns01_credentials_json";
/// That settings row's value when they are stored.
pub const CREDENTIALS_REFERENCE: &str = "secret:dns01_credentials";

/// The DNS-01 providers and the exact credential keys each needs (decisions.md, "Domains and
/// TLS (issue 15): settings"). `rfc2136` is RFC 2136 dynamic update with a TSIG key (BIND,
/// PowerDNS, Knot).
pub const PROVIDERS: &[(&str, &[&str])] = &[
    ("cloudflare", &["api_token"]),
    ("hetzner", &["api_token"]),
    ("route53", &["aws_access_key_id", "aws_secret_access_key"]),
    ("digitalocean", &["token"]),
    (
        "rfc2136",
        &["server", "port", "key_name", "key_algorithm", "key_secret"],
    ),
];

/// The TSIG algorithms accepted for `rfc2136` (lower-case; certbot-dns-rfc2136 wants them
/// upper-case in its ini). HMAC-MD5 is left out on purpose.
pub const TSIG_ALGORITHMS: &[&str] = &[
    "hmac-sha1",
    "hmac-sha224",
    "hmac-sha256",
    "hmac-sha384",
    "hmac-sha512",
];

/// DNS-01 credentials: provider-specific string fields.
pub type Credentials = BTreeMap<String, String>;

/// What a save does with the stored credentials.
#[derive(Default)]
pub enum CredentialsChange {
    /// Omitted (API) or left empty (form): keep what is stored.
    #[default]
    Keep,
    /// `null` (API) or "delete stored credentials" (form).
    Delete,
    Set(Credentials),
}

impl std::fmt::Debug for CredentialsChange {
    // Never the values.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CredentialsChange::Keep => f.write_str("Keep"),
            CredentialsChange::Delete => f.write_str("Delete"),
            CredentialsChange::Set(c) => write!(f, "Set({:?})", c.keys().collect::<Vec<_>>()),
        }
    }
}

/// The group before validation (`None` or an empty string = unset).
#[derive(Debug, Default)]
pub struct DomainConfig {
    pub control_plane_domain: Option<String>,
    pub preview_domain: Option<String>,
    pub dns01_provider: Option<String>,
    pub dns01_credentials: CredentialsChange,
}

/// The group after validation.
#[derive(Debug)]
pub struct ValidDomainConfig {
    pub control_plane_domain: Option<String>,
    pub preview_domain: Option<String>,
    pub dns01_provider: Option<String>,
    pub dns01_credentials: CredentialsChange,
}

fn clean(v: Option<String>) -> Option<String> {
    v.map(|s| s.trim().to_string()).filter(|s| !s.is_empty())
}

/// The custom-domain hostname rule (api.md, domains, [`check_fqdn`]) without its
/// normalisation: what is stored is exactly what was sent, so no trailing dot either.
pub fn validate_fqdn(s: &str) -> Result<(), &'static str> {
    if s.ends_with('.') {
        return Err("must not end with a dot");
    }
    check_fqdn(s)
}

/// One credential value: 1–1024 visible ASCII characters (no spaces, no line breaks: the
/// values end up in a certbot credentials file on the node).
fn visible(v: &str) -> bool {
    !v.is_empty() && v.len() <= 1024 && v.bytes().all(|b| b.is_ascii_graphic())
}

/// Validates `credentials` for `provider`: exactly the provider's keys, each a plausible value
/// (rfc2136: `server` an IP or hostname, `port` 1–65535 in digits, `key_name` a DNS name,
/// `key_algorithm` one of [`TSIG_ALGORITHMS`], `key_secret` base64).
pub fn validate_credentials(provider: &str, credentials: &Credentials) -> Result<(), String> {
    let keys = PROVIDERS
        .iter()
        .find(|(p, _)| *p == provider)
        .map(|(_, k)| *k)
        .ok_or_else(|| format!("unknown provider {provider}"))?;
    let expected = keys.join(", ");
    for key in keys {
        if !credentials.contains_key(*key) {
            return Err(format!(
                "{provider} needs the keys {expected}; {key} is missing"
            ));
        }
    }
    if let Some(extra) = credentials.keys().find(|k| !keys.contains(&k.as_str())) {
        let extra: String = extra
            .chars()
            .take(64)
            .filter(|c| c.is_ascii_graphic())
            .collect();
        return Err(format!(
            "{provider} takes only the keys {expected}; {extra} is not one of them"
        ));
    }
    for (key, value) in credentials {
        if !visible(value) {
            return Err(format!(
                "{key} must be 1-1024 visible ASCII characters (no spaces or line breaks)"
            ));
        }
    }
    if provider == "rfc2136" {
        let server = &credentials["server"];
        if server.parse::<std::net::IpAddr>().is_err() && !crate::nodes::is_dns_name(server) {
            return Err("server must be an IP address or a hostname".into());
        }
        let port = &credentials["port"];
        if port.len() > 5
            || !port.bytes().all(|b| b.is_ascii_digit())
            || !port.parse::<u32>().is_ok_and(|p| (1..=65535).contains(&p))
        {
            return Err("port must be a number from 1 to 65535 (as a string)".into());
        }
        let name = credentials["key_name"].trim_end_matches('.');
        if !crate::nodes::is_dns_name(name) {
            return Err("key_name must be a TSIG key name (letters, digits, '-' and '.')".into());
        }
        if !TSIG_ALGORITHMS.contains(&credentials["key_algorithm"].as_str()) {
            return Err(format!(
                "key_algorithm must be one of {}",
                TSIG_ALGORITHMS.join(", ")
            ));
        }
        use base64::Engine as _;
        let secret = &credentials["key_secret"];
        if base64::engine::general_purpose::STANDARD
            .decode(secret)
            .map_or(true, |b| b.is_empty())
        {
            return Err("key_secret must be the TSIG key in base64".into());
        }
    }
    Ok(())
}

/// The secret's JSON.
pub fn credentials_json(c: &Credentials) -> String {
    serde_json::to_string(c).expect("a map of strings serialises")
}

/// Reads the stored credentials (`None`: none stored, or unreadable as a JSON object of strings).
pub fn stored_credentials(
    secrets: &Secrets,
) -> Result<Option<Credentials>, crate::secrets::SecretsError> {
    Ok(secrets
        .get(CREDENTIALS_SECRET)?
        .and_then(|s| serde_json::from_str(s.expose()).ok()))
}

impl DomainConfig {
    /// Trims, treats empty strings as unset and checks every rule of domains-and-tls.md §8.
    /// `stored` is the credentials in the secrets store now (a stored secret counts for a
    /// preview domain, and must fit the provider when kept).
    pub fn validate(self, stored: Option<&Credentials>) -> Result<ValidDomainConfig, ServiceError> {
        let control = clean(self.control_plane_domain);
        if let Some(d) = &control {
            validate_fqdn(d).map_err(|m| invalid("control_plane_domain", m))?;
        }
        let preview = clean(self.preview_domain);
        if let Some(d) = &preview {
            validate_fqdn(d).map_err(|m| invalid("preview_domain", m))?;
        }
        let provider = clean(self.dns01_provider);
        if let Some(p) = &provider {
            if !PROVIDERS.iter().any(|(name, _)| name == p) {
                let names: Vec<&str> = PROVIDERS.iter().map(|(n, _)| *n).collect();
                return Err(invalid(
                    "dns01_provider",
                    &format!("must be one of {}", names.join(", ")),
                ));
            }
        }
        let effective = match &self.dns01_credentials {
            CredentialsChange::Keep => stored,
            CredentialsChange::Delete => None,
            CredentialsChange::Set(c) => Some(c),
        };
        if let Some(c) = effective {
            match &provider {
                Some(p) => validate_credentials(p, c).map_err(|m| {
                    let m = if matches!(self.dns01_credentials, CredentialsChange::Keep) {
                        format!("the stored credentials do not fit {p}: {m}; send new ones")
                    } else {
                        m
                    };
                    invalid("dns01_credentials", &m)
                })?,
                None if matches!(self.dns01_credentials, CredentialsChange::Set(_)) => {
                    return Err(invalid(
                        "dns01_provider",
                        "is required when DNS-01 credentials are given",
                    ))
                }
                None => {}
            }
        }
        if preview.is_some() {
            if provider.is_none() {
                return Err(invalid(
                    "dns01_provider",
                    "is required with a preview domain (its wildcard certificate is issued by DNS-01)",
                ));
            }
            if effective.is_none() {
                return Err(invalid(
                    "dns01_credentials",
                    "are required with a preview domain (none are stored)",
                ));
            }
        }
        if let (Some(c), Some(p)) = (&control, &preview) {
            if is_under(c, p) {
                return Err(invalid(
                    "control_plane_domain",
                    "must differ from the preview domain and not be under it",
                ));
            }
        }
        Ok(ValidDomainConfig {
            control_plane_domain: control,
            preview_domain: preview,
            dns01_provider: provider,
            dns01_credentials: self.dns01_credentials,
        })
    }
}

/// Which nodes a save reconciles (api.md §7): every `active` node when the preview domain or
/// the DNS-01 values changed, the local node when the control-plane domain changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Changes {
    pub control_plane: bool,
    pub preview_or_dns01: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn creds(pairs: &[(&str, &str)]) -> Credentials {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn rfc2136() -> Credentials {
        creds(&[
            ("server", "127.0.0.1"),
            ("port", "53"),
            ("key_name", "pressluft-key."),
            ("key_algorithm", "hmac-sha256"),
            ("key_secret", "c2VjcmV0LXRzaWcta2V5LXZhbHVlLTEyMzQ1Ng=="),
        ])
    }

    fn field(c: DomainConfig, stored: Option<&Credentials>) -> &'static str {
        match c.validate(stored) {
            Err(e) => e.field().expect("a field error"),
            Ok(v) => panic!("accepted: {v:?}"),
        }
    }

    #[test]
    fn fqdns() {
        for ok in [
            "example.com",
            "wp.example.co.uk",
            "a-b.c1.test",
            "xn--bcher-kva.example",
        ] {
            assert!(validate_fqdn(ok).is_ok(), "{ok}");
        }
        for bad in [
            "example",
            "Example.com",
            "192.0.2.1",
            "::1",
            "*.example.com",
            "example.com.",
            "-a.example.com",
            "a-.example.com",
            "a..b",
            "a b.com",
            "a_b.example.com",
            "example.123",
            &format!("{}.com", "a".repeat(64)),
            &format!("{}.com", "a.".repeat(130)),
        ] {
            assert!(validate_fqdn(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn credentials_per_provider() {
        assert!(validate_credentials("rfc2136", &rfc2136()).is_ok());
        assert!(
            validate_credentials("cloudflare", &creds(&[("api_token", "abc_DEF-123")])).is_ok()
        );
        assert!(validate_credentials("hetzner", &creds(&[("api_token", "x")])).is_ok());
        assert!(validate_credentials("digitalocean", &creds(&[("token", "dop_v1_x")])).is_ok());
        assert!(validate_credentials(
            "route53",
            &creds(&[
                ("aws_access_key_id", "AKID"),
                ("aws_secret_access_key", "s/k+")
            ])
        )
        .is_ok());
        let mut host = rfc2136();
        host.insert("server".into(), "ns1.example.net".into());
        assert!(validate_credentials("rfc2136", &host).is_ok());
        for (key, value) in [
            ("server", "not a host"),
            ("server", "ns1..x"),
            ("port", "0"),
            ("port", "65536"),
            ("port", "+53"),
            ("port", "053a"),
            ("key_name", "bad name"),
            ("key_algorithm", "HMAC-SHA256"),
            ("key_algorithm", "hmac-md5"),
            ("key_secret", "not base64!"),
            ("key_secret", "line\nbreak"),
        ] {
            let mut c = rfc2136();
            c.insert(key.into(), value.into());
            assert!(
                validate_credentials("rfc2136", &c).is_err(),
                "{key}={value:?}"
            );
        }
        let mut missing = rfc2136();
        missing.remove("key_secret");
        let m = validate_credentials("rfc2136", &missing).unwrap_err();
        assert!(m.contains("key_secret is missing"), "{m}");
        let mut extra = rfc2136();
        extra.insert("zone".into(), "x".into());
        assert!(validate_credentials("rfc2136", &extra).is_err());
        assert!(validate_credentials("cloudflare", &creds(&[("token", "x")])).is_err());
        assert!(validate_credentials("cloudflare", &creds(&[("api_token", "")])).is_err());
    }

    #[test]
    fn the_rules_of_section_8() {
        let set = || CredentialsChange::Set(rfc2136());
        let preview = |p: &str| DomainConfig {
            preview_domain: Some(p.into()),
            dns01_provider: Some("rfc2136".into()),
            dns01_credentials: set(),
            ..Default::default()
        };
        assert!(preview("wp.example.test").validate(None).is_ok());
        assert_eq!(field(preview("WP.example.test"), None), "preview_domain");
        assert_eq!(field(preview("192.0.2.9"), None), "preview_domain");
        let no_provider = DomainConfig {
            dns01_provider: None,
            dns01_credentials: CredentialsChange::Keep,
            ..preview("wp.example.test")
        };
        assert_eq!(field(no_provider, Some(&rfc2136())), "dns01_provider");
        let no_credentials = DomainConfig {
            dns01_credentials: CredentialsChange::Keep,
            ..preview("wp.example.test")
        };
        assert_eq!(field(no_credentials, None), "dns01_credentials");
        // A stored secret counts; deleting it does not.
        let keep = DomainConfig {
            dns01_credentials: CredentialsChange::Keep,
            ..preview("wp.example.test")
        };
        assert!(keep.validate(Some(&rfc2136())).is_ok());
        let delete = DomainConfig {
            dns01_credentials: CredentialsChange::Delete,
            ..preview("wp.example.test")
        };
        assert_eq!(field(delete, Some(&rfc2136())), "dns01_credentials");
        // Kept credentials must fit a new provider.
        let switched = DomainConfig {
            dns01_provider: Some("cloudflare".into()),
            dns01_credentials: CredentialsChange::Keep,
            ..preview("wp.example.test")
        };
        assert_eq!(field(switched, Some(&rfc2136())), "dns01_credentials");
        let unknown = DomainConfig {
            dns01_provider: Some("gandi".into()),
            ..preview("wp.example.test")
        };
        assert_eq!(field(unknown, None), "dns01_provider");
        for control in ["wp.example.test", "cp.wp.example.test"] {
            let c = DomainConfig {
                control_plane_domain: Some(control.into()),
                ..preview("wp.example.test")
            };
            assert_eq!(field(c, None), "control_plane_domain");
        }
        let beside = DomainConfig {
            control_plane_domain: Some("cp.example.test".into()),
            ..preview("wp.example.test")
        };
        assert!(beside.validate(None).is_ok());
        // Credentials without a provider; nothing at all is fine.
        let orphan = DomainConfig {
            dns01_credentials: set(),
            ..Default::default()
        };
        assert_eq!(field(orphan, None), "dns01_provider");
        assert!(DomainConfig::default().validate(None).is_ok());
        // Debug output never shows a credential value.
        assert!(!format!("{:?}", preview("wp.example.test")).contains("c2VjcmV0"));
    }
}
