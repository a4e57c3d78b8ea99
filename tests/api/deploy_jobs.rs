//! The health gate and rollback in the job engine, through the stand-in runner (it never runs
//! a playbook): `env_deploy`, `env_update` and a manual `release_rollback` leave site and
//! environment `deploying` and their audit `accepted` until their `health_check` follow-up
//! ends; a failed gate marks the release `unhealthy` and enqueues `release_rollback`; the
//! statuses, release rows, pre-update backups and audit results each path leaves
//! (state-machines.md, jobs.md §3, §7, §8, api.md §6). The real node work is the end-to-end
//! test.

use std::sync::Arc;

use pressluft::deploys::DeployInput;
use pressluft::domain::{BackupStatus, HealthStatus, SiteStatus};
use pressluft::jobs::JobErrorCode;
use pressluft::sites::Actor;
use pressluft::store::releases::ReleaseRecord;
use serde_json::{json, Value};

use crate::helpers::TestApp;
use crate::stand_in::{failing_three_times, StandIn, Step};

const GIT: &str = "https://git.example.com/shop/theme.git#main";

/// A site whose `site_create` ran, with `script` for the deploy kinds and plausible results
/// otherwise; returns (app, runner, production environment).
async fn site(script: Vec<(&'static str, Step)>) -> (TestApp, Arc<StandIn>, String) {
    let (app, runner, env, _) = StandIn::new()
        .script(script)
        .otherwise(Step::Plausible)
        .spawn_with_site()
        .await;
    (app, runner, env)
}

async fn actor(app: &TestApp) -> Actor {
    let (user_id, email): (String, String) =
        pressluft::store::query_as("SELECT id, email FROM users LIMIT 1")
            .fetch_one(app.store.pool())
            .await
            .unwrap();
    Actor { user_id, email }
}

/// Each operation a second later than the last (releases list newest first by `created_at`).
async fn deploy(app: &TestApp, env: &str, source_ref: &str) -> String {
    app.clock.advance(time::Duration::seconds(1));
    let input = DeployInput {
        source_type: "git".into(),
        source_ref: source_ref.into(),
    };
    let a = actor(app).await;
    app.state.deploys.deploy(&a, env, input).await.unwrap()
}

async fn update(app: &TestApp, env: &str) -> String {
    app.clock.advance(time::Duration::seconds(1));
    let a = actor(app).await;
    app.state.deploys.update(&a, env, "all").await.unwrap()
}

/// Claims and runs exactly one job; returns its id.
async fn run_one(app: &TestApp) -> String {
    let job = app.state.engine.claim("w").await.unwrap().expect("a job");
    let id = job.id.clone();
    app.state.engine.execute(job, "w").await.unwrap();
    id
}

async fn run_all(app: &TestApp) {
    app.state.engine.run_until_idle("w").await.unwrap();
}

/// Past every retry backoff, then run until idle.
async fn run_after_backoff(app: &TestApp) {
    for _ in 0..3 {
        app.clock.advance(time::Duration::minutes(16));
        run_all(app).await;
    }
}

/// (environment status, site status, current release).
async fn statuses(app: &TestApp, env: &str) -> (SiteStatus, SiteStatus, Option<String>) {
    let e = app.store.get_environment(env).await.unwrap().unwrap();
    let s = app.store.get_site(&e.site_id).await.unwrap().unwrap();
    (e.status, s.status, e.current_release_id)
}

async fn releases(app: &TestApp, env: &str) -> Vec<ReleaseRecord> {
    app.store.list_releases(env).await.unwrap()
}

async fn audit_result(app: &TestApp, job: &str) -> String {
    let (r,): (String,) =
        pressluft::store::query_as("SELECT result FROM audit_logs WHERE job_id = ?")
            .bind(job)
            .fetch_one(app.store.pool())
            .await
            .unwrap();
    r
}

/// The follow-ups of `job`: (id, type, payload).
async fn children(app: &TestApp, job: &str) -> Vec<(String, String, Value)> {
    let rows: Vec<(String, String, String)> = pressluft::store::query_as(
        "SELECT id, job_type, payload_json FROM jobs WHERE parent_job_id = ? ORDER BY created_at",
    )
    .bind(job)
    .fetch_all(app.store.pool())
    .await
    .unwrap();
    rows.into_iter()
        .map(|(i, t, p)| (i, t, serde_json::from_str(&p).unwrap()))
        .collect()
}

async fn payload(app: &TestApp, job: &str) -> Value {
    let j = app.store.get_job(job).await.unwrap().unwrap();
    serde_json::from_str(&j.payload_json).unwrap()
}

/// The job types of the runs that ended, in order.
async fn run_types(app: &TestApp, runner: &StandIn) -> Vec<String> {
    let mut types = Vec::new();
    for (id, ..) in runner.runs() {
        let j = app.store.get_job(&id).await.unwrap().unwrap();
        types.push(j.job_type.as_str().to_string());
    }
    types
}

fn failing_gate() -> Step {
    Step::failing(
        JobErrorCode::HealthCheckFailed,
        "health check failed: http: HTTP 500 from http://shop.example",
    )
}

#[tokio::test]
async fn a_deploy_that_passes_its_gate_is_healthy_active_and_audited_succeeded() {
    let (app, _runner, env) = site(vec![]).await;
    let (.., before) = statuses(&app, &env).await;
    let job = deploy(&app, &env, GIT).await;

    assert_eq!(run_one(&app).await, job);
    assert_eq!(app.job(&job).await["status"], "succeeded");
    let (e, s, current) = statuses(&app, &env).await;
    assert_eq!(
        (e, s),
        (SiteStatus::Deploying, SiteStatus::Deploying),
        "gate pending"
    );
    assert_eq!(
        audit_result(&app, &job).await,
        "accepted",
        "the gate finishes the audit"
    );
    let new = releases(&app, &env).await;
    assert_eq!(new.len(), 2, "one release row more");
    let release = &new[0];
    assert_eq!(
        current.as_deref(),
        Some(release.id.as_str()),
        "current at once"
    );
    assert_eq!(release.health_status, HealthStatus::Unknown);
    assert_eq!(release.source_type, "git");
    assert_eq!(release.source_ref, GIT);
    assert_eq!(release.job_id.as_deref(), Some(job.as_str()));
    let p = payload(&app, &job).await;
    assert!(release.path.ends_with(p["release_name"].as_str().unwrap()));
    assert_eq!(p["previous_release_id"].as_str(), before.as_deref());
    assert!(release
        .notes
        .as_deref()
        .unwrap()
        .starts_with("deployed 0123456789abcdef"));
    let follow = children(&app, &job).await;
    assert_eq!(follow.len(), 1);
    let (hc, t, hp) = &follow[0];
    assert_eq!(t, "health_check");
    assert_eq!(
        hp,
        &json!({"release_id": release.id, "gated_job_id": job,
            "rollback_target_release_id": before, "rollback_backup_id": null,
            "rollback_restore_uploads": false, "rollback_skip_tables": []})
    );

    assert_eq!(run_one(&app).await, *hc);
    let (e, s, current) = statuses(&app, &env).await;
    assert_eq!((e, s), (SiteStatus::Active, SiteStatus::Active));
    assert_eq!(current.as_deref(), Some(release.id.as_str()));
    let r = app.store.get_release(&release.id).await.unwrap().unwrap();
    assert_eq!(r.health_status, HealthStatus::Healthy);
    assert!(
        r.state_version > release.state_version,
        "health moves the version"
    );
    assert_eq!(audit_result(&app, &job).await, "succeeded");
    assert!(app.state.engine.claim("w").await.unwrap().is_none());
}

#[tokio::test]
async fn a_failed_gate_marks_the_release_unhealthy_and_rolls_back_to_the_previous_one() {
    let (app, _runner, env) = site(vec![("health_check", failing_gate())]).await;
    let (.., before) = statuses(&app, &env).await;
    let job = deploy(&app, &env, GIT).await;
    run_one(&app).await;
    let hc = children(&app, &job).await[0].0.clone();
    assert_eq!(run_one(&app).await, hc);
    assert_eq!(app.job(&hc).await["status"], "failed");
    let failed = releases(&app, &env).await[0].clone();
    assert_eq!(failed.health_status, HealthStatus::Unhealthy);
    assert_eq!(
        failed.notes.as_deref(),
        Some("deployed 0123456789abcdef0123456789abcdef01234567; health check failed: http: HTTP 500 from http://shop.example")
    );
    let (e, s, _) = statuses(&app, &env).await;
    assert_eq!(
        (e, s),
        (SiteStatus::Deploying, SiteStatus::Deploying),
        "until the rollback ends"
    );
    assert_eq!(audit_result(&app, &job).await, "accepted");
    let follow = children(&app, &hc).await;
    assert_eq!(follow.len(), 1);
    let (rb, t, rp) = &follow[0];
    assert_eq!(t, "release_rollback");
    assert_eq!(rp["failed_release_id"], failed.id.as_str());
    assert_eq!(rp["target_release_id"].as_str(), before.as_deref());
    assert_eq!(rp["restore_backup_id"], Value::Null);
    assert_eq!(
        rp["reason"],
        "health check failed: http: HTTP 500 from http://shop.example"
    );

    assert_eq!(run_one(&app).await, *rb);
    let (e, s, current) = statuses(&app, &env).await;
    assert_eq!((e, s), (SiteStatus::Active, SiteStatus::Active));
    assert_eq!(current, before, "current = the previous release");
    let r = app.store.get_release(&failed.id).await.unwrap().unwrap();
    assert!(r
        .notes
        .as_deref()
        .unwrap()
        .ends_with("; rolled back: health check failed: http: HTTP 500 from http://shop.example"));
    assert_eq!(audit_result(&app, &job).await, "failed", "rolled back");
    assert_eq!(releases(&app, &env).await.len(), 2);
}

#[tokio::test]
async fn a_failed_rollback_or_a_cancelled_gate_leaves_the_environment_failed() {
    let (app, _runner, env) = site(vec![
        ("health_check", failing_gate()),
        (
            "release_rollback",
            Step::fail(JobErrorCode::BackupChecksumMismatch),
        ),
    ])
    .await;
    let job = deploy(&app, &env, GIT).await;
    run_all(&app).await;
    let (e, s, _) = statuses(&app, &env).await;
    assert_eq!((e, s), (SiteStatus::Failed, SiteStatus::Failed));
    assert_eq!(audit_result(&app, &job).await, "failed");

    // A queued gate cancelled: failed (jobs.md §8).
    let (app, _runner, env) = site(vec![]).await;
    let job = deploy(&app, &env, GIT).await;
    run_one(&app).await;
    let hc = children(&app, &job).await[0].0.clone();
    let a = actor(&app).await;
    app.state.engine.cancel(&hc, &a.user_id).await.unwrap();
    assert_eq!(app.job(&hc).await["status"], "cancelled");
    let (e, s, _) = statuses(&app, &env).await;
    assert_eq!((e, s), (SiteStatus::Failed, SiteStatus::Failed));
    assert_eq!(audit_result(&app, &job).await, "failed");
    assert_eq!(
        releases(&app, &env).await[0].health_status,
        HealthStatus::Unknown
    );
}

#[tokio::test]
async fn a_pre_mutation_failure_returns_to_active_without_a_release() {
    let fetch = JobErrorCode::SourceFetchFailed;
    let (app, runner, env) = site(failing_three_times("env_deploy", fetch)).await;
    let (.., before) = statuses(&app, &env).await;
    let job = deploy(&app, &env, GIT).await;
    run_all(&app).await;
    assert_eq!(app.job(&job).await["status"], "queued", "retryable");
    run_after_backoff(&app).await;
    assert_eq!(runner.runs_of(&job), 3);
    assert_eq!(app.job(&job).await["status"], "failed");
    let (e, s, current) = statuses(&app, &env).await;
    assert_eq!((e, s), (SiteStatus::Active, SiteStatus::Active));
    assert_eq!(current, before);
    assert_eq!(releases(&app, &env).await.len(), 1, "no release");
    assert!(children(&app, &job).await.is_empty());
    assert_eq!(audit_result(&app, &job).await, "failed");
}

#[tokio::test]
async fn a_failure_after_the_switch_leaves_the_environment_failed() {
    let (app, _runner, env) = site(vec![(
        "env_deploy",
        Step::fail(JobErrorCode::AnsibleUnexpectedError),
    )])
    .await;
    let job = deploy(&app, &env, GIT).await;
    run_all(&app).await;
    assert_eq!(app.job(&job).await["status"], "failed");
    let (e, s, _) = statuses(&app, &env).await;
    assert_eq!((e, s), (SiteStatus::Failed, SiteStatus::Failed));
    assert_eq!(releases(&app, &env).await.len(), 1);
    assert_eq!(audit_result(&app, &job).await, "failed");
}

/// A run that reports success with another release than the one fixed at its start (or none)
/// did not do what it was asked: its job fails at once with `ANSIBLE_UNEXPECTED_ERROR` naming
/// why, and the environment is `failed` as after any failure past the switch, no release row.
#[tokio::test]
async fn a_success_naming_another_release_fails_the_job() {
    for (result, expected) in [
        (
            json!({"release_name": "20200101000000-other"}),
            "it reported release 20200101000000-other, not ",
        ),
        (json!({"source_revision": "abc"}), "it reported no release"),
    ] {
        let (app, runner, env) = site(vec![("env_deploy", Step::ok(result))]).await;
        let job = deploy(&app, &env, GIT).await;
        run_all(&app).await;
        let j = app.job(&job).await;
        assert_eq!(
            (j["status"].as_str(), j["error_code"].as_str()),
            (Some("failed"), Some("ANSIBLE_UNEXPECTED_ERROR")),
            "{j}"
        );
        let message = j["error_message"].as_str().unwrap();
        assert!(
            message.starts_with(&format!("the playbook reported success, but {expected}")),
            "{message}"
        );
        assert_eq!(runner.runs_of(&job), 1, "not retried");
        assert!(children(&app, &job).await.is_empty(), "no gate");
        let (e, s, _) = statuses(&app, &env).await;
        assert_eq!((e, s), (SiteStatus::Failed, SiteStatus::Failed));
        assert_eq!(releases(&app, &env).await.len(), 1, "no release recorded");
        assert_eq!(audit_result(&app, &job).await, "failed");
    }
}

#[tokio::test]
async fn a_deploy_whose_worker_died_is_retried_into_exactly_one_release() {
    let (app, runner, env) = site(vec![]).await;
    let (.., before) = statuses(&app, &env).await;
    let job = deploy(&app, &env, GIT).await;
    // The worker claims the job and dies (no heartbeat, no completion).
    let claimed = app.state.engine.claim("dead").await.unwrap().unwrap();
    assert_eq!(claimed.id, job);
    let first = payload(&app, &job).await;
    assert!(first["release_name"].is_string());
    app.clock.advance(time::Duration::minutes(2));
    assert_eq!(app.state.engine.recover_stale().await.unwrap(), 1);
    let j = app.job(&job).await;
    assert_eq!(j["status"], "queued");
    assert_eq!(j["error_code"], "WORKER_LOST");
    let (e, s, _) = statuses(&app, &env).await;
    assert_eq!((e, s), (SiteStatus::Deploying, SiteStatus::Deploying));

    run_after_backoff(&app).await;
    assert_eq!(
        runner.runs_of(&job),
        1,
        "the dead worker's run never reported"
    );
    assert_eq!(app.job(&job).await["status"], "succeeded");
    let second = payload(&app, &job).await;
    assert_eq!(second["release_name"], first["release_name"], "run-stable");
    assert_eq!(second["previous_release_id"].as_str(), before.as_deref());
    assert_eq!(second["previous_release_id"], first["previous_release_id"]);
    let rs = releases(&app, &env).await;
    assert_eq!(rs.len(), 2, "exactly one release row from the deploy");
    assert_eq!(rs[0].health_status, HealthStatus::Healthy);
    let (e, s, _) = statuses(&app, &env).await;
    assert_eq!((e, s), (SiteStatus::Active, SiteStatus::Active));
    assert_eq!(audit_result(&app, &job).await, "succeeded");
}

#[tokio::test]
async fn an_update_records_its_pre_backup_and_gates_with_it() {
    let (app, _runner, env) = site(vec![]).await;
    let (.., before) = statuses(&app, &env).await;
    let job = update(&app, &env).await;
    let backup_id = payload(&app, &job).await["pre_backup_id"]
        .as_str()
        .unwrap()
        .to_string();
    let backup = |app: &TestApp| {
        let id = backup_id.clone();
        let store = app.store.clone();
        async move { store.get_backup(&id).await.unwrap().unwrap() }
    };
    assert_eq!(backup(&app).await.status, BackupStatus::Pending);
    let claimed = app.state.engine.claim("w").await.unwrap().unwrap();
    assert_eq!(backup(&app).await.status, BackupStatus::Running);
    app.state.engine.execute(claimed, "w").await.unwrap();
    let b = backup(&app).await;
    assert_eq!(b.status, BackupStatus::Completed);
    assert_eq!(b.size_bytes, Some(5151));
    assert_eq!(audit_result(&app, &job).await, "accepted");
    let rs = releases(&app, &env).await;
    assert_eq!(rs.len(), 2);
    assert_eq!(
        rs[0].notes.as_deref(),
        Some("updates: all: plugin akismet 5.0 → 5.1")
    );
    assert_eq!(
        (rs[0].source_type.as_str(), rs[0].source_ref.as_str()),
        (rs[1].source_type.as_str(), rs[1].source_ref.as_str()),
        "the previous release's source"
    );
    let (_, t, hp) = children(&app, &job).await.remove(0);
    assert_eq!(t, "health_check");
    assert_eq!(hp["rollback_backup_id"], backup_id.as_str());
    assert_eq!(hp["rollback_target_release_id"].as_str(), before.as_deref());
    run_all(&app).await;
    let (e, s, _) = statuses(&app, &env).await;
    assert_eq!((e, s), (SiteStatus::Active, SiteStatus::Active));
    assert_eq!(audit_result(&app, &job).await, "succeeded");
}

#[tokio::test]
async fn an_update_with_nothing_to_update_records_no_release() {
    let nothing = Step::ok(json!({"release_name": null,
        "pre_backup": {"checksum": format!("sha256:{}", "ef".repeat(32)), "size_bytes": 77,
            "artifacts": []},
        "updated": {"core": [], "plugins": [], "themes": []}}));
    let (app, _runner, env) = site(vec![("env_update", nothing)]).await;
    let (.., before) = statuses(&app, &env).await;
    let job = update(&app, &env).await;
    run_all(&app).await;
    let (e, s, current) = statuses(&app, &env).await;
    assert_eq!((e, s), (SiteStatus::Active, SiteStatus::Active));
    assert_eq!(current, before);
    assert_eq!(releases(&app, &env).await.len(), 1);
    assert!(children(&app, &job).await.is_empty(), "no gate");
    assert_eq!(audit_result(&app, &job).await, "succeeded");
    let id = payload(&app, &job).await["pre_backup_id"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(
        app.store.get_backup(&id).await.unwrap().unwrap().status,
        BackupStatus::Completed
    );
}

#[tokio::test]
async fn a_failed_update_fails_its_pre_backup() {
    let host = JobErrorCode::AnsibleHostFailed;
    let (app, _runner, env) = site(failing_three_times("env_update", host)).await;
    let job = update(&app, &env).await;
    run_all(&app).await;
    let id = payload(&app, &job).await["pre_backup_id"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(
        app.store.get_backup(&id).await.unwrap().unwrap().status,
        BackupStatus::Running,
        "a retry redoes it"
    );
    run_after_backoff(&app).await;
    assert_eq!(app.job(&job).await["status"], "failed");
    let b = app.store.get_backup(&id).await.unwrap().unwrap();
    assert_eq!(b.status, BackupStatus::Failed);
    let (e, s, _) = statuses(&app, &env).await;
    assert_eq!((e, s), (SiteStatus::Failed, SiteStatus::Failed));
    assert_eq!(audit_result(&app, &job).await, "failed");
}

#[tokio::test]
async fn a_manual_rollback_is_gated_like_a_deploy() {
    let (app, _runner, env) = site(vec![]).await;
    deploy(&app, &env, GIT).await;
    run_all(&app).await;
    let first = releases(&app, &env).await[0].clone();
    deploy(&app, &env, GIT).await;
    run_all(&app).await;
    let second = releases(&app, &env).await[0].clone();
    assert_ne!(first.id, second.id);

    let a = actor(&app).await;
    let job = app
        .state
        .deploys
        .rollback(&a, &env, &first.id)
        .await
        .unwrap();
    assert_eq!(run_one(&app).await, job);
    let (e, s, current) = statuses(&app, &env).await;
    assert_eq!(
        (e, s),
        (SiteStatus::Deploying, SiteStatus::Deploying),
        "gate pending"
    );
    assert_eq!(current.as_deref(), Some(first.id.as_str()));
    assert_eq!(audit_result(&app, &job).await, "accepted");
    let (_, t, hp) = children(&app, &job).await.remove(0);
    assert_eq!(t, "health_check");
    assert_eq!(hp["release_id"], first.id.as_str());
    assert_eq!(hp["gated_job_id"], job.as_str());
    assert_eq!(hp["rollback_target_release_id"], second.id.as_str());
    assert_eq!(hp["rollback_backup_id"], Value::Null);
    run_all(&app).await;
    let (e, s, current) = statuses(&app, &env).await;
    assert_eq!((e, s), (SiteStatus::Active, SiteStatus::Active));
    assert_eq!(current.as_deref(), Some(first.id.as_str()));
    assert_eq!(audit_result(&app, &job).await, "succeeded");
    let left = app.store.get_release(&second.id).await.unwrap().unwrap();
    assert!(left
        .notes
        .unwrap()
        .contains("rolled back: manual rollback by"));
    assert_eq!(
        releases(&app, &env).await.len(),
        3,
        "a rollback builds nothing"
    );
}

#[tokio::test]
async fn the_gate_and_its_rollback_run_before_a_queued_backup_of_the_site() {
    for failing in [false, true] {
        let script = if failing {
            vec![("health_check", failing_gate())]
        } else {
            vec![]
        };
        let (app, runner, env) = site(script).await;
        let before = runner.runs().len();
        deploy(&app, &env, GIT).await;
        app.clock.advance(time::Duration::seconds(1));
        crate::backup_jobs::start_backup(&app, &env, "full").await;
        run_all(&app).await;
        let types = run_types(&app, &runner).await[before..].to_vec();
        let expected: &[&str] = if failing {
            &[
                "env_deploy",
                "health_check",
                "release_rollback",
                "backup_create",
            ]
        } else {
            &["env_deploy", "health_check", "backup_create"]
        };
        assert_eq!(types, expected, "failing gate: {failing}");
    }
}

#[tokio::test]
async fn a_source_credential_is_deleted_from_the_secrets_store_when_the_deploy_ends() {
    let (app, _runner, env) = site(vec![(
        "env_deploy",
        Step::fail(JobErrorCode::ArchiveInvalid),
    )])
    .await;
    for (source, outcome) in [
        (
            "https://deploy:s3cr3t-token@git.example.com/shop/theme.git#main",
            "failed",
        ),
        (
            "https://deploy:s3cr3t-token@git.example.com/shop/theme.git#v2",
            "succeeded",
        ),
    ] {
        let job = deploy(&app, &env, source).await;
        let key = payload(&app, &job).await["source_ref_secret"]
            .as_str()
            .expect("a secret key")
            .to_string();
        assert!(app.state.secrets.get(&key).unwrap().is_some());
        run_all(&app).await;
        assert_eq!(app.job(&job).await["status"], outcome);
        assert!(
            app.state.secrets.get(&key).unwrap().is_none(),
            "{outcome}: secret gone"
        );
        let r = &releases(&app, &env).await[0];
        assert!(!r.source_ref.contains("s3cr3t"));
    }
}

#[tokio::test]
async fn a_pre_backup_reported_by_a_failed_attempt_is_kept_completed() {
    let partial = Step::Answer(pressluft::jobs::RunOutcome::Failed {
        code: JobErrorCode::AnsibleHostFailed,
        message: "wp core update failed".into(),
        result: Some(
            json!({"release_name": null, "error_code": "ANSIBLE_HOST_FAILED",
            "pre_backup": {"checksum": format!("sha256:{}", "12".repeat(32)),
                "size_bytes": 999, "artifacts": []}}),
        ),
    });
    let host = || Step::fail(JobErrorCode::AnsibleHostFailed);
    let (app, _runner, env) = site(vec![
        ("env_update", partial),
        ("env_update", host()),
        ("env_update", host()),
    ])
    .await;
    let job = update(&app, &env).await;
    run_all(&app).await;
    assert_eq!(app.job(&job).await["status"], "queued");
    let id = payload(&app, &job).await["pre_backup_id"]
        .as_str()
        .unwrap()
        .to_string();
    let b = app.store.get_backup(&id).await.unwrap().unwrap();
    assert_eq!(b.status, BackupStatus::Completed);
    assert_eq!(b.size_bytes, Some(999));
    run_after_backoff(&app).await;
    assert_eq!(
        app.job(&job).await["status"],
        "failed",
        "the retry was not refused"
    );
    let b = app.store.get_backup(&id).await.unwrap().unwrap();
    assert_eq!(b.status, BackupStatus::Completed, "kept");
}
