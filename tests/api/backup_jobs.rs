//! The `backup_create` and `backup_verify` kinds through the stand-in runner: the backup's
//! transitions (state-machines.md, Backup) — `pending → running` at the start (a retry finds it
//! running), `completed` only with the result's checksum and size, `failed` with the job's code
//! after the last attempt, `failed` when a queued backup is cancelled — and Verify's
//! `verify_status` (`ok`, `mismatch` not retried, other failures leave it alone). The real node
//! work is the end-to-end test (`e2e_backups.rs`).

use pressluft::domain::{BackupStatus, VerifyStatus};
use pressluft::jobs::JobErrorCode;
use pressluft::store::backups::BackupRecord;
use serde_json::json;

use crate::helpers::TestApp;
use crate::stand_in::{failing_three_times, StandIn, Step};

/// Starts a backup of `environment_id` through `POST /api/environments/{id}/backups`; returns
/// (backup, job).
pub async fn start_backup(app: &TestApp, environment_id: &str, scope: &str) -> (String, String) {
    let r = app
        .post_json(
            &format!("/api/environments/{environment_id}/backups"),
            json!({ "backup_scope": scope }),
        )
        .await;
    assert_eq!(r.status(), 202, "backup accepted");
    let body: serde_json::Value = r.json().await.unwrap();
    (
        body["backup_id"].as_str().unwrap().to_string(),
        body["job_id"].as_str().unwrap().to_string(),
    )
}

/// Starts a Verify of `backup_id` through `POST /api/backups/{id}/verify`; returns the job.
pub async fn start_verify(app: &TestApp, backup_id: &str) -> String {
    crate::helpers::job_id(
        app.post_empty(&format!("/api/backups/{backup_id}/verify"))
            .await,
    )
    .await
}

// ----------------------------------------------------------------------------------------------

/// The backup row.
pub async fn backup(app: &TestApp, id: &str) -> BackupRecord {
    app.store.get_backup(id).await.unwrap().expect("backup row")
}

/// A site whose `site_create` ran with the stand-in (backup jobs scripted by `script`); returns
/// (app, runner, production environment).
async fn site_with(
    script: Vec<(&'static str, Step)>,
) -> (TestApp, std::sync::Arc<StandIn>, String) {
    let (app, runner, env, _) = StandIn::new()
        .script(script)
        .otherwise(Step::Plausible)
        .spawn_with_site()
        .await;
    (app, runner, env)
}

/// Runs the queue until idle, past the retry backoff first.
async fn run_after_backoff(app: &TestApp) {
    app.clock.advance(time::Duration::minutes(16));
    app.state.engine.run_until_idle("w").await.unwrap();
}

#[tokio::test]
async fn a_backup_runs_pending_to_running_to_completed_with_checksum_and_size() {
    let (app, runner, env) = site_with(vec![(
        "backup_create",
        Step::fail(JobErrorCode::AnsibleHostFailed),
    )])
    .await;
    let (id, job) = start_backup(&app, &env, "full").await;
    assert_eq!(backup(&app, &id).await.status, BackupStatus::Pending);

    app.state.engine.run_until_idle("w").await.unwrap();
    assert_eq!(app.job(&job).await["status"], "queued", "retried");
    let b = backup(&app, &id).await;
    assert_eq!(b.status, BackupStatus::Running, "running across retries");
    assert_eq!(b.checksum, None);

    run_after_backoff(&app).await;
    assert_eq!(app.job(&job).await["status"], "succeeded");
    assert_eq!(runner.runs_of(&job), 2);
    let b = backup(&app, &id).await;
    assert_eq!(b.status, BackupStatus::Completed);
    assert_eq!(
        b.checksum.as_deref(),
        Some(&*format!("sha256:{}", "ab".repeat(32)))
    );
    assert_eq!(b.size_bytes, Some(4242));
    assert!(b.completed_at.is_some());
    assert_eq!(b.error_code, None);
}

#[tokio::test]
async fn a_result_without_a_checksum_fails_the_backup() {
    let (app, _, env) = site_with(vec![
        ("backup_create", Step::ok(json!({"size_bytes": 10}))),
        (
            "backup_create",
            Step::ok(json!({"checksum": "md5:abc", "size_bytes": 10})),
        ),
    ])
    .await;
    for _ in 0..2 {
        let (id, job) = start_backup(&app, &env, "db").await;
        app.state.engine.run_until_idle("w").await.unwrap();
        let b = backup(&app, &id).await;
        assert_eq!(b.status, BackupStatus::Failed);
        assert_eq!(b.checksum, None);
        assert_eq!(b.error_code.as_deref(), Some("ANSIBLE_UNEXPECTED_ERROR"));
        // The job says so too (a success with an unusable result is no success), at once.
        let j = app.job(&job).await;
        assert_eq!(
            (j["status"].as_str(), j["error_code"].as_str()),
            (Some("failed"), Some("ANSIBLE_UNEXPECTED_ERROR")),
            "{j}"
        );
        assert_eq!(
            j["error_message"],
            "the playbook reported success, but it reported no sha256 checksum and size of the backup"
        );
        assert_eq!(j["attempt_count"], 1, "not retried");
    }
}

#[tokio::test]
async fn the_last_failed_attempt_fails_the_backup_with_its_code() {
    let unreachable = JobErrorCode::BackupStorageUnreachable;
    let (app, runner, env) = site_with(failing_three_times("backup_create", unreachable)).await;
    let (id, job) = start_backup(&app, &env, "files").await;
    app.state.engine.run_until_idle("w").await.unwrap();
    run_after_backoff(&app).await;
    assert_eq!(backup(&app, &id).await.status, BackupStatus::Running);
    run_after_backoff(&app).await;
    let j = app.job(&job).await;
    assert_eq!(j["status"], "failed", "{j}");
    assert_eq!(j["error_code"], "BACKUP_STORAGE_UNREACHABLE");
    assert_eq!(runner.runs_of(&job), 3, "retryable: three attempts");
    let b = backup(&app, &id).await;
    assert_eq!(b.status, BackupStatus::Failed);
    assert_eq!(b.error_code.as_deref(), Some("BACKUP_STORAGE_UNREACHABLE"));
}

#[tokio::test]
async fn cancelling_a_queued_backup_fails_it() {
    let (app, runner, env) = site_with(vec![]).await;
    let (id, job) = start_backup(&app, &env, "full").await;
    let r = app.post_empty(&format!("/api/jobs/{job}/cancel")).await;
    assert!(r.status().is_success(), "{}", r.status());
    app.state.engine.run_until_idle("w").await.unwrap();
    assert_eq!(app.job(&job).await["status"], "cancelled");
    assert_eq!(runner.runs_of(&job), 0);
    let b = backup(&app, &id).await;
    assert_eq!(b.status, BackupStatus::Failed);
    assert_eq!(b.error_code, None, "a cancel has no error code");
}

#[tokio::test]
async fn verify_records_ok_and_mismatch_and_other_failures_change_nothing() {
    let unreachable = || Step::fail(JobErrorCode::BackupStorageUnreachable);
    let (app, runner, env) = site_with(vec![
        ("backup_verify", Step::Plausible),
        (
            "backup_verify",
            Step::failing(
                JobErrorCode::BackupChecksumMismatch,
                "artifact db.sql.zst: sha256 differs",
            ),
        ),
        ("backup_verify", unreachable()),
        ("backup_verify", unreachable()),
        ("backup_verify", unreachable()),
    ])
    .await;
    let (id, _) = start_backup(&app, &env, "db").await;
    app.state.engine.run_until_idle("w").await.unwrap();
    assert_eq!(backup(&app, &id).await.status, BackupStatus::Completed);

    let ok = start_verify(&app, &id).await;
    app.state.engine.run_until_idle("w").await.unwrap();
    assert_eq!(app.job(&ok).await["status"], "succeeded");
    let b = backup(&app, &id).await;
    assert_eq!(b.verify_status, Some(VerifyStatus::Ok));
    let first_verified = b.verified_at.clone().expect("verified_at");

    app.clock.advance(time::Duration::seconds(5));
    let bad = start_verify(&app, &id).await;
    app.state.engine.run_until_idle("w").await.unwrap();
    let j = app.job(&bad).await;
    assert_eq!(j["status"], "failed", "{j}");
    assert_eq!(j["error_code"], "BACKUP_CHECKSUM_MISMATCH");
    assert_eq!(runner.runs_of(&bad), 1, "a mismatch is not retried");
    let b = backup(&app, &id).await;
    assert_eq!(b.verify_status, Some(VerifyStatus::Mismatch));
    assert_ne!(b.verified_at.as_deref(), Some(first_verified.as_str()));
    assert_eq!(b.status, BackupStatus::Completed, "the backup itself stays");

    let down = start_verify(&app, &id).await;
    app.state.engine.run_until_idle("w").await.unwrap();
    run_after_backoff(&app).await;
    run_after_backoff(&app).await;
    let j = app.job(&down).await;
    assert_eq!(j["status"], "failed", "{j}");
    assert_eq!(j["error_code"], "BACKUP_STORAGE_UNREACHABLE");
    assert_eq!(runner.runs_of(&down), 3);
    let after = backup(&app, &id).await;
    assert_eq!(
        after.verify_status,
        Some(VerifyStatus::Mismatch),
        "unchanged"
    );
    assert_eq!(after.verified_at, b.verified_at, "unchanged");
}
