//! The environment page's Deploys section over plain HTTP (the stand-in runner where a job
//! would run): the Deploy, Apply Updates and Roll Back forms (CSRF, errors on their field), the
//! deploy key, the lazily loaded updates list's one-line error, and the release timeline
//! rendered from rows (health badges, notes, rollback events, the last failure's one line).

use crate::backups_ui::{fixture, Fixture};
use crate::deploys_api::insert_release;
use crate::helpers::{get_with, page_text, post_form, CsrfForms, JobFixture};

#[tokio::test]
async fn the_deploy_form_posts_names_bad_fields_and_needs_csrf() {
    let Fixture { app, c, env } = fixture().await;
    let html = page_text(&c, app.url(&format!("/environments/{env}"))).await;
    assert!(html.contains("data-test=\"deploy-form\""));
    assert!(
        html.contains("git@github.com:acme/site.git#3f2c1a9"),
        "examples shown"
    );
    let key = html
        .split("data-test=\"deploy-key\">")
        .nth(1)
        .and_then(|s| s.split('<').next())
        .unwrap()
        .to_string();
    assert!(key.starts_with("ssh-ed25519 "), "{key}");
    let forms = CsrfForms::new(&app, &c, &html);
    let path = format!("/environments/{env}/deploy");

    let r = forms
        .post(
            &path,
            &[("source_type", "git"), ("source_ref", "ftp://x.test/a.git")],
        )
        .await;
    assert_eq!(r.status(), 400);
    let page = r.text().await.unwrap();
    assert!(page.contains("data-test=\"source-ref-error\""), "{page}");
    assert!(page.contains("value=\"ftp://x.test/a.git\""), "value kept");
    let r = forms
        .post(
            &path,
            &[
                ("source_type", "svn"),
                ("source_ref", "https://x.test/a.git"),
            ],
        )
        .await;
    assert_eq!(r.status(), 400);
    assert!(r
        .text()
        .await
        .unwrap()
        .contains("data-test=\"source-type-error\""));

    let good = [
        ("source_type", "git"),
        ("source_ref", "https://x.test/a.git#main"),
    ];
    let r = post_form(&c, app.url(&path), &good).await;
    assert_eq!(r.status(), 403, "no CSRF token");
    assert_eq!(app.count("jobs").await, 0);

    let r = forms.post(&path, &good).await;
    assert_eq!(r.status(), 303);
    let location = r.headers()["location"].to_str().unwrap().to_string();
    let job_id = location.strip_prefix("/jobs/").unwrap();
    let (kind,): (String,) = pressluft::store::query_as("SELECT job_type FROM jobs WHERE id = ?")
        .bind(job_id)
        .fetch_one(app.store.pool())
        .await
        .unwrap();
    assert_eq!(kind, "env_deploy");
}

#[tokio::test]
async fn the_update_form_posts_and_names_a_bad_scope() {
    let Fixture { app, c, env } = fixture().await;
    let html = page_text(&c, app.url(&format!("/environments/{env}"))).await;
    assert!(html.contains(&format!("hx-get=\"/environments/{env}/updates\"")));
    let forms = CsrfForms::new(&app, &c, &html);
    let path = format!("/environments/{env}/updates");
    let r = forms.post(&path, &[("scope", "kernel")]).await;
    assert_eq!(r.status(), 400);
    assert!(r
        .text()
        .await
        .unwrap()
        .contains("data-test=\"scope-error\""));
    let r = post_form(&c, app.url(&path), &[("scope", "all")]).await;
    assert_eq!(r.status(), 403);
    let r = forms.post(&path, &[("scope", "core")]).await;
    assert_eq!(r.status(), 303);
    assert_eq!(app.count("backups").await, 1, "the pre-update backup");

    // The lazily loaded list: the node cannot be reached → one line, not an error page.
    app.exec("UPDATE nodes SET hostname = '127.0.0.1', ssh_port = 1", &[])
        .await;
    let r = get_with(&c, app.url(&path)).await;
    assert_eq!(r.status(), 200);
    let fragment = r.text().await.unwrap();
    assert!(
        fragment.contains("data-test=\"updates-error\""),
        "{fragment}"
    );
    assert!(fragment.contains("Could not connect"), "{fragment}");
    assert!(!fragment.contains("ssh:"), "{fragment}");
}

#[tokio::test]
async fn the_timeline_shows_releases_rollbacks_and_the_last_failure() {
    let Fixture { app, c, env } = fixture().await;
    let node: (String,) =
        pressluft::store::query_as("SELECT node_id FROM environments WHERE id = ?")
            .bind(&env)
            .fetch_one(app.store.pool())
            .await
            .unwrap();
    let old = insert_release(&app, &env, "20261201-100000", "healthy", 0).await;
    let good = insert_release(&app, &env, "20261201-110000", "healthy", 1).await;
    let bad = insert_release(&app, &env, "20261201-120000", "unhealthy", 2).await;
    app.exec(
        "UPDATE releases SET notes = 'rolled back: health check failed (http_ok)' WHERE id = ?",
        &[&bad],
    )
    .await;
    app.exec(
        "UPDATE environments SET current_release_id = ? WHERE id = ?",
        &[&good, &env],
    )
    .await;
    let mut rollback = JobFixture::new("release_rollback", "succeeded", &node.0);
    rollback.environment_id = Some(&env);
    rollback.offset_ms = 3 * 60_000;
    let rb = app.insert_job(rollback).await;
    app.exec(
        "UPDATE jobs SET payload_json = ? WHERE id = ?",
        &[
            r#"{"failed_release_id":"x","target_release_id":"y","reason":"health check failed: http_ok"}"#,
            &rb,
        ],
    )
    .await;
    let mut deploy = JobFixture::new("env_deploy", "failed", &node.0);
    deploy.environment_id = Some(&env);
    deploy.error_code = Some("SOURCE_FETCH_FAILED");
    deploy.offset_ms = 4 * 60_000;
    let failed = app.insert_job(deploy).await;
    app.exec(
        "UPDATE jobs SET error_message = 'the repository could not be cloned\nsecond line' WHERE id = ?",
        &[&failed],
    )
    .await;

    let html = page_text(&c, app.url(&format!("/environments/{env}"))).await;
    let timeline = html.split("id=\"releases-timeline\"").nth(1).unwrap();
    // Newest first: the rollback event, then the unhealthy, the current, the old release.
    let pos = |needle: &str| {
        timeline
            .find(needle)
            .unwrap_or_else(|| panic!("{needle}: {timeline}"))
    };
    assert!(pos("data-test=\"rollback-event\"") < pos(&bad));
    assert!(pos(&bad) < pos(&good) && pos(&good) < pos(&old));
    assert!(timeline.contains("health check failed: http_ok"));
    assert!(timeline.contains("rolled back: health check failed (http_ok)"));
    assert!(timeline.contains(&format!("data-release=\"{bad}\" data-health=\"unhealthy\"")));
    assert!(timeline.contains(&format!(
        "data-release=\"{good}\" data-health=\"healthy\" data-current=\"1\""
    )));
    // Roll back is offered on the old healthy one only (not current, not unhealthy).
    assert_eq!(timeline.matches("data-test=\"rollback-form\"").count(), 1);
    assert!(timeline.contains(&format!("/releases/{old}/rollback")));
    let failure = html.split("data-test=\"last-failure\">").nth(1).unwrap();
    let failure = failure.split("</div>").next().unwrap();
    assert!(
        failure.contains("Deploy failed: SOURCE_FETCH_FAILED: the repository could not be cloned")
    );
    assert!(!failure.contains("second line"));

    // The button posts with CSRF; a refused one shows the reason.
    let forms = CsrfForms::new(&app, &c, &html);
    let path = format!("/environments/{env}/releases/{old}/rollback");
    assert_eq!(post_form(&c, app.url(&path), &[]).await.status(), 403);
    let r = forms.post(&path, &[]).await;
    assert_eq!(r.status(), 303);
    let r = forms
        .post(&format!("/environments/{env}/releases/{bad}/rollback"), &[])
        .await;
    assert_eq!(r.status(), 409);
    assert!(r.text().await.unwrap().contains("Not rolled back"));
}
