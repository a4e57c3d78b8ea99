//! The dashboard in a real browser: Debian's chromium driven by playwright-core
//! (`tests/browser/dashboard.mjs`), against the real server. Set PRESSLUFT_SKIP_BROWSER=1 to
//! skip it on a machine without chromium; the project's test command installs everything.

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};

use crate::helpers::{spawn_app, JobFixture, ADMIN_EMAIL, ADMIN_PASSWORD};

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
