//! Reviewing and approving a held safe-update run in a real browser
//! (`tests/browser/safe-updates.mjs`) against the server with the stand-in runner: the run and
//! its images (small PNGs in the run's directory) are inserted through the store, the browser
//! sees the three images loaded, approves, and sees the confirmation and the production
//! update's job (the test runs the queue as the browser works, so the job's panel turns succeeded live). Set PRESSLUFT_SKIP_BROWSER=1 to
//! skip it on a machine without chromium.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use crate::deploys_api::insert_release;
use crate::helpers::{ADMIN_EMAIL, ADMIN_PASSWORD};
use crate::safe_updates_ui::insert_held_run;
use crate::stand_in::StandIn;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_held_run_is_reviewed_and_approved_in_a_browser() {
    if std::env::var_os("PRESSLUFT_SKIP_BROWSER").is_some() {
        eprintln!("browser test skipped: PRESSLUFT_SKIP_BROWSER is set");
        return;
    }
    let script_dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/browser");
    assert!(
        script_dir.join("node_modules/playwright-core").is_dir(),
        "run `npm ci` in tests/browser (the test command does) or set PRESSLUFT_SKIP_BROWSER=1"
    );
    let (app, _) = StandIn::new().spawn().await;
    let node = app.insert_node("local", "active").await;
    let site = app.insert_site("Shop", "shop").await;
    let env = app.insert_environment(&site, &node, "Production").await;
    app.exec(
        "UPDATE sites SET primary_environment_id = ? WHERE id = ?",
        &[&env, &site],
    )
    .await;
    // Production has a current release (an update builds the next one from it).
    let release = insert_release(&app, &env, "20261201-100000", "healthy", 0).await;
    app.exec(
        "UPDATE environments SET current_release_id = ? WHERE id = ?",
        &[&release, &env],
    )
    .await;
    let run = insert_held_run(&app, &site, &node).await;
    let mut child = Command::new("node")
        .arg("safe-updates.mjs")
        .current_dir(&script_dir)
        .env("PRESSLUFT_URL", &app.base)
        .env("PRESSLUFT_EMAIL", ADMIN_EMAIL)
        .env("PRESSLUFT_PASSWORD", ADMIN_PASSWORD)
        .env(
            "PRESSLUFT_SCREENSHOTS",
            std::env::var("PRESSLUFT_SCREENSHOTS").unwrap_or_default(),
        )
        .env("PRESSLUFT_SITE_ID", &site)
        .env("PRESSLUFT_RUN_ID", &run)
        .env("PRESSLUFT_JOB_TIMEOUT_MS", "60000")
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
    // Tests have no background worker: run the queue while the browser works (the approved
    // update, once the browser started it).
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
    // What the browser did is what the store holds: approved, production's update queued.
    let (outcome, apply): (String, Option<String>) = pressluft::store::query_as(
        "SELECT outcome, apply_job_id FROM safe_update_runs WHERE id = ?",
    )
    .bind(&run)
    .fetch_one(app.store.pool())
    .await
    .unwrap();
    assert_eq!(outcome, "approved");
    let apply = apply.expect("an apply job");
    assert!(transcript.iter().any(|l| *l == format!("JOB {apply}")));
    let (kind, job_env): (String, String) =
        pressluft::store::query_as("SELECT job_type, environment_id FROM jobs WHERE id = ?")
            .bind(&apply)
            .fetch_one(app.store.pool())
            .await
            .unwrap();
    assert_eq!(
        (kind.as_str(), job_env.as_str()),
        ("env_update", env.as_str())
    );
}
