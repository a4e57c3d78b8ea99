//! The backups API (api.md Backups) and the backup settings (`PUT /_admin/settings/backups`):
//! validation naming its field, 404s and 409s, the shapes, where a new backup is kept, and that
//! the S3 credentials never leave the secrets store (responses, log lines, audit rows).

use std::io::Write;
use std::sync::{Arc, Mutex};

use serde_json::{json, Value};

use crate::helpers::*;

const SECRET_KEY: &str = "wJalrXUtnFEMI-K7MDENG-bPxRfiCYSECRET";

/// A logged-in app with an active node and a production environment on it.
async fn app_with_environment() -> (TestApp, String, String, String) {
    let app = spawn_logged_in().await;
    let node = app.insert_node("n1", "active").await;
    let site = app.insert_site("Shop", "shop").await;
    let env = app.insert_environment(&site, &node, "Production").await;
    (app, node, site, env)
}

/// `POST /api/environments/{env}/backups` with `scope`, accepted: the 202 body.
async fn new_backup(app: &TestApp, env: &str, scope: &str) -> Value {
    let path = format!("/api/environments/{env}/backups");
    let r = app.post_json(&path, json!({ "backup_scope": scope })).await;
    assert_eq!(r.status(), 202);
    r.json().await.unwrap()
}

/// The new backup's row as the API shows it.
async fn backup_of(app: &TestApp, accepted: &Value) -> Value {
    let id = accepted["backup_id"].as_str().unwrap();
    let (status, backup) = app.get_json(&format!("/api/backups/{id}")).await;
    assert_eq!(status, 200);
    backup
}

/// Marks a backup completed (what `backup_create` does on the node).
async fn complete(app: &TestApp, backup_id: &str) {
    let sql = "UPDATE backups SET status = 'completed', checksum = 'sha256:00', size_bytes = 1
               WHERE id = ?";
    app.exec(sql, &[backup_id]).await;
}

/// `PUT /_admin/settings/backups`.
async fn put_backups(app: &TestApp, body: Value) -> reqwest::Response {
    app.put_json("/_admin/settings/backups", body).await
}

fn s3_settings() -> Value {
    json!({
        "backup_s3_endpoint": "https://s3.example.test",
        "backup_s3_region": "eu-central-1",
        "backup_s3_bucket": "pl-backups",
        "backup_s3_prefix": "prod",
        "backup_s3_credentials": {"access_key_id": "AKIDEXAMPLE", "secret_access_key": SECRET_KEY},
    })
}

#[tokio::test]
async fn backups_are_created_listed_read_and_verified() {
    let (app, _node, site, env) = app_with_environment().await;
    let (status, list) = app
        .get_json(&format!("/api/environments/{env}/backups"))
        .await;
    assert_eq!((status, list.clone()), (200, json!([])));

    let body = new_backup(&app, &env, "db").await;
    let keys: Vec<&String> = body.as_object().unwrap().keys().collect();
    assert_eq!(keys, ["backup_id", "job_id"], "{body}");
    let backup_id = body["backup_id"].as_str().unwrap().to_string();
    let job = app.job(body["job_id"].as_str().unwrap()).await;
    assert_eq!(job["job_type"], "backup_create");
    assert_eq!(job["environment_id"], env.as_str());

    let backup = backup_of(&app, &body).await;
    assert_eq!(backup["status"], "pending");
    assert_eq!(backup["backup_scope"], "db");
    assert_eq!(backup["storage_type"], "local");
    assert_eq!(
        backup["storage_path"],
        format!("/var/backups/pressluft/{site}/{env}/{backup_id}/")
    );
    for key in [
        "id",
        "environment_id",
        "backup_scope",
        "status",
        "storage_type",
        "storage_path",
        "retention_until",
        "checksum",
        "size_bytes",
        "created_at",
        "completed_at",
        "verified_at",
        "verify_status",
        "error_code",
        "updated_at",
        "state_version",
    ] {
        assert!(backup.get(key).is_some(), "{key} in {backup}");
    }
    assert_eq!(backup.as_object().unwrap().len(), 16, "{backup}");

    // A second one is listed first (newest first).
    app.clock.advance(time::Duration::seconds(5));
    let second = new_backup(&app, &env, "full").await;
    let (_, list) = app
        .get_json(&format!("/api/environments/{env}/backups"))
        .await;
    assert_eq!(
        column(&list, "id"),
        [second["backup_id"].as_str().unwrap(), backup_id.as_str()]
    );
    assert_eq!(list[1], backup);

    // Verify: only a completed backup.
    let verify = format!("/api/backups/{backup_id}/verify");
    assert_error(app.post_empty(&verify).await, 409, "conflict").await;
    complete(&app, &backup_id).await;
    let r = app.post_empty(&verify).await;
    assert_eq!(r.status(), 202);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body.as_object().unwrap().len(), 1, "{body}");
    let job = app.job(body["job_id"].as_str().unwrap()).await;
    assert_eq!(job["job_type"], "backup_verify");
}

#[tokio::test]
async fn backup_requests_are_refused_with_their_reasons() {
    let (app, node, _site, env) = app_with_environment().await;
    let create = format!("/api/environments/{env}/backups");
    for body in [
        json!({"backup_scope": "everything"}),
        json!({"backup_scope": 1}),
        json!({}),
    ] {
        let r = app.post_json(&create, body).await;
        assert_field_error(r, 400, "bad_request", "backup_scope").await;
    }
    let r = app
        .post_json(&create, json!({"backup_scope": "db", "extra": 1}))
        .await;
    assert_field_error(r, 400, "bad_request", "extra").await;
    let unknown = "00000000-0000-4000-8000-000000000000";
    for path in [
        format!("/api/environments/{unknown}/backups"),
        format!("/api/backups/{unknown}"),
    ] {
        assert_error(app.get(&path).await, 404, "not_found").await;
    }
    let r = app
        .post_json(
            &format!("/api/environments/{unknown}/backups"),
            json!({"backup_scope": "db"}),
        )
        .await;
    assert_error(r, 404, "not_found").await;
    let verify_unknown = format!("/api/backups/{unknown}/verify");
    assert_error(app.post_empty(&verify_unknown).await, 404, "not_found").await;
    let r = app.get("/api/backups/not-a-uuid").await;
    assert_field_error(r, 400, "bad_request", "id").await;

    // A completed backup on a node that is no longer active: 409 node_not_active for both.
    let accepted = new_backup(&app, &env, "files").await;
    let backup_id = accepted["backup_id"].as_str().unwrap().to_string();
    complete(&app, &backup_id).await;
    app.exec(
        "UPDATE nodes SET status = 'unreachable' WHERE id = ?",
        &[&node],
    )
    .await;
    let r = app.post_json(&create, json!({"backup_scope": "db"})).await;
    assert_error(r, 409, "node_not_active").await;
    let r = app
        .post_empty(&format!("/api/backups/{backup_id}/verify"))
        .await;
    assert_error(r, 409, "node_not_active").await;
    assert_eq!(app.count("backups").await, 1);

    // Without a session: 401 everywhere.
    let anonymous = client();
    for path in [
        format!("/api/environments/{env}/backups"),
        format!("/api/backups/{backup_id}"),
    ] {
        let r = anonymous.get(app.url(&path)).send().await.unwrap();
        assert_eq!(r.status(), 401, "{path}");
    }
    for path in [
        format!("/api/environments/{env}/backups"),
        format!("/api/backups/{backup_id}/verify"),
        "/_admin/settings/backups".to_string(),
    ] {
        let r = anonymous
            .request(
                if path.starts_with("/_admin") {
                    reqwest::Method::PUT
                } else {
                    reqwest::Method::POST
                },
                app.url(&path),
            )
            .json(&json!({"backup_scope": "db"}))
            .send()
            .await
            .unwrap();
        assert!(
            [401, 403].contains(&r.status().as_u16()),
            "{path}: {}",
            r.status()
        );
    }
}

#[tokio::test]
async fn the_storage_of_a_backup_is_fixed_by_the_settings_at_creation() {
    let (app, _node, site, env) = app_with_environment().await;
    let before = backup_of(&app, &new_backup(&app, &env, "db").await).await;
    let r = put_backups(&app, s3_settings()).await;
    assert_eq!(r.status(), 200);
    let new = backup_of(&app, &new_backup(&app, &env, "full").await).await;
    let (before_id, after_id) = (before["id"].as_str().unwrap(), new["id"].as_str().unwrap());

    assert_eq!(before["storage_type"], "local");
    assert_eq!(
        before["storage_path"],
        format!("/var/backups/pressluft/{site}/{env}/{before_id}/")
    );
    assert_eq!(new["storage_type"], "s3");
    assert_eq!(
        new["storage_path"],
        format!("s3://pl-backups/prod/{site}/{env}/{after_id}/")
    );

    // Turning S3 off again changes neither existing backup.
    let r = put_backups(&app, json!({"backup_s3_credentials": null})).await;
    assert_eq!(r.status(), 200);
    let (_, still) = app.get_json(&format!("/api/backups/{after_id}")).await;
    assert_eq!(still["storage_type"], "s3");
    assert_eq!(still["storage_path"], new["storage_path"]);
    let third = backup_of(&app, &new_backup(&app, &env, "db").await).await;
    assert_eq!(third["storage_type"], "local");
}

#[tokio::test]
async fn backup_settings_refusals_name_their_field() {
    let app = spawn_logged_in().await;
    let creds = json!({"access_key_id": "AKID", "secret_access_key": "s3cr3t"});
    // Each value alone under its field (a bucket comes with credentials).
    #[rustfmt::skip]
    let table = [
        ("backup_retention_days", json!(0)), ("backup_retention_days", json!(3651)),
        ("backup_retention_days", json!("ten")), ("backup_retention_days", json!(1.5)),
        ("backup_schedule_hours", json!(169)), ("backup_schedule_hours", json!(-1)),
        ("backup_schedule_hours", json!(true)),
        ("backup_s3_endpoint", json!("s3.example.test")),
        ("backup_s3_endpoint", json!("http://169.254.169.254")),
        ("backup_s3_endpoint", json!("http://[fe80::1]:9000")),
        ("backup_s3_endpoint", json!("http://127.0.0.1:9900")),
        ("backup_s3_endpoint", json!("http://localhost:9900")),
        ("backup_s3_endpoint", json!("https://k:s@s3.example.test")),
        ("backup_s3_region", json!("eu central")),
        ("backup_s3_bucket", json!("Bad_Bucket")), ("backup_s3_bucket", json!("10.0.0.1")),
        ("backup_s3_prefix", json!("/abs")), ("backup_s3_prefix", json!(" /abs")),
        ("backup_s3_prefix", json!("a/../b")),
        ("backup_s3_credentials", json!("AKID:s3cr3t")),
        ("backup_s3_credentials", json!({"access_key_id": "AKID"})),
        ("backup_s3_credentials", json!({"access_key_id": "", "secret_access_key": "s3cr3t"})),
    ];
    let mut bodies: Vec<(Value, &str)> = table
        .into_iter()
        .map(|(field, value)| {
            let mut body = json!({ field: value });
            if field == "backup_s3_bucket" {
                body["backup_s3_credentials"] = creds.clone();
            }
            (body, field)
        })
        .collect();
    bodies.push((
        json!({"backup_s3_bucket": "pl-backups"}),
        "backup_s3_credentials",
    ));
    for (body, field) in bodies {
        let r = put_backups(&app, body.clone()).await;
        let e = assert_field_error(r, 400, "settings_invalid", field).await;
        assert!(!e.to_string().contains("s3cr3t"), "{body}: {e}");
    }
    let r = put_backups(&app, json!({"backup_retention": 3})).await;
    assert_field_error(r, 400, "bad_request", "backup_retention").await;
    // Nothing was stored by any refusal.
    let (_, settings) = app.get_json("/_admin/settings").await;
    assert_eq!(settings["settings"]["backup_retention_days"], "30");
    assert_eq!(settings["settings"]["backup_s3_bucket"], Value::Null);
    assert_eq!(
        settings["secrets"]["backup_s3_credentials_json"]["set"],
        false
    );

    // Accepted: numbers or strings, defaults restored by null.
    let r = put_backups(
        &app,
        json!({"backup_retention_days": "7", "backup_schedule_hours": 0}),
    )
    .await;
    assert_eq!(r.status(), 200);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body.as_object().unwrap().len(), 1, "only settings: {body}");
    assert_eq!(body["settings"]["backup_retention_days"], "7");
    assert_eq!(body["settings"]["backup_schedule_hours"], "0");
    assert_eq!(body["settings"]["backup_s3_prefix"], "pressluft");
    let r = put_backups(&app, json!({})).await;
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["settings"]["backup_retention_days"], "30");
    assert_eq!(body["settings"]["backup_schedule_hours"], "24");
}

#[tokio::test]
async fn a_loopback_endpoint_needs_the_flag() {
    let tweak = |c: &mut pressluft::config::Config| c.allow_loopback_sources = true;
    let app = spawn_app_with(tweak, None).await;
    app.login().await;
    let mut body = s3_settings();
    body["backup_s3_endpoint"] = json!("http://127.0.0.1:9900/");
    let r = put_backups(&app, body).await;
    assert_eq!(r.status(), 200);
    assert_eq!(
        app.setting("backup_s3_endpoint").await.as_deref(),
        Some("http://127.0.0.1:9900")
    );
    let mut body = s3_settings();
    body["backup_s3_endpoint"] = json!("http://169.254.169.254");
    let r = put_backups(&app, body).await;
    assert_field_error(r, 400, "settings_invalid", "backup_s3_endpoint").await;
}

/// Collects every log line the server writes while the test runs (the test runtime has one
/// thread, so the default subscriber sees the server's tasks).
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
async fn s3_credentials_stay_in_the_secrets_store() {
    let captured = Captured::default();
    let writer = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_writer(move || writer.clone())
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    let (app, _node, _site, env) = app_with_environment().await;
    let mut responses = Vec::new();
    let r = put_backups(&app, s3_settings()).await;
    assert_eq!(r.status(), 200);
    responses.push(r.text().await.unwrap());
    // The row refers to the secret; the secret holds the credentials.
    assert_eq!(
        app.setting("backup_s3_credentials_json").await.as_deref(),
        Some("secret:backup_s3_credentials")
    );
    let stored = app
        .state
        .secrets
        .get(pressluft::backups::storage::S3_CREDENTIALS_SECRET)
        .unwrap()
        .unwrap();
    let stored: Value = serde_json::from_str(stored.expose()).unwrap();
    assert_eq!(
        stored,
        json!({"access_key_id": "AKIDEXAMPLE", "secret_access_key": SECRET_KEY})
    );
    let (_, settings) = app.get_json("/_admin/settings").await;
    assert_eq!(
        settings["secrets"]["backup_s3_credentials_json"],
        json!({"set": true})
    );
    responses.push(settings.to_string());

    // Omitted = keep (a stored secret satisfies the bucket); a refusal echoes nothing.
    let mut keep = s3_settings();
    keep.as_object_mut()
        .unwrap()
        .remove("backup_s3_credentials");
    keep["backup_retention_days"] = json!(14);
    let r = put_backups(&app, keep).await;
    assert_eq!(r.status(), 200);
    responses.push(r.text().await.unwrap());
    assert!(app
        .state
        .secrets
        .get(pressluft::backups::storage::S3_CREDENTIALS_SECRET)
        .unwrap()
        .is_some());
    let mut bad = s3_settings();
    bad["backup_s3_bucket"] = json!("NO");
    let r = put_backups(&app, bad).await;
    responses.push(r.text().await.unwrap());
    responses.push(new_backup(&app, &env, "db").await.to_string());
    for path in [
        format!("/api/environments/{env}/backups"),
        "/api/audit-logs?resource_type=settings".to_string(),
        "/settings".to_string(),
    ] {
        responses.push(app.get(&path).await.text().await.unwrap());
    }

    // Null = delete, only without a bucket.
    let r = put_backups(
        &app,
        json!({"backup_s3_credentials": null, "backup_s3_bucket": "pl-backups"}),
    )
    .await;
    assert_field_error(r, 400, "settings_invalid", "backup_s3_credentials").await;
    let r = put_backups(&app, json!({"backup_s3_credentials": null})).await;
    assert_eq!(r.status(), 200);
    assert_eq!(app.setting("backup_s3_credentials_json").await, None);
    assert!(app
        .state
        .secrets
        .get(pressluft::backups::storage::S3_CREDENTIALS_SECRET)
        .unwrap()
        .is_none());

    // Audited as settings_update, without the secret.
    let rows: Vec<(String, String, String)> = pressluft::store::query_as(
        "SELECT action, resource_id, result FROM audit_logs WHERE resource_type = 'settings'",
    )
    .fetch_all(app.store.pool())
    .await
    .unwrap();
    let ours = (
        "settings_update".to_string(),
        "backups".to_string(),
        "succeeded".to_string(),
    );
    assert_eq!(rows.iter().filter(|r| **r == ours).count(), 3, "{rows:?}");
    let dump: Vec<(String,)> = pressluft::store::query_as(
        "SELECT id || user_id || action || resource_id || result FROM audit_logs",
    )
    .fetch_all(app.store.pool())
    .await
    .unwrap();

    let log = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
    // The capture works (which callsites it sees can race with other tests: tracing caches a
    // callsite's interest across the threads' scoped subscribers).
    assert!(log.contains("pressluft::"), "the log was captured: {log}");
    for (what, text) in responses
        .iter()
        .map(|r| ("response", r.as_str()))
        .chain([("log", log.as_str())])
        .chain(dump.iter().map(|(d,)| ("audit", d.as_str())))
    {
        assert!(!text.contains(SECRET_KEY), "{what}: {text}");
    }
}

#[tokio::test]
async fn the_settings_page_edits_the_backups_group() {
    let app = spawn_logged_in().await;
    let html = app.text("/settings").await;
    assert!(html.contains("not off-site"), "local storage warned");
    assert!(html.contains("No credentials stored."));
    let forms = CsrfForms::new(&app, &app.client, &html);
    let fields = |bucket: &'static str, key_id: &'static str, secret: &'static str| {
        vec![
            ("backup_retention_days", "14"),
            ("backup_schedule_hours", "12"),
            ("backup_s3_endpoint", "https://s3.example.test"),
            ("backup_s3_region", ""),
            ("backup_s3_bucket", bucket),
            ("backup_s3_prefix", "pressluft"),
            ("access_key_id", key_id),
            ("secret_access_key", secret),
        ]
    };

    let save = |bucket, key_id, secret| {
        let fields = fields(bucket, key_id, secret);
        let forms = &forms;
        async move {
            let r = forms.post("/settings/backups", &fields).await;
            (r.status().as_u16(), r.text().await.unwrap())
        }
    };

    // A bucket without credentials: refused next to the credentials, nothing echoed.
    let (status, page) = save("pl-backups", "", "").await;
    assert_eq!(status, 400);
    assert!(page.contains("field-error"), "{page}");
    assert!(page.contains("a bucket needs credentials"));
    let (status, page) = save("pl-backups", "AKIDFORM", "").await;
    assert_eq!(status, 400);
    assert!(page.contains("the secret access key must be"), "{page}");
    assert!(!page.contains("AKIDFORM"), "the key id is not echoed");
    assert_eq!(app.setting("backup_s3_bucket").await, None);
    let (status, page) = save("Bad_Bucket", "AKIDFORM", SECRET_KEY).await;
    assert_eq!(status, 400);
    assert!(page.contains("Bad_Bucket"), "values shown as sent");
    assert!(!page.contains(SECRET_KEY));

    let (status, page) = save("pl-backups", "AKIDFORM", SECRET_KEY).await;
    assert_eq!(status, 200);
    assert!(page.contains("Settings saved."));
    assert!(page.contains("S3 (off-site)"), "{page}");
    assert!(page.contains("Credentials are stored"));
    assert!(!page.contains(SECRET_KEY) && !page.contains("AKIDFORM"));
    let retention = app.setting("backup_retention_days").await;
    assert_eq!(retention.as_deref(), Some("14"));

    // Empty key fields keep the credentials; the checkbox removes them (with the bucket).
    assert_eq!(save("pl-backups", "", "").await.0, 200);
    assert!(app.setting("backup_s3_credentials_json").await.is_some());
    let mut remove = fields("", "", "");
    remove.push(("remove_credentials", "true"));
    let r = forms.post("/settings/backups", &remove).await;
    assert_eq!(r.status(), 200);
    let page = r.text().await.unwrap();
    assert!(page.contains("not off-site"));
    assert_eq!(app.setting("backup_s3_credentials_json").await, None);
}
