//! The wildcard preview certificate for real on this machine (called from `e2e_sites.rs` while
//! the site exists): the ACME test servers (scripts/acme-test-server: BIND on 127.0.0.1:5353
//! authoritative for `preview.pressluft.test` with a TSIG key, Pebble resolving through it) as
//! the DNS provider (`rfc2136`) and the ACME server; the domain settings name
//! `preview.pressluft.test` → `node_provision` issues `*.preview.pressluft.test` by DNS-01
//! (a Pebble certificate, verified against Pebble's root) and reports it; a new (clone)
//! environment gets `https://<uuid8>.preview.pressluft.test`, answers over TLS with the
//! wildcard (curl --resolve, --cacert the Pebble root) with WordPress, redirects port 80 to
//! https, passes the node helper's health check; no secret in any job output. Then the
//! environment is deleted through the product and the settings are put back (preview domain
//! unset: the later steps see sslip.io previews again; the certificate stays on the node).

use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::helpers::{finished_within, post_environment, post_job, run, run_with_stdin, TestApp};

const PREVIEW_DOMAIN: &str = "preview.pressluft.test";
const LIVE: &str = "/etc/letsencrypt/live/pressluft-preview";

/// Sets (or, with `None`, removes) settings rows directly.
async fn set(app: &TestApp, pairs: &[(&str, Option<&str>)]) {
    for (key, value) in pairs {
        match value {
            Some(v) => {
                app.exec(
                    "INSERT INTO settings (key, value, updated_at) VALUES (?, ?, ?)
                       ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                    &[key, v, &app.now()],
                )
                .await
            }
            None => app.exec("DELETE FROM settings WHERE key = ?", &[key]).await,
        }
    }
}

/// A node-side `openssl` call's output.
fn openssl(args: &[&str]) -> String {
    run("openssl", args)
}

/// curl against the local nginx with the host resolved to 127.0.0.1, trusting only Pebble's
/// root: `(status, location, body)`.
fn curl(url: &str, host: &str, port: u16, root: &str) -> (u16, String, String) {
    let resolve = format!("{host}:{port}:127.0.0.1");
    let out = std::process::Command::new("curl")
        .args([
            "-sS",
            "--max-time",
            "30",
            "--cacert",
            root,
            "--resolve",
            &resolve,
        ])
        .args(["-w", "\n%{http_code} %{redirect_url}", url])
        .env_remove("REQUESTS_CA_BUNDLE")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "curl {url}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (body, tail) = text.rsplit_once('\n').unwrap_or(("", &text));
    let (code, location) = tail.split_once(' ').unwrap_or((tail, ""));
    (
        code.trim().parse().unwrap(),
        location.trim().to_string(),
        body.to_string(),
    )
}

pub async fn wildcard_previews(app: &TestApp, site_id: &str, prod_id: &str) {
    let acme = crate::e2e::acme_servers();
    let root = acme["ACME_ISSUING_ROOT"].clone();
    let secret = acme["ACME_TSIG_SECRET"].clone();
    let (_, prod) = app.get_json(&format!("/api/environments/{prod_id}")).await;
    let node_id = prod["node_id"].as_str().unwrap().to_string();

    // The settings (as the settings API stores them): ACME server = Pebble, preview domain
    // with the rfc2136 provider and the TSIG key (credentials only in the secrets store).
    let credentials = json!({
        "server": acme["ACME_DNS_SERVER"], "port": acme["ACME_DNS_PORT"],
        "key_name": acme["ACME_TSIG_KEY_NAME"], "key_algorithm": "hmac-sha256",
        "key_secret": secret,
    });
    app.state
        .secrets
        .put("dns01_credentials", &credentials.to_string())
        .unwrap();
    set(
        app,
        &[
            ("acme_directory_url", Some(&acme["ACME_DIRECTORY_URL"])),
            ("acme_ca_bundle", Some(&acme["ACME_CA_BUNDLE"])),
            ("acme_email", Some("e2e@pressluft.test")),
            ("preview_domain", Some(PREVIEW_DOMAIN)),
            ("dns01_provider", Some("rfc2136")),
            ("dns01_credentials_json", Some("secret:dns01_credentials")),
        ],
    )
    .await;

    // node_provision issues the wildcard by DNS-01 through BIND. A certificate left by an
    // earlier run of this flow is replaced: without its state file the role orders again
    // (--force-renewal), so every run really validates through BIND.
    let _ = std::fs::remove_file("/etc/letsencrypt/pressluft-preview.state");
    let serial_before = std::path::Path::new(&format!("{LIVE}/cert.pem"))
        .exists()
        .then(|| {
            openssl(&[
                "x509",
                "-in",
                &format!("{LIVE}/cert.pem"),
                "-noout",
                "-serial",
            ])
        });
    let started = Instant::now();
    let provision = post_job(app, &format!("/api/nodes/{node_id}/provision"), json!({})).await;
    let (job, output) = finished_within(app, &provision, Duration::from_secs(15 * 60)).await;
    assert_eq!(job["status"], "succeeded", "{job}\n{output}");
    eprintln!(
        "wildcard: node_provision with the DNS-01 issuance took {:.1} s",
        started.elapsed().as_secs_f64()
    );
    assert!(
        !output.contains(&secret),
        "the TSIG secret leaked into the job output"
    );
    let cert = format!("{LIVE}/cert.pem");
    let subject = openssl(&["x509", "-in", &cert, "-noout", "-subject", "-issuer"]);
    assert!(
        subject.contains(&format!("CN = *.{PREVIEW_DOMAIN}")),
        "{subject}"
    );
    assert!(subject.contains("Pebble"), "{subject}");
    let serial = openssl(&["x509", "-in", &cert, "-noout", "-serial"]);
    assert_ne!(Some(serial), serial_before, "a new certificate was issued");
    let verified = openssl(&[
        "verify",
        "-CAfile",
        &root,
        "-untrusted",
        &format!("{LIVE}/chain.pem"),
        &cert,
    ]);
    assert!(verified.trim().ends_with("OK"), "{verified}");
    let ini = std::fs::metadata("/etc/letsencrypt/pressluft-dns01.ini").unwrap();
    assert_eq!(
        std::os::unix::fs::PermissionsExt::mode(&ini.permissions()) & 0o777,
        0o600
    );
    let renewal =
        std::fs::read_to_string("/etc/letsencrypt/renewal/pressluft-preview.conf").unwrap();
    assert!(
        renewal.contains("dns_rfc2136_credentials = /etc/letsencrypt/pressluft-dns01.ini"),
        "renewal keeps the credentials: {renewal}"
    );
    // The node page shows the certificate (from node_provision's result).
    let page = app.text(&format!("/nodes/{node_id}")).await;
    assert!(
        page.contains(&format!("*.{PREVIEW_DOMAIN}")) && page.contains("wildcard-present"),
        "the node page shows the wildcard certificate"
    );

    // A new staging environment is served over https with the wildcard.
    // A clone, not a second staging environment: the delete step finds the site's staging
    // environment by its type.
    let create = post_environment(app, site_id, "Wildcard", "wildcard", "clone").await;
    let (job, output) = finished_within(app, &create, Duration::from_secs(10 * 60)).await;
    assert_eq!(job["status"], "succeeded", "{job}\n{output}");
    let env_id = job["environment_id"].as_str().unwrap().to_string();
    let (_, env) = app.get_json(&format!("/api/environments/{env_id}")).await;
    let url = env["preview_url"].as_str().unwrap().to_string();
    let host = format!("{}.{PREVIEW_DOMAIN}", &env_id[..8]);
    assert_eq!(url, format!("https://{host}"));
    let (status, _, body) = curl(&format!("{url}/"), &host, 443, &root);
    // WordPress answers (production's content at this point of the flow is the promotion
    // step's page) with the clone's own https URL.
    assert_eq!(status, 200, "{url}: {body:.400}");
    assert!(
        body.contains(&format!("https://{host}/")),
        "WordPress serves the https URL: {body:.400}"
    );
    let (status, location, _) = curl(&format!("http://{host}/x?y=1"), &host, 80, &root);
    assert_eq!(
        (status, location.as_str()),
        (301, &*format!("https://{host}/x?y=1"))
    );
    // The node helper's health check (what the health gate runs) passes over https.
    let spec = json!({
        "contract_version": pressluft::node_helper::spec::CONTRACT_VERSION,
        "environment_id": env_id,
        "env_root": format!("/var/www/sites/{site_id}/{env_id}"),
        "env_user": format!("pl_{}", &env_id[..8]),
        "canonical_url": url,
        "hosts": [host],
        "php_dir": "/usr/local/lib/pressluft/php",
    });
    let report: Value = serde_json::from_str(
        run_with_stdin(
            env!("CARGO_BIN_EXE_pressluft"),
            &["node", "health-check"],
            &spec.to_string(),
        )
        .lines()
        .last()
        .unwrap(),
    )
    .unwrap();
    assert_eq!(report["passed"], true, "{report}");
    let page = app.text(&format!("/environments/{env_id}")).await;
    assert!(
        page.contains(&url),
        "the environment page shows the https URL"
    );
    assert!(
        !page.contains("HTTP only"),
        "no HTTP-only note for https previews"
    );

    // Leave things as found: the environment deleted through the product, the settings back.
    let r = app
        .client
        .delete(app.url(&format!("/api/environments/{env_id}")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202);
    let deleted = crate::helpers::job_id(r).await;
    let (job, output) = finished_within(app, &deleted, Duration::from_secs(5 * 60)).await;
    assert_eq!(job["status"], "succeeded", "{job}\n{output}");
    crate::e2e_delete::assert_gone(site_id, &env_id);
    set(
        app,
        &[
            ("preview_domain", None),
            ("dns01_provider", None),
            ("dns01_credentials_json", None),
            ("acme_directory_url", None),
            ("acme_ca_bundle", None),
            ("acme_email", None),
        ],
    )
    .await;
    app.state.secrets.delete("dns01_credentials").unwrap();
}
