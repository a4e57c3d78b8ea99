//! Safe updates through the API with the stand-in runner (issue 16): the site's settings
//! (`PATCH /api/sites/{id}`, validated naming the field, audited), runs (`no_updates` without
//! an environment, `applied` with production's `env_update` of the exact versions, `held` with
//! the reasons, `failed` with the temporary environment removed or left visible), the
//! person's decision (approve only when held, dismiss), the images endpoint (only a run's own
//! `<i>-(before|after|diff).png`, never through `../` or a link), 404s, conflicts, audit rows
//! and the schedule (once per window, never while a run is held). The real node and browser
//! work is tests/api/e2e_safe_updates.rs.

use std::sync::Arc;

use pressluft::clock::Clock;
use pressluft::jobs::scheduler::Scheduler;
use pressluft::jobs::{JobErrorCode, RunOutcome};
use serde_json::{json, Value};
use time::Duration;

use crate::helpers::{assert_error, assert_field_error, job_id, TestApp};
use crate::stand_in::{StandIn, Step};

async fn site_of(app: &TestApp, env: &str) -> String {
    let (_, e) = app.get_json(&format!("/api/environments/{env}")).await;
    e["site_id"].as_str().unwrap().to_string()
}

async fn patch_site(app: &TestApp, site: &str, body: Value) -> reqwest::Response {
    app.client
        .patch(app.url(&format!("/api/sites/{site}")))
        .json(&body)
        .send()
        .await
        .unwrap()
}

async fn audit_results(app: &TestApp, action: &str) -> Vec<String> {
    let rows: Vec<(String,)> = pressluft::store::query_as(
        "SELECT result FROM audit_logs WHERE action = ? ORDER BY created_at, id",
    )
    .bind(action)
    .fetch_all(app.store.pool())
    .await
    .unwrap();
    rows.into_iter().map(|(r,)| r).collect()
}

/// What `update-check` reports: the fixture plugin 1.0 → `to`.
fn offered(to: &str) -> Value {
    json!({"core": null, "themes": [], "plugins": [{"name": "Fixture",
        "id": "pressluft-fixture/pressluft-fixture.php", "current_version": "1.0",
        "new_version": to}]})
}

/// A playbook result: two pages, the home page changed `home_pct` % after the update.
fn checked(to: &str, home_pct: f64, fatals: Value) -> Value {
    json!({
        "outcome": "checked",
        "updates": offered(to),
        "pages": ["/", "/about/"],
        "threshold_percent": 0.5,
        "before": {"pages": [
            {"path": "/", "status": 200, "console_errors": [], "error": null},
            {"path": "/about/", "status": 200, "console_errors": [], "error": null}]},
        "after": {"pages": [
            {"path": "/", "status": 200, "console_errors": [], "changed_percent": home_pct,
             "passed": home_pct <= 0.5, "error": null,
             "changed_box": if home_pct > 0.0 { json!({"x": 0, "y": 0, "width": 1280, "height": 120}) } else { Value::Null }},
            {"path": "/about/", "status": 200, "console_errors": [], "changed_percent": 0.0,
             "passed": true, "changed_box": null, "error": null}]},
        "fatals": {"fatals": fatals},
        "removed": true,
    })
}

async fn start(app: &TestApp, site: &str) -> (String, String) {
    let r = app
        .post_empty(&format!("/api/sites/{site}/safe-updates"))
        .await;
    assert_eq!(r.status(), 202);
    let body: Value = r.json().await.unwrap();
    (
        body["job_id"].as_str().unwrap().to_string(),
        body["run_id"].as_str().unwrap().to_string(),
    )
}

async fn run(app: &TestApp, id: &str) -> Value {
    let (status, run) = app.get_json(&format!("/api/safe-updates/{id}")).await;
    assert_eq!(status, 200, "{run}");
    run
}

#[tokio::test]
async fn site_settings_are_validated_naming_the_field_and_audited() {
    let (app, _runner, env, _) = StandIn::new()
        .otherwise(Step::Plausible)
        .spawn_with_site()
        .await;
    let site = site_of(&app, &env).await;
    let (_, s) = app.get_json(&format!("/api/sites/{site}")).await;
    assert_eq!(s["safe_updates_schedule"], "off");
    assert_eq!(s["safe_updates_window"], Value::Null);
    assert_eq!(s["safe_updates_paths"], json!([]));
    assert_eq!(s["safe_updates_threshold"], 0.5);
    assert_eq!(s["safe_updates_masks"], json!({}));
    let mask = json!({"x": 0, "y": 0, "width": 10, "height": 10});
    let bad = [
        (
            "safe_updates_schedule",
            json!({"safe_updates_schedule": "hourly"}),
        ),
        (
            "safe_updates_window",
            json!({"safe_updates_window": "25:00-01:00"}),
        ),
        (
            "safe_updates_window",
            json!({"safe_updates_window": "02:00-02:00"}),
        ),
        (
            "safe_updates_window",
            json!({"safe_updates_window": "2:00-3:00"}),
        ),
        (
            "safe_updates_paths",
            json!({"safe_updates_paths": ["//evil.example/"]}),
        ),
        (
            "safe_updates_paths",
            json!({"safe_updates_paths": ["/a/../../etc/passwd"]}),
        ),
        (
            "safe_updates_paths",
            json!({"safe_updates_paths": ["/a\\b"]}),
        ),
        (
            "safe_updates_paths",
            json!({"safe_updates_paths": ["https://evil.example/"]}),
        ),
        (
            "safe_updates_paths",
            json!({"safe_updates_paths": ["/a\nb"]}),
        ),
        (
            "safe_updates_paths",
            json!({"safe_updates_paths": [format!("/{}", "x".repeat(200))]}),
        ),
        (
            "safe_updates_paths",
            json!({"safe_updates_paths": (0..11).map(|i| format!("/p{i}/")).collect::<Vec<_>>()}),
        ),
        ("safe_updates_paths", json!({"safe_updates_paths": "/"})),
        (
            "safe_updates_threshold",
            json!({"safe_updates_threshold": 100.5}),
        ),
        (
            "safe_updates_threshold",
            json!({"safe_updates_threshold": -1}),
        ),
        (
            "safe_updates_threshold",
            json!({"safe_updates_threshold": "0.5"}),
        ),
        (
            "safe_updates_masks",
            json!({"safe_updates_masks": {"/not-listed/": [mask]}}),
        ),
        (
            "safe_updates_masks",
            json!({"safe_updates_masks": {"/": [{"x": 0, "y": 0, "width": 0, "height": 1}]}}),
        ),
        (
            "safe_updates_masks",
            json!({"safe_updates_masks": {"/": [{"x": 10001, "y": 0, "width": 1, "height": 1}]}}),
        ),
        (
            "safe_updates_masks",
            json!({"safe_updates_masks": {"/": [{"x": 1.5, "y": 0, "width": 1, "height": 1}]}}),
        ),
        (
            "safe_updates_masks",
            json!({"safe_updates_masks": {"/": vec![mask.clone(); 21]}}),
        ),
        (
            "drill_schedule",
            json!({"drill_schedule": "daily", "safe_updates_schedule": "daily"}),
        ),
    ];
    for (field, body) in bad {
        let r = patch_site(&app, &site, body.clone()).await;
        let e = assert_field_error(r, 400, "bad_request", field).await;
        assert!(
            !e["message"].as_str().unwrap().contains("evil.example/etc"),
            "{e}"
        );
    }
    // Nothing changed by the refusals.
    let (_, s) = app.get_json(&format!("/api/sites/{site}")).await;
    assert_eq!(s["safe_updates_schedule"], "off");
    assert_eq!(s["drill_schedule"], "off");
    // No field, an unknown field: 400.
    assert_error(patch_site(&app, &site, json!({})).await, 400, "bad_request").await;
    let r = patch_site(
        &app,
        &site,
        json!({"safe_updates_schedule": "daily", "x": 1}),
    )
    .await;
    assert_error(r, 400, "bad_request").await;
    let unknown = uuid::Uuid::new_v4().to_string();
    let r = patch_site(&app, &unknown, json!({"safe_updates_schedule": "daily"})).await;
    assert_error(r, 404, "not_found").await;

    let good = json!({
        "safe_updates_schedule": "daily",
        "safe_updates_window": "22:30-01:00",
        "safe_updates_paths": ["/", "/about/", "/shop/?page=2"],
        "safe_updates_threshold": 1.25,
        "safe_updates_masks": {"/about/": [{"x": 0, "y": 300, "width": 1280, "height": 200}]},
    });
    let r = patch_site(&app, &site, good.clone()).await;
    assert_eq!(r.status(), 200);
    let s: Value = r.json().await.unwrap();
    for key in good.as_object().unwrap().keys() {
        assert_eq!(s[key], good[key], "{key}: {s}");
    }
    assert_eq!(s["drill_schedule"], "off", "other settings untouched");
    // Dropping a path drops its masks; `null` clears the window; the drill schedule alone.
    let r = patch_site(
        &app,
        &site,
        json!({"safe_updates_paths": ["/"], "safe_updates_window": null}),
    )
    .await;
    let s: Value = r.json().await.unwrap();
    assert_eq!(s["safe_updates_masks"], json!({}));
    assert_eq!(s["safe_updates_window"], Value::Null);
    assert_eq!(s["safe_updates_threshold"], 1.25);
    let r = patch_site(&app, &site, json!({"drill_schedule": "weekly"})).await;
    let s: Value = r.json().await.unwrap();
    assert_eq!(s["drill_schedule"], "weekly");
    assert_eq!(s["safe_updates_schedule"], "daily");
    assert_eq!(
        audit_results(&app, "site_update").await,
        ["succeeded", "succeeded", "succeeded"],
        "one audit row per accepted change, none for invalid input"
    );
}

/// A site whose safe-update runs find nothing offered.
async fn nothing_to_update() -> (TestApp, Arc<StandIn>, String, String) {
    StandIn::new()
        .then(
            "safe_update",
            Step::ok(json!({"outcome": "no_updates",
            "updates": {"core": null, "plugins": [], "themes": []}})),
        )
        .otherwise(Step::Plausible)
        .spawn_with_site()
        .await
}

#[tokio::test]
async fn nothing_offered_ends_no_updates_without_an_environment() {
    let (app, _runner, env, _) = nothing_to_update().await;
    let site = site_of(&app, &env).await;
    let envs_before = app.count("environments").await;
    let (job, id) = start(&app, &site).await;
    let (_, listed) = app
        .get_json(&format!("/api/sites/{site}/safe-updates"))
        .await;
    assert_eq!(listed["items"][0]["outcome"], "running");
    assert_eq!(listed["items"][0]["trigger"], "manual");
    app.state.engine.run_until_idle("w").await.unwrap();
    assert_eq!(app.job(&job).await["status"], "succeeded");
    let r = run(&app, &id).await;
    assert_eq!(r["outcome"], "no_updates", "{r}");
    assert_eq!(r["temp_environment_id"], Value::Null);
    assert_eq!(r["updates"], json!([]));
    assert!(r["finished_at"].is_string());
    assert_eq!(
        app.count("environments").await,
        envs_before,
        "no environment row"
    );
    assert_eq!(audit_results(&app, "safe_update").await, ["succeeded"]);
    let (_, j) = app.get_json(&format!("/api/jobs/{job}")).await;
    assert_eq!(j["environment_id"], env.as_str(), "the job is production's");
}

#[tokio::test]
async fn passed_pages_apply_the_exact_versions_to_production() {
    let (app, _runner, env, _) = StandIn::new()
        .then("safe_update", Step::ok(checked("1.1", 0.1, json!([]))))
        .otherwise(Step::Plausible)
        .spawn_with_site()
        .await;
    let site = site_of(&app, &env).await;
    let (job, id) = start(&app, &site).await;
    app.state.engine.run_until_idle("w").await.unwrap();
    assert_eq!(app.job(&job).await["status"], "succeeded");
    let r = run(&app, &id).await;
    assert_eq!(r["outcome"], "applied", "{r}");
    assert_eq!(
        r["updates"],
        json!([{"kind": "plugin",
        "id": "pressluft-fixture/pressluft-fixture.php", "from": "1.0", "to": "1.1"}])
    );
    assert_eq!(r["pages"][0]["passed"], true);
    assert_eq!(
        r["pages"][0]["images"]["diff"],
        format!("/api/safe-updates/{id}/images/0-diff.png")
    );
    let temp = r["temp_environment_id"].as_str().unwrap();
    let (_, e) = app.get_json(&format!("/api/environments/{temp}")).await;
    assert_eq!(e["status"], "deleted", "{e}");
    assert_eq!(e["environment_type"], "clone");
    assert!(e["slug"].as_str().unwrap().starts_with("safe-update-"));
    // The temporary environment's secrets are gone with the run.
    assert!(app
        .state
        .secrets
        .get(&pressluft::sites::db_password_key(temp))
        .unwrap()
        .is_none());
    // Production's env_update with the versions tried, and its pre-update backup.
    let apply = r["apply_job_id"].as_str().unwrap();
    let j = app.job(apply).await;
    assert_eq!(j["job_type"], "env_update");
    assert_eq!(j["status"], "succeeded", "{j}");
    assert_eq!(j["environment_id"], env.as_str());
    let (payload,): (String,) =
        pressluft::store::query_as("SELECT payload_json FROM jobs WHERE id = ?")
            .bind(apply)
            .fetch_one(app.store.pool())
            .await
            .unwrap();
    let payload: Value = serde_json::from_str(&payload).unwrap();
    assert_eq!(
        payload["versions"],
        json!([{"kind": "plugin",
        "id": "pressluft-fixture/pressluft-fixture.php", "version": "1.1"}])
    );
    let backup = payload["pre_backup_id"].as_str().unwrap();
    let (_, b) = app.get_json(&format!("/api/backups/{backup}")).await;
    assert_eq!(b["environment_id"], env.as_str());
    assert_eq!(b["status"], "completed", "{b}");
    // The run page shows how the update ended on production: its job and its health gate.
    let (gate,): (String,) = pressluft::store::query_as(
        "SELECT id FROM jobs WHERE parent_job_id = ? AND job_type = 'health_check'",
    )
    .bind(apply)
    .fetch_one(app.store.pool())
    .await
    .unwrap();
    let page = app.text(&format!("/safe-updates/{id}")).await;
    for (test, job) in [
        ("safe-update-apply-job", apply),
        ("safe-update-apply-gate", &gate),
    ] {
        assert!(
            page.contains(&format!(
                "data-test=\"{test}\" data-job-id=\"{job}\" data-job-status=\"succeeded\""
            )),
            "{test}: {page}"
        );
    }
    assert!(page.contains("Production health check"));
    assert!(!page.contains("safe-update-apply-rollback"), "no rollback");
    // Nothing left to decide.
    let r = app
        .post_empty(&format!("/api/safe-updates/{id}/approve"))
        .await;
    assert_error(r, 409, "conflict").await;
}

#[tokio::test]
async fn a_held_run_is_approved_only_once_and_blocks_new_runs_until_decided() {
    let (app, _runner, env, _) = StandIn::new()
        .then("safe_update", Step::ok(checked("1.2", 12.34, json!([]))))
        .then(
            "safe_update",
            Step::ok(checked(
                "2.0",
                0.0,
                json!(["PHP Fatal error:  Uncaught Error: boom in /x/fixture.php:12"]),
            )),
        )
        .otherwise(Step::Plausible)
        .spawn_with_site()
        .await;
    let site = site_of(&app, &env).await;
    let (job, id) = start(&app, &site).await;
    // Queued: a second run is refused.
    let r = app
        .post_empty(&format!("/api/sites/{site}/safe-updates"))
        .await;
    assert_error(r, 409, "conflict").await;
    // Not held yet: no approve, no dismiss.
    assert_error(
        app.post_empty(&format!("/api/safe-updates/{id}/approve"))
            .await,
        409,
        "conflict",
    )
    .await;
    assert_error(
        app.post_empty(&format!("/api/safe-updates/{id}/dismiss"))
            .await,
        409,
        "conflict",
    )
    .await;
    app.state.engine.run_until_idle("w").await.unwrap();
    assert_eq!(
        app.job(&job).await["status"],
        "succeeded",
        "a held run's job succeeds"
    );
    let r = run(&app, &id).await;
    assert_eq!(r["outcome"], "held", "{r}");
    assert_eq!(r["apply_job_id"], Value::Null);
    assert_eq!(r["pages"][0]["passed"], false);
    assert_eq!(
        r["pages"][0]["reasons"],
        json!(["header changed 12.3 % > 0.50 %"])
    );
    assert_eq!(
        r["pages"][0]["changed_box"],
        json!({"x": 0, "y": 0, "width": 1280, "height": 120})
    );
    assert_eq!(r["pages"][1]["passed"], true);
    assert!(
        r["reason"].as_str().unwrap().contains("header changed"),
        "{r}"
    );
    let temp = r["temp_environment_id"].as_str().unwrap();
    let (_, e) = app.get_json(&format!("/api/environments/{temp}")).await;
    assert_eq!(e["status"], "deleted");
    let updates_before: i64 = app.count("jobs").await;
    // Held: a new run waits for the decision.
    let r = app
        .post_empty(&format!("/api/sites/{site}/safe-updates"))
        .await;
    let e = assert_error(r, 409, "conflict").await;
    assert!(e["message"].as_str().unwrap().contains("held"), "{e}");

    let r = app
        .post_empty(&format!("/api/safe-updates/{id}/approve"))
        .await;
    let apply = job_id(r).await;
    let r = run(&app, &id).await;
    assert_eq!(r["outcome"], "approved");
    assert_eq!(r["apply_job_id"], apply.as_str());
    assert!(r["decided_by"].is_string() && r["decided_at"].is_string());
    assert_eq!(app.count("jobs").await, updates_before + 1);
    app.state.engine.run_until_idle("w").await.unwrap();
    let j = app.job(&apply).await;
    assert_eq!(
        (j["job_type"].as_str(), j["status"].as_str()),
        (Some("env_update"), Some("succeeded")),
        "{j}"
    );
    let (payload,): (String,) =
        pressluft::store::query_as("SELECT payload_json FROM jobs WHERE id = ?")
            .bind(&apply)
            .fetch_one(app.store.pool())
            .await
            .unwrap();
    let payload: Value = serde_json::from_str(&payload).unwrap();
    assert_eq!(payload["versions"][0]["version"], "1.2");
    // Approved once: again → 409; dismissing an approved run → 409.
    assert_error(
        app.post_empty(&format!("/api/safe-updates/{id}/approve"))
            .await,
        409,
        "conflict",
    )
    .await;
    assert_error(
        app.post_empty(&format!("/api/safe-updates/{id}/dismiss"))
            .await,
        409,
        "conflict",
    )
    .await;

    // The fatal one: held naming the error; dismissed.
    app.clock.advance(Duration::minutes(1));
    let (_, id2) = start(&app, &site).await;
    app.state.engine.run_until_idle("w").await.unwrap();
    let r = run(&app, &id2).await;
    assert_eq!(r["outcome"], "held", "{r}");
    assert_eq!(
        r["fatals"],
        json!(["PHP Fatal error:  Uncaught Error: boom in /x/fixture.php:12"])
    );
    assert!(
        r["reason"]
            .as_str()
            .unwrap()
            .contains("Uncaught Error: boom"),
        "{r}"
    );
    let jobs_before = app.count("jobs").await;
    let r = app
        .post_empty(&format!("/api/safe-updates/{id2}/dismiss"))
        .await;
    assert_eq!(r.status(), 200);
    let d: Value = r.json().await.unwrap();
    assert_eq!(d["outcome"], "dismissed");
    assert_eq!(d["apply_job_id"], Value::Null);
    assert_eq!(
        app.count("jobs").await,
        jobs_before,
        "dismissing applies nothing"
    );
    assert_error(
        app.post_empty(&format!("/api/safe-updates/{id2}/approve"))
            .await,
        409,
        "conflict",
    )
    .await;

    // The listing, newest first; the audit trail.
    let (_, listed) = app
        .get_json(&format!("/api/sites/{site}/safe-updates"))
        .await;
    let outcomes: Vec<&str> = listed["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["outcome"].as_str().unwrap())
        .collect();
    assert_eq!(outcomes, ["dismissed", "approved"]);
    // (The still clock gives the rows one timestamp: compared as sorted lists.)
    let sorted = |mut v: Vec<String>| {
        v.sort();
        v
    };
    assert_eq!(
        sorted(audit_results(&app, "safe_update").await),
        ["rejected", "rejected", "succeeded", "succeeded"]
    );
    assert_eq!(
        sorted(audit_results(&app, "safe_update_approve").await),
        ["rejected", "rejected", "rejected", "succeeded"]
    );
    assert_eq!(
        sorted(audit_results(&app, "safe_update_dismiss").await),
        ["rejected", "rejected", "succeeded"]
    );
}

#[tokio::test]
async fn a_failed_run_is_failed_and_its_environment_removed_or_left_visible() {
    let removed = RunOutcome::Failed {
        code: JobErrorCode::AnsibleHostFailed,
        message: "env-update failed".into(),
        result: Some(json!({"removed": true})),
    };
    let lost = RunOutcome::Failed {
        code: JobErrorCode::AnsibleHostFailed,
        message: "env-delete failed".into(),
        result: None,
    };
    let (app, runner, env, _) = StandIn::new()
        .then("safe_update", Step::Answer(removed.clone()))
        .then("safe_update", Step::Answer(removed.clone()))
        .then("safe_update", Step::Answer(removed))
        .then("safe_update", Step::Answer(lost.clone()))
        .then("safe_update", Step::Answer(lost.clone()))
        .then("safe_update", Step::Answer(lost))
        .otherwise(Step::Plausible)
        .spawn_with_site()
        .await;
    let site = site_of(&app, &env).await;
    let (job, id) = start(&app, &site).await;
    for _ in 0..3 {
        app.clock.advance(Duration::minutes(10));
        app.state.engine.run_until_idle("w").await.unwrap();
    }
    assert_eq!(app.job(&job).await["status"], "failed");
    assert_eq!(runner.runs_of(&job), 3, "retried");
    let r = run(&app, &id).await;
    assert_eq!(r["outcome"], "failed", "{r}");
    assert!(
        r["reason"].as_str().unwrap().contains("env-update failed"),
        "{r}"
    );
    let temp = r["temp_environment_id"].as_str().unwrap().to_string();
    let (_, e) = app.get_json(&format!("/api/environments/{temp}")).await;
    assert_eq!(
        e["status"], "deleted",
        "one environment for every attempt, removed: {e}"
    );
    let (_, s) = app.get_json(&format!("/api/sites/{site}")).await;
    assert_eq!(s["status"], "active");

    let (job, id) = start(&app, &site).await;
    for _ in 0..3 {
        app.clock.advance(Duration::minutes(10));
        app.state.engine.run_until_idle("w").await.unwrap();
    }
    assert_eq!(app.job(&job).await["status"], "failed");
    let r = run(&app, &id).await;
    assert_eq!(r["outcome"], "failed");
    assert!(r["reason"].as_str().unwrap().contains("delete it"), "{r}");
    let temp = r["temp_environment_id"].as_str().unwrap();
    let (_, e) = app.get_json(&format!("/api/environments/{temp}")).await;
    assert_eq!(e["status"], "failed", "may still exist on the node: {e}");
}

#[tokio::test]
async fn unknown_sites_and_runs_are_404_and_requests_need_a_session() {
    let (app, _runner, env, _) = StandIn::new()
        .otherwise(Step::Plausible)
        .spawn_with_site()
        .await;
    let site = site_of(&app, &env).await;
    let missing = uuid::Uuid::new_v4().to_string();
    assert_error(
        app.post_empty(&format!("/api/sites/{missing}/safe-updates"))
            .await,
        404,
        "not_found",
    )
    .await;
    assert_error(
        app.get(&format!("/api/sites/{missing}/safe-updates")).await,
        404,
        "not_found",
    )
    .await;
    assert_error(
        app.get(&format!("/api/safe-updates/{missing}")).await,
        404,
        "not_found",
    )
    .await;
    assert_error(
        app.post_empty(&format!("/api/safe-updates/{missing}/approve"))
            .await,
        404,
        "not_found",
    )
    .await;
    assert_error(
        app.post_empty(&format!("/api/safe-updates/{missing}/dismiss"))
            .await,
        404,
        "not_found",
    )
    .await;
    assert_error(
        app.get(&format!("/api/safe-updates/{missing}/images/0-before.png"))
            .await,
        404,
        "not_found",
    )
    .await;
    let r = app.get("/api/safe-updates/not-a-uuid").await;
    assert_eq!(r.status(), 400);
    let (status, list) = app
        .get_json(&format!("/api/sites/{site}/safe-updates"))
        .await;
    assert_eq!((status, list), (200, json!({"items": []})));
    let anonymous = crate::helpers::client();
    let r = anonymous
        .post(app.url(&format!("/api/sites/{site}/safe-updates")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let r = anonymous
        .get(app.url(&format!("/api/sites/{site}/safe-updates")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
}

#[tokio::test]
async fn images_come_only_from_the_runs_own_directory_without_links() {
    let (app, _runner, env, _) = StandIn::new()
        .then("safe_update", Step::ok(checked("1.2", 5.0, json!([]))))
        .otherwise(Step::Plausible)
        .spawn_with_site()
        .await;
    let site = site_of(&app, &env).await;
    let (_, id) = start(&app, &site).await;
    let (_, other) = {
        app.state.engine.run_until_idle("w").await.unwrap();
        let r = app
            .post_empty(&format!("/api/safe-updates/{id}/dismiss"))
            .await;
        assert_eq!(r.status(), 200);
        start(&app, &site).await
    };
    app.state.engine.run_until_idle("w").await.unwrap();
    let data = app.state.config.data_dir.clone();
    let dir = app.state.safe_updates.run_dir(&id);
    std::fs::create_dir_all(&dir).unwrap();
    let png = b"\x89PNG\r\n\x1a\nnot-really".to_vec();
    std::fs::write(dir.join("0-before.png"), &png).unwrap();
    std::fs::write(data.join("secret.txt"), b"the database password").unwrap();
    std::os::unix::fs::symlink(data.join("secret.txt"), dir.join("1-before.png")).unwrap();
    std::fs::write(dir.join("notes.txt"), b"x").unwrap();
    // The other run's directory is a link to this one.
    std::os::unix::fs::symlink(&dir, app.state.safe_updates.run_dir(&other)).unwrap();

    let r = app
        .get(&format!("/api/safe-updates/{id}/images/0-before.png"))
        .await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "image/png");
    assert_eq!(r.bytes().await.unwrap().to_vec(), png);
    for file in [
        "1-before.png",    // a link to a file outside
        "0-after.png",     // not taken
        "notes.txt",       // not an image name
        "..%2Fsecret.txt", // leaves the directory
        "..%2F..%2Fpressluft.db",
        "%2E%2E%2Fsecret.txt",
        "0-before.png%00",
        "100-before.png",
    ] {
        let r = app
            .get(&format!("/api/safe-updates/{id}/images/{file}"))
            .await;
        assert_eq!(r.status(), 404, "{file}");
        let body = r.text().await.unwrap();
        assert!(!body.contains("database password"), "{file}: {body}");
    }
    let r = app
        .get(&format!("/api/safe-updates/{id}/images/../../sites"))
        .await;
    assert_ne!(r.status(), 200);
    // A run whose directory is a link: refused.
    let r = app
        .get(&format!("/api/safe-updates/{other}/images/0-before.png"))
        .await;
    assert_eq!(r.status(), 404);
    // Unauthenticated: 401.
    let r = crate::helpers::client()
        .get(app.url(&format!("/api/safe-updates/{id}/images/0-before.png")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
}

#[tokio::test]
async fn the_scheduler_runs_once_per_window_never_while_held_and_prunes_old_runs() {
    let (app, _runner, env, _) = StandIn::new()
        .then("safe_update", Step::ok(checked("1.2", 5.0, json!([]))))
        .otherwise(Step::Plausible)
        .spawn_with_site()
        .await;
    let site = site_of(&app, &env).await;
    let mut s = Scheduler::new(
        app.state.engine.clone(),
        app.state.backups.clone(),
        Arc::new(app.clock.clone()),
    )
    .with_safe_updates(app.state.safe_updates.clone());
    let runs = |app: &TestApp| {
        let pool = app.store.pool().clone();
        async move {
            let (n,): (i64,) = pressluft::store::query_as("SELECT COUNT(*) FROM safe_update_runs")
                .fetch_one(&pool)
                .await
                .unwrap();
            n
        }
    };
    app.exec(
        "INSERT INTO settings (key, value, updated_at) VALUES ('backup_schedule_hours', '0', ?)",
        &[&app.now()],
    )
    .await;
    s.tick().await;
    assert_eq!(runs(&app).await, 0, "off");
    // A one-hour window starting two hours from now (UTC).
    let now = app.clock.now();
    let start_h = (now.hour() + 2) % 24;
    let window = format!("{start_h:02}:00-{:02}:00", (start_h + 1) % 24);
    let r = patch_site(
        &app,
        &site,
        json!({"safe_updates_schedule": "daily", "safe_updates_window": window}),
    )
    .await;
    assert_eq!(r.status(), 200);
    s.tick().await;
    assert_eq!(runs(&app).await, 0, "outside the window");
    let into_window =
        Duration::hours(2) - Duration::minutes(i64::from(now.minute())) + Duration::minutes(5);
    app.clock.advance(into_window);
    s.tick().await;
    s.tick().await;
    assert_eq!(runs(&app).await, 1, "one run, not two");
    let (_, listed) = app
        .get_json(&format!("/api/sites/{site}/safe-updates"))
        .await;
    assert_eq!(listed["items"][0]["trigger"], "schedule");
    assert_eq!(
        audit_results(&app, "safe_update").await,
        Vec::<String>::new(),
        "scheduled: no audit"
    );
    app.state.engine.run_until_idle("w").await.unwrap();
    assert_eq!(listed["items"][0]["outcome"], "running");
    let held = run(&app, listed["items"][0]["id"].as_str().unwrap()).await;
    assert_eq!(held["outcome"], "held");
    // Next day's window: held, so no run.
    app.clock.advance(Duration::days(1));
    s.tick().await;
    assert_eq!(runs(&app).await, 1, "never while a run is held");
    // The prepared data key of the apply that did not happen is forgotten.
    let (backup_id,): (Option<String>,) =
        pressluft::store::query_as("SELECT apply_backup_id FROM safe_update_runs")
            .fetch_one(app.store.pool())
            .await
            .unwrap();
    assert_eq!(backup_id, None);
    let id = held["id"].as_str().unwrap().to_string();
    app.login().await;
    assert_eq!(
        app.post_empty(&format!("/api/safe-updates/{id}/dismiss"))
            .await
            .status(),
        200
    );
    s.tick().await;
    assert_eq!(runs(&app).await, 2, "decided: the next window runs again");
    app.state.engine.run_until_idle("w").await.unwrap();

    // Retention: 30 days by default; a run's images go with it; held runs stay.
    let dir = app.state.safe_updates.run_dir(&id);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("0-diff.png"), b"png").unwrap();
    app.clock.advance(Duration::days(31) + Duration::hours(1));
    s.tick().await;
    app.login().await;
    assert_eq!(
        app.get(&format!("/api/safe-updates/{id}")).await.status(),
        404
    );
    assert!(!dir.exists(), "images pruned with the run");
}

/// The retention of finished runs is a setting of the `wordpress` group
/// (`safe_updates_retention_days`, 1–3650, default 30), validated naming the field, and the
/// prune keeps to it.
#[tokio::test]
async fn the_retention_is_a_setting_and_the_prune_keeps_to_it() {
    let (app, _runner, env, _) = nothing_to_update().await;
    let (_, settings) = app.get_json("/_admin/settings").await;
    assert_eq!(settings["settings"]["safe_updates_retention_days"], "30");
    let put = |days: Value| {
        app.put_json(
            "/_admin/settings/wordpress",
            json!({"wordpress_source": "dir:/usr/share/wordpress", "safe_updates_retention_days": days}),
        )
    };
    for bad in [json!(0), json!("3651"), json!("7 days"), json!(1.5)] {
        assert_field_error(
            put(bad).await,
            400,
            "settings_invalid",
            "safe_updates_retention_days",
        )
        .await;
    }
    assert_eq!(app.setting("safe_updates_retention_days").await, None);
    assert_eq!(put(json!(7)).await.status(), 200);
    let (_, settings) = app.get_json("/_admin/settings").await;
    assert_eq!(settings["settings"]["safe_updates_retention_days"], "7");

    let site = site_of(&app, &env).await;
    let (_, id) = start(&app, &site).await;
    app.state.engine.run_until_idle("w").await.unwrap();
    assert_eq!(run(&app, &id).await["outcome"], "no_updates");
    app.clock.advance(Duration::days(6));
    assert_eq!(
        app.state.safe_updates.prune().await.unwrap(),
        0,
        "kept 7 days"
    );
    app.clock.advance(Duration::days(1) + Duration::hours(1));
    assert_eq!(app.state.safe_updates.prune().await.unwrap(), 1);
    app.login().await; // the session ended with its 7 days
    assert_eq!(
        app.get(&format!("/api/safe-updates/{id}")).await.status(),
        404
    );
}
