//! `POST /api/sites/{id}/reset` and `POST /api/environments/{id}/reset` (api.md §3, the reset
//! validation decisions; state-machines.md: `failed → active` only by reset): a resource that is
//! not failed is refused (`resource_not_failed`), every validation rule refuses with its
//! `details.reason`, a failed one becomes `active` with its `state_version` bumped and a live
//! `resource` event, and each request that reaches the check writes one audit row.

use serde_json::{json, Value};

use crate::deploys_api::insert_release;
use crate::helpers::*;

/// A logged-in app with an active node, a site and its production environment, both failed,
/// the environment with a current release of its own.
async fn failed_site() -> (TestApp, String, String, String) {
    let app = spawn_logged_in().await;
    let node = app.insert_node("n1", "active").await;
    let site = app.insert_site("Shop", "shop").await;
    let env = app.insert_environment(&site, &node, "Production").await;
    let release = insert_release(&app, &env, "20250101T000000Z-aaaaaaaa", "healthy", 0).await;
    app.exec(
        "UPDATE environments SET current_release_id = ?, status = 'failed' WHERE id = ?",
        &[&release, &env],
    )
    .await;
    app.exec("UPDATE sites SET status = 'failed' WHERE id = ?", &[&site])
        .await;
    (app, node, site, env)
}

async fn status_and_version(app: &TestApp, table: &str, id: &str) -> (String, i64) {
    pressluft::store::query_as(&format!(
        "SELECT status, state_version FROM {table} WHERE id = ?"
    ))
    .bind(id)
    .fetch_one(app.store.pool())
    .await
    .unwrap()
}

/// The audit rows of `resource_id` as `(action, result)`, oldest first.
pub async fn audit_of(app: &TestApp, resource_id: &str) -> Vec<(String, String)> {
    pressluft::store::query_as(
        "SELECT action, result FROM audit_logs WHERE resource_id = ? ORDER BY created_at, rowid",
    )
    .bind(resource_id)
    .fetch_all(app.store.pool())
    .await
    .unwrap()
}

async fn refused(r: reqwest::Response, reason: &str) {
    let body = assert_error(r, 409, "reset_validation_failed").await;
    assert_eq!(body["details"]["reason"], reason, "{body}");
}

#[tokio::test]
async fn a_failed_environment_is_reset_to_active_with_an_event_and_an_audit_row() {
    let (app, _node, site, env) = failed_site().await;
    let (_, before) = status_and_version(&app, "environments", &env).await;
    let stream = app.get("/api/events").await;
    assert_eq!(stream.status(), 200);
    app.clock.advance(time::Duration::seconds(1));

    let r = app
        .post_empty(&format!("/api/environments/{env}/reset"))
        .await;
    assert_eq!(r.status(), 200);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body, json!({"success": true, "status": "active"}));
    let (status, after) = status_and_version(&app, "environments", &env).await;
    assert_eq!(status, "active");
    assert_eq!(after, before + 1);
    // The site is reset on its own.
    assert_eq!(status_and_version(&app, "sites", &site).await.0, "failed");
    assert_eq!(
        audit_of(&app, &env).await,
        [("environment_reset".to_string(), "succeeded".to_string())]
    );

    let seen = crate::events::read_until(stream, &format!("\"state_version\":{after}")).await;
    let line = seen
        .lines()
        // On PostgreSQL the fixture's own change (version 1, `failed`) may arrive on the stream
        // first (its notification is delivered after the subscription): the reset's is `after`.
        .find(|l| {
            l.starts_with("data:")
                && l.contains(&env)
                && l.contains("\"environment\"")
                && l.contains(&format!("\"state_version\":{after}"))
        })
        .expect("the environment's resource event");
    let event: Value = serde_json::from_str(line.trim_start_matches("data:").trim()).unwrap();
    assert_eq!(
        event,
        json!({"type": "environment", "id": env, "status": "active", "state_version": after})
    );

    // Now the site: its production environment is active with its release.
    let r = app.post_empty(&format!("/api/sites/{site}/reset")).await;
    assert_eq!(r.status(), 200);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body, json!({"success": true, "status": "active"}));
    assert_eq!(status_and_version(&app, "sites", &site).await.0, "active");
    assert_eq!(
        audit_of(&app, &site).await,
        [("site_reset".to_string(), "succeeded".to_string())]
    );
}

#[tokio::test]
async fn a_resource_that_is_not_failed_is_refused_and_audited() {
    let app = spawn_logged_in().await;
    let node = app.insert_node("n1", "active").await;
    let site = app.insert_site("Shop", "shop").await;
    let env = app.insert_environment(&site, &node, "Production").await;

    let r = app
        .post_empty(&format!("/api/environments/{env}/reset"))
        .await;
    let body = assert_error(r, 409, "resource_not_failed").await;
    assert!(
        body["message"].as_str().unwrap().contains("active"),
        "{body}"
    );
    let r = app.post_empty(&format!("/api/sites/{site}/reset")).await;
    assert_error(r, 409, "resource_not_failed").await;
    app.exec(
        "UPDATE environments SET status = 'deploying' WHERE id = ?",
        &[&env],
    )
    .await;
    let r = app
        .post_empty(&format!("/api/environments/{env}/reset"))
        .await;
    assert_error(r, 409, "resource_not_failed").await;

    assert_eq!(
        audit_of(&app, &env).await,
        [
            ("environment_reset".to_string(), "rejected".to_string()),
            ("environment_reset".to_string(), "rejected".to_string())
        ]
    );
    assert_eq!(
        audit_of(&app, &site).await,
        [("site_reset".to_string(), "rejected".to_string())]
    );
    assert_eq!(
        status_and_version(&app, "environments", &env).await.0,
        "deploying"
    );
}

#[tokio::test]
async fn a_queued_or_running_job_of_the_site_refuses_both_resets() {
    let (app, node, site, env) = failed_site().await;
    for status in ["queued", "running"] {
        let mut job = JobFixture::new("backup_create", status, &node);
        job.site_id = Some(&site);
        job.environment_id = Some(&env);
        let id = app.insert_job(job).await;
        let r = app
            .post_empty(&format!("/api/environments/{env}/reset"))
            .await;
        refused(r, "jobs_in_progress").await;
        let r = app.post_empty(&format!("/api/sites/{site}/reset")).await;
        refused(r, "jobs_in_progress").await;
        app.exec("UPDATE jobs SET status = 'failed' WHERE id = ?", &[&id])
            .await;
    }
    // A job of another site does not count.
    let other_site = app.insert_site("Other", "other").await;
    let mut job = JobFixture::new("backup_create", "running", &node);
    job.site_id = Some(&other_site);
    app.insert_job(job).await;
    let r = app
        .post_empty(&format!("/api/environments/{env}/reset"))
        .await;
    assert_eq!(r.status(), 200);

    let results: Vec<String> = audit_of(&app, &env)
        .await
        .into_iter()
        .map(|(_, r)| r)
        .collect();
    assert_eq!(results, ["rejected", "rejected", "succeeded"]);
    assert_eq!(status_and_version(&app, "sites", &site).await.0, "failed");
}

#[tokio::test]
async fn an_environment_without_a_release_of_its_own_or_an_active_node_stays_failed() {
    let (app, node, site, env) = failed_site().await;
    // No current release.
    app.exec(
        "UPDATE environments SET current_release_id = NULL WHERE id = ?",
        &[&env],
    )
    .await;
    let r = app
        .post_empty(&format!("/api/environments/{env}/reset"))
        .await;
    refused(r, "no_current_release").await;
    // A release of another environment.
    let staging = app.insert_environment(&site, &node, "Staging").await;
    let foreign = insert_release(&app, &staging, "20250101T000000Z-bbbbbbbb", "healthy", 0).await;
    app.exec(
        "UPDATE environments SET current_release_id = ? WHERE id = ?",
        &[&foreign, &env],
    )
    .await;
    let r = app
        .post_empty(&format!("/api/environments/{env}/reset"))
        .await;
    refused(r, "no_current_release").await;
    // Its own release, but the node is not active.
    let own = insert_release(&app, &env, "20250101T000000Z-cccccccc", "healthy", 1).await;
    app.exec(
        "UPDATE environments SET current_release_id = ? WHERE id = ?",
        &[&own, &env],
    )
    .await;
    app.exec(
        "UPDATE nodes SET status = 'unreachable' WHERE id = ?",
        &[&node],
    )
    .await;
    let r = app
        .post_empty(&format!("/api/environments/{env}/reset"))
        .await;
    refused(r, "node_not_active").await;
    assert_eq!(
        status_and_version(&app, "environments", &env).await.0,
        "failed"
    );

    app.exec("UPDATE nodes SET status = 'active' WHERE id = ?", &[&node])
        .await;
    let r = app
        .post_empty(&format!("/api/environments/{env}/reset"))
        .await;
    assert_eq!(r.status(), 200);
}

#[tokio::test]
async fn a_site_needs_an_active_production_environment_with_its_release() {
    let (app, _node, site, env) = failed_site().await;
    let r = app.post_empty(&format!("/api/sites/{site}/reset")).await;
    let body = assert_error(r, 409, "reset_validation_failed").await;
    assert_eq!(body["details"]["reason"], "production_not_active");
    assert!(
        body["message"].as_str().unwrap().contains("reset it first"),
        "{body}"
    );

    app.exec(
        "UPDATE environments SET status = 'active', current_release_id = NULL WHERE id = ?",
        &[&env],
    )
    .await;
    let r = app.post_empty(&format!("/api/sites/{site}/reset")).await;
    refused(r, "no_current_release").await;

    // A site without a production environment.
    let bare = app.insert_site("Bare", "bare").await;
    app.exec("UPDATE sites SET status = 'failed' WHERE id = ?", &[&bare])
        .await;
    let r = app.post_empty(&format!("/api/sites/{bare}/reset")).await;
    refused(r, "no_production_environment").await;
    assert_eq!(status_and_version(&app, "sites", &site).await.0, "failed");
}

#[tokio::test]
async fn unknown_malformed_and_anonymous_resets_are_refused_without_an_audit_row() {
    let app = spawn_logged_in().await;
    let unknown = uuid::Uuid::new_v4();
    for path in [
        format!("/api/sites/{unknown}/reset"),
        format!("/api/environments/{unknown}/reset"),
    ] {
        assert_error(app.post_empty(&path).await, 404, "not_found").await;
    }
    assert_error(
        app.post_empty("/api/sites/nope/reset").await,
        400,
        "bad_request",
    )
    .await;
    let anonymous = client()
        .post(app.url(&format!("/api/environments/{unknown}/reset")))
        .send()
        .await
        .unwrap();
    assert_error(anonymous, 401, "unauthorized").await;
    assert_eq!(app.count("audit_logs").await, 0);
}

#[tokio::test]
async fn the_dashboard_resets_a_failed_environment_and_lists_jobs_with_cancel_buttons() {
    let (app, node, site, env) = failed_site().await;
    let mut job = JobFixture::new("backup_create", "queued", &node);
    job.site_id = Some(&site);
    job.environment_id = Some(&env);
    let job_id = app.insert_job(job).await;

    // The pages include the controls fragments.
    let page = app.text(&format!("/environments/{env}")).await;
    assert!(
        page.contains(&format!("/ui/environments/{env}/controls")),
        "{page}"
    );
    let page = app.text(&format!("/sites/{site}")).await;
    assert!(
        page.contains(&format!("/ui/sites/{site}/controls")),
        "{page}"
    );

    let fragment = app.text(&format!("/ui/environments/{env}/controls")).await;
    assert!(fragment.contains("data-test=\"reset\""), "{fragment}");
    assert!(fragment.contains(&format!("action=\"/environments/{env}/reset\"")));
    assert!(
        fragment.contains(&format!("action=\"/jobs/{job_id}/cancel\"")),
        "{fragment}"
    );
    // A failed environment cannot be opened.
    assert!(
        fragment.contains("data-test=\"open-wp-admin\" disabled"),
        "{fragment}"
    );
    let site_fragment = app.text(&format!("/ui/sites/{site}/controls")).await;
    assert!(site_fragment.contains(&format!("action=\"/sites/{site}/reset\"")));
    assert!(site_fragment.contains(&format!("action=\"/jobs/{job_id}/cancel\"")));
    assert!(!site_fragment.contains("open-wp-admin"));

    let c = &app.client;
    let form = CsrfForms::new(&app, c, &fragment);
    // Refused while the job waits: the error page says why.
    let r = form.post(&format!("/environments/{env}/reset"), &[]).await;
    assert_eq!(r.status(), 409);
    let html = r.text().await.unwrap();
    assert!(html.contains("reset_validation_failed"), "{html}");
    // Cancel it with the fragment's button, then reset.
    let r = form.post(&format!("/jobs/{job_id}/cancel"), &[]).await;
    assert!(
        r.status().is_success() || r.status().is_redirection(),
        "{}",
        r.status()
    );
    assert_eq!(app.job(&job_id).await["status"], "cancelled");
    let r = form.post(&format!("/environments/{env}/reset"), &[]).await;
    assert!(
        r.status().is_success() || r.status().is_redirection(),
        "{}",
        r.status()
    );
    assert_eq!(
        status_and_version(&app, "environments", &env).await.0,
        "active"
    );
    let fragment = app.text(&format!("/ui/environments/{env}/controls")).await;
    assert!(!fragment.contains("data-test=\"reset\""), "{fragment}");
    assert!(!fragment.contains("/cancel"), "{fragment}");
    assert!(!fragment.contains("open-wp-admin\" disabled"), "{fragment}");
    let r = form.post(&format!("/sites/{site}/reset"), &[]).await;
    assert!(
        r.status().is_success() || r.status().is_redirection(),
        "{}",
        r.status()
    );
    assert_eq!(status_and_version(&app, "sites", &site).await.0, "active");

    // Without the form token nothing happens.
    let r = c
        .post(app.url(&format!("/environments/{env}/reset")))
        .form(&[("csrf_token", "wrong")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
}
