//! The deploy flow in a real browser (`tests/browser/deploys.mjs`) against the server with the
//! stand-in runner (the test runs the queue as the browser works): the first deploy succeeds, the second fails with a non-retryable code (and, once the engine hooks
//! run the health gate, the second health check fails). The same script runs against the real
//! node with PRESSLUFT_WAIT_HEALTH=1 and real sources (see its header). Set
//! PRESSLUFT_SKIP_BROWSER=1 to skip it on a machine without chromium.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use pressluft::jobs::JobErrorCode;
use serde_json::json;

use crate::helpers::{ADMIN_EMAIL, ADMIN_PASSWORD};
use crate::stand_in::{StandIn, Step};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deploy_form_and_live_timeline_in_a_browser() {
    if std::env::var_os("PRESSLUFT_SKIP_BROWSER").is_some() {
        eprintln!("browser test skipped: PRESSLUFT_SKIP_BROWSER is set");
        return;
    }
    let script_dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/browser");
    assert!(
        script_dir.join("node_modules/playwright-core").is_dir(),
        "run `npm ci` in tests/browser (the test command does) or set PRESSLUFT_SKIP_BROWSER=1"
    );
    let (app, _) = StandIn::new()
        .then("env_deploy", Step::ok(json!({})))
        .then(
            "env_deploy",
            Step::failing(
                JobErrorCode::ArchiveInvalid,
                "the source holds no WordPress content",
            ),
        )
        .then(
            "health_check",
            Step::ok(json!({"checks": [], "passed": true})),
        )
        .then(
            "health_check",
            Step::failing(JobErrorCode::HealthCheckFailed, "failed checks: http_ok"),
        )
        .spawn()
        .await;
    let node = app.insert_node("local", "active").await;
    let site = app.insert_site("Shop", "shop").await;
    let env = app.insert_environment(&site, &node, "Production").await;
    let shots = std::env::var("PRESSLUFT_SCREENSHOTS").unwrap_or_default();
    let mut child = Command::new("node")
        .arg("deploys.mjs")
        .current_dir(&script_dir)
        .env("PRESSLUFT_URL", &app.base)
        .env("PRESSLUFT_EMAIL", ADMIN_EMAIL)
        .env("PRESSLUFT_PASSWORD", ADMIN_PASSWORD)
        .env("PRESSLUFT_SCREENSHOTS", shots)
        .env("PRESSLUFT_ENVIRONMENT_ID", &env)
        .env(
            "PRESSLUFT_GOOD_SOURCE",
            "https://git.example.test/acme/site.git#main",
        )
        .env(
            "PRESSLUFT_BROKEN_SOURCE",
            "https://git.example.test/acme/site.git#broken",
        )
        .env("PRESSLUFT_DEPLOY_TIMEOUT_MS", "60000")
        .env_remove("PRESSLUFT_WAIT_HEALTH")
        .stdout(Stdio::piped())
        .spawn()
        .expect("node runs");
    let stdout = child.stdout.take().unwrap();
    let mut reader = tokio::task::spawn_blocking(move || {
        BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
            .collect::<Vec<_>>()
    });
    // Tests have no background worker: run the queue while the browser works.
    let transcript = loop {
        app.state.engine.run_until_idle("w").await.unwrap();
        tokio::select! {
            done = &mut reader => break done.unwrap(),
            _ = tokio::time::sleep(std::time::Duration::from_millis(200)) => {}
        }
    };
    let status = child.wait().expect("node exits");
    let jobs: Vec<(String, String, Option<String>)> = pressluft::store::query_as(
        "SELECT job_type, status, error_code FROM jobs ORDER BY created_at",
    )
    .fetch_all(app.store.pool())
    .await
    .unwrap();
    assert!(
        status.success() && transcript.iter().any(|l| l == "BROWSER_TEST_PASSED"),
        "browser test failed:\n{}\njobs: {jobs:?}",
        transcript.join("\n")
    );
}
