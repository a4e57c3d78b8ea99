//! The Caching panel in a real browser (`tests/browser/cache.mjs`) against the server with the
//! stand-in runner (the test runs the queue as the browser works): the page cache off and on,
//! then a purge, each job's progress seen live in the panel. The same script runs against the
//! real node in the end-to-end flow (`e2e_cache.rs`). Set PRESSLUFT_SKIP_BROWSER=1 to skip it
//! on a machine without chromium.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use crate::helpers::{ADMIN_EMAIL, ADMIN_PASSWORD};
use crate::stand_in::StandIn;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cache_panel_toggles_and_purges_live_in_a_browser() {
    if std::env::var_os("PRESSLUFT_SKIP_BROWSER").is_some() {
        eprintln!("browser test skipped: PRESSLUFT_SKIP_BROWSER is set");
        return;
    }
    let script_dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/browser");
    assert!(
        script_dir.join("node_modules/playwright-core").is_dir(),
        "run `npm ci` in tests/browser (the test command does) or set PRESSLUFT_SKIP_BROWSER=1"
    );
    let (app, stand_in) = StandIn::new().spawn().await;
    let node = app.insert_node("local", "active").await;
    let site = app.insert_site("Shop", "shop").await;
    let env = app.insert_environment(&site, &node, "Production").await;
    let mut child = Command::new("node")
        .arg("cache.mjs")
        .current_dir(&script_dir)
        .env("PRESSLUFT_URL", &app.base)
        .env("PRESSLUFT_EMAIL", ADMIN_EMAIL)
        .env("PRESSLUFT_PASSWORD", ADMIN_PASSWORD)
        .env(
            "PRESSLUFT_SCREENSHOTS",
            std::env::var("PRESSLUFT_SCREENSHOTS").unwrap_or_default(),
        )
        .env("PRESSLUFT_ENVIRONMENT_ID", &env)
        .env("PRESSLUFT_CACHE_TIMEOUT_MS", "60000")
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
    // Tests have no background worker: run the queue while the browser works. The test clock
    // stands still, as in the end-to-end flow: every job has the same creation time and the
    // panel must still show the newest.
    let transcript = loop {
        app.state.engine.run_until_idle("w").await.unwrap();
        tokio::select! {
            done = &mut reader => break done.unwrap(),
            _ = tokio::time::sleep(std::time::Duration::from_millis(200)) => {}
        }
    };
    let status = child.wait().expect("node exits");
    let jobs: Vec<(String, String)> =
        pressluft::store::query_as("SELECT job_type, status FROM jobs ORDER BY created_at, rowid")
            .fetch_all(app.store.pool())
            .await
            .unwrap();
    assert!(
        status.success() && transcript.iter().any(|l| l == "BROWSER_TEST_PASSED"),
        "browser test failed:\n{}\njobs: {jobs:?}",
        transcript.join("\n")
    );
    let done = |t: &str| (t.to_string(), "succeeded".to_string());
    assert_eq!(
        jobs,
        [
            done("env_cache_toggle"),
            done("env_cache_toggle"),
            done("cache_purge")
        ]
    );
    assert_eq!(stand_in.runs().len(), 3);
    app.login().await;
    let (_, e) = app.get_json(&format!("/api/environments/{env}")).await;
    assert_eq!(e["fastcgi_cache_enabled"], true);
}
