//! Drift checks through the API (api.md: `POST /api/environments/{id}/drift-check`,
//! `GET /api/drift-checks/{id}`), with the stand-in runner: production and an environment
//! without a baseline are refused (409, audited `rejected`), unknown ids are 404, and a check
//! records the row, the environment's drift fields and the differences computed from the
//! stored baseline — for the environment's preset only.

use serde_json::{json, Value};

use crate::helpers::*;
use crate::stand_in::{StandIn, Step};

fn table(rows: u64, checksum: &str) -> Value {
    json!({"rows": rows, "checksum": checksum})
}

/// Production's checksums at clone time (the union of both presets, as env-create records).
fn baseline() -> Value {
    let mut tables = serde_json::Map::new();
    for t in [
        "posts",
        "postmeta",
        "terms",
        "term_taxonomy",
        "term_relationships",
        "comments",
        "commentmeta",
        "woocommerce_orders",
        "woocommerce_order_items",
        "woocommerce_order_itemmeta",
        "wc_customer_lookup",
        "wc_order_stats",
        "wc_orders_meta",
        "wc_order_addresses",
        "wc_order_operational_data",
        "users",
        "usermeta",
    ] {
        tables.insert(format!("wp_{t}"), table(3, "100"));
    }
    tables.insert("wp_wc_orders".into(), Value::Null);
    tables.insert("wp_woocommerce_orders".into(), Value::Null);
    json!({"tables": tables, "paths": {"wp-content/uploads": "sha256:aa"}})
}

/// What the node reports now: the baseline with `changes` applied.
fn now(changes: &[(&str, Value)], uploads: &str) -> Value {
    let mut b = baseline();
    for (name, v) in changes {
        b["tables"][*name] = v.clone();
    }
    b["paths"]["wp-content/uploads"] = json!(uploads);
    b["table_prefix"] = json!("wp_");
    b
}

/// An app whose site has production and a staging environment (preset `preset`) cloned with
/// [`baseline`]; returns (app, runner, site, production, staging).
async fn app_with_clone(
    preset: &str,
) -> (TestApp, std::sync::Arc<StandIn>, String, String, String) {
    let env_create = json!({"release_path": "/x", "table_prefix": "wp_",
        "drift_baseline": baseline()});
    let (app, runner, prod, _) = StandIn::new()
        .then("env_create", Step::ok(env_create))
        .spawn_with_site()
        .await;
    let (_, p) = app.get_json(&format!("/api/environments/{prod}")).await;
    let site = p["site_id"].as_str().unwrap().to_string();
    let body = json!({"name": "Staging", "slug": "staging", "environment_type": "staging",
                      "promotion_preset": preset});
    let create = post_job(&app, &format!("/api/sites/{site}/environments"), body).await;
    app.state.engine.run_until_idle("w").await.unwrap();
    let job = app.job(&create).await;
    assert_eq!(job["status"], "succeeded", "{job}");
    let staging = job["environment_id"].as_str().unwrap().to_string();
    (app, runner, site, prod, staging)
}

async fn run_check(app: &TestApp, runner: &StandIn, env: &str, report: Value) -> (Value, Value) {
    runner.push("drift_check", Step::ok(report));
    let r = app
        .post_json(&format!("/api/environments/{env}/drift-check"), json!({}))
        .await;
    assert_eq!(r.status(), 202);
    let job = job_id(r).await;
    app.state.engine.run_until_idle("w").await.unwrap();
    let job = app.job(&job).await;
    assert_eq!(job["status"], "succeeded", "{job}");
    let (_, env) = app.get_json(&format!("/api/environments/{env}")).await;
    let id = env["last_drift_check_id"]
        .as_str()
        .expect("a check id")
        .to_string();
    let (status, check) = app.get_json(&format!("/api/drift-checks/{id}")).await;
    assert_eq!(status, 200, "{check}");
    (env, check)
}

#[tokio::test]
async fn a_check_records_the_differences_of_the_preset_from_the_baseline() {
    let (app, runner, _, prod, staging) = app_with_clone("commerce-protect").await;
    let (_, env) = app.get_json(&format!("/api/environments/{staging}")).await;
    assert_eq!(
        env["drift_status"], "unknown",
        "the baseline alone is no check"
    );
    assert!(env["last_drift_check_id"].is_null(), "{env}");

    // Production unchanged: clean, no differences.
    let (env, check) = run_check(&app, &runner, &staging, now(&[], "sha256:aa")).await;
    assert_eq!(env["drift_status"], "clean");
    assert!(env["drift_checked_at"].is_string());
    assert_eq!(check["status"], "clean");
    assert_eq!(check["is_baseline"], false);
    assert_eq!(check["promotion_preset"], "commerce-protect");
    assert_eq!(check["environment_id"], staging.as_str());
    assert_eq!(check["differences"], json!([]));
    let keys: Vec<&String> = check.as_object().unwrap().keys().collect();
    assert_eq!(
        keys,
        [
            "checked_at",
            "differences",
            "environment_id",
            "id",
            "is_baseline",
            "promotion_preset",
            "status"
        ]
    );

    // An HPOS order table created with a row, a post added, an upload added.
    let report = now(
        &[
            ("wp_wc_orders", table(1, "555")),
            ("wp_posts", table(4, "101")),
        ],
        "sha256:bb",
    );
    let (env, check) = run_check(&app, &runner, &staging, report).await;
    assert_eq!(env["drift_status"], "drifted");
    assert_eq!(check["status"], "drifted");
    assert_eq!(
        check["differences"],
        json!([
            {"kind": "table", "name": "wp_posts", "baseline": table(3, "100"), "current": table(4, "101")},
            {"kind": "table", "name": "wp_wc_orders", "baseline": null, "current": table(1, "555")},
            {"kind": "path", "name": "wp-content/uploads", "baseline": "sha256:aa", "current": "sha256:bb"},
        ])
    );
    // The job belongs to staging and names production and the baseline.
    let (_, job) = app
        .get_json(&format!("/api/jobs/{}", run_job_id(&app, &staging).await))
        .await;
    assert_eq!(job["job_type"], "drift_check");
    assert_eq!(job["environment_id"], staging.as_str());
    let payload = crate::deploys_api::payload(&app, job["id"].as_str().unwrap()).await;
    assert_eq!(payload["production_environment_id"], prod.as_str());
    assert!(payload["baseline_drift_check_id"].is_string());
    assert_eq!(payload["promotion_preset"], "commerce-protect");

    // The audit row of the request, finished with its job.
    let audit: Vec<(String, String)> = pressluft::store::query_as(
        "SELECT action, result FROM audit_logs WHERE action = 'drift_check' ORDER BY created_at",
    )
    .fetch_all(app.store.pool())
    .await
    .unwrap();
    assert_eq!(audit.len(), 2);
    assert!(audit.iter().all(|(_, r)| r == "succeeded"), "{audit:?}");

    // The baseline row reads back with no differences.
    let (id,): (String,) = pressluft::store::query_as(
        "SELECT id FROM drift_checks WHERE environment_id = ? AND is_baseline = 1",
    )
    .bind(&staging)
    .fetch_one(app.store.pool())
    .await
    .unwrap();
    let (_, b) = app.get_json(&format!("/api/drift-checks/{id}")).await;
    assert_eq!(b["is_baseline"], true);
    assert_eq!(b["status"], "clean");
    assert_eq!(b["differences"], json!([]));
}

/// The newest drift_check job of `env`.
async fn run_job_id(app: &TestApp, env: &str) -> String {
    let (id,): (String,) = pressluft::store::query_as(
        "SELECT id FROM jobs WHERE job_type = 'drift_check' AND environment_id = ?
         ORDER BY created_at DESC, rowid DESC LIMIT 1",
    )
    .bind(env)
    .fetch_one(app.store.pool())
    .await
    .unwrap();
    id
}

#[tokio::test]
async fn content_protect_ignores_order_and_account_tables() {
    let (app, runner, _, _, staging) = app_with_clone("content-protect").await;
    // Orders and customers changed, content did not: content-protect does not protect them.
    let report = now(
        &[
            ("wp_wc_orders", table(1, "555")),
            ("wp_users", table(9, "9")),
        ],
        "sha256:aa",
    );
    let (env, check) = run_check(&app, &runner, &staging, report).await;
    assert_eq!(env["drift_status"], "clean", "{check}");
    assert_eq!(check["promotion_preset"], "content-protect");
    assert_eq!(check["differences"], json!([]));
    // A comment deleted is drift.
    let report = now(&[("wp_comments", table(2, "7"))], "sha256:aa");
    let (env, check) = run_check(&app, &runner, &staging, report).await;
    assert_eq!(env["drift_status"], "drifted");
    assert_eq!(
        check["differences"],
        json!([{"kind": "table", "name": "wp_comments", "baseline": table(3, "100"),
                "current": table(2, "7")}])
    );
    // Stored rows hold only the preset's tables.
    let (tables,): (String,) =
        pressluft::store::query_as("SELECT db_checksums_json FROM drift_checks WHERE id = ?")
            .bind(check["id"].as_str().unwrap())
            .fetch_one(app.store.pool())
            .await
            .unwrap();
    let tables: Value = serde_json::from_str(&tables).unwrap();
    assert_eq!(tables.as_object().unwrap().len(), 7, "{tables}");
}

#[tokio::test]
async fn production_and_environments_without_a_baseline_are_refused() {
    let (app, _runner, site, prod, staging) = app_with_clone("content-protect").await;
    let r = app
        .post_json(&format!("/api/environments/{prod}/drift-check"), json!({}))
        .await;
    let body = assert_error(r, 409, "conflict").await;
    assert!(
        body["message"].as_str().unwrap().contains("production"),
        "{body}"
    );

    // An environment whose baseline is missing (not cloned by Pressluft).
    let node: (String,) =
        pressluft::store::query_as("SELECT node_id FROM environments WHERE id = ?")
            .bind(&staging)
            .fetch_one(app.store.pool())
            .await
            .unwrap();
    let bare = app.insert_environment(&site, &node.0, "Bare").await;
    app.exec(
        "UPDATE environments SET environment_type = 'clone' WHERE id = ?",
        &[&bare],
    )
    .await;
    let r = app
        .post_json(&format!("/api/environments/{bare}/drift-check"), json!({}))
        .await;
    let body = assert_error(r, 409, "conflict").await;
    assert!(
        body["message"].as_str().unwrap().contains("baseline"),
        "{body}"
    );

    let rejected: (i64,) = pressluft::store::query_as(
        "SELECT COUNT(*) FROM audit_logs WHERE action = 'drift_check' AND result = 'rejected'",
    )
    .fetch_one(app.store.pool())
    .await
    .unwrap();
    assert_eq!(rejected.0, 2);
    assert_eq!(app.count("drift_checks WHERE is_baseline = 0").await, 0);

    // A failed environment is refused by "env ok".
    app.exec(
        "UPDATE environments SET status = 'failed' WHERE id = ?",
        &[&staging],
    )
    .await;
    let r = app
        .post_json(
            &format!("/api/environments/{staging}/drift-check"),
            json!({}),
        )
        .await;
    assert_error(r, 409, "conflict").await;
}

#[tokio::test]
async fn unknown_ids_are_404_and_anonymous_requests_401() {
    let (app, _runner, _, _, staging) = app_with_clone("content-protect").await;
    let unknown = uuid::Uuid::new_v4();
    let r = app
        .post_json(
            &format!("/api/environments/{unknown}/drift-check"),
            json!({}),
        )
        .await;
    assert_error(r, 404, "not_found").await;
    let r = app.get(&format!("/api/drift-checks/{unknown}")).await;
    assert_error(r, 404, "not_found").await;
    let anon = client();
    let r = anon
        .get(app.url(&format!("/api/drift-checks/{unknown}")))
        .send()
        .await
        .unwrap();
    assert_error(r, 401, "unauthorized").await;
    let r = anon
        .post(app.url(&format!("/api/environments/{staging}/drift-check")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
}

#[tokio::test]
async fn the_drift_panel_runs_a_check_and_lists_the_differences() {
    let (app, runner, _, prod, staging) = app_with_clone("commerce-protect").await;
    // Production's page has no Drift section; staging's loads the panel.
    let page = app.text(&format!("/environments/{prod}")).await;
    assert!(!page.contains("/drift\""), "no drift panel on production");
    let page = app.text(&format!("/environments/{staging}")).await;
    assert!(
        page.contains(&format!("hx-get=\"/environments/{staging}/drift\"")),
        "the page loads the Drift panel"
    );
    let token = csrf_field(&page);
    let panel = app.text(&format!("/environments/{staging}/drift")).await;
    assert!(
        panel.contains("data-test=\"drift-status\">unknown<"),
        "{panel}"
    );
    assert!(panel.contains("never checked"), "{panel}");
    assert!(panel.contains("commerce-protect"), "{panel}");

    // "Run drift check" with htmx: the panel comes back with the job queued.
    let report = now(&[("wp_wc_orders", table(1, "555"))], "sha256:bb");
    runner.push("drift_check", Step::ok(report));
    let r = app
        .client
        .post(app.url(&format!("/environments/{staging}/drift-check")))
        .header("HX-Request", "true")
        .form(&[("csrf_token", token.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let panel = r.text().await.unwrap();
    assert!(panel.contains("data-status=\"queued\""), "{panel}");
    app.state.engine.run_until_idle("w").await.unwrap();
    let panel = app.text(&format!("/environments/{staging}/drift")).await;
    assert!(
        panel.contains("data-test=\"drift-status\">drifted<"),
        "{panel}"
    );
    assert!(panel.contains("create a fresh clone"), "{panel}");
    assert!(
        panel.contains("data-name=\"wp_wc_orders\"") && panel.contains("absent → 1 row"),
        "{panel}"
    );
    assert!(
        panel.contains("data-name=\"wp-content/uploads\"")
            && panel.contains("listing digest changed"),
        "{panel}"
    );
    // The check's own page.
    let (_, env) = app.get_json(&format!("/api/environments/{staging}")).await;
    let id = env["last_drift_check_id"].as_str().unwrap();
    let page = app.text(&format!("/drift-checks/{id}")).await;
    assert!(page.contains("data-name=\"wp_wc_orders\""), "{page}");
    assert!(page.contains("create a fresh clone"), "{page}");

    // Refused on production: the sentence in the panel, nothing enqueued.
    let jobs = app.count("jobs").await;
    let r = app
        .client
        .post(app.url(&format!("/environments/{prod}/drift-check")))
        .header("HX-Request", "true")
        .form(&[("csrf_token", token.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let panel = r.text().await.unwrap();
    assert!(panel.contains("data-test=\"drift-error\""), "{panel}");
    assert_eq!(app.count("jobs").await, jobs);
    // Without the token: refused.
    let r = app
        .client
        .post(app.url(&format!("/environments/{staging}/drift-check")))
        .header("HX-Request", "true")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
}
