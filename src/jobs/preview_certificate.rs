//! The wildcard preview certificate (`*.{preview_domain}`, cert name `pressluft-preview`,
//! domains-and-tls.md §4): what `node_provision` needs to issue it by DNS-01 (the certbot DNS
//! plugin of the provider, its credentials ini, the ACME account and directory), the fact the
//! run reports back (recorded in the job's payload), and the start-time check of every job that
//! mints an `https://` preview host on a node.
//!
//! The credentials ini is rendered here, not in a template, so its rules (one value per line,
//! no newline smuggled into a value, the TSIG algorithm in certbot's spelling) are unit-tested;
//! it reaches the playbook only as a secret extra-var (masked in every output). Why some
//! providers are refused: docs/decisions.md, "Domains and TLS (issue 15): wildcard previews".

use std::collections::BTreeMap;
use std::net::IpAddr;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};
use sqlx::AnyConnection;

use super::kinds::{ResolvedVars, VarsContext, VarsError};
use crate::domain::JobType;
use crate::store::StoreError;

/// certbot's name for the wildcard preview certificate (`/etc/letsencrypt/live/<name>/`).
pub const CERT_NAME: &str = "pressluft-preview";
/// The secrets-store key of the DNS-01 credentials (a JSON object of strings).
pub const CREDENTIALS_SECRET: &str = "dns01_credentials";
/// The directory when `acme_directory_url` is unset.
pub const DEFAULT_DIRECTORY_URL: &str = "https://acme-v02.api.letsencrypt.org/directory";
/// DNS propagation wait for RFC 2136: the update goes to the primary itself, which answers the
/// ACME server's query (or notifies its secondaries) at once.
pub const RFC2136_PROPAGATION_SECONDS: u32 = 2;

/// How one provider's certificate is requested on the node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dns01Plan {
    /// The Debian/Ubuntu package of the certbot DNS plugin.
    pub package: &'static str,
    /// certbot's authenticator (`dns-rfc2136`): `--<it>` and `--<it>-credentials`.
    pub authenticator: &'static str,
    /// The credentials ini (secret).
    pub credentials_ini: String,
    /// `--<authenticator>-propagation-seconds`, when not the plugin's default.
    pub propagation_seconds: Option<u32>,
}

impl Dns01Plan {
    /// The secret values of the plan (masked in the run's output).
    fn secret_values(&self, credentials: &BTreeMap<String, String>) -> Vec<String> {
        let mut s: Vec<String> = credentials
            .values()
            .filter(|v| !v.is_empty())
            .cloned()
            .collect();
        s.push(self.credentials_ini.clone());
        s
    }
}

/// Why a provider's certificate cannot be requested (shown as `PRECONDITION_FAILED`; never
/// holds a credential value).
pub type Refusal = String;

fn field<'a>(
    provider: &str,
    credentials: &'a BTreeMap<String, String>,
    key: &str,
) -> Result<&'a str, Refusal> {
    let value = credentials
        .get(key)
        .map(String::as_str)
        .filter(|v| !v.trim().is_empty())
        .ok_or_else(|| format!("the {provider} DNS-01 credentials lack {key}"))?;
    // One ini line per value: a line break would add a line of the attacker's choosing.
    if value.chars().any(|c| c.is_control()) {
        return Err(format!(
            "the {provider} DNS-01 credential {key} contains a control character"
        ));
    }
    Ok(value.trim())
}

/// The plugin, credentials ini and wait for `provider` (domains-and-tls.md §4, settings'
/// credential keys: decisions.md).
pub fn plan(provider: &str, credentials: &BTreeMap<String, String>) -> Result<Dns01Plan, Refusal> {
    let f = |key: &str| field(provider, credentials, key);
    match provider {
        "rfc2136" => {
            let server = f("server")?;
            if server.parse::<IpAddr>().is_err() {
                return Err(format!(
                    "the rfc2136 DNS-01 server must be an IP address (certbot's RFC 2136 plugin \
                     does not resolve names), not {server}"
                ));
            }
            let port = f("port")?;
            if !matches!(port.parse::<u16>(), Ok(p) if p > 0) {
                return Err("the rfc2136 DNS-01 port must be a number from 1 to 65535".into());
            }
            let algorithm = f("key_algorithm")?.to_ascii_uppercase();
            if !algorithm.starts_with("HMAC-") || algorithm == "HMAC-MD5" {
                return Err(format!(
                    "the rfc2136 DNS-01 key_algorithm {algorithm} is not supported (use hmac-sha256)"
                ));
            }
            Ok(Dns01Plan {
                package: "python3-certbot-dns-rfc2136",
                authenticator: "dns-rfc2136",
                credentials_ini: format!(
                    "# Managed by Pressluft (node_provision): DNS-01 credentials, rfc2136.\n\
                     dns_rfc2136_server = {server}\n\
                     dns_rfc2136_port = {port}\n\
                     dns_rfc2136_name = {}\n\
                     dns_rfc2136_secret = {}\n\
                     dns_rfc2136_algorithm = {algorithm}\n",
                    f("key_name")?,
                    f("key_secret")?,
                ),
                propagation_seconds: Some(RFC2136_PROPAGATION_SECONDS),
            })
        }
        "cloudflare" => Ok(Dns01Plan {
            package: "python3-certbot-dns-cloudflare",
            authenticator: "dns-cloudflare",
            credentials_ini: format!(
                "# Managed by Pressluft (node_provision): DNS-01 credentials, cloudflare.\n\
                 dns_cloudflare_api_token = {}\n",
                f("api_token")?
            ),
            propagation_seconds: None,
        }),
        "digitalocean" => Ok(Dns01Plan {
            package: "python3-certbot-dns-digitalocean",
            authenticator: "dns-digitalocean",
            credentials_ini: format!(
                "# Managed by Pressluft (node_provision): DNS-01 credentials, digitalocean.\n\
                 dns_digitalocean_token = {}\n",
                f("token")?
            ),
            propagation_seconds: None,
        }),
        "route53" => Err(
            "the DNS-01 provider route53 is not supported by this Pressluft version: \
             certbot's Route 53 plugin reads no credentials file that its renewal would keep \
             (use rfc2136, cloudflare or digitalocean)"
                .into(),
        ),
        "hetzner" => Err(
            "the DNS-01 provider hetzner is not supported by this Pressluft version: \
             Debian and Ubuntu ship no certbot plugin for it (use rfc2136, cloudflare or \
             digitalocean)"
                .into(),
        ),
        "" => Err("preview_domain is set but dns01_provider is not".into()),
        other => Err(format!("the DNS-01 provider {other} is not supported")),
    }
}

/// A digest of what the certificate depends on (names, directory, credentials): the role
/// re-issues (`--force-renewal`) when it differs from the one stored next to the certificate.
pub fn state_digest(domain: &str, directory_url: &str, credentials_ini: &str) -> String {
    let mut h = Sha256::new();
    for part in [domain, directory_url, credentials_ini] {
        h.update(part.as_bytes());
        h.update([0u8]);
    }
    hex::encode(h.finalize())
}

async fn setting(cx: &VarsContext<'_>, key: &str) -> Result<Option<String>, StoreError> {
    Ok(cx
        .store
        .get_setting(key)
        .await?
        .filter(|v| !v.trim().is_empty()))
}

/// The stored DNS-01 credentials (`{}` when none).
fn stored_credentials(cx: &VarsContext<'_>) -> Result<BTreeMap<String, String>, VarsError> {
    let Some(secret) = cx.secrets.get(CREDENTIALS_SECRET)? else {
        return Ok(BTreeMap::new());
    };
    let value: Value = serde_json::from_str(secret.expose()).unwrap_or(Value::Null);
    Ok(value
        .as_object()
        .map(|o| {
            o.iter()
                .filter_map(|(k, v)| v.as_str().map(|s| (k.clone(), s.to_string())))
                .collect()
        })
        .unwrap_or_default())
}

/// The `preview_certificate_*` extra-vars of `node-provision.yml` (ansible/README.md):
/// `preview_certificate_domain` (`""`: no wildcard certificate wanted), and when set either
/// `preview_certificate_refusal` (why it cannot be requested) or the plugin, authenticator,
/// credentials ini (secret), propagation wait, ACME account/directory/CA bundle and the state
/// digest.
pub async fn provision_vars(cx: &VarsContext<'_>) -> Result<ResolvedVars, VarsError> {
    let mut out = ResolvedVars::default();
    let put = |out: &mut ResolvedVars, k: &str, v: Value| {
        out.vars.insert(format!("preview_certificate_{k}"), v);
    };
    let domain = setting(cx, "preview_domain").await?.unwrap_or_default();
    put(&mut out, "domain", domain.clone().into());
    put(&mut out, "refusal", "".into());
    if domain.is_empty() {
        return Ok(out);
    }
    let provider = setting(cx, "dns01_provider").await?.unwrap_or_default();
    let credentials = stored_credentials(cx)?;
    let plan = match plan(&provider, &credentials) {
        Ok(p) => p,
        Err(refusal) => {
            put(&mut out, "refusal", refusal.into());
            return Ok(out);
        }
    };
    let directory = setting(cx, "acme_directory_url")
        .await?
        .unwrap_or_else(|| DEFAULT_DIRECTORY_URL.to_string());
    let ca_bundle = setting(cx, "acme_ca_bundle").await?.unwrap_or_default();
    let email = setting(cx, "acme_email").await?.unwrap_or_default();
    out.secrets.extend(plan.secret_values(&credentials));
    put(
        &mut out,
        "state",
        state_digest(&domain, &directory, &plan.credentials_ini).into(),
    );
    put(&mut out, "provider", provider.into());
    put(&mut out, "package", plan.package.into());
    put(&mut out, "authenticator", plan.authenticator.into());
    put(&mut out, "credentials_ini", plan.credentials_ini.into());
    put(
        &mut out,
        "propagation_seconds",
        plan.propagation_seconds.map_or(Value::Null, Value::from),
    );
    put(&mut out, "directory_url", directory.into());
    put(&mut out, "ca_bundle", ca_bundle.into());
    put(&mut out, "email", email.into());
    Ok(out)
}

/// What a successful `node_provision` reported about the wildcard certificate (its result's
/// `preview_certificate`, kept in the job's payload).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct PreviewCertificateFact {
    /// The preview domain the run was asked for (`""`: none).
    pub domain: String,
    /// `/etc/letsencrypt/live/pressluft-preview/` holds a certificate for `*.{domain}`.
    pub present: bool,
    /// Its `notAfter` (openssl's text), when present.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub not_after: Option<String>,
}

/// The fact the newest successful `node_provision` of `node_id` recorded (`None`: none did, or
/// it ran before this version). Ties of the timestamps (a still test clock) go to the row
/// inserted last.
pub async fn fact_of(
    conn: &mut AnyConnection,
    node_id: &str,
) -> Result<Option<PreviewCertificateFact>, StoreError> {
    let payload =
        crate::store::latest_succeeded_payload(conn, node_id, JobType::NodeProvision).await?;
    Ok(payload.and_then(|payload| {
        let v: Value = serde_json::from_str(&payload).ok()?;
        serde_json::from_value(v.get("preview_certificate")?.clone()).ok()
    }))
}

/// The preview domain of an `https://{uuid8}.{preview_domain}` URL (`None` for plain HTTP).
pub fn https_preview_domain(preview_url: &str) -> Option<&str> {
    let rest = preview_url.strip_prefix("https://")?;
    let host = rest.split(['/', ':', '?', '#']).next()?;
    host.split_once('.').map(|(_, domain)| domain)
}

/// Whether `fact` covers an environment at `preview_url`: `Err(message)` naming the missing
/// certificate when the URL is `https://` and the node has no wildcard for its domain.
pub fn check(
    fact: Option<&PreviewCertificateFact>,
    node_name: &str,
    preview_url: &str,
) -> Result<(), String> {
    let Some(domain) = https_preview_domain(preview_url) else {
        return Ok(());
    };
    match fact {
        Some(f) if f.present && f.domain.eq_ignore_ascii_case(domain) => Ok(()),
        _ => Err(format!(
            "the wildcard preview certificate {CERT_NAME} (*.{domain}) is missing on node \
             {node_name}: provision the node (saving the domain settings does) and try again"
        )),
    }
}

/// [`check`] for a job's start: the environment at `preview_url` on node `node_id`.
pub async fn required_for(
    conn: &mut AnyConnection,
    node_id: &str,
    preview_url: &str,
) -> Result<Result<(), String>, StoreError> {
    if https_preview_domain(preview_url).is_none() {
        return Ok(Ok(()));
    }
    let name = crate::store::nodes::fetch_node(conn, node_id)
        .await?
        .map(|n| n.name)
        .unwrap_or_else(|| node_id.to_string());
    let fact = fact_of(conn, node_id).await?;
    Ok(check(fact.as_ref(), &name, preview_url))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn creds(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn rfc2136() -> BTreeMap<String, String> {
        creds(&[
            ("server", "127.0.0.1"),
            ("port", "5353"),
            ("key_name", "pressluft-test."),
            ("key_algorithm", "hmac-sha256"),
            ("key_secret", "c2VjcmV0"),
        ])
    }

    #[test]
    fn rfc2136_renders_the_plugin_ini() {
        let p = plan("rfc2136", &rfc2136()).unwrap();
        assert_eq!(p.package, "python3-certbot-dns-rfc2136");
        assert_eq!(p.authenticator, "dns-rfc2136");
        assert_eq!(p.propagation_seconds, Some(RFC2136_PROPAGATION_SECONDS));
        let lines: Vec<&str> = p.credentials_ini.lines().skip(1).collect();
        assert_eq!(
            lines,
            [
                "dns_rfc2136_server = 127.0.0.1",
                "dns_rfc2136_port = 5353",
                "dns_rfc2136_name = pressluft-test.",
                "dns_rfc2136_secret = c2VjcmV0",
                "dns_rfc2136_algorithm = HMAC-SHA256",
            ]
        );
        assert!(p
            .secret_values(&rfc2136())
            .contains(&"c2VjcmV0".to_string()));
    }

    #[test]
    fn providers_map_to_debian_plugins() {
        let cf = plan("cloudflare", &creds(&[("api_token", "t0k")])).unwrap();
        assert_eq!(cf.package, "python3-certbot-dns-cloudflare");
        assert!(cf
            .credentials_ini
            .ends_with("dns_cloudflare_api_token = t0k\n"));
        assert_eq!(cf.propagation_seconds, None);
        let d = plan("digitalocean", &creds(&[("token", "t0k")])).unwrap();
        assert_eq!(d.package, "python3-certbot-dns-digitalocean");
        assert!(d
            .credentials_ini
            .ends_with("dns_digitalocean_token = t0k\n"));
    }

    #[test]
    fn unsupported_providers_are_refused_by_name() {
        for p in ["hetzner", "route53", "gandi"] {
            let e = plan(p, &creds(&[("api_token", "secret-value")])).unwrap_err();
            assert!(e.contains(p), "{e}");
            assert!(!e.contains("secret-value"));
        }
        assert!(plan("", &BTreeMap::new())
            .unwrap_err()
            .contains("dns01_provider"));
    }

    #[test]
    fn bad_credentials_are_refused_without_their_values() {
        let mut c = rfc2136();
        c.insert(
            "key_secret".into(),
            "abc\ndns_rfc2136_server = 10.0.0.1".into(),
        );
        let e = plan("rfc2136", &c).unwrap_err();
        assert!(e.contains("key_secret") && e.contains("control character"));
        assert!(!e.contains("abc"));

        let mut c = rfc2136();
        c.remove("key_name");
        assert!(plan("rfc2136", &c).unwrap_err().contains("lack key_name"));
        let mut c = rfc2136();
        c.insert("server".into(), "ns1.example.com".into());
        assert!(plan("rfc2136", &c).unwrap_err().contains("IP address"));
        let mut c = rfc2136();
        c.insert("port".into(), "0".into());
        assert!(plan("rfc2136", &c).unwrap_err().contains("port"));
        let mut c = rfc2136();
        c.insert("key_algorithm".into(), "hmac-md5".into());
        assert!(plan("rfc2136", &c).unwrap_err().contains("HMAC-MD5"));
        assert!(plan("cloudflare", &creds(&[("api_token", " ")]))
            .unwrap_err()
            .contains("lack api_token"));
    }

    #[test]
    fn the_state_digest_follows_names_directory_and_credentials() {
        let a = state_digest("p.example", "https://acme/dir", "ini");
        assert_eq!(a, state_digest("p.example", "https://acme/dir", "ini"));
        assert_ne!(a, state_digest("q.example", "https://acme/dir", "ini"));
        assert_ne!(a, state_digest("p.example", "https://other/dir", "ini"));
        assert_ne!(a, state_digest("p.example", "https://acme/dir", "ini2"));
        assert_eq!(a.len(), 64);
    }

    #[test]
    fn https_previews_need_the_wildcard_of_their_domain() {
        let url = "https://a1b2c3d4.preview.example.com";
        assert_eq!(https_preview_domain(url), Some("preview.example.com"));
        assert_eq!(
            https_preview_domain("http://a1b2c3d4.127-0-0-1.sslip.io"),
            None
        );
        // sslip.io previews need nothing.
        assert!(check(None, "n1", "http://a1b2c3d4.127-0-0-1.sslip.io").is_ok());
        let e = check(None, "n1", url).unwrap_err();
        assert!(e.contains("pressluft-preview") && e.contains("*.preview.example.com"));
        assert!(e.contains("n1"));
        let fact = |domain: &str, present| PreviewCertificateFact {
            domain: domain.into(),
            present,
            not_after: None,
        };
        assert!(check(Some(&fact("preview.example.com", true)), "n1", url).is_ok());
        assert!(check(Some(&fact("preview.example.com", false)), "n1", url).is_err());
        assert!(check(Some(&fact("old.example.com", true)), "n1", url).is_err());
    }
}
