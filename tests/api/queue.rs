//! The queue's own logic with scripted runners (no Ansible): exclusion per site and node under
//! concurrency, terminal states, retries and backoff, recovery of lost workers, follow-up
//! priority, cancellation (including a real subprocess).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use pressluft::store::JobRecord;
use rand::{Rng, SeedableRng};

use crate::helpers::{assert_error, JobFixture, TestApp};
use crate::stand_in::{StandIn, Step};

/// Every run does what its payload says: `{"fail": "<CODE>", "times": n, "sleep_ms": n}`.
async fn scripted() -> (TestApp, Arc<StandIn>) {
    StandIn::new().otherwise(Step::FromPayload).spawn().await
}

async fn set_payload(app: &TestApp, id: &str, payload: serde_json::Value) {
    pressluft::store::query("UPDATE jobs SET payload_json = ? WHERE id = ?")
        .bind(payload.to_string())
        .bind(id)
        .execute(app.store.pool())
        .await
        .unwrap();
}

async fn job(app: &TestApp, id: &str) -> JobRecord {
    app.store.get_job(id).await.unwrap().unwrap()
}

/// `id`'s status and attempt count now.
async fn assert_job(app: &TestApp, id: &str, status: &str, attempts: i64) -> JobRecord {
    let j = job(app, id).await;
    assert_eq!((j.status.as_str(), j.attempt_count), (status, attempts));
    j
}

fn assert_no_overlap(label: &str, mut intervals: Vec<(Instant, Instant)>) {
    intervals.sort();
    for w in intervals.windows(2) {
        assert!(w[1].0 >= w[0].1, "{label}: runs overlap");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_thousand_jobs_never_overlap_per_site_or_node() {
    let (app, runner) = scripted().await;
    let mut rng = rand::rngs::StdRng::seed_from_u64(7);
    let mut nodes = Vec::new();
    for i in 0..5 {
        nodes.push(app.insert_node(&format!("node{i}"), "active").await);
    }
    let mut sites = Vec::new();
    for i in 0..50 {
        let site = app
            .insert_site(&format!("Site {i}"), &format!("site-{i}"))
            .await;
        let env = app
            .insert_environment(&site, &nodes[i % 5], "Production")
            .await;
        sites.push((site, env, nodes[i % 5].clone()));
    }
    let mut ids = Vec::new();
    for i in 0..2000i64 {
        let id = if rng.gen_bool(0.1) {
            let node = &nodes[rng.gen_range(0..5)];
            let mut f = JobFixture::new("node_provision", "queued", node);
            f.offset_ms = i;
            app.insert_job(f).await
        } else {
            let (site, env, node) = &sites[rng.gen_range(0..50)];
            let mut f = JobFixture::new("cache_purge", "queued", node);
            f.site_id = Some(site);
            f.environment_id = Some(env);
            f.offset_ms = i;
            app.insert_job(f).await
        };
        let mut payload = serde_json::json!({"sleep_ms": rng.gen_range(0..3)});
        if rng.gen_bool(0.05) {
            payload["fail"] = "ANSIBLE_HOST_FAILED".into();
            payload["times"] = rng.gen_range(1..=3).into();
        }
        set_payload(&app, &id, payload).await;
        ids.push(id);
    }

    // 8 workers claim until every job has ended; when nothing is due and nothing runs, the
    // clock jumps past the longest backoff.
    let done = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut handles = Vec::new();
    for w in 0..8 {
        let engine = app.state.engine.clone();
        let done = done.clone();
        handles.push(tokio::spawn(async move {
            while !done.load(std::sync::atomic::Ordering::SeqCst) {
                if engine.run_until_idle(&format!("test:1/{w}")).await.unwrap() == 0 {
                    tokio::time::sleep(Duration::from_millis(2)).await;
                }
            }
        }));
    }
    loop {
        tokio::time::sleep(Duration::from_millis(20)).await;
        let now = app.now();
        let (running, due, waiting): (i64, i64, i64) = pressluft::store::query_as(
            "SELECT
               (SELECT COUNT(*) FROM jobs WHERE status = 'running'),
               (SELECT COUNT(*) FROM jobs WHERE status = 'queued' AND (run_after IS NULL OR run_after <= ?)),
               (SELECT COUNT(*) FROM jobs WHERE status = 'queued' AND run_after > ?)",
        )
        .bind(&now)
        .bind(&now)
        .fetch_one(app.store.pool())
        .await
        .unwrap();
        if running == 0 && due == 0 && waiting == 0 {
            break;
        }
        // Jobs waiting for a backoff (and those of their sites, held behind the retry) move
        // only when time does.
        if running == 0 && waiting > 0 {
            app.clock.advance(time::Duration::minutes(16));
        }
    }
    done.store(true, std::sync::atomic::Ordering::SeqCst);
    for h in handles {
        h.await.unwrap();
    }

    let runs = runner.runs();
    let mut by_site: HashMap<String, Vec<(Instant, Instant)>> = HashMap::new();
    let mut by_node: HashMap<String, Vec<(Instant, Instant)>> = HashMap::new();
    for (_, site, node, s, e) in &runs {
        if let Some(site) = site {
            by_site.entry(site.clone()).or_default().push((*s, *e));
        }
        by_node.entry(node.clone()).or_default().push((*s, *e));
    }
    for (site, iv) in by_site {
        assert_no_overlap(&format!("site {site}"), iv);
    }
    for (node, iv) in by_node {
        assert_no_overlap(&format!("node {node}"), iv);
    }

    let rows: Vec<(String, String, i64, Option<String>)> =
        pressluft::store::query_as("SELECT id, status, attempt_count, error_code FROM jobs")
            .fetch_all(app.store.pool())
            .await
            .unwrap();
    assert_eq!(rows.len(), 2000);
    let mut runs_per_job: HashMap<&str, i64> = HashMap::new();
    for (id, ..) in &runs {
        *runs_per_job.entry(id.as_str()).or_default() += 1;
    }
    for (id, status, attempts, code) in &rows {
        assert!(
            status == "succeeded" || status == "failed",
            "{id} ended {status}"
        );
        assert_eq!(
            runs_per_job.get(id.as_str()).copied().unwrap_or(0),
            *attempts,
            "one run per claim"
        );
        if status == "failed" {
            assert_eq!(*attempts, 3, "failed only after 3 attempts");
            assert_eq!(code.as_deref(), Some("ANSIBLE_HOST_FAILED"));
        }
    }
    assert!(
        rows.iter().any(|r| r.1 == "failed"),
        "the script makes some jobs fail for good"
    );
    assert!(
        rows.iter().any(|r| r.1 == "succeeded" && r.2 > 1),
        "and some succeed on a retry"
    );
}

#[tokio::test]
async fn retries_follow_the_backoff_schedule() {
    let app = scripted().await.0;
    let node = app.insert_node("n", "active").await;
    let id = app
        .insert_job(JobFixture::new("cache_purge", "queued", &node))
        .await;
    set_payload(&app, &id, serde_json::json!({"fail": "ANSIBLE_PLAY_ERROR"})).await;
    let engine = &app.state.engine;

    assert_eq!(engine.run_until_idle("w").await.unwrap(), 1);
    let j = assert_job(&app, &id, "queued", 1).await;
    assert_eq!(j.error_code.as_deref(), Some("ANSIBLE_PLAY_ERROR"));
    assert_eq!(j.locked_by, None, "lock cleared on retry");
    let first_run_after = pressluft::clock::parse_ts(j.run_after.as_deref().unwrap()).unwrap();
    assert_eq!(
        first_run_after - pressluft::clock::parse_ts(&app.now()).unwrap(),
        time::Duration::minutes(1)
    );

    app.clock.advance(time::Duration::seconds(59));
    assert_eq!(
        engine.run_until_idle("w").await.unwrap(),
        0,
        "not before its backoff"
    );
    app.clock.advance(time::Duration::seconds(1));
    assert_eq!(engine.run_until_idle("w").await.unwrap(), 1);
    let j = assert_job(&app, &id, "queued", 2).await;
    let second = pressluft::clock::parse_ts(j.run_after.as_deref().unwrap()).unwrap();
    assert_eq!(
        second - pressluft::clock::parse_ts(&app.now()).unwrap(),
        time::Duration::minutes(5)
    );

    app.clock.advance(time::Duration::minutes(5));
    assert_eq!(engine.run_until_idle("w").await.unwrap(), 1);
    let j = assert_job(&app, &id, "failed", 3).await;
    assert!(j.finished_at.is_some() && j.run_after.is_none());
    assert_eq!(
        j.error_message.as_deref(),
        Some("scripted ANSIBLE_PLAY_ERROR")
    );
}

#[tokio::test]
async fn non_retryable_failures_end_at_once() {
    let app = scripted().await.0;
    let node = app.insert_node("n", "active").await;
    let id = app
        .insert_job(JobFixture::new("cache_purge", "queued", &node))
        .await;
    set_payload(
        &app,
        &id,
        serde_json::json!({"fail": "ANSIBLE_SYNTAX_ERROR"}),
    )
    .await;
    app.state.engine.run_until_idle("w").await.unwrap();
    assert_job(&app, &id, "failed", 1).await;
}

#[tokio::test]
async fn a_lost_worker_is_recovered() {
    let app = scripted().await.0;
    let node = app.insert_node("n", "active").await;
    let id = app
        .insert_job(JobFixture::new("cache_purge", "queued", &node))
        .await;
    // A worker claims the job and dies before finishing (never heartbeats again).
    let claimed = app
        .state
        .engine
        .claim("dead-host:1/0")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(claimed.id, id);
    assert_eq!(
        app.state.engine.recover_stale().await.unwrap(),
        0,
        "lease still fresh"
    );
    app.clock.advance(time::Duration::seconds(61));
    assert_eq!(app.state.engine.recover_stale().await.unwrap(), 1);
    let j = job(&app, &id).await;
    assert_eq!(j.status.as_str(), "queued");
    assert_eq!(j.error_code.as_deref(), Some("WORKER_LOST"));
    assert!(j.error_message.unwrap().contains("dead-host:1/0"));
    app.clock.advance(time::Duration::minutes(1));
    app.state.engine.run_until_idle("w").await.unwrap();
    assert_job(&app, &id, "succeeded", 2).await;
}

/// The clock jumps past a running job's heartbeat (an NTP step; the e2e flow moving its test
/// clock while another node's job runs): the process running the job does not take it for
/// lost; another process would (the test above), and the job's next heartbeat catches up.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_running_here_is_not_lost_when_the_clock_jumps() {
    let (app, _) = StandIn::new().otherwise(Step::UntilStopped).spawn().await;
    app.login().await;
    let node = app.insert_node("n", "active").await;
    let id = app
        .insert_job(JobFixture::new("cache_purge", "queued", &node))
        .await;
    let engine = app.state.engine.clone();
    let worker = tokio::spawn(async move { engine.run_until_idle("w").await.unwrap() });
    let deadline = Instant::now() + Duration::from_secs(10);
    while job(&app, &id).await.status.as_str() != "running" {
        assert!(Instant::now() < deadline, "job never started");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    app.clock.advance(time::Duration::minutes(16));
    assert_eq!(
        app.state.engine.recover_stale().await.unwrap(),
        0,
        "running in this process"
    );
    let j = job(&app, &id).await;
    assert_eq!(j.status.as_str(), "running");
    assert_eq!(j.error_code, None);
    let r = app.post_empty(&format!("/api/jobs/{id}/cancel")).await;
    assert_eq!(r.status(), 200);
    worker.await.unwrap();
    assert_eq!(job(&app, &id).await.status.as_str(), "cancelled");
}

#[tokio::test]
async fn follow_ups_jump_the_queue_and_hold_their_site() {
    let app = scripted().await.0;
    let node_a = app.insert_node("a", "active").await;
    let node_b = app.insert_node("b", "active").await;
    let site = app.insert_site("S", "s").await;
    let env = app.insert_environment(&site, &node_a, "Production").await;
    let other_site = app.insert_site("T", "t").await;
    let other_env = app
        .insert_environment(&other_site, &node_b, "Production")
        .await;

    let mut older = JobFixture::new("cache_purge", "queued", &node_a);
    older.site_id = Some(&site);
    older.environment_id = Some(&env);
    let older = app.insert_job(older).await;
    let mut follow_up = JobFixture::new("health_check", "queued", &node_a);
    follow_up.site_id = Some(&site);
    follow_up.environment_id = Some(&env);
    follow_up.offset_ms = 10;
    let follow_up = app.insert_job(follow_up).await;
    let mut elsewhere = JobFixture::new("cache_purge", "queued", &node_b);
    elsewhere.site_id = Some(&other_site);
    elsewhere.environment_id = Some(&other_env);
    elsewhere.offset_ms = 5;
    let elsewhere = app.insert_job(elsewhere).await;

    let engine = &app.state.engine;
    let first = engine.claim("w1").await.unwrap().unwrap();
    assert_eq!(first.id, follow_up, "follow-ups first, though younger");
    let second = engine.claim("w2").await.unwrap().unwrap();
    assert_eq!(
        second.id, elsewhere,
        "the site with the follow-up is held; other sites go on"
    );
    assert!(
        engine.claim("w3").await.unwrap().is_none(),
        "one running job per site"
    );
    engine.execute(first, "w1").await.unwrap();
    let third = engine.claim("w3").await.unwrap().unwrap();
    assert_eq!(third.id, older);
}

#[tokio::test]
async fn a_queued_retry_blocks_the_rest_of_its_site() {
    let app = scripted().await.0;
    let node = app.insert_node("a", "active").await;
    let site = app.insert_site("S", "s").await;
    let env = app.insert_environment(&site, &node, "Production").await;
    let mut first = JobFixture::new("cache_purge", "queued", &node);
    first.site_id = Some(&site);
    first.environment_id = Some(&env);
    let first = app.insert_job(first).await;
    set_payload(
        &app,
        &first,
        serde_json::json!({"fail": "ANSIBLE_HOST_FAILED", "times": 1}),
    )
    .await;
    let mut second = JobFixture::new("cache_purge", "queued", &node);
    second.site_id = Some(&site);
    second.environment_id = Some(&env);
    second.offset_ms = 10;
    let second = app.insert_job(second).await;

    let engine = &app.state.engine;
    assert_eq!(
        engine.run_until_idle("w").await.unwrap(),
        1,
        "first fails; second must wait"
    );
    assert_eq!(job(&app, &second).await.status.as_str(), "queued");
    app.clock.advance(time::Duration::minutes(1));
    assert_eq!(engine.run_until_idle("w").await.unwrap(), 2);
    assert_eq!(job(&app, &first).await.status.as_str(), "succeeded");
    assert_eq!(job(&app, &second).await.status.as_str(), "succeeded");
}

#[tokio::test]
async fn cancel_a_queued_job() {
    let app = scripted().await.0;
    app.login().await;
    let node = app.insert_node("a", "active").await;
    let id = app
        .insert_job(JobFixture::new("cache_purge", "queued", &node))
        .await;
    let r = app.post_empty(&format!("/api/jobs/{id}/cancel")).await;
    assert_eq!(r.status(), 200);
    assert_eq!(
        r.json::<serde_json::Value>().await.unwrap(),
        serde_json::json!({"success": true, "status": "cancelled"})
    );
    let j = job(&app, &id).await;
    assert_eq!(j.status.as_str(), "cancelled");
    assert_eq!(j.error_code, None);
    assert!(j.finished_at.is_some());
    let r = app.post_empty(&format!("/api/jobs/{id}/cancel")).await;
    assert_error(r, 409, "job_not_cancellable").await;
    let r = app
        .post_empty(&format!("/api/jobs/{}/cancel", uuid::Uuid::new_v4()))
        .await;
    assert_error(r, 404, "not_found").await;
    assert_eq!(
        app.state.engine.run_until_idle("w").await.unwrap(),
        0,
        "a cancelled job never runs"
    );

    let audit: Vec<(String, String)> = pressluft::store::query_as(
        "SELECT action, result FROM audit_logs WHERE resource_id = ? ORDER BY created_at, result",
    )
    .bind(&id)
    .fetch_all(app.store.pool())
    .await
    .unwrap();
    let audit: Vec<String> = audit.iter().map(|(a, r)| format!("{a} {r}")).collect();
    assert!(audit.contains(&"job_cancel succeeded".into()), "{audit:?}");
    assert!(audit.contains(&"job_cancel rejected".into()), "{audit:?}");
}

/// The sleep's argument is unique to this test process: the PostgreSQL pass runs the same test
/// beside the SQLite one, and its sleep must not be mistaken for ours.
fn sleep_seconds() -> &'static str {
    static SECONDS: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    SECONDS.get_or_init(|| format!("41.{}", std::process::id()))
}

fn sleep_running() -> bool {
    std::process::Command::new("pgrep")
        .args(["-f", &format!("^sleep {}$", sleep_seconds())])
        .stdout(std::process::Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancel_a_running_job_stops_its_process() {
    // Runs `sleep` as a real subprocess through the engine's process runner.
    let (app, _) = StandIn::new()
        .otherwise(Step::Process("sleep", vec![sleep_seconds()]))
        .spawn()
        .await;
    app.login().await;
    let node = app.insert_node("a", "active").await;
    let id = app
        .insert_job(JobFixture::new("cache_purge", "queued", &node))
        .await;
    let engine = app.state.engine.clone();
    let worker = tokio::spawn(async move { engine.run_until_idle("w").await.unwrap() });
    let deadline = Instant::now() + Duration::from_secs(10);
    while !(job(&app, &id).await.status.as_str() == "running" && sleep_running()) {
        assert!(Instant::now() < deadline, "job never started");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let started = Instant::now();
    let r = app.post_empty(&format!("/api/jobs/{id}/cancel")).await;
    assert_eq!(r.status(), 200);
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["status"], "cancelled", "{body}");
    assert!(started.elapsed() < Duration::from_secs(15));
    worker.await.unwrap();
    assert!(!sleep_running(), "the subprocess is gone");
    let j = job(&app, &id).await;
    assert_eq!(j.status.as_str(), "cancelled");
    assert!(j.cancel_requested_at.is_none() && j.finished_at.is_some());
}
