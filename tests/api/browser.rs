//! The dashboard in a real browser: Debian's chromium driven by playwright-core
//! (`tests/browser/dashboard.mjs`), against the real server. Set PRESSLUFT_SKIP_BROWSER=1 to
//! skip it on a machine without chromium; the project's test command installs everything.

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};

use crate::helpers::{spawn_app, JobFixture, TestApp, ADMIN_EMAIL, ADMIN_PASSWORD};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dashboard_login_live_jobs_logout() {
    if std::env::var_os("PRESSLUFT_SKIP_BROWSER").is_some() {
        eprintln!("browser test skipped: PRESSLUFT_SKIP_BROWSER is set");
        return;
    }
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let script_dir = root.join("tests/browser");
    assert!(
        script_dir.join("node_modules/playwright-core").is_dir(),
        "run `npm ci` in tests/browser (the test command does) or set PRESSLUFT_SKIP_BROWSER=1"
    );
    let app = spawn_app().await;
    let node = app.insert_node("local", "active").await;
    let shots = std::env::var("PRESSLUFT_SCREENSHOTS").unwrap_or_default();

    let mut child = Command::new("node")
        .arg("dashboard.mjs")
        .current_dir(&script_dir)
        .env("PRESSLUFT_URL", &app.base)
        .env("PRESSLUFT_EMAIL", ADMIN_EMAIL)
        .env("PRESSLUFT_PASSWORD", ADMIN_PASSWORD)
        .env("PRESSLUFT_SCREENSHOTS", shots)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("node runs");
    let mut stdin = child.stdin.take().unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let mut passed = false;
    let mut transcript = Vec::new();
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(120);
    while let Ok(Some(line)) = tokio::time::timeout_at(deadline, rx.recv()).await {
        if line == "INSERT_JOB" {
            let mut f = JobFixture::new("node_provision", "queued", &node);
            f.offset_ms = 1000;
            let id = app.insert_job(f).await;
            writeln!(stdin, "{id}").unwrap();
        }
        if line == "INSERT_SITE" {
            let site = insert_busy_site(&app, &node).await;
            writeln!(stdin, "{site}").unwrap();
        }
        passed |= line == "BROWSER_TEST_PASSED";
        transcript.push(line);
    }
    let status = child.wait().expect("node exits");
    assert!(
        status.success() && passed,
        "browser test failed:\n{}",
        transcript.join("\n")
    );
}

/// A site whose jobs and releases tables hold the widest values they show in practice (long
/// names, every timestamp, the longest error code, a git source with a commit): the browser
/// checks those tables fit or scroll inside their card. Returns the site id.
async fn insert_busy_site(app: &TestApp, node: &str) -> String {
    let site = app
        .insert_site("Acme Outdoor Equipment Store", "acme-outdoor-equipment")
        .await;
    let prod = app.insert_environment(&site, node, "Production").await;
    let staging = app
        .insert_environment(&site, node, "Staging before the spring sale")
        .await;
    app.exec(
        "UPDATE environments SET environment_type = 'staging' WHERE id = ?",
        &[&staging],
    )
    .await;
    let now = app.now();
    for (i, (env, code, status)) in [
        (&prod, None, "succeeded"),
        (&staging, Some("BACKUP_CHECKSUM_MISMATCH"), "failed"),
        (&staging, Some("ANSIBLE_HOST_UNREACHABLE"), "failed"),
        (&prod, None, "running"),
    ]
    .into_iter()
    .enumerate()
    {
        let mut f = JobFixture::new("env_create", status, node);
        f.site_id = Some(&site);
        f.environment_id = Some(env);
        f.error_code = code;
        f.attempt_count = 3;
        f.offset_ms = 2000 + i as i64;
        let job = app.insert_job(f).await;
        pressluft::store::query("UPDATE jobs SET started_at = ?, finished_at = ? WHERE id = ?")
            .bind(&now)
            .bind((status != "running").then_some(&now))
            .bind(&job)
            .execute(app.store.pool())
            .await
            .unwrap();
        pressluft::store::query(
            "INSERT INTO releases (id, environment_id, source_type, source_ref, path,
               health_status, notes, job_id, created_at)
             VALUES (?, ?, 'git', ?, ?, 'unhealthy', ?, ?, ?)",
        )
        .bind(uuid::Uuid::new_v4().to_string())
        .bind(env)
        .bind("https://github.com/acme-outdoor/storefront-wordpress.git@0123456789abcdef0123456789abcdef01234567")
        .bind(format!("/srv/pressluft/sites/acme-outdoor-equipment/releases/20260101T00000{i}Z-0123456789ab"))
        .bind("Cloned from production after the plugin update")
        .bind(&job)
        .bind(&now)
        .execute(app.store.pool())
        .await
        .unwrap();
    }
    app.state.events.jobs_changed();
    site
}
