//! Restore drills through the API with the stand-in runner (issue 14, item 4): a drill needs
//! a completed full backup of production (409 `conflict` naming it), one per site at a time
//! (409), refuses unknown sites (404); a passed drill finishes its record with the backup id,
//! times and duration and its temporary environment `deleted`; a failed one fails its job with
//! `DRILL_FAILED`, records the reason and leaves the site `active`. The schedule
//! (`PATCH /api/sites/{id}`) is validated naming the field and audited; the scheduler enqueues
//! one drill per period with the manual clock. The real node work is tests/api/e2e_drill.rs.

use std::sync::Arc;

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

/// A completed full backup of `env` (through the API and the stand-in).
async fn full_backup(app: &TestApp, env: &str) -> String {
    let r = app
        .post_json(
            &format!("/api/environments/{env}/backups"),
            json!({"backup_scope": "full"}),
        )
        .await;
    assert_eq!(r.status(), 202);
    let body: Value = r.json().await.unwrap();
    app.state.engine.run_until_idle("w").await.unwrap();
    let id = body["backup_id"].as_str().unwrap().to_string();
    let (_, b) = app.get_json(&format!("/api/backups/{id}")).await;
    assert_eq!(b["status"], "completed", "{b}");
    id
}

async fn patch_site(app: &TestApp, site: &str, body: Value) -> reqwest::Response {
    app.client
        .patch(app.url(&format!("/api/sites/{site}")))
        .json(&body)
        .send()
        .await
        .unwrap()
}

async fn drills(app: &TestApp, site: &str) -> Value {
    let (status, list) = app.get_json(&format!("/api/sites/{site}/drills")).await;
    assert_eq!(status, 200, "{list}");
    list
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

#[tokio::test]
async fn a_drill_needs_a_completed_full_backup_and_runs_one_at_a_time() {
    let (app, _runner, env, _) = StandIn::new()
        .otherwise(Step::Plausible)
        .spawn_with_site()
        .await;
    let site = site_of(&app, &env).await;
    let missing = uuid::Uuid::new_v4();
    let r = app
        .post_empty(&format!("/api/sites/{missing}/drills"))
        .await;
    assert_error(r, 404, "not_found").await;
    let r = app.post_empty("/api/sites/not-a-uuid/drills").await;
    assert_eq!(r.status(), 400);

    // No backup yet: refused, naming what is missing, audited as rejected.
    let r = app.post_empty(&format!("/api/sites/{site}/drills")).await;
    let body = assert_error(r, 409, "conflict").await;
    assert!(
        body["message"].as_str().unwrap().contains("full backup"),
        "{body}"
    );
    assert_eq!(audit_results(&app, "restore_drill").await, ["rejected"]);
    assert_eq!(drills(&app, &site).await, json!([]));

    let backup = full_backup(&app, &env).await;
    let r = app.post_empty(&format!("/api/sites/{site}/drills")).await;
    assert_eq!(r.status(), 202);
    let job = job_id(r).await;
    // A second drill while the first is queued: refused.
    let r = app.post_empty(&format!("/api/sites/{site}/drills")).await;
    assert_error(r, 409, "conflict").await;

    let list = drills(&app, &site).await;
    assert_eq!(list.as_array().unwrap().len(), 1);
    let d = &list[0];
    assert_eq!(d["status"], "running");
    assert_eq!(d["backup_id"], backup.as_str());
    assert_eq!(d["job_id"], job.as_str());
    assert!(d["finished_at"].is_null());
    // The temporary environment: a clone named for the drill, being built.
    let temp = d["environment_id"].as_str().unwrap();
    let (_, e) = app.get_json(&format!("/api/environments/{temp}")).await;
    assert_eq!(e["environment_type"], "clone");
    assert_eq!(e["status"], "cloning");
    assert!(e["slug"].as_str().unwrap().starts_with("drill-"), "{e}");
    assert!(
        e["name"].as_str().unwrap().starts_with("Restore drill"),
        "{e}"
    );

    app.state.engine.run_until_idle("w").await.unwrap();
    let j = app.job(&job).await;
    assert_eq!(j["status"], "succeeded", "{j}");
    assert_eq!(j["job_type"], "restore_drill");
    let d = &drills(&app, &site).await[0];
    assert_eq!(d["status"], "passed", "{d}");
    assert!(d["finished_at"].is_string() && d["started_at"].is_string());
    // The node's measured total (the stand-in reports 6400 ms).
    assert_eq!(d["duration_ms"], 6400, "{d}");
    assert!(d["reason"].is_null());
    let (_, e) = app.get_json(&format!("/api/environments/{temp}")).await;
    assert_eq!(e["status"], "deleted", "{e}");
    // Lists hide it; the site stays active.
    let (_, envs) = app
        .get_json(&format!("/api/sites/{site}/environments"))
        .await;
    assert!(!envs.to_string().contains(temp));
    let (_, s) = app.get_json(&format!("/api/sites/{site}")).await;
    assert_eq!(s["status"], "active");
    // The accepted row is finished by the job (api.md §6).
    let mut results = audit_results(&app, "restore_drill").await;
    results.sort();
    assert_eq!(results, ["rejected", "rejected", "succeeded"]);
    // The temporary environment's secrets are gone with the drill.
    assert!(app
        .state
        .secrets
        .get(&pressluft::sites::db_password_key(temp))
        .unwrap()
        .is_none());
}

#[tokio::test]
async fn a_failed_drill_fails_its_job_with_drill_failed_and_leaves_the_site_active() {
    let failed = RunOutcome::Failed {
        code: JobErrorCode::DrillFailed,
        message: "backup checksum mismatch: files.tar.zst".into(),
        result: Some(json!({"timings": {"create_ms": 800}, "removed": true})),
    };
    let (app, runner, env, _) = StandIn::new()
        .then("restore_drill", Step::Answer(failed))
        .otherwise(Step::Plausible)
        .spawn_with_site()
        .await;
    let site = site_of(&app, &env).await;
    full_backup(&app, &env).await;
    let r = app.post_empty(&format!("/api/sites/{site}/drills")).await;
    let job = job_id(r).await;
    app.state.engine.run_until_idle("w").await.unwrap();
    let j = app.job(&job).await;
    assert_eq!(j["status"], "failed", "{j}");
    assert_eq!(j["error_code"], "DRILL_FAILED");
    assert_eq!(runner.runs_of(&job), 1, "DRILL_FAILED is not retried");
    let d = &drills(&app, &site).await[0];
    assert_eq!(d["status"], "failed");
    assert_eq!(d["reason"], "backup checksum mismatch: files.tar.zst");
    let temp = d["environment_id"].as_str().unwrap();
    let (_, e) = app.get_json(&format!("/api/environments/{temp}")).await;
    assert_eq!(e["status"], "deleted", "the node reported it removed: {e}");
    let (_, s) = app.get_json(&format!("/api/sites/{site}")).await;
    assert_eq!(s["status"], "active");
    let (_, p) = app.get_json(&format!("/api/environments/{env}")).await;
    assert_eq!(p["status"], "active");

    // Shown as prominently as a failed job: on the site page's panel, the overview and Sites.
    let panel = app.text(&format!("/ui/sites/{site}/drills")).await;
    assert!(panel.contains("alert-error") && panel.contains("backup checksum mismatch"));
    let alerts = app.text("/ui/drills/alerts").await;
    assert!(alerts.contains("Restore drill failed") && alerts.contains(&site));
    assert!(app.text("/").await.contains("/ui/drills/alerts"));
    assert!(app.text("/sites").await.contains("/ui/drills/alerts"));
    assert!(app
        .text(&format!("/sites/{site}"))
        .await
        .contains(&format!("/ui/sites/{site}/drills")));
}

#[tokio::test]
async fn a_run_that_never_reported_the_removal_leaves_the_environment_visible() {
    let lost = RunOutcome::Failed {
        code: JobErrorCode::AnsibleHostFailed,
        message: "restore-drill failed".into(),
        result: None,
    };
    let (app, _runner, env, _) = StandIn::new()
        .then("restore_drill", Step::Answer(lost.clone()))
        .then("restore_drill", Step::Answer(lost.clone()))
        .then("restore_drill", Step::Answer(lost))
        .otherwise(Step::Plausible)
        .spawn_with_site()
        .await;
    let site = site_of(&app, &env).await;
    full_backup(&app, &env).await;
    let job = job_id(app.post_empty(&format!("/api/sites/{site}/drills")).await).await;
    for _ in 0..3 {
        app.clock.advance(Duration::minutes(10));
        app.state.engine.run_until_idle("w").await.unwrap();
    }
    assert_eq!(app.job(&job).await["status"], "failed");
    let d = &drills(&app, &site).await[0];
    assert_eq!(d["status"], "failed");
    assert!(d["reason"].as_str().unwrap().contains("delete it"), "{d}");
    let temp = d["environment_id"].as_str().unwrap();
    let (_, e) = app.get_json(&format!("/api/environments/{temp}")).await;
    assert_eq!(e["status"], "failed", "may still exist on the node: {e}");
    let (_, s) = app.get_json(&format!("/api/sites/{site}")).await;
    assert_eq!(s["status"], "active");
}

#[tokio::test]
async fn the_schedule_is_validated_naming_the_field_and_audited() {
    let (app, _runner, env, _) = StandIn::new()
        .otherwise(Step::Plausible)
        .spawn_with_site()
        .await;
    let site = site_of(&app, &env).await;
    let (_, s) = app.get_json(&format!("/api/sites/{site}")).await;
    assert_eq!(s["drill_schedule"], "off");
    for bad in [
        json!({"drill_schedule": "daily"}),
        json!({"drill_schedule": ""}),
    ] {
        let r = patch_site(&app, &site, bad).await;
        assert_field_error(r, 400, "bad_request", "drill_schedule").await;
    }
    let r = patch_site(&app, &site, json!({"drill_schedule": 7})).await;
    assert_eq!(r.status(), 400);
    let r = patch_site(&app, &site, json!({"drill_schedule": "weekly", "x": 1})).await;
    assert_eq!(r.status(), 400);
    let r = patch_site(
        &app,
        &uuid::Uuid::new_v4().to_string(),
        json!({"drill_schedule": "weekly"}),
    )
    .await;
    assert_error(r, 404, "not_found").await;
    let r = patch_site(&app, &site, json!({"drill_schedule": "monthly"})).await;
    assert_eq!(r.status(), 200);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["drill_schedule"], "monthly");
    assert_eq!(body["id"], site.as_str());
    assert_eq!(audit_results(&app, "site_update").await, ["succeeded"]);
    // Unauthenticated: 401.
    let r = crate::helpers::client()
        .patch(app.url(&format!("/api/sites/{site}")))
        .json(&json!({"drill_schedule": "off"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
}

#[tokio::test]
async fn the_scheduler_runs_one_drill_per_period() {
    let (app, _runner, env, _) = StandIn::new()
        .otherwise(Step::Plausible)
        .spawn_with_site()
        .await;
    let site = site_of(&app, &env).await;
    let mut s = Scheduler::new(
        app.state.engine.clone(),
        app.state.backups.clone(),
        Arc::new(app.clock.clone()),
    )
    .with_drills(app.state.drills.clone());
    let drill_jobs = |app: &TestApp| {
        let pool = app.store.pool().clone();
        async move {
            let (n,): (i64,) = pressluft::store::query_as(
                "SELECT COUNT(*) FROM jobs WHERE job_type = 'restore_drill'",
            )
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
    // Off: nothing.
    s.tick().await;
    assert_eq!(drill_jobs(&app).await, 0);
    let r = patch_site(&app, &site, json!({"drill_schedule": "weekly"})).await;
    assert_eq!(r.status(), 200);
    // Weekly but no backup yet: skipped, nothing recorded.
    s.tick().await;
    assert_eq!(drill_jobs(&app).await, 0);
    assert_eq!(drills(&app, &site).await, json!([]));
    full_backup(&app, &env).await;
    s.tick().await;
    s.tick().await;
    assert_eq!(drill_jobs(&app).await, 1, "one drill, not two");
    app.state.engine.run_until_idle("w").await.unwrap();
    // Six days later: not due; eight days: due once more.
    app.clock.advance(Duration::days(6));
    s.tick().await;
    assert_eq!(drill_jobs(&app).await, 1);
    app.clock.advance(Duration::days(2));
    s.tick().await;
    s.tick().await;
    assert_eq!(drill_jobs(&app).await, 2);
    assert_eq!(
        audit_results(&app, "restore_drill").await,
        Vec::<String>::new(),
        "scheduled: no audit"
    );
    app.state.engine.run_until_idle("w").await.unwrap();
    // Monthly: 8 days after the last drill is not due (the session idled out meanwhile).
    app.login().await;
    let r = patch_site(&app, &site, json!({"drill_schedule": "monthly"})).await;
    assert_eq!(r.status(), 200);
    app.clock.advance(Duration::days(8));
    s.tick().await;
    assert_eq!(drill_jobs(&app).await, 2);
    app.clock.advance(Duration::days(23));
    s.tick().await;
    assert_eq!(drill_jobs(&app).await, 3);
}
