//! The environment page's Backups section over plain HTTP (the stand-in runner where a job
//! would run): the rows and their labels, the Create Backup and Verify forms, the live
//! fragment, and the download route's refusals. The real download from this machine's node is
//! in `backups_download`.

use pressluft::clock::Clock;
use time::Duration;

use crate::events::read_until;
use crate::helpers::{client, get_with, page_text, CsrfForms, TestApp};
use crate::stand_in::StandIn;

/// A site's production environment on an active node, and a logged-in browser-like client.
pub struct Fixture {
    pub app: TestApp,
    pub c: reqwest::Client,
    pub env: String,
}

pub async fn fixture() -> Fixture {
    let (app, _) = StandIn::new().spawn().await;
    let node = app.insert_node("alpha", "active").await;
    let site = app.insert_site("Shop", "shop").await;
    let env = app.insert_environment(&site, &node, "Production").await;
    let c = client();
    crate::helpers::submit_login_form(&app, &c, "/login", crate::helpers::ADMIN_PASSWORD, None)
        .await;
    Fixture { app, c, env }
}

/// Inserts a backup row: `(scope, status, storage_type, storage_path)`, completed ones with a
/// checksum and size.
pub async fn insert_backup(
    app: &TestApp,
    env: &str,
    scope: &str,
    status: &str,
    storage: (&str, &str),
) -> String {
    let id = uuid::Uuid::new_v4().to_string();
    let now = app.now();
    let until =
        pressluft::clock::format_ts(app.clock.now() + Duration::days(30) + Duration::hours(1));
    let completed = status == "completed";
    let checksum = format!("sha256:{}", "ab12".repeat(16));
    app.exec(
        "INSERT INTO backups (id, environment_id, backup_scope, status, storage_type, storage_path,
             retention_until, checksum, size_bytes, created_at, completed_at, updated_at)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, CAST(? AS BIGINT), ?, ?, ?)",
        &[
            &id,
            env,
            scope,
            status,
            storage.0,
            storage.1,
            &until,
            if completed { &checksum } else { "" },
            if completed { "1572864" } else { "0" },
            &now,
            if completed { &now } else { "" },
            &now,
        ],
    )
    .await;
    app.exec(
        "UPDATE backups SET checksum = NULLIF(checksum, ''), completed_at = NULLIF(completed_at, ''),
             size_bytes = NULLIF(size_bytes, 0) WHERE id = ?",
        &[&id],
    )
    .await;
    id
}

const LOCAL: (&str, &str) = ("local", "/var/backups/pressluft/s/e/b/");
const S3: (&str, &str) = ("s3", "s3://bk/pressluft/s/e/b/");

#[tokio::test]
async fn the_section_lists_backups_with_their_labels() {
    let Fixture { app, c, env } = fixture().await;
    let done = insert_backup(&app, &env, "full", "completed", LOCAL).await;
    app.exec(
        "UPDATE backups SET verify_status = 'ok', verified_at = ? WHERE id = ?",
        &[&app.now(), &done],
    )
    .await;
    let off_site = insert_backup(&app, &env, "db", "completed", S3).await;
    let failed = insert_backup(&app, &env, "files", "failed", LOCAL).await;
    app.exec(
        "UPDATE backups SET error_code = 'BACKUP_STORAGE_UNREACHABLE' WHERE id = ?",
        &[&failed],
    )
    .await;

    let html = page_text(&c, app.url(&format!("/environments/{env}"))).await;
    assert!(html.contains("data-test=\"create-backup-form\""), "{html}");
    assert_eq!(html.matches("data-test=\"backup-row\"").count(), 3);
    assert!(html.contains(">not off-site<") && html.contains(">off-site<"));
    assert!(html.contains("expires in 30 days"), "{html}");
    assert!(html.contains("1.5 MiB"));
    let checksum = format!("sha256:{}", "ab12".repeat(16));
    assert!(html.contains(&format!("title=\"{checksum}\"")));
    assert!(html.contains(">sha256:ab12ab12ab12<"), "short checksum");
    assert!(html.contains("BACKUP_STORAGE_UNREACHABLE"));
    assert!(html.contains(">ok</span>"), "verify status shown");
    // Downloads: only completed backups, only the artifacts their scope has.
    for a in ["db.sql.zst", "files.tar.zst"] {
        assert!(html.contains(&format!("/backups/{done}/artifacts/{a}")));
        assert!(!html.contains(&format!("/backups/{failed}/artifacts/{a}")));
    }
    assert!(html.contains(&format!("/backups/{off_site}/artifacts/db.sql.zst")));
    assert!(!html.contains(&format!("/backups/{off_site}/artifacts/files.tar.zst")));
    assert!(html.contains(&format!("/backups/{done}/verify")));
    assert!(!html.contains(&format!("/backups/{failed}/verify")));
    // Schedule: the default interval, next = the newest full backup + 24 h, no cleanup yet.
    assert!(html.contains("full backup every 24 hours"), "{html}");
    let next = pressluft::clock::format_ts(app.clock.now() + Duration::hours(24));
    assert!(html.contains(&next[..16].replacen('T', " ", 1)), "{html}");
    assert!(html.contains("last never"));

    app.exec(
        "INSERT INTO settings (key, value, updated_at) VALUES ('backup_schedule_hours', '0', ?)
         ON CONFLICT(key) DO UPDATE SET value = excluded.value",
        &[&app.now()],
    )
    .await;
    let html = page_text(&c, app.url(&format!("/environments/{env}"))).await;
    assert!(html.contains("scheduled backups are off"), "{html}");
}

#[tokio::test]
async fn create_backup_form_starts_the_job_and_names_a_bad_scope() {
    let Fixture { app, c, env } = fixture().await;
    let html = page_text(&c, app.url(&format!("/environments/{env}"))).await;
    let forms = CsrfForms::new(&app, &c, &html);
    let path = format!("/environments/{env}/backups");

    let r = forms.post(&path, &[("backup_scope", "weekly")]).await;
    assert_eq!(r.status(), 400);
    let html = r.text().await.unwrap();
    assert!(html.contains("data-test=\"backup-scope-error\""), "{html}");
    assert!(html.contains("must be one of: db, files, full"));
    assert_eq!(app.count("backups").await, 0);

    let r = crate::helpers::post_form(&c, app.url(&path), &[("backup_scope", "db")]).await;
    assert_eq!(r.status(), 403, "no CSRF token");

    let r = forms.post(&path, &[("backup_scope", "db")]).await;
    assert_eq!(r.status(), 303);
    let location = r.headers()["location"].to_str().unwrap().to_string();
    let job_id = location.strip_prefix("/jobs/").expect("the job's page");
    let job = app.store.get_job(job_id).await.unwrap().expect("job");
    assert_eq!(job.job_type.as_str(), "backup_create");
    let html = page_text(&c, app.url(&format!("/environments/{env}"))).await;
    assert_eq!(html.matches("data-test=\"backup-row\"").count(), 1);
    assert!(html.contains("<td>db</td>"), "{html}");
}

#[tokio::test]
async fn verify_button_starts_a_verify_or_says_why_not() {
    let Fixture { app, c, env } = fixture().await;
    let done = insert_backup(&app, &env, "full", "completed", LOCAL).await;
    let pending = insert_backup(&app, &env, "full", "pending", LOCAL).await;
    let html = page_text(&c, app.url(&format!("/environments/{env}"))).await;
    let forms = CsrfForms::new(&app, &c, &html);

    let r = forms.post(&format!("/backups/{done}/verify"), &[]).await;
    assert_eq!(r.status(), 303);
    let location = r.headers()["location"].to_str().unwrap().to_string();
    let job_id = location.strip_prefix("/jobs/").unwrap();
    let job = app.store.get_job(job_id).await.unwrap().expect("job");
    assert_eq!(job.job_type.as_str(), "backup_verify");

    let r = forms.post(&format!("/backups/{pending}/verify"), &[]).await;
    assert_eq!(r.status(), 409);
    let html = r.text().await.unwrap();
    assert!(
        html.contains("Not verified: only a completed backup can be verified"),
        "{html}"
    );
}

#[tokio::test]
async fn the_environment_stream_re_renders_backups() {
    let Fixture { app, c, env } = fixture().await;
    let id = insert_backup(&app, &env, "full", "running", LOCAL).await;
    let r = get_with(
        &c,
        app.url(&format!("/ui/events?view=environment&id={env}")),
    )
    .await;
    assert_eq!(r.status(), 200);
    app.clock.advance(Duration::seconds(1));
    app.exec(
        "UPDATE backups SET status = 'failed', error_code = 'BACKUP_FAILED',
             state_version = state_version + 1, updated_at = ? WHERE id = ?",
        &[&app.now(), &id],
    )
    .await;
    app.state.events.jobs_changed();
    let seen = read_until(r, "BACKUP_FAILED").await;
    assert!(seen.contains("event: backups"), "{seen}");
}

#[tokio::test]
async fn downloads_are_refused_unless_completed_and_logged_in() {
    let Fixture { app, c, env } = fixture().await;
    let pending = insert_backup(&app, &env, "full", "pending", LOCAL).await;
    let db_only = insert_backup(&app, &env, "db", "completed", LOCAL).await;

    // Not logged in: the login page, nothing run.
    let r = get_with(
        &client(),
        app.url(&format!("/backups/{db_only}/artifacts/db.sql.zst")),
    )
    .await;
    assert_eq!(r.status(), 303);
    assert!(r.headers()["location"]
        .to_str()
        .unwrap()
        .starts_with("/login"));

    let cases = [
        (
            format!("/backups/{pending}/artifacts/db.sql.zst"),
            409,
            "only a completed backup can be downloaded",
        ),
        (
            format!("/backups/{db_only}/artifacts/files.tar.zst"),
            400,
            "a db backup has no files.tar.zst",
        ),
        (
            format!("/backups/{db_only}/artifacts/manifest.json"),
            400,
            "must be one of: db.sql.zst, files.tar.zst",
        ),
        (
            format!("/backups/{db_only}/artifacts/..%2F..%2Fetc%2Fpasswd"),
            400,
            "must be one of",
        ),
        (
            format!("/backups/{}/artifacts/db.sql.zst", uuid::Uuid::new_v4()),
            404,
            "not found",
        ),
        (
            "/backups/not-a-uuid/artifacts/db.sql.zst".to_string(),
            400,
            "must be a UUID",
        ),
    ];
    for (path, status, message) in cases {
        let r = get_with(&c, app.url(&path)).await;
        assert_eq!(r.status(), status, "{path}");
        assert!(r.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html"));
        let html = r.text().await.unwrap();
        assert!(html.contains(message), "{path}: {html}");
    }
    let (rejected,): (i64,) = pressluft::store::query_as(
        "SELECT COUNT(*) FROM audit_logs WHERE action = 'backup_download' AND result = 'rejected'",
    )
    .fetch_one(app.store.pool())
    .await
    .unwrap();
    assert_eq!(rejected, 4, "refusals of existing backups are audited");
}
