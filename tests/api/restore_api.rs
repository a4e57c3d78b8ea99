//! The restore endpoint (`POST /api/environments/{id}/restore`, api.md): a completed backup of
//! the same site (any of its environments) is accepted as `env_restore` with a `pending`
//! pre-restore backup and an `accepted` audit row; a missing `backup_id` is 400 naming it, an
//! unknown environment or backup 404, another site's backup 400 naming `backup_id`, a backup
//! that is not completed 409 `conflict` (audited `rejected`), a failed environment 409.

use serde_json::{json, Value};

use crate::deploys_api::{app_with_environment, payload};
use crate::helpers::page_text;
use crate::helpers::*;

/// Inserts a backup of `env` with `status` (completed ones get a checksum).
async fn insert_backup(app: &TestApp, env: &str, status: &str) -> String {
    let id = uuid::Uuid::new_v4().to_string();
    let now = pressluft::clock::format_ts(pressluft::clock::Clock::now(&app.clock));
    let checksum = (status == "completed").then(|| format!("sha256:{}", "0".repeat(64)));
    app.exec(
        "INSERT INTO backups (id, environment_id, backup_scope, status, storage_type, storage_path,
             retention_until, checksum, size_bytes, created_at, completed_at, updated_at)
         VALUES (?, ?, 'full', ?, 'local', ?, ?, ?, 12, ?, ?, ?)",
        &[
            &id,
            env,
            status,
            &format!("/var/backups/pressluft/{id}"),
            &now,
            checksum.as_deref().unwrap_or(""),
            &now,
            &now,
            &now,
        ],
    )
    .await;
    if checksum.is_none() {
        app.exec(
            "UPDATE backups SET checksum = NULL, completed_at = NULL WHERE id = ?",
            &[&id],
        )
        .await;
    }
    id
}

async fn audit_results(app: &TestApp) -> Vec<(String, String)> {
    let (_, audit) = app.get_json("/api/audit-logs").await;
    let items = audit.as_array().cloned().unwrap_or_default();
    items
        .iter()
        .filter(|a| a["action"] == "env_restore")
        .map(|a| {
            (
                a["result"].as_str().unwrap_or("").to_string(),
                a["resource_id"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect()
}

#[tokio::test]
async fn a_completed_backup_of_the_same_site_is_restored_into_any_of_its_environments() {
    let (app, node, site, production) = app_with_environment().await;
    let staging = app.insert_environment(&site, &node, "Staging").await;
    let backup = insert_backup(&app, &production, "completed").await;

    // Production's backup into staging.
    let r = app
        .post_json(
            &format!("/api/environments/{staging}/restore"),
            json!({ "backup_id": backup }),
        )
        .await;
    assert_eq!(r.status(), 202);
    let job_id = job_id(r).await;
    let job = app.job(&job_id).await;
    assert_eq!(job["job_type"], "env_restore");
    assert_eq!(job["environment_id"], staging.as_str());
    let p = payload(&app, &job_id).await;
    assert_eq!(p["backup_id"], backup.as_str());
    let pre = p["pre_backup_id"].as_str().unwrap().to_string();
    assert!(p.get("release_name").is_some() && p.get("previous_release_id").is_some());
    let (_, pre_row) = app.get_json(&format!("/api/backups/{pre}")).await;
    assert_eq!(pre_row["status"], "pending", "{pre_row}");
    assert_eq!(pre_row["environment_id"], staging.as_str());
    assert_eq!(pre_row["backup_scope"], "full");
    assert_eq!(
        audit_results(&app).await,
        vec![("accepted".to_string(), staging.clone())]
    );
}

#[tokio::test]
async fn bad_restores_are_refused_with_their_codes() {
    let (app, node, site, env) = app_with_environment().await;
    let path = format!("/api/environments/{env}/restore");

    // Validation: the field named.
    for body in [
        json!({}),
        json!({"backup_id": ""}),
        json!({"backup_id": "  "}),
    ] {
        let r = app.post_json(&path, body.clone()).await;
        let e: Value = assert_error(r, 400, "bad_request").await;
        assert!(e.to_string().contains("backup_id"), "{body}: {e}");
    }
    let r = app
        .post_json(&path, json!({"backup_id": "x", "extra": 1}))
        .await;
    assert_eq!(r.status(), 400);

    // Unknown environment or backup: 404.
    let missing = uuid::Uuid::new_v4().to_string();
    let r = app
        .post_json(
            &format!("/api/environments/{missing}/restore"),
            json!({"backup_id": missing}),
        )
        .await;
    assert_error(r, 404, "not_found").await;
    let r = app.post_json(&path, json!({"backup_id": missing})).await;
    assert_error(r, 404, "not_found").await;

    // Another site's completed backup: 400 naming backup_id, audited as rejected.
    let other_site = app.insert_site("Other", "other").await;
    let other_env = app
        .insert_environment(&other_site, &node, "Production")
        .await;
    let foreign = insert_backup(&app, &other_env, "completed").await;
    let r = app.post_json(&path, json!({"backup_id": foreign})).await;
    let e = assert_error(r, 400, "bad_request").await;
    assert!(e.to_string().contains("backup_id"), "{e}");

    // A backup that is not completed: 409 conflict.
    for status in ["pending", "running", "failed"] {
        let b = insert_backup(&app, &env, status).await;
        let r = app.post_json(&path, json!({"backup_id": b})).await;
        assert_error(r, 409, "conflict").await;
    }

    // A failed environment: 409 conflict, even with a good backup.
    let good = insert_backup(&app, &env, "completed").await;
    app.exec(
        "UPDATE environments SET status = 'failed' WHERE id = ?",
        &[&env],
    )
    .await;
    let r = app.post_json(&path, json!({"backup_id": good})).await;
    assert_error(r, 409, "conflict").await;

    let audit = audit_results(&app).await;
    assert_eq!(audit.len(), 5, "{audit:?}");
    assert!(
        audit.iter().all(|(r, id)| r == "rejected" && id == &env),
        "{audit:?}"
    );
    let (count,): (i64,) =
        pressluft::store::query_as("SELECT COUNT(*) FROM jobs WHERE job_type = 'env_restore'")
            .fetch_one(app.store.pool())
            .await
            .unwrap();
    assert_eq!(count, 0, "nothing enqueued");
    let _ = site;
}

/// The dashboard: the environment page's Restore section, the list of the site's completed
/// backups (any environment), the confirmation naming the backup and what is replaced, the
/// Backups panel's "Restore", the form (CSRF) → the job's page, a refusal shown on the page.
#[tokio::test]
async fn the_dashboard_restores_with_a_confirmation() {
    use crate::backups_ui::{fixture, insert_backup as insert_ui_backup, Fixture};
    let Fixture { app, c, env } = fixture().await;
    let site: (String,) =
        pressluft::store::query_as("SELECT site_id FROM environments WHERE id = ?")
            .bind(&env)
            .fetch_one(app.store.pool())
            .await
            .unwrap();
    let node: (String,) =
        pressluft::store::query_as("SELECT node_id FROM environments WHERE id = ?")
            .bind(&env)
            .fetch_one(app.store.pool())
            .await
            .unwrap();
    let staging = app.insert_environment(&site.0, &node.0, "Staging").await;
    let db_backup =
        insert_ui_backup(&app, &env, "db", "completed", ("local", "/var/backups/x")).await;
    let pending =
        insert_ui_backup(&app, &env, "full", "pending", ("local", "/var/backups/y")).await;

    let html = page_text(&c, app.url(&format!("/environments/{env}"))).await;
    assert!(
        html.contains(&format!("href=\"/environments/{env}/restore\"")),
        "restore link"
    );
    assert!(
        html.contains(&format!("href=\"/backups/{db_backup}/restore\"")),
        "Restore per completed backup"
    );
    assert!(
        !html.contains(&format!("href=\"/backups/{pending}/restore\"")),
        "none for a pending one"
    );

    // From staging: production's completed backup is listed, the pending one is not.
    let list = page_text(&c, app.url(&format!("/environments/{staging}/restore"))).await;
    assert!(
        list.contains(&format!("data-backup-id=\"{db_backup}\"")),
        "{list}"
    );
    assert!(!list.contains(&format!("data-backup-id=\"{pending}\"")));
    assert!(!list.contains("data-test=\"restore-confirm\""));

    // The confirmation: the backup, its source, its scope, what is replaced.
    let confirm = page_text(
        &c,
        app.url(&format!(
            "/environments/{staging}/restore?backup_id={db_backup}"
        )),
    )
    .await;
    assert!(
        confirm.contains("data-test=\"restore-confirm\""),
        "{confirm}"
    );
    assert!(confirm.contains(&db_backup));
    assert!(confirm.contains("Production"), "source environment named");
    assert!(confirm.contains("another environment"));
    assert!(confirm.contains("the database (every table)"));
    assert!(confirm.contains("full pre-restore backup"));
    assert!(confirm.contains("rewritten"));

    // The panel's Restore leads to the confirmation for the backup's own environment.
    let r = crate::helpers::get_with(&c, app.url(&format!("/backups/{db_backup}/restore"))).await;
    let location = r.headers()["location"].to_str().unwrap().to_string();
    assert_eq!(
        location,
        format!("/environments/{env}/restore?backup_id={db_backup}")
    );

    // Without the CSRF token: refused; with it: the job's page.
    let path = format!("/environments/{staging}/restore");
    let r = crate::helpers::post_form(&c, app.url(&path), &[("backup_id", &db_backup)]).await;
    assert_eq!(r.status(), 403);
    let forms = crate::helpers::CsrfForms::new(&app, &c, &confirm);
    let r = forms.post(&path, &[("backup_id", &pending)]).await;
    assert_eq!(r.status(), 409);
    assert!(r
        .text()
        .await
        .unwrap()
        .contains("data-test=\"restore-error\""));
    let r = forms.post(&path, &[("backup_id", &db_backup)]).await;
    assert_eq!(r.status(), 303);
    let location = r.headers()["location"].to_str().unwrap().to_string();
    let job_id = location.strip_prefix("/jobs/").unwrap();
    let (kind,): (String,) = pressluft::store::query_as("SELECT job_type FROM jobs WHERE id = ?")
        .bind(job_id)
        .fetch_one(app.store.pool())
        .await
        .unwrap();
    assert_eq!(kind, "env_restore");
}
