//! The dashboard on HTTPS from the first minute (issue 15 item 4, domains-and-tls.md §5 as the
//! issue revised it): which name nginx serves the control plane under on the local node and the
//! variables the `control-plane-vhost` role gets, shared by `node_provision` and by the
//! installer (`pressluft control-plane-vhost-vars`, which runs the same role through
//! `playbooks/control-plane-https.yml` before the service starts), so both converge the same.
//!
//! The name is `control_plane_domain` when set, else `<public IPv4 with dashes>.sslip.io`; the
//! certificate is an HTTP-01 one from the ACME settings. When issuance fails the role serves no
//! TLS block and reports `http_fallback`: the installer then lets `serve` listen on the public
//! address (plain HTTP, the warning banner of `crate::http::plain_http`).

use std::net::Ipv4Addr;

use serde_json::{Map, Value};

use crate::config::Config;
use crate::store::{Store, StoreError};

/// `<ip with dashes>.sslip.io`: a name that resolves to `ip` without any DNS set-up.
pub fn sslip_name(ip: Ipv4Addr) -> String {
    format!("{}.sslip.io", ip.to_string().replace('.', "-"))
}

/// The sslip.io name of a node's stored public IP ("" when it has none or it is not IPv4).
pub fn sslip_name_of(public_ip: Option<&str>) -> String {
    public_ip
        .and_then(|ip| ip.trim().parse::<Ipv4Addr>().ok())
        .map(sslip_name)
        .unwrap_or_default()
}

/// Whether the control plane's own listener is reachable from the network (not loopback): then
/// the firewall opens its port (the installer's plain-HTTP fallback, or an operator's explicit
/// address); behind nginx it listens on loopback and the port stays closed.
pub fn listens_publicly(config: &Config) -> bool {
    !config.listen_addr.ip().to_canonical().is_loopback()
}

/// The variables of the control-plane vhost that `node-provision.yml` does not get elsewhere:
/// the sslip.io name and whether the control plane's port must be open.
pub fn provision_vars(config: &Config, public_ip: Option<&str>) -> Map<String, Value> {
    let mut vars = Map::new();
    vars.insert(
        "control_plane_sslip_name".into(),
        sslip_name_of(public_ip).into(),
    );
    vars.insert(
        "control_plane_public_port".into(),
        listens_publicly(config).into(),
    );
    vars
}

/// Every variable of `playbooks/control-plane-https.yml` (the installer's run of the role on
/// this host): the same values `node_provision` gives the local node. The public IP is the
/// local node's once it is registered, else the configured `PRESSLUFT_PUBLIC_IP`.
pub async fn installer_vars(
    store: &Store,
    config: &Config,
    result_path: &str,
) -> Result<Map<String, Value>, StoreError> {
    let local = store.local_node().await?;
    let public_ip = local
        .as_ref()
        .and_then(|n| n.public_ip.clone())
        .or_else(|| config.public_ip.map(|ip| ip.to_string()));
    let mut vars = Map::new();
    vars.insert("is_local_node".into(), true.into());
    vars.insert(
        "control_plane_domain".into(),
        store
            .get_setting("control_plane_domain")
            .await?
            .unwrap_or_default()
            .into(),
    );
    vars.insert(
        "control_plane_port".into(),
        config.listen_addr.port().into(),
    );
    vars.insert(
        "control_plane_socket".into(),
        config
            .proxy_socket
            .as_deref()
            .map(|p| p.display().to_string())
            .unwrap_or_default()
            .into(),
    );
    vars.extend(provision_vars(config, public_ip.as_deref()));
    vars.extend(crate::settings::acme::vars(store).await?);
    vars.insert("pressluft_result_path".into(), result_path.into());
    Ok(vars)
}

/// The warning a run's result carries about the dashboard (`result.control_plane`, set by the
/// control-plane-vhost role): its message when it is not served over HTTPS as wanted.
pub fn result_warning(result: &Value) -> Option<String> {
    let cp = &result["control_plane"];
    cp["message"]
        .as_str()
        .map(str::trim)
        .filter(|m| !m.is_empty() && cp["status"] != "none")
        .map(str::to_string)
}

/// ACME values given to the installer (`--acme-*`): `Some("")` clears the setting.
#[derive(Debug, Default, Clone)]
pub struct AcmeOptions {
    pub directory_url: Option<String>,
    pub ca_bundle: Option<String>,
    pub email: Option<String>,
}

/// Checks the installer's ACME values with the settings group's own rules
/// (`crate::settings::acme`), loopback directories allowed: the installer is run by root on the
/// host, not by a dashboard user (the rule that keeps loopback out guards against requests from
/// the web). Normalises the e-mail. The message names the option.
pub fn validate_acme(o: &mut AcmeOptions) -> Result<(), String> {
    use crate::settings::acme::{validate_ca_bundle, validate_directory_url};
    if let Some(url) = o.directory_url.as_deref().filter(|v| !v.is_empty()) {
        validate_directory_url(url, true)
            .map_err(|m| format!("--acme-directory-url {url:?}: {m}"))?;
    }
    if let Some(path) = o.ca_bundle.as_deref().filter(|v| !v.is_empty()) {
        validate_ca_bundle(path).map_err(|m| format!("--acme-ca-bundle {path:?}: {m}"))?;
    }
    if let Some(email) = o.email.as_mut().filter(|v| !v.is_empty()) {
        let parsed = crate::domain::Email::parse(email)
            .map_err(|m| format!("--acme-email {email:?}: {m}"))?;
        *email = parsed.as_str().to_string();
    }
    Ok(())
}

/// Stores the given ACME values (only those given; "" clears).
pub async fn store_acme(store: &Store, o: &AcmeOptions, now: &str) -> Result<bool, StoreError> {
    let given: Vec<(&str, Option<&str>)> = [
        ("acme_directory_url", &o.directory_url),
        ("acme_ca_bundle", &o.ca_bundle),
        ("acme_email", &o.email),
    ]
    .into_iter()
    .filter_map(|(k, v)| v.as_deref().map(|v| (k, (!v.is_empty()).then_some(v))))
    .collect();
    let mut changed = false;
    for (key, value) in &given {
        if store.get_setting(key).await?.as_deref() != *value {
            changed = true;
        }
    }
    if changed {
        let mut conn = store.pool().acquire().await?;
        crate::store::settings::put_settings(&mut conn, &given, now).await?;
    }
    Ok(changed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_sslip_name_has_the_ip_with_dashes() {
        assert_eq!(
            sslip_name(Ipv4Addr::new(192, 0, 2, 2)),
            "192-0-2-2.sslip.io"
        );
        assert_eq!(sslip_name_of(Some("203.0.113.5")), "203-0-113-5.sslip.io");
        assert_eq!(sslip_name_of(Some("::1")), "");
        assert_eq!(sslip_name_of(None), "");
    }

    #[test]
    fn the_result_warns_only_without_the_wanted_certificate() {
        let fallback = serde_json::json!({"control_plane": {"status": "http_fallback",
            "name": "192-0-2-2.sslip.io", "message": "No certificate for 192-0-2-2.sslip.io: x"}});
        assert_eq!(
            result_warning(&fallback).as_deref(),
            Some("No certificate for 192-0-2-2.sslip.io: x")
        );
        let fine =
            serde_json::json!({"control_plane": {"status": "https", "name": "a.b", "message": ""}});
        assert_eq!(result_warning(&fine), None);
        assert_eq!(result_warning(&serde_json::json!({})), None);
    }

    #[test]
    fn installer_acme_values_are_checked() {
        let mut ok = AcmeOptions {
            directory_url: Some("https://127.0.0.1:14000/dir".into()),
            ca_bundle: Some("/var/lib/pressluft-test/acme/directory-ca.pem".into()),
            email: Some("ops+tls@example.com".into()),
        };
        assert_eq!(validate_acme(&mut ok), Ok(()));
        let mut clear = AcmeOptions {
            directory_url: Some(String::new()),
            ca_bundle: Some(String::new()),
            email: Some(String::new()),
        };
        assert_eq!(validate_acme(&mut clear), Ok(()));
        for (mut bad, option) in [
            (
                AcmeOptions {
                    directory_url: Some("http://acme.example/dir".into()),
                    ..AcmeOptions::default()
                },
                "--acme-directory-url",
            ),
            (
                AcmeOptions {
                    ca_bundle: Some("certs/ca.pem".into()),
                    ..AcmeOptions::default()
                },
                "--acme-ca-bundle",
            ),
            (
                AcmeOptions {
                    ca_bundle: Some("/etc/../root/x".into()),
                    ..AcmeOptions::default()
                },
                "--acme-ca-bundle",
            ),
            (
                AcmeOptions {
                    email: Some("not-an-address".into()),
                    ..AcmeOptions::default()
                },
                "--acme-email",
            ),
        ] {
            let err = validate_acme(&mut bad).unwrap_err();
            assert!(err.starts_with(option), "{err}");
        }
    }
}
