//! The `domain-config` and `acme` settings groups (`PUT /_admin/settings/domain-config`,
//! `PUT /_admin/settings/acme`; api.md §7, domains-and-tls.md §8): every refusal is
//! `settings_invalid` naming its field and stores nothing; a stored secret counts, null deletes;
//! the reconciling `node_provision` jobs are exactly those §7 names; the DNS-01 credentials
//! never leave the secrets store (responses, audit rows, the server's log) except as the
//! playbook's secret extra-vars.

use std::io::Write;
use std::sync::{Arc, Mutex};

use serde_json::{json, Value};

use crate::helpers::*;

const TSIG_SECRET: &str = "cHJlc3NsdWZ0LXRzaWctc2VjcmV0LWZvci10ZXN0cw==";
const TOKEN: &str = "cf-token-SECRET-0123456789abcdef";

fn rfc2136() -> Value {
    json!({
        "server": "127.0.0.1", "port": "53", "key_name": "pressluft-key.",
        "key_algorithm": "hmac-sha256", "key_secret": TSIG_SECRET,
    })
}

fn preview_config() -> Value {
    json!({
        "control_plane_domain": null,
        "preview_domain": "wp.example.test",
        "dns01_provider": "rfc2136",
        "dns01_credentials": rfc2136(),
    })
}

async fn put_domain(app: &TestApp, body: Value) -> reqwest::Response {
    app.put_json("/_admin/settings/domain-config", body).await
}

async fn put_acme(app: &TestApp, body: Value) -> reqwest::Response {
    app.put_json("/_admin/settings/acme", body).await
}

/// The `node_provision` jobs, node ids in creation order.
async fn provision_jobs(app: &TestApp) -> Vec<(String, String)> {
    pressluft::store::query_as(
        "SELECT id, node_id FROM jobs WHERE job_type = 'node_provision' ORDER BY created_at, rowid",
    )
    .fetch_all(app.store.pool())
    .await
    .unwrap()
}

/// A logged-in app with a local active node, another active node, and a pending one.
async fn app_with_nodes() -> (TestApp, String, String, String) {
    let app = spawn_logged_in().await;
    let local = app.insert_node("local", "active").await;
    app.exec("UPDATE nodes SET is_local = 1 WHERE id = ?", &[&local])
        .await;
    let other = app.insert_node("n2", "active").await;
    let pending = app.insert_node("n3", "provisioning").await;
    (app, local, other, pending)
}

#[tokio::test]
async fn every_invalid_combination_is_refused_naming_its_field() {
    let app = spawn_logged_in().await;
    let with = |patch: Value| {
        let mut body = preview_config();
        for (k, v) in patch.as_object().unwrap() {
            body[k] = v.clone();
        }
        body
    };
    let mut missing_key = rfc2136();
    missing_key.as_object_mut().unwrap().remove("key_secret");
    let mut bad_port = rfc2136();
    bad_port["port"] = json!("70000");
    let mut numeric_port = rfc2136();
    numeric_port["port"] = json!(53);
    let mut upper_alg = rfc2136();
    upper_alg["key_algorithm"] = json!("HMAC-SHA256");
    let mut bad_secret = rfc2136();
    bad_secret["key_secret"] = json!("not base64 at all");
    let mut bad_server = rfc2136();
    bad_server["server"] = json!("bad server");
    let mut newline = rfc2136();
    newline["key_name"] = json!("key\ndns_rfc2136_server = 10.0.0.1");
    #[rustfmt::skip]
    let table: Vec<(&str, Value, &str)> = vec![
        ("bad FQDN", with(json!({"preview_domain": "wp_example.test"})), "preview_domain"),
        ("single label", with(json!({"preview_domain": "localhost"})), "preview_domain"),
        ("IP", with(json!({"preview_domain": "192.0.2.10"})), "preview_domain"),
        ("uppercase", with(json!({"preview_domain": "WP.example.test"})), "preview_domain"),
        ("wildcard", with(json!({"preview_domain": "*.example.test"})), "preview_domain"),
        ("control plane IP", with(json!({"control_plane_domain": "192.0.2.2"})), "control_plane_domain"),
        ("control plane uppercase", with(json!({"control_plane_domain": "CP.example.test"})), "control_plane_domain"),
        ("preview without provider", with(json!({"dns01_provider": null})), "dns01_provider"),
        ("preview without credentials", with(json!({"dns01_credentials": null})), "dns01_credentials"),
        ("unknown provider", with(json!({"dns01_provider": "gandi"})), "dns01_provider"),
        ("provider not a string", with(json!({"dns01_provider": 7})), "dns01_provider"),
        ("credentials not an object", with(json!({"dns01_credentials": "key=value"})), "dns01_credentials"),
        ("credentials an array", with(json!({"dns01_credentials": ["a"]})), "dns01_credentials"),
        ("credential not a string", with(json!({"dns01_credentials": {"api_token": 5}})), "dns01_credentials"),
        ("missing rfc2136 key", with(json!({"dns01_credentials": missing_key})), "dns01_credentials"),
        ("rfc2136 port range", with(json!({"dns01_credentials": bad_port})), "dns01_credentials"),
        ("rfc2136 port a number", with(json!({"dns01_credentials": numeric_port})), "dns01_credentials"),
        ("rfc2136 algorithm case", with(json!({"dns01_credentials": upper_alg})), "dns01_credentials"),
        ("rfc2136 secret not base64", with(json!({"dns01_credentials": bad_secret})), "dns01_credentials"),
        ("rfc2136 server", with(json!({"dns01_credentials": bad_server})), "dns01_credentials"),
        ("line break in a value", with(json!({"dns01_credentials": newline})), "dns01_credentials"),
        ("credentials of another provider", with(json!({"dns01_provider": "cloudflare"})), "dns01_credentials"),
        ("cloudflare extra key", with(json!({"dns01_provider": "cloudflare", "dns01_credentials": {"api_token": "x", "zone": "y"}})), "dns01_credentials"),
        ("route53 half", with(json!({"dns01_provider": "route53", "dns01_credentials": {"aws_access_key_id": "AKID"}})), "dns01_credentials"),
        ("credentials without provider", json!({"dns01_credentials": {"api_token": "x"}}), "dns01_provider"),
        ("control plane under preview", with(json!({"control_plane_domain": "cp.wp.example.test"})), "control_plane_domain"),
        ("equal domains", with(json!({"control_plane_domain": "wp.example.test"})), "control_plane_domain"),
        ("domain not a string", json!({"control_plane_domain": ["x"]}), "control_plane_domain"),
    ];
    for (case, body, field) in table {
        let r = put_domain(&app, body).await;
        assert_eq!(r.status(), 400, "{case}");
        let body: Value = r.json().await.unwrap();
        assert_eq!(body["code"], "settings_invalid", "{case}: {body}");
        assert!(
            body["details"]["fields"][field].is_string(),
            "{case}: {field} named: {body}"
        );
        assert!(!body.to_string().contains(TSIG_SECRET), "{case}: {body}");
    }
    #[rustfmt::skip]
    let acme: Vec<(&str, Value, &str)> = vec![
        ("bad acme email", json!({"acme_email": "ops-at-example.test"}), "acme_email"),
        ("email with space", json!({"acme_email": "ops @example.test"}), "acme_email"),
        ("http directory URL", json!({"acme_directory_url": "http://acme.example.test/dir"}), "acme_directory_url"),
        ("loopback without the flag", json!({"acme_directory_url": "https://127.0.0.1:14000/dir"}), "acme_directory_url"),
        ("link-local directory", json!({"acme_directory_url": "https://169.254.169.254/dir"}), "acme_directory_url"),
        ("credentials in the URL", json!({"acme_directory_url": "https://u:p@acme.example.test/dir"}), "acme_directory_url"),
        ("not a URL", json!({"acme_directory_url": "acme.example.test"}), "acme_directory_url"),
        ("relative CA bundle", json!({"acme_ca_bundle": "certs/ca.pem"}), "acme_ca_bundle"),
        ("CA bundle with ..", json!({"acme_ca_bundle": "/etc/../root/ca.pem"}), "acme_ca_bundle"),
        ("CA bundle shell word", json!({"acme_ca_bundle": "/tmp/$(id).pem"}), "acme_ca_bundle"),
        ("CA bundle not a string", json!({"acme_ca_bundle": true}), "acme_ca_bundle"),
    ];
    for (case, body, field) in acme {
        let r = put_acme(&app, body).await;
        let body = assert_field_error(r, 400, "settings_invalid", field).await;
        assert!(body["message"].is_string(), "{case}");
    }
    // Unknown fields are a plain bad request.
    let r = put_acme(&app, json!({"acme_mail": "x@y.z"})).await;
    assert_error(r, 400, "bad_request").await;

    // Nothing was stored, no job, no audit row.
    let (_, settings) = app.get_json("/_admin/settings").await;
    for key in [
        "preview_domain",
        "dns01_provider",
        "control_plane_domain",
        "acme_email",
    ] {
        assert_eq!(settings["settings"][key], Value::Null, "{key}");
    }
    assert_eq!(
        settings["settings"]["acme_directory_url"],
        "https://acme-v02.api.letsencrypt.org/directory"
    );
    assert_eq!(settings["secrets"]["dns01_credentials_json"]["set"], false);
    assert_eq!(app.count("jobs").await, 0);
    assert_eq!(app.count("audit_logs").await, 0);
}

#[tokio::test]
async fn acme_settings_are_stored_and_enqueue_nothing() {
    let tweak = |c: &mut pressluft::config::Config| c.allow_loopback_sources = true;
    let app = spawn_app_with(tweak, None).await;
    app.login().await;
    app.insert_node("n1", "active").await;
    let r = put_acme(
        &app,
        json!({"acme_email": " Ops@Example.TEST ", "acme_directory_url": "https://127.0.0.1:14000/dir",
               "acme_ca_bundle": "/var/lib/pressluft/acme-test/ca.pem"}),
    )
    .await;
    assert_eq!(r.status(), 200);
    let body: Value = r.json().await.unwrap();
    assert_eq!(
        body.as_object().unwrap().keys().collect::<Vec<_>>(),
        ["settings"]
    );
    assert_eq!(body["settings"]["acme_email"], "ops@example.test");
    assert_eq!(
        body["settings"]["acme_directory_url"],
        "https://127.0.0.1:14000/dir"
    );
    assert_eq!(
        body["settings"]["acme_ca_bundle"],
        "/var/lib/pressluft/acme-test/ca.pem"
    );
    // http only for a loopback test server, with the flag.
    let r = put_acme(
        &app,
        json!({"acme_directory_url": "http://localhost:14000/dir"}),
    )
    .await;
    assert_eq!(r.status(), 200);
    let r = put_acme(
        &app,
        json!({"acme_directory_url": "http://10.0.0.1:14000/dir"}),
    )
    .await;
    assert_field_error(r, 400, "settings_invalid", "acme_directory_url").await;
    assert_eq!(app.count("jobs").await, 0, "ACME settings enqueue nothing");
    // The vars every certificate request gets.
    let vars = pressluft::settings::acme::vars(&app.store).await.unwrap();
    assert_eq!(
        Value::Object(vars),
        json!({"acme_email": "", "acme_directory_url": "http://localhost:14000/dir", "acme_ca_bundle": ""})
    );
    // An empty body restores the defaults.
    let r = put_acme(&app, json!({})).await;
    let body: Value = r.json().await.unwrap();
    assert_eq!(
        body["settings"]["acme_directory_url"],
        "https://acme-v02.api.letsencrypt.org/directory"
    );
    let audit: Vec<(String, String, String)> = pressluft::store::query_as(
        "SELECT action, resource_id, result FROM audit_logs WHERE resource_type = 'settings'",
    )
    .fetch_all(app.store.pool())
    .await
    .unwrap();
    let ours = ("settings_update".into(), "acme".into(), "succeeded".into());
    assert_eq!(audit, vec![ours.clone(), ours.clone(), ours]);
}

#[tokio::test]
async fn saves_enqueue_node_provision_exactly_as_section_7_says() {
    let (app, local, other, _pending) = app_with_nodes().await;
    let decommissioned = app.insert_node("gone", "decommissioned").await;

    // Preview domain (with provider and credentials) → every active node.
    let r = put_domain(&app, preview_config()).await;
    assert_eq!(r.status(), 200);
    let body: Value = r.json().await.unwrap();
    let ids: Vec<String> = serde_json::from_value(body["job_ids"].clone()).unwrap();
    let jobs = provision_jobs(&app).await;
    assert_eq!(
        jobs.iter().map(|(_, n)| n.clone()).collect::<Vec<_>>(),
        [local.clone(), other.clone()]
    );
    assert_eq!(ids, jobs.iter().map(|(j, _)| j.clone()).collect::<Vec<_>>());
    assert_eq!(body["settings"]["preview_domain"], "wp.example.test");
    assert_eq!(body["settings"]["dns01_provider"], "rfc2136");
    assert!(body.get("secrets").is_none());

    // The same values again → nothing changed, nothing enqueued (credentials omitted = keep,
    // and sent again identical).
    let mut keep = preview_config();
    keep.as_object_mut().unwrap().remove("dns01_credentials");
    for body in [keep.clone(), preview_config()] {
        let r = put_domain(&app, body).await;
        let body: Value = r.json().await.unwrap();
        assert_eq!(body["job_ids"], json!([]), "{body}");
    }

    // Control-plane domain → the local node only.
    let mut control = keep.clone();
    control["control_plane_domain"] = json!("cp.example.test");
    let body: Value = put_domain(&app, control.clone())
        .await
        .json()
        .await
        .unwrap();
    let ids = body["job_ids"].as_array().unwrap();
    assert_eq!(ids.len(), 1, "{body}");
    let job = app.job(ids[0].as_str().unwrap()).await;
    assert_eq!(
        (job["job_type"].as_str(), job["node_id"].as_str()),
        (Some("node_provision"), Some(local.as_str()))
    );

    // New credentials → every active node; both changes → still one job per node.
    let mut creds = control.clone();
    let mut other_secret = rfc2136();
    other_secret["key_algorithm"] = json!("hmac-sha512");
    creds["dns01_credentials"] = other_secret;
    creds["control_plane_domain"] = json!("dash.example.test");
    let body: Value = put_domain(&app, creds).await.json().await.unwrap();
    assert_eq!(body["job_ids"].as_array().unwrap().len(), 2, "{body}");

    // Removing everything (null deletes the credentials) → every active node and the local.
    let before = provision_jobs(&app).await.len();
    let r = put_domain(
        &app,
        json!({"preview_domain": null, "dns01_provider": null, "dns01_credentials": null,
               "control_plane_domain": null}),
    )
    .await;
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["job_ids"].as_array().unwrap().len(), 2, "{body}");
    assert_eq!(provision_jobs(&app).await.len(), before + 2);
    assert!(provision_jobs(&app)
        .await
        .iter()
        .all(|(_, n)| *n != decommissioned));
    assert_eq!(app.setting("dns01_credentials_json").await, None);
    assert!(app
        .state
        .secrets
        .get("dns01_credentials")
        .unwrap()
        .is_none());

    // Audit: one settings_update per save, succeeded, none per job.
    let rows: Vec<(String, String, String)> = pressluft::store::query_as(
        "SELECT action, resource_type, resource_id FROM audit_logs ORDER BY created_at",
    )
    .fetch_all(app.store.pool())
    .await
    .unwrap();
    assert_eq!(rows.len(), 6, "{rows:?}");
    assert!(rows.iter().all(|r| r
        == &(
            "settings_update".into(),
            "settings".into(),
            "domain-config".into()
        )));
}

#[tokio::test]
async fn a_stored_secret_counts_and_null_deletes() {
    let app = spawn_logged_in().await;
    let r = put_domain(&app, preview_config()).await;
    assert_eq!(r.status(), 200);
    assert_eq!(
        app.setting("dns01_credentials_json").await.as_deref(),
        Some("secret:dns01_credentials")
    );
    // Omitted: the stored secret satisfies the preview domain.
    let mut keep = preview_config();
    keep.as_object_mut().unwrap().remove("dns01_credentials");
    keep["preview_domain"] = json!("preview.example.test");
    assert_eq!(put_domain(&app, keep.clone()).await.status(), 200);
    // null deletes — refused while a preview domain needs them.
    let mut delete = keep.clone();
    delete["dns01_credentials"] = Value::Null;
    let r = put_domain(&app, delete).await;
    assert_field_error(r, 400, "settings_invalid", "dns01_credentials").await;
    assert!(app
        .state
        .secrets
        .get("dns01_credentials")
        .unwrap()
        .is_some());
    // Without the preview domain, null deletes the secret and its reference; the provider
    // may stay.
    let r = put_domain(
        &app,
        json!({"dns01_provider": "rfc2136", "dns01_credentials": null}),
    )
    .await;
    assert_eq!(r.status(), 200);
    assert_eq!(app.setting("dns01_credentials_json").await, None);
    assert!(app
        .state
        .secrets
        .get("dns01_credentials")
        .unwrap()
        .is_none());
    let (_, settings) = app.get_json("/_admin/settings").await;
    assert_eq!(
        settings["secrets"]["dns01_credentials_json"],
        json!({"set": false})
    );
    // And now a preview domain without credentials is refused again.
    assert_field_error(
        put_domain(&app, keep).await,
        400,
        "settings_invalid",
        "dns01_credentials",
    )
    .await;
}

/// Collects every log line the server writes while the test runs.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test]
async fn dns01_credentials_stay_in_the_secrets_store() {
    let captured = Captured::default();
    let writer = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_writer(move || writer.clone())
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    let (app, local, _other, _pending) = app_with_nodes().await;
    let mut responses = Vec::new();
    let r = put_domain(&app, preview_config()).await;
    assert_eq!(r.status(), 200);
    let body = r.text().await.unwrap();
    responses.push(body.clone());
    let stored = app.state.secrets.get("dns01_credentials").unwrap().unwrap();
    let stored: Value = serde_json::from_str(stored.expose()).unwrap();
    assert_eq!(stored, rfc2136());
    // A refusal (a bad provider key) echoes nothing either; nor a cloudflare token.
    let mut bad = preview_config();
    bad["dns01_credentials"]["key_secret"] = json!(format!("{TSIG_SECRET}!"));
    responses.push(put_domain(&app, bad).await.text().await.unwrap());
    let mut cf = preview_config();
    cf["dns01_provider"] = json!("cloudflare");
    cf["dns01_credentials"] = json!({"api_token": TOKEN});
    responses.push(put_domain(&app, cf).await.text().await.unwrap());
    for path in [
        "/_admin/settings",
        "/settings",
        "/api/audit-logs?resource_type=settings",
        "/api/jobs",
    ] {
        responses.push(app.get(path).await.text().await.unwrap());
    }

    // The playbook gets them as secret extra-vars (masked in its output), with the ACME vars.
    let job_id = provision_jobs(&app).await.last().unwrap().0.clone();
    let mut conn = app.store.pool().acquire().await.unwrap();
    let job = pressluft::store::queue::fetch_job(&mut conn, &job_id)
        .await
        .unwrap()
        .unwrap();
    drop(conn);
    let node_row = app.store.get_node(&local).await.unwrap().unwrap();
    let vars = pressluft::jobs::kinds::extra_vars(
        &app.store,
        &app.state.secrets,
        &app.state.config,
        &job,
        &node_row,
    )
    .await
    .unwrap();
    assert_eq!(vars.vars["preview_certificate_domain"], "wp.example.test");
    assert_eq!(vars.vars["preview_certificate_provider"], "cloudflare");
    assert!(vars.vars["preview_certificate_credentials_ini"]
        .as_str()
        .unwrap()
        .contains(&format!("dns_cloudflare_api_token = {TOKEN}")));
    assert!(vars.secrets.contains(&TOKEN.to_string()));
    assert_eq!(
        vars.vars["acme_directory_url"],
        "https://acme-v02.api.letsencrypt.org/directory"
    );
    assert_eq!(vars.vars["acme_email"], "");
    assert_eq!(vars.vars["acme_ca_bundle"], "");

    let dump: Vec<(String,)> = pressluft::store::query_as(
        "SELECT id || user_id || action || resource_type || resource_id || result FROM audit_logs",
    )
    .fetch_all(app.store.pool())
    .await
    .unwrap();
    let log = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
    assert!(log.contains("pressluft::"), "the log was captured");
    for secret in [TSIG_SECRET, TOKEN] {
        for r in &responses {
            assert!(!r.contains(secret), "a response shows the secret: {r}");
        }
        for (row,) in &dump {
            assert!(!row.contains(secret), "an audit row: {row}");
        }
        assert!(!log.contains(secret), "the log shows the secret");
    }
    assert!(responses[0].contains("\"job_ids\""));
}

#[tokio::test]
async fn the_groups_need_a_session_and_csrf() {
    let app = spawn_app().await;
    for path in ["/_admin/settings/domain-config", "/_admin/settings/acme"] {
        let r = client()
            .put(app.url(path))
            .json(&json!({}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 401, "{path}");
    }
    // With a session: a cross-origin request or a non-JSON body is refused (api.md §2).
    app.login().await;
    for path in ["/_admin/settings/domain-config", "/_admin/settings/acme"] {
        let r = app
            .client
            .put(app.url(path))
            .header("origin", "https://evil.example")
            .json(&preview_config())
            .send()
            .await
            .unwrap();
        assert_error(r, 403, "csrf_failed").await;
        let r = app
            .client
            .put(app.url(path))
            .header("content-type", "application/x-www-form-urlencoded")
            .body("preview_domain=evil.example")
            .send()
            .await
            .unwrap();
        assert_error(r, 403, "csrf_failed").await;
    }
    assert_eq!(app.setting("preview_domain").await, None);
    assert_eq!(app.count("audit_logs").await, 0);
}

/// The domain form's fields.
fn fields<'a>(preview: &'a str, credentials: &'a str) -> Vec<(&'static str, &'a str)> {
    vec![
        ("control_plane_domain", ""),
        ("preview_domain", preview),
        ("dns01_provider", "rfc2136"),
        ("dns01_credentials", credentials),
    ]
}

#[tokio::test]
async fn the_settings_page_saves_both_groups_and_lists_the_started_jobs() {
    let (app, local, other, _pending) = app_with_nodes().await;
    let html = app.text("/settings").await;
    assert!(html.contains("data-test=\"domain-settings\""));
    assert!(html.contains("data-test=\"acme-settings\""));
    assert!(html.contains("sse-connect=\"/ui/events?view=jobs&amp;job_type=node_provision\""));
    assert!(html.contains("<option value=\"rfc2136\""));
    assert!(html.contains("server, port, key_name, key_algorithm, key_secret"));
    let forms = CsrfForms::new(&app, &app.client, &html);
    let credentials = rfc2136().to_string();
    let credentials = credentials.as_str();

    // Refused inline, naming the field, the credentials never echoed.
    let r = forms
        .post(
            "/settings/domain-config",
            &fields("WP.example.test", credentials),
        )
        .await;
    assert_eq!(r.status(), 400);
    let page = r.text().await.unwrap();
    assert!(page.contains("must be lowercase"), "inline error");
    assert!(page.contains("value=\"WP.example.test\""), "shown as sent");
    assert!(!page.contains(TSIG_SECRET));
    let r = forms
        .post(
            "/settings/domain-config",
            &fields("wp.example.test", "{not json"),
        )
        .await;
    assert_eq!(r.status(), 400);
    let page = r.text().await.unwrap();
    assert!(page.contains("must be a JSON object of strings"));
    assert!(!page.contains("{not json"));
    let r = forms
        .post("/settings/domain-config", &fields("wp.example.test", ""))
        .await;
    assert_eq!(r.status(), 400);
    assert!(r
        .text()
        .await
        .unwrap()
        .contains("are required with a preview domain"));
    assert_eq!(app.count("jobs").await, 0);

    // Saved: the started jobs are listed and in the live table.
    let r = forms
        .post(
            "/settings/domain-config",
            &fields("wp.example.test", credentials),
        )
        .await;
    assert_eq!(r.status(), 200);
    let page = r.text().await.unwrap();
    assert!(!page.contains(TSIG_SECRET));
    let jobs = provision_jobs(&app).await;
    assert_eq!(
        jobs.iter().map(|(_, n)| n.as_str()).collect::<Vec<_>>(),
        [local.as_str(), other.as_str()]
    );
    assert!(page.contains("data-test=\"started-jobs\""));
    for (id, _) in &jobs {
        assert!(
            page.contains(&format!("data-job-id=\"{id}\"")),
            "{id} listed"
        );
        assert!(page.contains(&format!("/jobs/{id}")));
    }
    assert!(page.contains("data-test=\"dns01-credentials-state\">set<"));
    assert!(page.contains("value=\"wp.example.test\""));

    // Unchanged (credentials left empty = kept): saved, no job.
    let r = forms
        .post("/settings/domain-config", &fields("wp.example.test", ""))
        .await;
    assert_eq!(r.status(), 200);
    assert!(r
        .text()
        .await
        .unwrap()
        .contains("no node_provision job started"));
    assert_eq!(provision_jobs(&app).await.len(), 2);

    // Delete the stored credentials together with the preview domain.
    let r = forms
        .post(
            "/settings/domain-config",
            &[
                ("preview_domain", ""),
                ("dns01_provider", ""),
                ("dns01_credentials", ""),
                ("delete_credentials", "true"),
            ],
        )
        .await;
    assert_eq!(r.status(), 200);
    assert!(r
        .text()
        .await
        .unwrap()
        .contains("data-test=\"dns01-credentials-state\">not set<"));
    assert!(app
        .state
        .secrets
        .get("dns01_credentials")
        .unwrap()
        .is_none());

    // ACME: refused inline, then saved; no job.
    let r = forms
        .post(
            "/settings/acme",
            &[
                ("acme_email", "ops@example.test"),
                ("acme_directory_url", "http://acme.example.test/dir"),
                ("acme_ca_bundle", ""),
            ],
        )
        .await;
    assert_eq!(r.status(), 400);
    assert!(r.text().await.unwrap().contains("must be an https:// URL"));
    let before = app.count("jobs").await;
    let r = forms
        .post(
            "/settings/acme",
            &[
                ("acme_email", "ops@example.test"),
                ("acme_directory_url", "https://acme.example.test/dir"),
                ("acme_ca_bundle", "/etc/ssl/private-ca.pem"),
            ],
        )
        .await;
    assert_eq!(r.status(), 200);
    assert_eq!(app.count("jobs").await, before);
    assert_eq!(
        app.setting("acme_ca_bundle").await.as_deref(),
        Some("/etc/ssl/private-ca.pem")
    );

    // Without the CSRF token a form is refused.
    let r = post_form(
        &app.client,
        app.url("/settings/acme"),
        &[("acme_email", "x@example.test")],
    )
    .await;
    assert_eq!(r.status(), 403);
}

/// tests/browser/settings.mjs against the server with the stand-in runner: the Settings page
/// saves the domain configuration and shows the node_provision jobs it started reach
/// `succeeded` live (the test runs the queue once the page listens). The same script runs
/// against the real node in the end-to-end flow (`e2e_settings.rs`). Set
/// PRESSLUFT_SKIP_BROWSER=1 to skip it on a machine without chromium.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_settings_page_shows_the_started_jobs_live_in_a_browser() {
    use std::io::{BufRead, BufReader};
    use std::process::{Command, Stdio};
    if std::env::var_os("PRESSLUFT_SKIP_BROWSER").is_some() {
        eprintln!("browser test skipped: PRESSLUFT_SKIP_BROWSER is set");
        return;
    }
    let script_dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/browser");
    assert!(
        script_dir.join("node_modules/playwright-core").is_dir(),
        "run `npm ci` in tests/browser (the test command does) or set PRESSLUFT_SKIP_BROWSER=1"
    );
    let (app, stand_in) = crate::stand_in::StandIn::new().spawn().await;
    let local = app.insert_node("local", "active").await;
    app.exec("UPDATE nodes SET is_local = 1 WHERE id = ?", &[&local])
        .await;
    let other = app.insert_node("n2", "active").await;
    let form = json!({
        "control_plane_domain": "", "preview_domain": "wp.example.test",
        "dns01_provider": "rfc2136", "dns01_credentials": rfc2136().to_string(),
    });
    let mut child = Command::new("node")
        .arg("settings.mjs")
        .current_dir(&script_dir)
        .env("PRESSLUFT_URL", &app.base)
        .env("PRESSLUFT_EMAIL", ADMIN_EMAIL)
        .env("PRESSLUFT_PASSWORD", ADMIN_PASSWORD)
        .env(
            "PRESSLUFT_SCREENSHOTS",
            std::env::var("PRESSLUFT_SCREENSHOTS").unwrap_or_default(),
        )
        .env("PRESSLUFT_DOMAIN_FORM", form.to_string())
        .env("PRESSLUFT_SECRET", TSIG_SECRET)
        .env("PRESSLUFT_HANDSHAKE", "1")
        .env("PRESSLUFT_SETTINGS_TIMEOUT_MS", "60000")
        .stdout(Stdio::piped())
        .spawn()
        .expect("node runs");
    let stdout = child.stdout.take().unwrap();
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let mut transcript = Vec::new();
    let mut run_queue = false;
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(180);
    loop {
        if run_queue {
            app.state.engine.run_until_idle("w").await.unwrap();
        }
        let wait = std::time::Duration::from_millis(200);
        match tokio::time::timeout_at(deadline.min(tokio::time::Instant::now() + wait), rx.recv())
            .await
        {
            Ok(Some(line)) => {
                run_queue |= line == "RUN_QUEUE";
                transcript.push(line);
            }
            Ok(None) => break,
            Err(_) if tokio::time::Instant::now() >= deadline => break,
            Err(_) => {}
        }
    }
    let status = child.wait().expect("node exits");
    assert!(
        status.success() && transcript.iter().any(|l| l == "BROWSER_TEST_PASSED"),
        "browser test failed:\n{}",
        transcript.join("\n")
    );
    let jobs = provision_jobs(&app).await;
    assert_eq!(
        jobs.iter().map(|(_, n)| n.as_str()).collect::<Vec<_>>(),
        [local.as_str(), other.as_str()]
    );
    app.login().await;
    for (id, _) in &jobs {
        assert!(transcript.contains(&format!("JOB {id}")), "{id} seen live");
        assert_eq!(app.job(id).await["status"], "succeeded");
    }
    assert_eq!(stand_in.runs().len(), 2);
    assert_eq!(
        app.setting("preview_domain").await.as_deref(),
        Some("wp.example.test")
    );
}
