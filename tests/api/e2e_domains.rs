//! Custom domains for real on this machine (called from `e2e_sites.rs` while the site exists),
//! against Pebble (scripts/acme-test-server: Pebble resolves through a BIND serving
//! `*.pressluft.test A 127.0.0.1`, so HTTP-01 reaches this nginx) with its directory and CA
//! bundle set through the settings API, and the names in /etc/hosts for the node's own
//! resolver (restored afterwards):
//!
//! 1. A domain whose /etc/hosts entry points elsewhere (192.0.2.55) fails its first attempt
//!    with `DNS_MISMATCH` and exactly the spec's message, and no ACME request was made (Pebble's
//!    log never names it, certbot has no certificate or renewal file for it).
//! 2. Fixed (127.0.0.1), the retry makes it `active` and primary: https:// serves WordPress with
//!    a certificate Pebble issued (curl trusting only Pebble's root), `home`/`siteurl` are
//!    `https://<domain>`, a serialized option holding the old URL is rewritten with its length,
//!    http:// redirects to https://; certbot's own output never reaches the job's log.
//! 3. A second domain becomes `active`, not primary, and answers 301 to the primary on the
//!    same path.
//! 4. Removing the primary moves everything to the second (URLs, serving block), its block and
//!    certificate are gone; removing the second reverts to the preview URL.
//! 5. The dashboard (tests/browser/domains.mjs): two more domains added and watched to
//!    `active` (the first primary), the primary removed and the second seen taking over.
//!
//! The environment ends as it began: no domains, its preview URL canonical, serving.

use std::process::Command;
use std::time::Duration;

use serde_json::{json, Value};

use crate::helpers::{finished_within, run, TestApp};

const PEBBLE_LOG: &str = "/var/lib/pressluft-test/acme/pebble/pebble.log";
const HOSTS: &str = "/etc/hosts";
const MISMATCH_IP: &str = "192.0.2.55";

/// /etc/hosts as it was, put back when dropped (also when a check fails).
struct HostsFile {
    original: String,
}

impl HostsFile {
    fn save() -> Self {
        HostsFile {
            original: std::fs::read_to_string(HOSTS).unwrap(),
        }
    }

    /// The original plus `entries` (ip, host).
    fn set(&self, entries: &[(&str, &str)]) {
        let mut s = self.original.clone();
        if !s.ends_with('\n') {
            s.push('\n');
        }
        for (ip, host) in entries {
            s.push_str(&format!("{ip} {host} # pressluft e2e_domains\n"));
        }
        std::fs::write(HOSTS, s).unwrap();
    }
}

impl Drop for HostsFile {
    fn drop(&mut self) {
        let _ = std::fs::write(HOSTS, &self.original);
    }
}

/// `mysql` as root on the environment's database: the output lines.
fn sql(db: &str, query: &str) -> String {
    run("mysql", &["-N", "-B", db, "-e", query])
}

/// A PHP-serialized string.
fn ser(s: &str) -> String {
    format!("s:{}:\"{s}\";", s.len())
}

/// `curl` against the local nginx for `host`, trusting only Pebble's root: (status, location,
/// body).
fn curl(root: &str, url: &str, host: &str, port: u16) -> (String, String, String) {
    let out = Command::new("curl")
        .args([
            "-sS",
            "--max-time",
            "30",
            "--resolve",
            &format!("{host}:{port}:127.0.0.1"),
            "--cacert",
            root,
            "-o",
            "-",
            "-w",
            "\n%{http_code} %{redirect_url}",
            url,
        ])
        .env_remove("CURL_CA_BUNDLE")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "curl {url}: {}\n{stdout}",
        String::from_utf8_lossy(&out.stderr)
    );
    let (body, tail) = stdout.rsplit_once('\n').unwrap();
    let (status, location) = tail.split_once(' ').unwrap_or((tail, ""));
    (status.to_string(), location.to_string(), body.to_string())
}

async fn add(app: &TestApp, env: &str, host: &str) -> (String, String) {
    let r = app
        .post_json(
            &format!("/api/environments/{env}/domains"),
            json!({ "hostname": host }),
        )
        .await;
    assert_eq!(r.status(), 202);
    let v: Value = r.json().await.unwrap();
    (
        v["domain_id"].as_str().unwrap().to_string(),
        v["job_id"].as_str().unwrap().to_string(),
    )
}

async fn remove(app: &TestApp, domain: &str) -> String {
    let r = app
        .client
        .delete(app.url(&format!("/api/domains/{domain}")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202);
    crate::helpers::job_id(r).await
}

/// The job's end (it must succeed) and its output.
async fn succeeds(app: &TestApp, job: &str) -> String {
    let (j, output) = finished_within(app, job, Duration::from_secs(10 * 60)).await;
    assert_eq!(j["status"], "succeeded", "{j}\n{output}");
    output
}

async fn domain(app: &TestApp, env: &str, host: &str) -> Option<Value> {
    let (_, list) = app
        .get_json(&format!("/api/environments/{env}/domains"))
        .await;
    list.as_array()
        .unwrap()
        .iter()
        .find(|d| d["hostname"] == host)
        .cloned()
}

async fn primary(app: &TestApp, env: &str) -> Value {
    let (_, e) = app.get_json(&format!("/api/environments/{env}")).await;
    e["primary_domain_id"].clone()
}

fn conf(domain_id: &str) -> String {
    format!("/etc/nginx/sites-enabled/pressluft-domain-{domain_id}.conf")
}

pub async fn custom_domains(app: &TestApp, _site_id: &str, prod_id: &str) {
    let acme = crate::e2e::acme_servers();
    let root = acme["ACME_ISSUING_ROOT"].clone();
    // The ACME settings through the settings API (put back at the end).
    let (_, before) = app.get_json("/_admin/settings").await;
    let r = app
        .put_json(
            "/_admin/settings/acme",
            json!({"acme_email": "ops@example.test",
                   "acme_directory_url": acme["ACME_DIRECTORY_URL"],
                   "acme_ca_bundle": acme["ACME_CA_BUNDLE"]}),
        )
        .await;
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());

    let (_, env) = app.get_json(&format!("/api/environments/{prod_id}")).await;
    let preview = env["preview_url"]
        .as_str()
        .unwrap()
        .trim_end_matches('/')
        .to_string();
    let db = format!("wp_{}", &prod_id[..8]);
    let prefix = sql(&db, "SHOW TABLES LIKE '%options'")
        .trim()
        .trim_end_matches("options")
        .to_string();
    let options = format!("{prefix}options");
    let option = |name: &str| {
        sql(
            &db,
            &format!("SELECT option_value FROM {options} WHERE option_name = '{name}'"),
        )
        .trim()
        .to_string()
    };
    assert_eq!(option("home"), preview);

    // A serialized option holding the canonical URL (the rewrite must fix its length).
    let serialized = |url: &str| {
        format!(
            "a:2:{{s:3:\"url\";{}s:4:\"note\";{}}}",
            ser(&format!("{url}/shop/")),
            ser("kept")
        )
    };
    sql(
        &db,
        &format!(
            "DELETE FROM {options} WHERE option_name = 'pressluft_e2e_domains';
             INSERT INTO {options} (option_name, option_value, autoload)
             VALUES ('pressluft_e2e_domains', '{}', 'no')",
            serialized(&preview)
        ),
    );

    let tag = &uuid::Uuid::new_v4().to_string()[..6];
    let first = format!("shop-{tag}.pressluft.test");
    let second = format!("www-{tag}.pressluft.test");
    let hosts = HostsFile::save();

    // 1. DNS elsewhere: DNS_MISMATCH with the exact message, no ACME request.
    hosts.set(&[(MISMATCH_IP, &first), ("127.0.0.1", &second)]);
    let (first_id, job) = add(app, prod_id, &first).await;
    let (j, output) = finished_within(app, &job, Duration::from_secs(5 * 60)).await;
    assert_eq!(j["error_code"], "DNS_MISMATCH", "{j}\n{output}");
    assert_eq!(j["status"], "queued", "retried later (propagation): {j}");
    assert_eq!(
        j["error_message"],
        format!(
            "DNS for {first} does not point to this server (127.0.0.1). Please create an A \
             record pointing {first} to 127.0.0.1 and try again."
        )
    );
    let pebble_log = std::fs::read_to_string(PEBBLE_LOG).unwrap_or_default();
    assert!(
        !pebble_log.contains(&first),
        "an ACME request was made for {first}"
    );
    for path in [
        format!("/etc/letsencrypt/live/{first}"),
        format!("/etc/letsencrypt/renewal/{first}.conf"),
    ] {
        assert!(!std::path::Path::new(&path).exists(), "{path} exists");
    }
    assert_eq!(
        domain(app, prod_id, &first).await.unwrap()["tls_status"],
        "pending"
    );

    // 2. Fixed: the retry (backoff skipped with the test clock) makes it active and primary.
    hosts.set(&[("127.0.0.1", &first), ("127.0.0.1", &second)]);
    app.clock.advance(time::Duration::minutes(2));
    app.state.engine.enqueued();
    // The first attempt's error stays on the queued job until the retry has run.
    let deadline = std::time::Instant::now() + Duration::from_secs(10 * 60);
    while app.job(&job).await["attempt_count"].as_i64() < Some(2)
        || app.job(&job).await["status"] == "running"
    {
        assert!(std::time::Instant::now() < deadline, "the retry never ran");
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    let output = succeeds(app, &job).await;
    for raw in [
        "Saving debug log",
        "Successfully received certificate",
        "Account registered",
    ] {
        assert!(
            !output.contains(raw),
            "certbot's output reached the job log: {raw}\n{output}"
        );
    }
    assert_eq!(
        domain(app, prod_id, &first).await.unwrap()["tls_status"],
        "active"
    );
    assert_eq!(primary(app, prod_id).await, first_id.as_str());
    let https_first = format!("https://{first}");
    assert_eq!(option("home"), https_first);
    assert_eq!(option("siteurl"), https_first);
    assert_eq!(
        option("pressluft_e2e_domains"),
        serialized(&https_first),
        "serialized-safe rewrite"
    );
    // WordPress itself (whatever theme the earlier steps left live): its login page, posting
    // back to the domain.
    let (status, _, body) = curl(&root, &format!("{https_first}/wp-login.php"), &first, 443);
    assert_eq!(status, "200", "{body}");
    assert!(
        body.contains(&format!("{https_first}/wp-login.php")),
        "WordPress's login form on the domain: {body}"
    );
    let issuer = run(
        "sh",
        &[
            "-c",
            &format!("openssl x509 -noout -issuer -in /etc/letsencrypt/live/{first}/cert.pem"),
        ],
    );
    assert!(issuer.contains("Pebble"), "{issuer}");
    let (status, location, _) = curl(&root, &format!("http://{first}/a/b?c=1"), &first, 80);
    assert_eq!(
        (status.as_str(), location.as_str()),
        ("301", format!("{https_first}/a/b?c=1").as_str())
    );
    assert!(std::path::Path::new(&conf(&first_id)).exists());

    // 3. A second domain: active, not primary, 301 to the primary on the same path.
    let (second_id, job) = add(app, prod_id, &second).await;
    succeeds(app, &job).await;
    assert_eq!(
        domain(app, prod_id, &second).await.unwrap()["tls_status"],
        "active"
    );
    assert_eq!(primary(app, prod_id).await, first_id.as_str());
    let (status, location, _) = curl(
        &root,
        &format!("https://{second}/some/path?x=1"),
        &second,
        443,
    );
    assert_eq!(
        (status.as_str(), location.as_str()),
        ("301", format!("{https_first}/some/path?x=1").as_str())
    );
    assert_eq!(
        option("home"),
        https_first,
        "a secondary domain changes no URL"
    );

    // 4. Removing the primary: the second takes over (URLs and serving block).
    let job = remove(app, &first_id).await;
    succeeds(app, &job).await;
    assert!(domain(app, prod_id, &first).await.is_none());
    assert_eq!(primary(app, prod_id).await, second_id.as_str());
    let https_second = format!("https://{second}");
    assert_eq!(option("home"), https_second);
    assert_eq!(option("siteurl"), https_second);
    assert_eq!(option("pressluft_e2e_domains"), serialized(&https_second));
    let (status, _, body) = curl(&root, &format!("{https_second}/"), &second, 443);
    assert_eq!(status, "200", "{body}");
    assert!(
        !std::path::Path::new(&conf(&first_id)).exists(),
        "the block is gone"
    );
    assert!(
        !std::path::Path::new(&format!("/etc/letsencrypt/live/{first}")).exists(),
        "the certificate is gone"
    );

    // ... and removing the last one reverts to the preview URL.
    let job = remove(app, &second_id).await;
    succeeds(app, &job).await;
    assert!(primary(app, prod_id).await.is_null());
    assert_eq!(option("home"), preview);
    assert_eq!(option("siteurl"), preview);
    assert_eq!(option("pressluft_e2e_domains"), serialized(&preview));
    assert!(!std::path::Path::new(&conf(&second_id)).exists());
    sql(
        &db,
        &format!("DELETE FROM {options} WHERE option_name = 'pressluft_e2e_domains'"),
    );

    // 5. The dashboard: two domains added and watched, the primary removed.
    let (b1, b2) = (
        format!("blog-{tag}.pressluft.test"),
        format!("news-{tag}.pressluft.test"),
    );
    hosts.set(&[("127.0.0.1", &b1), ("127.0.0.1", &b2)]);
    crate::e2e::browser_script(
        app,
        "domains.mjs",
        &[
            ("PRESSLUFT_ENVIRONMENT_ID", prod_id),
            ("PRESSLUFT_DOMAIN_1", &b1),
            ("PRESSLUFT_DOMAIN_2", &b2),
        ],
    )
    .await;
    assert!(primary(app, prod_id).await.is_null());
    assert_eq!(
        option("home"),
        preview,
        "back to the preview URL after the browser test"
    );
    drop(hosts);

    // The ACME settings as they were.
    let s = &before["settings"];
    let r = app
        .put_json(
            "/_admin/settings/acme",
            json!({"acme_email": s["acme_email"], "acme_directory_url": s["acme_directory_url"],
                   "acme_ca_bundle": s["acme_ca_bundle"]}),
        )
        .await;
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
}
