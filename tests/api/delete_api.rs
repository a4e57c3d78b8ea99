//! Deleting environments and sites (issue 13) through the API and the dashboard, with the
//! stand-in runner (the real node work is tests/api/e2e_delete.rs): validation and 404s,
//! production refused, `deleting` at the request and `deleted` after the job, other mutations
//! refused meanwhile, a second delete refused, lists with and without `include_deleted`, slug
//! reuse refused while deleting and allowed once deleted, final backups, the audit, failures
//! and cancels, and the typed confirmation of the dashboard.

use serde_json::{json, Value};

use crate::helpers::*;
use crate::stand_in::{StandIn, Step};
use pressluft::jobs::JobErrorCode;

/// A site whose `site_create` ran with a staging environment created by `env_create`;
/// returns (app, runner, site, production, staging).
async fn site_with_staging(
    script: Vec<(&'static str, Step)>,
) -> (TestApp, std::sync::Arc<StandIn>, String, String, String) {
    let (app, runner, prod, _) = StandIn::new()
        .script(script)
        .otherwise(Step::Plausible)
        .spawn_with_site()
        .await;
    let site = app
        .store
        .get_environment(&prod)
        .await
        .unwrap()
        .unwrap()
        .site_id;
    let job = post_environment(&app, &site, "Staging", "staging", "staging").await;
    app.state.engine.run_until_idle("w").await.unwrap();
    let staging = app.job(&job).await["environment_id"]
        .as_str()
        .unwrap()
        .to_string();
    let (_, env) = app.get_json(&format!("/api/environments/{staging}")).await;
    assert_eq!(env["status"], "active", "{env}");
    (app, runner, site, prod, staging)
}

async fn delete(app: &TestApp, path: &str) -> reqwest::Response {
    app.client.delete(app.url(path)).send().await.unwrap()
}

async fn status_of(app: &TestApp, path: &str) -> Value {
    app.get_json(path).await.1["status"].clone()
}

async fn run_all(app: &TestApp) {
    app.state.engine.run_until_idle("w").await.unwrap();
}

/// The audit rows of `action`, as (resource id, result), sorted (the manual clock stands).
async fn audit(app: &TestApp, action: &str) -> Vec<(String, String)> {
    pressluft::store::query_as(
        "SELECT resource_id, result FROM audit_logs WHERE action = ? ORDER BY resource_id, result",
    )
    .bind(action)
    .fetch_all(app.store.pool())
    .await
    .unwrap()
}

fn ids(list: &Value) -> Vec<String> {
    column(list, "id").into_iter().map(String::from).collect()
}

#[tokio::test]
async fn unknown_and_malformed_ids_and_production_are_refused() {
    let (app, _runner, site, prod, _staging) = site_with_staging(vec![]).await;
    let unknown = uuid::Uuid::new_v4();
    assert_error(
        delete(&app, &format!("/api/environments/{unknown}")).await,
        404,
        "not_found",
    )
    .await;
    assert_error(
        delete(&app, &format!("/api/sites/{unknown}")).await,
        404,
        "not_found",
    )
    .await;
    assert_error(
        delete(&app, "/api/sites/not-a-uuid").await,
        400,
        "bad_request",
    )
    .await;
    let body = assert_error(
        delete(&app, &format!("/api/environments/{prod}")).await,
        409,
        "conflict",
    )
    .await;
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("delete the site"),
        "{body}"
    );
    assert_eq!(
        status_of(&app, &format!("/api/environments/{prod}")).await,
        "active"
    );
    assert_eq!(
        audit(&app, "env_delete").await,
        [(prod.clone(), "rejected".to_string())]
    );
    let r = app
        .get(&format!(
            "/api/sites/{site}/environments?include_deleted=maybe"
        ))
        .await;
    assert_field_error(r, 400, "bad_request", "include_deleted").await;
    // Signed out: 401.
    let anonymous = client();
    let r = anonymous
        .delete(app.url(&format!("/api/sites/{site}")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
}

#[tokio::test]
async fn an_environment_is_deleting_then_deleted_with_its_final_backup() {
    let (app, runner, site, prod, staging) = site_with_staging(vec![]).await;
    let r = delete(&app, &format!("/api/environments/{staging}")).await;
    assert_eq!(r.status(), 202);
    let job_id = job_id(r).await;
    let job = app.job(&job_id).await;
    assert_eq!(job["job_type"], "env_delete");
    assert_eq!(job["environment_id"], staging.as_str());
    let env_path = format!("/api/environments/{staging}");
    assert_eq!(status_of(&app, &env_path).await, "deleting");
    assert_eq!(
        status_of(&app, &format!("/api/sites/{site}")).await,
        "active"
    );

    // Meanwhile: a second delete, a deploy, a backup, a clone from it are refused.
    assert_error(delete(&app, &env_path).await, 409, "conflict").await;
    let r = app
        .post_json(
            &format!("{env_path}/deploy"),
            json!({"source_type": "upload", "source_ref": "https://x.example.test/a.tar.gz"}),
        )
        .await;
    assert_error(r, 409, "conflict").await;
    let r = app
        .post_json(
            &format!("{env_path}/backups"),
            json!({"backup_scope": "db"}),
        )
        .await;
    assert_error(r, 409, "conflict").await;
    let body = json!({"name": "C", "slug": "c", "environment_type": "clone",
        "promotion_preset": "content-protect", "source_environment_id": staging});
    let r = app
        .post_json(&format!("/api/sites/{site}/environments"), body)
        .await;
    assert_error(r, 409, "conflict").await;
    // Its slug is still taken in the site.
    let r = app
        .post_json(&format!("/api/sites/{site}/environments"), json!({"name": "S",
            "slug": "staging", "environment_type": "staging", "promotion_preset": "content-protect"}))
        .await;
    assert_error(r, 409, "conflict").await;

    // The final backup is pending with the job, then completed.
    let (_, backups) = app.get_json(&format!("{env_path}/backups")).await;
    assert_eq!(backups[0]["status"], "pending", "{backups}");
    assert_eq!(backups[0]["backup_scope"], "full");
    let backup_id = backups[0]["id"].as_str().unwrap().to_string();
    run_all(&app).await;
    assert_eq!(app.job(&job_id).await["status"], "succeeded");
    assert_eq!(runner.runs_of(&job_id), 1);
    let (_, env) = app.get_json(&env_path).await;
    assert_eq!(env["status"], "deleted", "{env}");
    assert!(env["deleted_at"].is_string(), "{env}");
    let (_, backup) = app.get_json(&format!("/api/backups/{backup_id}")).await;
    assert_eq!(backup["status"], "completed", "{backup}");
    assert_eq!(backup["size_bytes"], 6161);
    assert_eq!(
        status_of(&app, &format!("/api/sites/{site}")).await,
        "active"
    );
    assert_eq!(
        status_of(&app, &format!("/api/environments/{prod}")).await,
        "active"
    );

    // Lists leave it out unless asked; the deleted one is still read by id.
    let (_, listed) = app
        .get_json(&format!("/api/sites/{site}/environments"))
        .await;
    assert_eq!(column(&listed, "id"), [prod.as_str()]);
    let (_, all) = app
        .get_json(&format!(
            "/api/sites/{site}/environments?include_deleted=true"
        ))
        .await;
    assert_eq!(ids(&all), [prod.clone(), staging.clone()]);
    let (_, sites) = app.get_json("/api/sites").await;
    assert_eq!(sites[0]["id"], site.as_str());

    // Deleted: refused again, and its slug is free in the site.
    assert_error(delete(&app, &env_path).await, 409, "conflict").await;
    let again = post_environment(&app, &site, "Staging", "staging", "staging").await;
    run_all(&app).await;
    assert_eq!(app.job(&again).await["status"], "succeeded");
    assert_eq!(
        audit(&app, "env_delete").await,
        [
            (staging.clone(), "rejected".to_string()),
            (staging.clone(), "rejected".to_string()),
            (staging.clone(), "succeeded".to_string())
        ]
    );
}

#[tokio::test]
async fn a_site_is_deleted_with_every_environment_and_its_slug_is_reused() {
    let (app, _runner, site, prod, staging) = site_with_staging(vec![]).await;
    let r = delete(&app, &format!("/api/sites/{site}")).await;
    assert_eq!(r.status(), 202);
    let job_id = job_id(r).await;
    let job = app.job(&job_id).await;
    assert_eq!(job["job_type"], "site_delete");
    assert_eq!(job["site_id"], site.as_str());
    assert_eq!(
        status_of(&app, &format!("/api/sites/{site}")).await,
        "deleting"
    );
    for env in [&prod, &staging] {
        assert_eq!(
            status_of(&app, &format!("/api/environments/{env}")).await,
            "deleting"
        );
    }
    // While deleting: a second delete, a new environment, an environment delete and the slug
    // are refused.
    assert_error(
        delete(&app, &format!("/api/sites/{site}")).await,
        409,
        "conflict",
    )
    .await;
    assert_error(
        delete(&app, &format!("/api/environments/{staging}")).await,
        409,
        "conflict",
    )
    .await;
    let r = app
        .post_json(
            &format!("/api/sites/{site}/environments"),
            json!({"name": "C", "slug": "c",
            "environment_type": "clone", "promotion_preset": "content-protect"}),
        )
        .await;
    assert_error(r, 409, "conflict").await;
    let r = app
        .post_json("/api/sites", json!({"name": "Shop", "slug": "shop"}))
        .await;
    assert_error(r, 409, "conflict").await;

    run_all(&app).await;
    assert_eq!(app.job(&job_id).await["status"], "succeeded");
    let (_, s) = app.get_json(&format!("/api/sites/{site}")).await;
    assert_eq!(s["status"], "deleted", "{s}");
    assert!(s["deleted_at"].is_string());
    for env in [&prod, &staging] {
        assert_eq!(
            status_of(&app, &format!("/api/environments/{env}")).await,
            "deleted"
        );
        let (status, backups) = app
            .get_json(&format!("/api/environments/{env}/backups"))
            .await;
        assert_eq!(status, 200);
        assert_eq!(backups[0]["status"], "completed", "{backups}");
    }
    let (_, sites) = app.get_json("/api/sites").await;
    assert!(ids(&sites).is_empty(), "{sites}");
    let (_, all) = app.get_json("/api/sites?include_deleted=true").await;
    assert_eq!(column(&all, "id"), [site.as_str()]);
    assert_eq!(
        audit(&app, "site_delete").await,
        [
            (site.clone(), "rejected".to_string()),
            (site.clone(), "succeeded".to_string())
        ]
    );

    // The slug is free: a new site takes it.
    let r = app
        .post_json("/api/sites", json!({"name": "Shop again", "slug": "shop"}))
        .await;
    assert_eq!(r.status(), 202);
    run_all(&app).await;
    let (_, sites) = app.get_json("/api/sites").await;
    assert_eq!(sites.as_array().unwrap().len(), 1);
    assert_eq!(sites[0]["slug"], "shop");
    assert_ne!(sites[0]["id"], site.as_str());
}

#[tokio::test]
async fn a_failed_delete_leaves_failed_rows_and_can_be_asked_again() {
    let host = || Step::fail(JobErrorCode::AnsibleHostFailed);
    let (app, _runner, site, prod, staging) = site_with_staging(vec![
        ("site_delete", host()),
        ("site_delete", host()),
        ("site_delete", host()),
    ])
    .await;
    let first = job_id(delete(&app, &format!("/api/sites/{site}")).await).await;
    for _ in 0..3 {
        run_all(&app).await;
        app.clock.advance(time::Duration::minutes(16));
    }
    assert_eq!(app.job(&first).await["status"], "failed");
    assert_eq!(
        status_of(&app, &format!("/api/sites/{site}")).await,
        "failed"
    );
    for env in [&prod, &staging] {
        assert_eq!(
            status_of(&app, &format!("/api/environments/{env}")).await,
            "failed"
        );
    }
    // A failed site can be deleted again (no reset needed); this time it succeeds.
    let second = job_id(delete(&app, &format!("/api/sites/{site}")).await).await;
    run_all(&app).await;
    assert_eq!(app.job(&second).await["status"], "succeeded");
    assert_eq!(
        status_of(&app, &format!("/api/sites/{site}")).await,
        "deleted"
    );
    assert_eq!(
        audit(&app, "site_delete").await,
        [
            (site.clone(), "failed".to_string()),
            (site.clone(), "succeeded".to_string())
        ]
    );
}

#[tokio::test]
async fn a_refused_or_cancelled_delete_puts_the_statuses_back() {
    let (app, _runner, site, _prod, staging) = site_with_staging(vec![(
        "env_delete",
        Step::fail(JobErrorCode::PreconditionFailed),
    )])
    .await;
    let env_path = format!("/api/environments/{staging}");
    // A precondition failing on the node: nothing changed, the environment is active again.
    let first = job_id(delete(&app, &env_path).await).await;
    run_all(&app).await;
    assert_eq!(app.job(&first).await["status"], "failed");
    assert_eq!(status_of(&app, &env_path).await, "active");
    let (_, backups) = app.get_json(&format!("{env_path}/backups")).await;
    assert_eq!(backups[0]["status"], "failed", "{backups}");

    // A queued site delete cancelled: site and environments back as they were.
    let job = job_id(delete(&app, &format!("/api/sites/{site}")).await).await;
    let r = app.post_empty(&format!("/api/jobs/{job}/cancel")).await;
    assert!(r.status().is_success(), "{}", r.status());
    assert_eq!(app.job(&job).await["status"], "cancelled");
    assert_eq!(
        status_of(&app, &format!("/api/sites/{site}")).await,
        "active"
    );
    assert_eq!(status_of(&app, &env_path).await, "active");
}

#[tokio::test]
async fn a_job_ending_while_the_delete_waits_does_not_bring_the_row_back() {
    // A deploy queued before the delete runs first and succeeds: its gate would make the
    // environment active again, but deletion wins; the delete then runs.
    let (app, _runner, _site, _prod, staging) = site_with_staging(vec![]).await;
    let env_path = format!("/api/environments/{staging}");
    let deploy = post_job(
        &app,
        &format!("{env_path}/deploy"),
        json!({"source_type": "upload", "source_ref": "https://x.example.test/a.tar.gz"}),
    )
    .await;
    let del = job_id(delete(&app, &env_path).await).await;
    assert_eq!(status_of(&app, &env_path).await, "deleting");
    run_all(&app).await;
    // The deploy was refused at its start (the environment is not active) or ran; either way
    // the delete succeeded and the environment is deleted.
    let d = app.job(&deploy).await;
    assert!(
        ["failed", "succeeded"].contains(&d["status"].as_str().unwrap()),
        "{d}"
    );
    assert_eq!(app.job(&del).await["status"], "succeeded");
    assert_eq!(status_of(&app, &env_path).await, "deleted");
}

#[tokio::test]
async fn the_dashboard_asks_for_the_slug_typed_out() {
    let (app, _runner, site, _prod, staging) = site_with_staging(vec![]).await;
    let env_page = app.text(&format!("/environments/{staging}")).await;
    assert!(env_page.contains("data-test=\"delete-environment-form\""));
    let form = CsrfForms::new(&app, &app.client, &env_page);
    let r = form
        .post(
            &format!("/environments/{staging}/delete"),
            &[("confirm_slug", "shop-typo")],
        )
        .await;
    assert_eq!(r.status(), 400);
    let html = r.text().await.unwrap();
    assert!(
        html.contains("data-test=\"delete-confirm-error\""),
        "{html}"
    );
    assert_eq!(
        status_of(&app, &format!("/api/environments/{staging}")).await,
        "active"
    );
    let r = form
        .post(
            &format!("/environments/{staging}/delete"),
            &[("confirm_slug", "shop")],
        )
        .await;
    assert_eq!(r.status(), 303);
    let to = r.headers()["location"].to_str().unwrap().to_string();
    assert!(to.starts_with("/jobs/"), "{to}");
    run_all(&app).await;
    let env_page = app.text(&format!("/environments/{staging}")).await;
    assert!(
        !env_page.contains("delete-environment-form"),
        "no delete of a deleted environment"
    );

    // The site: the production environment has no delete of its own; the site page has one.
    let site_page = app.text(&format!("/sites/{site}")).await;
    assert!(site_page.contains("data-test=\"delete-site-form\""));
    for offered in ["create-environment", "import-site", "safe-updates-link"] {
        assert!(
            site_page.contains(&format!("data-test=\"{offered}\"")),
            "{offered}"
        );
    }
    assert!(!site_page.contains("data-test=\"site-gone\""));
    let form = CsrfForms::new(&app, &app.client, &site_page);
    let r = form
        .post(&format!("/sites/{site}/delete"), &[("confirm_slug", "")])
        .await;
    assert_eq!(r.status(), 400);
    let r = form
        .post(
            &format!("/sites/{site}/delete"),
            &[("confirm_slug", "shop")],
        )
        .await;
    assert_eq!(r.status(), 303);
    run_all(&app).await;
    // A deleted site's page says so and offers nothing that would be refused.
    let site_page = app.text(&format!("/sites/{site}")).await;
    assert!(site_page.contains("data-test=\"site-gone\""), "{site_page}");
    for refused in [
        "create-environment",
        "import-site",
        "safe-updates-link",
        "drills-section",
        "site-controls",
        "delete-site-form",
    ] {
        assert!(
            !site_page.contains(&format!("data-test=\"{refused}\"")),
            "{refused}"
        );
    }
    let list = app.text("/sites").await;
    assert!(!list.contains(&site), "a deleted site is hidden");
    let list = app.text("/sites?show_deleted=true").await;
    assert!(
        list.contains(&site) && list.contains("status-deleted"),
        "shown when asked"
    );
}
