//! The import API (api.md §3, `POST /api/sites/{id}/import`): a `site_import` into the
//! production environment with its pending pre-import backup, `archive_url` validated (400
//! naming it), 404 for an unknown site, 409 when production is not ok, and a URL's credentials
//! only in the secrets store (never in the job row, the audit or a response).

use serde_json::json;

use crate::deploys_api::{app_with_environment, payload};
use crate::helpers::*;

const TOKEN: &str = "s3cr3tArchiveToken";

/// The fixture of the deploys API with the environment as the site's production.
async fn app_with_production() -> (TestApp, String, String, String) {
    let (app, node, site, env) = app_with_environment().await;
    app.exec(
        "UPDATE sites SET primary_environment_id = ? WHERE id = ?",
        &[&env, &site],
    )
    .await;
    (app, node, site, env)
}

#[tokio::test]
async fn an_import_goes_into_production_with_its_pre_import_backup() {
    let (app, _node, site, env) = app_with_production().await;
    let url = format!("https://import:{TOKEN}@files.example.test/export/shop.tar.gz");
    let r = app
        .post_json(
            &format!("/api/sites/{site}/import"),
            json!({"archive_url": url}),
        )
        .await;
    assert_eq!(r.status(), 202);
    let text = r.text().await.unwrap();
    assert!(!text.contains(TOKEN));
    let id = serde_json::from_str::<serde_json::Value>(&text).unwrap()["job_id"]
        .as_str()
        .unwrap()
        .to_string();
    let job = app.job(&id).await;
    assert_eq!(job["job_type"], "site_import");
    assert_eq!(job["environment_id"], env.as_str());
    assert_eq!(job["site_id"], site.as_str());
    assert!(!job.to_string().contains(TOKEN), "{job}");
    let p = payload(&app, &id).await;
    assert_eq!(
        p["archive_url"],
        "https://***@files.example.test/export/shop.tar.gz"
    );
    assert!(p["archive_url_secret"].is_string(), "{p}");
    for key in ["pre_backup_id", "release_name", "previous_release_id"] {
        assert!(p.get(key).is_some(), "{key} missing: {p}");
    }
    let backup = p["pre_backup_id"].as_str().unwrap();
    let (status, b) = app.get_json(&format!("/api/backups/{backup}")).await;
    assert_eq!(status, 200);
    assert_eq!(
        (b["status"].as_str(), b["backup_scope"].as_str()),
        (Some("pending"), Some("full"))
    );
    let (_, audit) = app.get_json("/api/audit-logs").await;
    assert!(audit.to_string().contains("site_import"), "{audit}");
    assert!(!audit.to_string().contains(TOKEN));

    // Every accepted form: s3://, file:///, a node path, a zip.
    for url in [
        "s3://exports/shop.zip",
        "file:///srv/exports/shop.tar.gz",
        "/srv/exports/shop.zip",
    ] {
        let id = post_job(
            &app,
            &format!("/api/sites/{site}/import"),
            json!({"archive_url": url}),
        )
        .await;
        let p = payload(&app, &id).await;
        assert_eq!(p["archive_url"], url);
        assert!(p["archive_url_secret"].is_null(), "{p}");
    }
}

#[tokio::test]
async fn a_bad_archive_url_is_400_naming_it() {
    let (app, _node, site, _env) = app_with_production().await;
    let path = format!("/api/sites/{site}/import");
    for bad in [
        "",
        "   ",
        "https://x.test/site.exe",
        "ftp://x.test/site.zip",
        "relative/site.zip",
        "file://relative/site.zip",
        "s3://bucket-only.zip",
        "http://169.254.169.254/latest/site.zip",
    ] {
        let r = app.post_json(&path, json!({"archive_url": bad})).await;
        assert_field_error(r, 400, "bad_request", "archive_url").await;
    }
    let r = app.post_json(&path, json!({})).await;
    assert_field_error(r, 400, "bad_request", "archive_url").await;
    let r = app
        .post_json(&path, json!({"archive_url": "/srv/a.zip", "extra": 1}))
        .await;
    assert_eq!(r.status(), 400);
    assert_eq!(app.count("jobs").await, 0);
    assert_eq!(app.count("backups").await, 0);
}

#[tokio::test]
async fn unknown_sites_are_404_and_production_not_ok_is_409() {
    let (app, node, site, env) = app_with_production().await;
    let none = uuid::Uuid::new_v4().to_string();
    let body = json!({"archive_url": "https://x.test/site.tar.gz"});
    let r = app
        .post_json(&format!("/api/sites/{none}/import"), body.clone())
        .await;
    assert_error(r, 404, "not_found").await;
    let path = format!("/api/sites/{site}/import");
    app.exec(
        "UPDATE nodes SET status = 'unreachable' WHERE id = ?",
        &[&node],
    )
    .await;
    assert_error(
        app.post_json(&path, body.clone()).await,
        409,
        "node_not_active",
    )
    .await;
    app.exec("UPDATE nodes SET status = 'active' WHERE id = ?", &[&node])
        .await;
    app.exec(
        "UPDATE environments SET status = 'failed' WHERE id = ?",
        &[&env],
    )
    .await;
    assert_error(app.post_json(&path, body).await, 409, "conflict").await;
    assert_eq!(app.count("jobs").await, 0);
}
