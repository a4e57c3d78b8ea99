//! The dashboard on HTTPS through node_provision for real on this machine (issue 15 item 4): the
//! e2e's node is the local one (public IP 127.0.0.1), so provisioning gives the control plane the
//! server block `127-0-0-1.sslip.io` with an HTTP-01 certificate from Pebble
//! (scripts/acme-test-server; its BIND resolves the name to 127.0.0.1), proxying to the test's
//! control plane. [`prepare`] runs before the first provisioning (ACME settings through the API,
//! no certificate left from an earlier run, whose Pebble root may be gone); [`dashboard_https`]
//! runs in the shared flow and checks: `https://127-0-0-1.sslip.io/login` is the dashboard with a
//! certificate that verifies against Pebble's root only, `http://` 301s to the same path on
//! https, and the provisioning left no warning (no plain-HTTP fallback). The installer's part
//! (loopback only, Secure cookie, HSTS through nginx, the fallback) is tests/install/check.sh.

use serde_json::json;

use crate::helpers::TestApp;

pub const NAME: &str = "127-0-0-1.sslip.io";
const CONF: &str = "/etc/nginx/sites-enabled/pressluft-control-plane.conf";

/// The ACME test servers' facts (`KEY=value` lines written by scripts/acme-test-server).
pub fn acme_env(key: &str) -> String {
    let env = std::fs::read_to_string("/var/lib/pressluft-test/acme/env")
        .expect("scripts/acme-test-server has run (scripts/test starts it)");
    env.lines()
        .find_map(|l| l.strip_prefix(&format!("{key}=")))
        .unwrap_or_else(|| panic!("{key} in /var/lib/pressluft-test/acme/env"))
        .trim_matches(['"', '\''])
        .to_string()
}

/// Before the first node_provision: Pebble as the ACME server, no stale dashboard certificate.
pub async fn prepare(app: &TestApp) {
    let r = app
        .put_json(
            "/_admin/settings/acme",
            json!({
                "acme_directory_url": acme_env("ACME_DIRECTORY_URL"),
                "acme_ca_bundle": acme_env("ACME_CA_BUNDLE"),
            }),
        )
        .await;
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
    if std::path::Path::new(&format!("/etc/letsencrypt/renewal/{NAME}.conf")).exists()
        || std::path::Path::new(&format!("/etc/letsencrypt/live/{NAME}")).exists()
    {
        let _ = std::process::Command::new("certbot")
            .args(["delete", "--non-interactive", "--cert-name", NAME])
            .output();
    }
    // Left by an earlier run for another control plane (a dead port): provisioning rewrites it.
    let _ = std::fs::remove_file(CONF);
}

fn curl(args: &[&str]) -> (bool, String, String) {
    let out = std::process::Command::new("curl")
        .args(["-sS", "--max-time", "20"])
        .args(args)
        .output()
        .expect("curl runs");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// The dashboard at `https://127-0-0-1.sslip.io` after node_provision (the shared flow's step).
pub async fn dashboard_https(app: &TestApp) {
    let root = acme_env("ACME_ISSUING_ROOT");
    let resolve443 = format!("{NAME}:443:127.0.0.1");
    let resolve80 = format!("{NAME}:80:127.0.0.1");
    let conf = std::fs::read_to_string(CONF).expect("node_provision wrote the control-plane block");
    assert!(conf.contains(&format!("server_name {NAME};")), "{conf}");
    assert!(conf.contains("listen 443 ssl"), "{conf}");

    // Only Pebble's root is trusted (--cacert replaces the system store): the certificate is
    // Pebble's, for this name, and nginx proxies to this test's control plane.
    let url = format!("https://{NAME}/login");
    let (ok, body, err) = curl(&["--resolve", &resolve443, "--cacert", &root, &url]);
    assert!(ok, "GET {url}: {err}");
    assert!(
        body.contains("Sign in"),
        "{url} is not the dashboard's login page: {body}"
    );
    assert!(!body.contains("plain-http-banner"), "no banner over HTTPS");

    let (ok, out, err) = curl(&[
        "--resolve",
        &resolve80,
        "-o",
        "/dev/null",
        "-w",
        "%{http_code} %{redirect_url}",
        &format!("http://{NAME}/sites?page=2"),
    ]);
    assert!(ok, "{err}");
    assert_eq!(out, format!("301 https://{NAME}/sites?page=2"));

    let (_, nodes) = app.get_json("/api/nodes").await;
    let node = nodes
        .as_array()
        .and_then(|n| n.iter().find(|n| n["is_local"] == true))
        .expect("the local node");
    assert!(
        node["provision_warning"].is_null(),
        "provisioning fell back to plain HTTP: {node}"
    );
}
