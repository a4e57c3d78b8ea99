//! The scheduler's backup duties with the manual clock (jobs.md §9): scheduled `full` backups
//! (due after the interval, 0 = off, only active production environments on active nodes, never
//! twice), the per-site `backup_cleanup` (only backups past retention and not needed by a
//! queued or running job, once per 6 h, the first check a minute after start-up, never twice),
//! and the cleanup job's lifecycle through the stand-in runner (rows expired, data keys gone, a
//! failure keeping its error code after the retries).

use std::sync::Arc;

use pressluft::backups::data_key_secret;
use pressluft::backups::schedule::expired_backups;
use pressluft::clock::Clock;
use pressluft::jobs::scheduler::Scheduler;
use pressluft::jobs::JobErrorCode;
use serde_json::{json, Value};
use time::Duration;

use crate::helpers::{JobFixture, TestApp};
use crate::stand_in::{StandIn, Step};

fn scheduler(app: &TestApp) -> Scheduler {
    Scheduler::new(
        app.state.engine.clone(),
        app.state.backups.clone(),
        Arc::new(app.clock.clone()),
    )
}

async fn set_setting(app: &TestApp, key: &str, value: &str) {
    app.exec(
        "INSERT INTO settings (key, value, updated_at) VALUES (?, ?, ?)
           ON CONFLICT (key) DO UPDATE SET value = excluded.value",
        &[key, value, &app.now()],
    )
    .await;
}

async fn jobs_of(app: &TestApp, job_type: &str) -> Vec<(String, String, Value)> {
    let rows: Vec<(String, String, String)> = pressluft::store::query_as(
        "SELECT id, status, payload_json FROM jobs WHERE job_type = ? ORDER BY created_at, id",
    )
    .bind(job_type)
    .fetch_all(app.store.pool())
    .await
    .unwrap();
    rows.into_iter()
        .map(|(id, status, p)| (id, status, serde_json::from_str(&p).unwrap()))
        .collect()
}

async fn backup_row(app: &TestApp, id: &str) -> (String, Option<String>) {
    pressluft::store::query_as("SELECT status, error_code FROM backups WHERE id = ?")
        .bind(id)
        .fetch_one(app.store.pool())
        .await
        .unwrap()
}

/// A site with an active production environment on an active node: (site, environment, node).
async fn production(app: &TestApp, slug: &str) -> (String, String, String) {
    let node = app.insert_node(slug, "active").await;
    let site = app.insert_site(slug, slug).await;
    let env = app.insert_environment(&site, &node, "Production").await;
    (site, env, node)
}

/// A backup of `env` through the service, then `status` (completed with a checksum, or failed).
async fn backup(app: &TestApp, env: &str, status: &str) -> String {
    let created = app.state.backups.create(None, env, "full").await.unwrap();
    app.exec(
        "UPDATE backups SET status = ?, checksum = CASE WHEN ? = 'completed'
           THEN 'sha256:00' END WHERE id = ?",
        &[status, status, &created.backup_id],
    )
    .await;
    app.exec(
        "UPDATE jobs SET status = 'succeeded' WHERE id = ?",
        &[&created.job_id],
    )
    .await;
    created.backup_id
}

async fn job_status(app: &TestApp, id: &str) -> (String, i64) {
    let job = app.store.get_job(id).await.unwrap().unwrap();
    (job.status.to_string(), job.attempt_count)
}

fn key_exists(app: &TestApp, backup_id: &str) -> bool {
    app.state
        .secrets
        .get(&data_key_secret(backup_id))
        .unwrap()
        .is_some()
}

#[tokio::test]
async fn scheduled_backups_are_due_after_the_interval_and_never_enqueued_twice() {
    let app = crate::helpers::spawn_app().await;
    let (_, env, _) = production(&app, "shop").await;
    // Not scheduled: a staging environment, a production environment on a node that is not
    // active, one that is not active itself.
    let (site_b, _, node_b) = production(&app, "blog").await;
    let staging = app.insert_environment(&site_b, &node_b, "Staging").await;
    app.exec(
        "UPDATE environments SET environment_type = 'staging' WHERE id = ?",
        &[&staging],
    )
    .await;
    app.exec(
        "UPDATE nodes SET status = 'unreachable' WHERE id = ?",
        &[&node_b],
    )
    .await;
    let (_, deploying, _) = production(&app, "news").await;
    app.exec(
        "UPDATE environments SET status = 'deploying' WHERE id = ?",
        &[&deploying],
    )
    .await;

    let mut s = scheduler(&app);
    s.tick().await;
    s.tick().await;
    let jobs = jobs_of(&app, "backup_create").await;
    assert_eq!(jobs.len(), 1, "one backup, not two: {jobs:?}");
    assert_eq!(jobs[0].2["backup_scope"], "full");
    let backups = app.store.list_backups(&env).await.unwrap();
    assert_eq!(backups.len(), 1);
    assert_eq!(app.count("audit_logs").await, 0, "scheduled: no audit row");

    // Its backup finishes (or fails: any status counts); the next is due 24 h after it.
    app.exec(
        "UPDATE backups SET status = 'failed' WHERE id = ?",
        &[&backups[0].id],
    )
    .await;
    app.clock.advance(Duration::hours(23));
    s.tick().await;
    assert_eq!(jobs_of(&app, "backup_create").await.len(), 1, "not due yet");
    app.clock.advance(Duration::hours(1));
    s.tick().await;
    s.tick().await;
    assert_eq!(jobs_of(&app, "backup_create").await.len(), 2, "due once");

    // A shorter interval from the setting; 0 turns the schedule off.
    app.exec(
        "UPDATE backups SET status = 'completed', checksum = 'sha256:00' WHERE status = 'pending'",
        &[],
    )
    .await;
    set_setting(&app, "backup_schedule_hours", "2").await;
    app.clock.advance(Duration::hours(2));
    s.tick().await;
    assert_eq!(jobs_of(&app, "backup_create").await.len(), 3);
    app.exec(
        "UPDATE backups SET status = 'completed', checksum = 'sha256:00' WHERE status = 'pending'",
        &[],
    )
    .await;
    set_setting(&app, "backup_schedule_hours", "0").await;
    app.clock.advance(Duration::days(3));
    s.tick().await;
    assert_eq!(jobs_of(&app, "backup_create").await.len(), 3, "0 = off");
}

#[tokio::test]
async fn a_backup_named_by_a_queued_or_running_job_is_never_selected() {
    let app = crate::helpers::spawn_app().await;
    let (site, env, node) = production(&app, "shop").await;
    let fields = [
        "backup_id",
        "pre_backup_id",
        "gate_backup_id",
        "rollback_backup_id",
        "restore_backup_id",
        "backup_ids",
    ];
    let mut in_use = Vec::new();
    for (i, field) in fields.iter().enumerate() {
        let b = backup(&app, &env, "completed").await;
        let status = if i % 2 == 0 { "queued" } else { "running" };
        let mut fixture = JobFixture::new("env_restore", status, &node);
        fixture.site_id = Some(&site);
        let job = app.insert_job(fixture).await;
        let value = if *field == "backup_ids" {
            json!([b])
        } else {
            json!(b)
        };
        let payload = json!({ *field: value }).to_string();
        app.exec(
            "UPDATE jobs SET payload_json = ? WHERE id = ?",
            &[&payload, &job],
        )
        .await;
        in_use.push(b);
    }
    // Named by a finished job: free to go.
    let free = backup(&app, &env, "completed").await;
    let mut done = JobFixture::new("env_restore", "succeeded", &node);
    done.site_id = Some(&site);
    let job = app.insert_job(done).await;
    let payload = json!({ "backup_id": free }).to_string();
    app.exec(
        "UPDATE jobs SET payload_json = ? WHERE id = ?",
        &[&payload, &job],
    )
    .await;

    let later = pressluft::clock::format_ts(app.clock.now() + Duration::days(31));
    let mut conn = app.store.pool().acquire().await.unwrap();
    let selected = expired_backups(&mut conn, &site, &later, "").await.unwrap();
    assert_eq!(selected, vec![free.clone()], "in use: {in_use:?}");
    // Not before its retention.
    let now = app.now();
    assert!(expired_backups(&mut conn, &site, &now, "")
        .await
        .unwrap()
        .is_empty());
}

#[tokio::test]
async fn cleanup_selects_expired_backups_once_per_six_hours_and_expires_what_was_deleted() {
    let (app, stand_in) = StandIn::new().spawn().await;
    set_setting(&app, "backup_schedule_hours", "0").await;
    let (site, env, node) = production(&app, "shop").await;
    let completed = backup(&app, &env, "completed").await;
    let failed = backup(&app, &env, "failed").await;
    let pending = app.state.backups.create(None, &env, "db").await.unwrap();
    app.exec(
        "UPDATE jobs SET status = 'cancelled' WHERE id = ?",
        &[&pending.job_id],
    )
    .await;
    // Kept 40 days instead of 30: not yet past retention at day 31.
    let kept = backup(&app, &env, "completed").await;
    let kept_until = pressluft::clock::format_ts(app.clock.now() + Duration::days(40));
    app.exec(
        "UPDATE backups SET retention_until = ? WHERE id = ?",
        &[&kept_until, &kept],
    )
    .await;
    // Another site whose production node is not active: skipped.
    let (_, other_env, other_node) = production(&app, "blog").await;
    let other = backup(&app, &other_env, "completed").await;
    app.exec(
        "UPDATE nodes SET status = 'unreachable' WHERE id = ?",
        &[&other_node],
    )
    .await;

    // The control plane starts 31 days later.
    app.clock.advance(Duration::days(31));
    let mut s = scheduler(&app);
    s.tick().await;
    assert!(
        jobs_of(&app, "backup_cleanup").await.is_empty(),
        "the first check is a minute after start-up"
    );
    app.clock.advance(Duration::seconds(61));
    s.tick().await;
    s.tick().await;
    let jobs = jobs_of(&app, "backup_cleanup").await;
    assert_eq!(jobs.len(), 1, "one per site, never twice: {jobs:?}");
    let (job_id, _, payload) = &jobs[0];
    let mut named: Vec<String> = serde_json::from_value(payload["backup_ids"].clone()).unwrap();
    named.sort();
    let mut expected = vec![completed.clone(), failed.clone()];
    expected.sort();
    assert_eq!(
        named, expected,
        "not the pending one, the kept one or the other site's"
    );
    let job = app.store.get_job(job_id).await.unwrap().unwrap();
    assert_eq!(job.node_id, node);
    assert_eq!(job.site_id.as_deref(), Some(site.as_str()));
    assert_eq!(job.environment_id, None, "site-scoped");

    // The helper deleted both (and a forged line names a backup the job did not): the two
    // rows expire, their keys go at the next look, the others stay.
    stand_in.push(
        "backup_cleanup",
        Step::ok(json!({"backups": [
            {"backup_id": completed, "status": "deleted", "removed": 3},
            {"backup_id": failed, "status": "deleted", "removed": 0},
            {"backup_id": kept, "status": "deleted", "removed": 3},
        ]})),
    );
    assert_eq!(app.state.engine.run_until_idle("w").await.unwrap(), 1);
    assert_eq!(job_status(&app, job_id).await.0, "succeeded");
    assert_eq!(backup_row(&app, &completed).await.0, "expired");
    assert_eq!(backup_row(&app, &failed).await.0, "expired");
    assert_eq!(backup_row(&app, &kept).await.0, "completed");
    assert_eq!(backup_row(&app, &other).await.0, "completed");
    assert_eq!(backup_row(&app, &pending.backup_id).await.0, "pending");
    assert!(key_exists(&app, &completed));
    s.tick().await;
    assert!(!key_exists(&app, &completed), "crypto-shredded at expiry");
    assert!(!key_exists(&app, &failed));
    assert!(key_exists(&app, &kept));
    assert!(key_exists(&app, &other));
    assert_eq!(jobs_of(&app, "backup_cleanup").await.len(), 1);

    // The kept one passes its retention: the site's next cleanup is 6 h after the last.
    app.clock.advance(Duration::days(9));
    app.exec(
        "UPDATE jobs SET created_at = ? WHERE id = ?",
        &[&app.now(), job_id],
    )
    .await;
    app.clock.advance(Duration::hours(6) - Duration::seconds(1));
    s.tick().await;
    assert_eq!(
        jobs_of(&app, "backup_cleanup").await.len(),
        1,
        "6 h not over"
    );
    app.clock.advance(Duration::seconds(2));
    s.tick().await;
    s.tick().await;
    let jobs = jobs_of(&app, "backup_cleanup").await;
    assert_eq!(jobs.len(), 2);
    assert_eq!(jobs[1].2["backup_ids"], json!([kept]));
}

#[tokio::test]
async fn a_failed_cleanup_is_retried_and_its_backups_keep_the_error_code() {
    let stand_in = StandIn::new().script(vec![
        (
            "backup_cleanup",
            Step::fail(JobErrorCode::AnsibleHostFailed),
        ),
        (
            "backup_cleanup",
            Step::fail(JobErrorCode::AnsibleHostUnreachable),
        ),
        (
            "backup_cleanup",
            Step::fail(JobErrorCode::AnsibleHostFailed),
        ),
    ]);
    let (app, stand_in) = stand_in.spawn().await;
    set_setting(&app, "backup_schedule_hours", "0").await;
    let (_, env, _) = production(&app, "shop").await;
    let b = backup(&app, &env, "completed").await;
    let mut s = scheduler(&app);
    app.clock.advance(Duration::days(31));
    s.tick().await;
    let job_id = jobs_of(&app, "backup_cleanup").await[0].0.clone();
    for minutes in [0, 1, 5] {
        app.clock.advance(Duration::minutes(minutes));
        assert_eq!(app.state.engine.run_until_idle("w").await.unwrap(), 1);
        let (status, code) = backup_row(&app, &b).await;
        assert_eq!(
            status, "completed",
            "not expired while its artifacts may exist"
        );
        if minutes < 5 {
            assert_eq!(job_status(&app, &job_id).await.0, "queued", "retried");
            assert_eq!(code, None);
        } else {
            assert_eq!(code.as_deref(), Some("ANSIBLE_HOST_FAILED"));
        }
    }
    assert_eq!(job_status(&app, &job_id).await, ("failed".into(), 3));
    assert_eq!(stand_in.runs_of(&job_id), 3);
    assert!(
        key_exists(&app, &b),
        "the key stays while the artifacts may"
    );

    // The next cleanup, 6 h later, deletes it; the row expires and keeps the last error code.
    app.clock.advance(Duration::hours(6));
    s.tick().await;
    let jobs = jobs_of(&app, "backup_cleanup").await;
    assert_eq!(jobs.len(), 2);
    stand_in.push("backup_cleanup", Step::Plausible);
    app.state.engine.run_until_idle("w").await.unwrap();
    assert_eq!(backup_row(&app, &b).await.0, "expired");
    s.tick().await;
    assert!(!key_exists(&app, &b));
}

#[tokio::test]
async fn the_cleanup_sends_each_storage_on_stdin_with_its_secrets_masked_and_skips_backups_in_use()
{
    let app = crate::helpers::spawn_app().await;
    set_setting(&app, "backup_schedule_hours", "0").await;
    let (site, env, node) = production(&app, "shop").await;
    let local = backup(&app, &env, "completed").await;
    set_setting(&app, "backup_s3_bucket", "bk").await;
    set_setting(&app, "backup_s3_endpoint", "http://127.0.0.1:9900").await;
    app.state
        .secrets
        .put(
            "backup_s3_credentials",
            r#"{"access_key_id": "AKIDCLEANUP", "secret_access_key": "s3cr3t-cleanup-key"}"#,
        )
        .unwrap();
    let s3 = backup(&app, &env, "failed").await;
    let needed = backup(&app, &env, "completed").await;
    app.clock.advance(Duration::days(31));
    let mut s = scheduler(&app);
    app.clock.advance(Duration::minutes(2));
    s.tick().await;
    let job_id = jobs_of(&app, "backup_cleanup").await[0].0.clone();
    // A restore of one of them accepted after the enqueue: the run leaves it alone.
    let mut restore = JobFixture::new("env_restore", "queued", &node);
    restore.site_id = Some(&site);
    let restore = app.insert_job(restore).await;
    let payload = json!({ "backup_id": needed }).to_string();
    app.exec(
        "UPDATE jobs SET payload_json = ? WHERE id = ?",
        &[&payload, &restore],
    )
    .await;

    let job = app.store.get_job(&job_id).await.unwrap().unwrap();
    let node_row = app.store.get_node(&node).await.unwrap().unwrap();
    let state = &app.state;
    let vars = pressluft::jobs::kinds::extra_vars(
        &app.store,
        &state.secrets,
        &state.config,
        &job,
        &node_row,
    )
    .await
    .unwrap();
    let spec = &vars.vars["delete_spec"]["backups"];
    assert_eq!(vars.vars["backup_count"], 2);
    let ids: Vec<&str> = spec
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["backup_id"].as_str().unwrap())
        .collect();
    assert!(ids.contains(&local.as_str()) && ids.contains(&s3.as_str()));
    assert!(!ids.contains(&needed.as_str()), "in use by the restore");
    let s3_spec = spec
        .as_array()
        .unwrap()
        .iter()
        .find(|b| b["backup_id"] == s3.as_str())
        .unwrap();
    assert_eq!(s3_spec["storage"]["type"], "s3");
    assert_eq!(s3_spec["storage"]["bucket"], "bk");
    assert_eq!(
        s3_spec["storage"]["prefix"],
        format!("pressluft/{site}/{env}/{s3}")
    );
    assert!(vars.secrets.iter().any(|v| v == "s3cr3t-cleanup-key"));
    let local_spec = spec
        .as_array()
        .unwrap()
        .iter()
        .find(|b| b["backup_id"] == local.as_str())
        .unwrap();
    assert_eq!(
        local_spec["storage"],
        json!({"type": "local", "path": format!("/var/backups/pressluft/{site}/{env}/{local}")})
    );
    assert!(!spec.to_string().contains("AGE-SECRET-KEY"), "no data keys");
}
