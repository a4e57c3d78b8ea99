//! The promotion API (api.md `POST /api/environments/{id}/promote`,
//! backups-restore-promotion.md §5): every validation in its order (400 naming
//! `target_environment_id`, 404, 409 `conflict` for another node), both gates with their
//! edges (a clean check of another preset, a drifted one, one 31 minutes old; no full
//! backup, one 61 minutes old, a `db`-only one), no override, the `rejected` audit of a gate
//! refusal, and the accepted job's payload naming the gate backup and the drift check.
//! Control-plane logic only: the job is not run (no workers); times are faked with rows.

use serde_json::{json, Value};

use crate::deploys_api::payload;
use crate::helpers::*;

/// A site with production and a staging environment (content-protect) on one active node.
struct Fixture {
    app: TestApp,
    node: String,
    site: String,
    prod: String,
    staging: String,
}

async fn fixture() -> Fixture {
    let app = spawn_logged_in().await;
    let node = app.insert_node("n1", "active").await;
    let site = app.insert_site("Shop", "shop").await;
    let prod = app.insert_environment(&site, &node, "Production").await;
    let staging = app.insert_environment(&site, &node, "Staging").await;
    app.exec(
        "UPDATE environments SET environment_type = 'staging' WHERE id = ?",
        &[&staging],
    )
    .await;
    Fixture {
        app,
        node,
        site,
        prod,
        staging,
    }
}

/// `now - minutes` as stored.
fn ago(app: &TestApp, minutes: i64) -> String {
    pressluft::clock::format_ts(
        pressluft::clock::Clock::now(&app.clock) - time::Duration::minutes(minutes),
    )
}

impl Fixture {
    /// A drift check of staging `minutes` old, made its last one.
    async fn drift_check(&self, status: &str, preset: &str, minutes: i64) -> String {
        let id = uuid::Uuid::new_v4().to_string();
        let at = ago(&self.app, minutes);
        self.app
            .exec(
                "INSERT INTO drift_checks (id, environment_id, promotion_preset, status,
                   db_checksums_json, file_checksums_json, is_baseline, checked_at)
                 VALUES (?, ?, ?, ?, '{}', '{}', 0, ?)",
                &[&id, &self.staging, preset, status, &at],
            )
            .await;
        self.app
            .exec(
                "UPDATE environments SET last_drift_check_id = ?, drift_status = ?,
                   drift_checked_at = ? WHERE id = ?",
                &[&id, status, &at, &self.staging],
            )
            .await;
        id
    }

    /// A backup of production, `status`, completed `minutes` ago.
    async fn backup(&self, scope: &str, status: &str, minutes: i64) -> String {
        let id = uuid::Uuid::new_v4().to_string();
        let at = ago(&self.app, minutes);
        self.app
            .exec(
                "INSERT INTO backups (id, environment_id, backup_scope, status, storage_type,
                   storage_path, retention_until, checksum, size_bytes, created_at, completed_at)
                 VALUES (?, ?, ?, ?, 'local', 'x', '2099-01-01T00:00:00.000Z', 'sha256:00', 1, ?, ?)",
                &[&id, &self.prod, scope, status, &at, &at],
            )
            .await;
        id
    }

    async fn promote(&self, body: Value) -> reqwest::Response {
        self.app
            .post_json(&format!("/api/environments/{}/promote", self.staging), body)
            .await
    }

    async fn promote_to_prod(&self) -> reqwest::Response {
        self.promote(json!({"target_environment_id": self.prod}))
            .await
    }

    async fn audit_results(&self) -> Vec<String> {
        let rows: Vec<(String,)> = pressluft::store::query_as(
            "SELECT result FROM audit_logs WHERE action = 'env_promote' ORDER BY created_at",
        )
        .fetch_all(self.app.store.pool())
        .await
        .unwrap();
        rows.into_iter().map(|r| r.0).collect()
    }
}

#[tokio::test]
async fn validations_name_their_field_in_order() {
    let f = fixture().await;
    let r = f.promote(json!({})).await;
    assert_error(r, 400, "bad_request").await;
    let r = f.promote(json!({"target_environment_id": "nope"})).await;
    assert_field_error(r, 400, "bad_request", "target_environment_id").await;
    let r = f
        .promote(json!({"target_environment_id": f.prod, "force": true}))
        .await;
    assert_error(r, 400, "bad_request").await;
    // Unknown target, unknown source: 404.
    let r = f
        .promote(json!({"target_environment_id": uuid::Uuid::new_v4().to_string()}))
        .await;
    assert_error(r, 404, "not_found").await;
    let r = f
        .app
        .post_json(
            &format!("/api/environments/{}/promote", uuid::Uuid::new_v4()),
            json!({"target_environment_id": f.prod}),
        )
        .await;
    assert_error(r, 404, "not_found").await;
    // Another site's production.
    let other_site = f.app.insert_site("Other", "other").await;
    let other_prod = f
        .app
        .insert_environment(&other_site, &f.node, "Production")
        .await;
    let r = f
        .promote(json!({"target_environment_id": other_prod}))
        .await;
    assert_field_error(r, 400, "bad_request", "target_environment_id").await;
    // The target is not production (staging into itself, or into another staging).
    let r = f.promote(json!({"target_environment_id": f.staging})).await;
    assert_field_error(r, 400, "bad_request", "target_environment_id").await;
    // The source is production.
    let r = f
        .app
        .post_json(
            &format!("/api/environments/{}/promote", f.prod),
            json!({"target_environment_id": f.prod}),
        )
        .await;
    assert_field_error(r, 400, "bad_request", "target_environment_id").await;
    // 400s and 404s are only logged, never audited.
    assert!(f.audit_results().await.is_empty());
    assert_eq!(f.app.count("jobs").await, 0);
}

#[tokio::test]
async fn another_node_or_a_failed_environment_is_a_conflict() {
    let f = fixture().await;
    f.drift_check("clean", "content-protect", 1).await;
    f.backup("full", "completed", 1).await;
    let other = f.app.insert_node("n2", "active").await;
    f.app
        .exec(
            "UPDATE environments SET node_id = ? WHERE id = ?",
            &[&other, &f.staging],
        )
        .await;
    let body = assert_error(f.promote_to_prod().await, 409, "conflict").await;
    assert!(body["message"].as_str().unwrap().contains("node"), "{body}");
    f.app
        .exec(
            "UPDATE environments SET node_id = ? WHERE id = ?",
            &[&f.node, &f.staging],
        )
        .await;
    f.app
        .exec(
            "UPDATE environments SET status = 'failed' WHERE id = ?",
            &[&f.prod],
        )
        .await;
    assert_error(f.promote_to_prod().await, 409, "conflict").await;
    f.app
        .exec(
            "UPDATE environments SET status = 'active' WHERE id = ?",
            &[&f.prod],
        )
        .await;
    f.app
        .exec(
            "UPDATE nodes SET status = 'unreachable' WHERE id = ?",
            &[&f.node],
        )
        .await;
    assert_error(f.promote_to_prod().await, 409, "node_not_active").await;
    assert_eq!(f.audit_results().await, ["rejected"; 3]);
    assert_eq!(f.app.count("jobs").await, 0);
}

/// The drift gate's message for the current state of the fixture.
async fn drift_refusal(f: &Fixture) -> String {
    let body = assert_error(f.promote_to_prod().await, 409, "drift_gate_failed").await;
    body["message"].as_str().unwrap().to_string()
}

#[tokio::test]
async fn the_drift_gate_wants_a_fresh_clean_check_of_the_preset() {
    let f = fixture().await;
    f.backup("full", "completed", 5).await;
    // Never checked (a baseline does not count).
    let message = drift_refusal(&f).await;
    assert!(message.contains("No drift check"), "{message}");
    let baseline = uuid::Uuid::new_v4().to_string();
    let now = ago(&f.app, 0);
    f.app
        .exec(
            "INSERT INTO drift_checks (id, environment_id, promotion_preset, status,
               is_baseline, checked_at) VALUES (?, ?, 'content-protect', 'clean', 1, ?)",
            &[&baseline, &f.staging, &now],
        )
        .await;
    f.app
        .exec(
            "UPDATE environments SET last_drift_check_id = ? WHERE id = ?",
            &[&baseline, &f.staging],
        )
        .await;
    assert!(drift_refusal(&f).await.contains("No drift check"));
    // Drifted.
    f.drift_check("drifted", "content-protect", 1).await;
    let message = drift_refusal(&f).await;
    assert!(message.contains("Production has changed"), "{message}");
    // Clean, but of another preset.
    f.drift_check("clean", "commerce-protect", 1).await;
    let message = drift_refusal(&f).await;
    assert!(message.contains("commerce-protect"), "{message}");
    // Clean, of the preset, but 31 minutes old.
    f.drift_check("clean", "content-protect", 31).await;
    let message = drift_refusal(&f).await;
    assert!(message.contains("31 min"), "{message}");
    assert_eq!(f.audit_results().await, ["rejected"; 5]);
    assert_eq!(f.app.count("jobs").await, 0);
    // 30 minutes is still fresh.
    f.drift_check("clean", "content-protect", 30).await;
    let r = f.promote_to_prod().await;
    assert_eq!(r.status(), 202);
}

#[tokio::test]
async fn the_backup_gate_wants_a_fresh_completed_full_backup_of_production() {
    let f = fixture().await;
    let check = f.drift_check("clean", "content-protect", 2).await;
    let refusal = |body: Value| body["message"].as_str().unwrap().to_string();
    // None at all.
    let body = assert_error(f.promote_to_prod().await, 409, "backup_gate_failed").await;
    assert!(refusal(body).contains("no completed full backup"));
    // Not full, not completed, or of staging: none counts.
    f.backup("db", "completed", 1).await;
    f.backup("full", "running", 1).await;
    f.backup("full", "failed", 1).await;
    let staging_backup = uuid::Uuid::new_v4().to_string();
    let now = ago(&f.app, 1);
    f.app
        .exec(
            "INSERT INTO backups (id, environment_id, backup_scope, status, storage_type,
               storage_path, retention_until, created_at, completed_at)
             VALUES (?, ?, 'full', 'completed', 'local', 'x', '2099-01-01T00:00:00.000Z', ?, ?)",
            &[&staging_backup, &f.staging, &now, &now],
        )
        .await;
    assert_error(f.promote_to_prod().await, 409, "backup_gate_failed").await;
    // 61 minutes old.
    f.backup("full", "completed", 61).await;
    let body = assert_error(f.promote_to_prod().await, 409, "backup_gate_failed").await;
    assert!(refusal(body).contains("61 min"));
    assert_eq!(f.audit_results().await, ["rejected"; 3]);
    // Fresh: accepted, the newest fresh one is the gate backup.
    f.backup("full", "completed", 50).await;
    let gate = f.backup("full", "completed", 10).await;
    let r = f.promote_to_prod().await;
    assert_eq!(r.status(), 202);
    let job_id = job_id(r).await;
    let job = f.app.job(&job_id).await;
    assert_eq!(job["job_type"], "env_promote", "{job}");
    assert_eq!(job["environment_id"], f.prod.as_str(), "{job}");
    assert_eq!(job["site_id"], f.site.as_str(), "{job}");
    let p = payload(&f.app, &job_id).await;
    assert_eq!(p["source_environment_id"], f.staging.as_str(), "{p}");
    assert_eq!(p["gate_backup_id"], gate.as_str(), "{p}");
    assert_eq!(p["drift_check_id"], check.as_str(), "{p}");
    assert_eq!(
        f.audit_results().await,
        ["rejected", "rejected", "rejected", "accepted"]
    );
}

#[tokio::test]
async fn both_gates_failing_reports_the_drift_gate_and_nothing_overrides() {
    let f = fixture().await;
    f.drift_check("drifted", "content-protect", 1).await;
    assert_error(f.promote_to_prod().await, 409, "drift_gate_failed").await;
    // No body field, query or header bypasses a gate.
    let r = f
        .promote(json!({"target_environment_id": f.prod, "override": true}))
        .await;
    assert_error(r, 400, "bad_request").await;
    let r = f
        .app
        .client
        .post(f.app.url(&format!(
            "/api/environments/{}/promote?force=true",
            f.staging
        )))
        .json(&json!({"target_environment_id": f.prod}))
        .send()
        .await
        .unwrap();
    assert_error(r, 409, "drift_gate_failed").await;
    assert_eq!(f.app.count("jobs").await, 0);
}

#[tokio::test]
async fn promote_requires_a_session() {
    let f = fixture().await;
    let anonymous = client();
    let r = anonymous
        .post(
            f.app
                .url(&format!("/api/environments/{}/promote", f.staging)),
        )
        .json(&json!({"target_environment_id": f.prod}))
        .send()
        .await
        .unwrap();
    assert_error(r, 401, "unauthorized").await;
}

#[tokio::test]
async fn the_promotion_page_shows_each_gate_and_keeps_promote_disabled_until_both_pass() {
    let f = fixture().await;
    let page_path = format!("/environments/{}/promote", f.staging);
    // Linked from the staging page, not from production's.
    let staging_page = f.app.text(&format!("/environments/{}", f.staging)).await;
    assert!(staging_page.contains(&page_path), "Promote link on staging");
    let prod_page = f.app.text(&format!("/environments/{}", f.prod)).await;
    assert!(!prod_page.contains("data-test=\"promote-link\""));
    assert_eq!(
        f.app
            .get(&format!("/environments/{}/promote", f.prod))
            .await
            .status(),
        404
    );

    // Drifted and no backup: both reasons in words, Promote disabled, backup button offered.
    f.drift_check("drifted", "content-protect", 1).await;
    let html = f.app.text(&page_path).await;
    assert!(html.contains("data-test=\"drift-blocking\""), "{html}");
    assert!(html.contains("Production has changed"));
    assert!(html.contains("data-test=\"backup-blocking\""));
    assert!(html.contains("Create production backup now"));
    assert!(
        html.contains("data-test=\"promote-submit\" disabled"),
        "{html}"
    );

    // A forged post (the button was disabled) is refused inline by the server's gate.
    let forms = CsrfForms::new(&f.app, &f.app.client, &html);
    let r = forms.post(&page_path, &[("acknowledge", "yes")]).await;
    assert_eq!(r.status(), 409);
    let body = r.text().await.unwrap();
    assert!(body.contains("data-test=\"promote-refusal\""), "{body}");
    assert!(
        body.contains("Not promoted: Production has changed"),
        "{body}"
    );

    // Both gates pass: enabled; without the acknowledgement it is still refused.
    f.drift_check("clean", "content-protect", 1).await;
    f.backup("full", "completed", 3).await;
    let html = f.app.text(&page_path).await;
    assert!(html.contains("data-test=\"drift-passes\""), "{html}");
    assert!(html.contains("data-test=\"backup-passes\""), "{html}");
    assert!(
        !html.contains("data-test=\"promote-submit\" disabled"),
        "{html}"
    );
    let r = forms.post(&page_path, &[]).await;
    assert_eq!(r.status(), 400);
    assert!(r.text().await.unwrap().contains("Tick the acknowledgement"));
    assert_eq!(f.app.count("jobs").await, 0);
    let r = forms.post(&page_path, &[("acknowledge", "yes")]).await;
    assert!(
        r.status().is_redirection() || r.status() == 200,
        "{}",
        r.status()
    );
    let (n,): (i64,) = pressluft::store::query_as(
        "SELECT COUNT(*) FROM jobs WHERE job_type = 'env_promote' AND environment_id = ?",
    )
    .bind(&f.prod)
    .fetch_one(f.app.store.pool())
    .await
    .unwrap();
    assert_eq!(n, 1);
    // The live fragment shows the promotion running and disables the button.
    let fragment = f.app.text(&format!("{page_path}/status")).await;
    assert!(fragment.contains("Promotion running"), "{fragment}");
    assert!(fragment.contains("data-test=\"promote-submit\" disabled"));
}
