//! Several control-plane replicas on one PostgreSQL database (issue 17): they share the queue
//! without overlapping runs, a replica that dies mid-job has its job recovered by another,
//! only one runs the scheduler's duties, sessions work on any replica, and a replica with
//! another age identity refuses to start. These need PostgreSQL: on SQLite (one process per
//! database file) they return at once, saying so.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use pressluft::domain::JobType;
use pressluft::jobs::runner::RunFuture;
use pressluft::jobs::{Engine, RunContext, RunOutcome, Runner};
use pressluft::store::queue::NewJob;
use pressluft::store::replicas::SchedulerLease;
use pressluft::store::JobRecord;

use crate::helpers::*;

/// One run as a runner saw it.
#[derive(Debug, Clone)]
struct Run {
    job: String,
    site: Option<String>,
    node: String,
    replica: &'static str,
    start: Instant,
    end: Instant,
}

/// Succeeds after a pause of 1–5 ms (other workers claim meanwhile), recording the run.
struct Recorder {
    replica: &'static str,
    runs: Arc<Mutex<Vec<Run>>>,
}

impl Runner for Recorder {
    fn run<'a>(&'a self, job: &'a JobRecord, _ctx: RunContext) -> RunFuture<'a> {
        Box::pin(async move {
            let start = Instant::now();
            // Long enough for another worker's claim to land inside the run if the claim let it.
            let pause = 1 + job.id.as_bytes()[0] as u64 % 5;
            tokio::time::sleep(Duration::from_millis(pause)).await;
            self.runs.lock().unwrap().push(Run {
                job: job.id.clone(),
                site: job.site_id.clone(),
                node: job.node_id.clone(),
                replica: self.replica,
                start,
                end: Instant::now(),
            });
            RunOutcome::Succeeded {
                result: serde_json::json!({}),
            }
        })
    }
}

fn skip_on_sqlite(test: &str) -> bool {
    if on_postgres() {
        return false;
    }
    eprintln!("{test}: needs PostgreSQL (PRESSLUFT_TEST_DATABASE_URL); skipped on SQLite");
    true
}

/// `nodes` active nodes and `sites` sites with a production environment, round-robin.
async fn fixtures(app: &TestApp, nodes: usize, sites: usize) -> Vec<(String, String, String)> {
    let mut node_ids = Vec::new();
    for i in 0..nodes {
        node_ids.push(app.insert_node(&format!("n{i}"), "active").await);
    }
    let mut out = Vec::new();
    for i in 0..sites {
        let node = node_ids[i % nodes].clone();
        let site = app.insert_site(&format!("S{i}"), &format!("s{i}")).await;
        let env = app.insert_environment(&site, &node, "Production").await;
        out.push((site, env, node));
    }
    out
}

fn job(site: &(String, String, String)) -> NewJob {
    NewJob {
        id: uuid::Uuid::new_v4().to_string(),
        job_type: JobType::CachePurge,
        site_id: Some(site.0.clone()),
        environment_id: Some(site.1.clone()),
        node_id: site.2.clone(),
        payload_json: "{}".into(),
        max_attempts: 3,
        parent_job_id: None,
    }
}

/// No two runs of one key (site or node) overlap in time.
fn assert_no_overlap(runs: &[Run], what: &str, key: impl Fn(&Run) -> Option<String>) {
    let mut by: HashMap<String, Vec<&Run>> = HashMap::new();
    for r in runs {
        if let Some(k) = key(r) {
            by.entry(k).or_default().push(r);
        }
    }
    for (k, mut rs) in by {
        rs.sort_by_key(|r| r.start);
        for pair in rs.windows(2) {
            assert!(
                pair[0].end <= pair[1].start,
                "two runs on {what} {k} overlap: {:?} and {:?}",
                pair[0],
                pair[1]
            );
        }
    }
}

async fn count(app: &TestApp, sql: &str) -> i64 {
    let (n,): (i64,) = pressluft::store::query_as(sql)
        .fetch_one(app.store.pool())
        .await
        .unwrap();
    n
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_replicas_share_2000_jobs_without_overlap_each_run_once() {
    if skip_on_sqlite("two_replicas_share_2000_jobs") {
        return;
    }
    let runs = Arc::new(Mutex::new(Vec::new()));
    let recorder = |replica| {
        Some(Arc::new(Recorder {
            replica,
            runs: runs.clone(),
        }) as Arc<dyn Runner>)
    };
    let a = spawn_app_with(|c| c.workers = 4, recorder("a")).await;
    let b = spawn_replica(&a, |c| c.workers = 4, recorder("b")).await;
    let sites = fixtures(&a, 5, 50).await;

    let started = Instant::now();
    let now = a.now();
    let mut tx = a.store.begin_write().await.unwrap();
    let mut ours = std::collections::HashSet::new();
    for i in 0..2000 {
        let j = job(&sites[i % 50]);
        Engine::enqueue(&mut tx, &j, &now).await.unwrap();
        ours.insert(j.id);
    }
    tx.commit().await.unwrap();
    // Only replica a is told in process; b hears of the jobs through LISTEN/NOTIFY.
    a.state.engine.enqueued();

    let deadline = Instant::now() + Duration::from_secs(240);
    loop {
        let open = count(
            &a,
            "SELECT COUNT(*) FROM jobs WHERE status IN ('queued', 'running')",
        )
        .await;
        if open == 0 {
            break;
        }
        assert!(Instant::now() < deadline, "{open} jobs still open");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let elapsed = started.elapsed();

    assert_eq!(
        count(
            &a,
            "SELECT COUNT(*) FROM jobs WHERE job_type = 'cache_purge'
               AND status = 'succeeded' AND attempt_count = 1"
        )
        .await,
        2000,
        "one terminal state per job, reached in one attempt"
    );
    // Runs of the fixtures' own jobs (the sites' creation) aside.
    let runs: Vec<Run> = runs
        .lock()
        .unwrap()
        .iter()
        .filter(|r| ours.contains(&r.job))
        .cloned()
        .collect();
    assert_eq!(runs.len(), 2000, "every job ran exactly once");
    let mut seen = std::collections::HashSet::new();
    for r in &runs {
        assert!(seen.insert(r.job.clone()), "job {} ran twice", r.job);
    }
    assert_no_overlap(&runs, "site", |r| r.site.clone());
    assert_no_overlap(&runs, "node", |r| Some(r.node.clone()));
    let by_a = runs.iter().filter(|r| r.replica == "a").count();
    let by_b = runs.len() - by_a;
    assert!(
        by_a > 0 && by_b > 0,
        "both replicas claimed: a {by_a}, b {by_b}"
    );
    eprintln!(
        "2 replicas × 4 workers: 2000 jobs (50 sites, 5 nodes) in {:.1} s ({:.0} jobs/s); a ran {by_a}, b {by_b}",
        elapsed.as_secs_f64(),
        2000.0 / elapsed.as_secs_f64()
    );
    drop(b);
}

/// Never finishes: the job stays `running` until its replica goes away.
struct Hang;

impl Runner for Hang {
    fn run<'a>(&'a self, _job: &'a JobRecord, _ctx: RunContext) -> RunFuture<'a> {
        Box::pin(std::future::pending())
    }
}

#[tokio::test]
async fn a_replica_that_dies_mid_job_has_its_job_recovered_by_the_other() {
    if skip_on_sqlite("a_replica_that_dies_mid_job") {
        return;
    }
    let runs = Arc::new(Mutex::new(Vec::new()));
    let a = spawn_app_with(|c| c.workers = 1, Some(Arc::new(Hang))).await;
    let b = spawn_replica(
        &a,
        |_| {},
        Some(Arc::new(Recorder {
            replica: "b",
            runs: runs.clone(),
        })),
    )
    .await;
    let sites = fixtures(&a, 1, 1).await;
    let j = job(&sites[0]);
    let mut tx = a.store.begin_write().await.unwrap();
    Engine::enqueue(&mut tx, &j, &a.now()).await.unwrap();
    tx.commit().await.unwrap();
    a.state.engine.enqueued();
    let deadline = Instant::now() + Duration::from_secs(30);
    while a
        .store
        .get_job(&j.id)
        .await
        .unwrap()
        .unwrap()
        .status
        .as_str()
        != "running"
    {
        assert!(Instant::now() < deadline, "replica a never claimed the job");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let worker = a.store.get_job(&j.id).await.unwrap().unwrap().locked_by;

    // Replica a goes away mid-job: its run is dropped, the row stays `running` under it.
    drop(a);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        b.store
            .get_job(&j.id)
            .await
            .unwrap()
            .unwrap()
            .status
            .as_str(),
        "running"
    );

    // Replica b finds the lease stale (jobs.md §4: 60 s without a heartbeat) and recovers it.
    assert_eq!(
        b.state.engine.recover_stale().await.unwrap(),
        0,
        "lease fresh"
    );
    b.clock.advance(time::Duration::seconds(61));
    // b's scheduler runs the same recovery on its own tick (every 30 s, once a's lease went
    // with a), so on a loaded machine it may be the one that finds the job.
    assert!(b.state.engine.recover_stale().await.unwrap() <= 1);
    let recovered = b.store.get_job(&j.id).await.unwrap().unwrap();
    assert_eq!(recovered.status.as_str(), "queued", "{recovered:?}");
    assert_eq!(recovered.error_code.as_deref(), Some("WORKER_LOST"));
    assert!(recovered
        .error_message
        .unwrap()
        .contains(worker.as_deref().unwrap()));
    // The retry is due after its backoff; b's worker runs it to the end.
    b.clock.advance(time::Duration::minutes(2));
    b.state.engine.run_until_idle("b-test").await.unwrap();
    // b's own workers may have claimed it first; wait for its end.
    let deadline = Instant::now() + Duration::from_secs(30);
    let done = loop {
        let job = b.store.get_job(&j.id).await.unwrap().unwrap();
        if job.status.as_str() != "running" {
            break job;
        }
        assert!(Instant::now() < deadline, "the retry never ended");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(done.status.as_str(), "succeeded");
    assert_eq!(done.attempt_count, 2);
    assert_eq!(runs.lock().unwrap().len(), 1, "b ran it once");
}

#[tokio::test]
async fn one_replica_at_a_time_holds_the_scheduler_lease() {
    if skip_on_sqlite("one_replica_at_a_time_holds_the_scheduler_lease") {
        return;
    }
    let a = spawn_app().await;
    let b = spawn_replica(&a, |_| {}, None).await;
    let mut first = SchedulerLease::default();
    let mut second = SchedulerLease::default();
    assert!(first.held(&a.store).await, "the first asks and gets it");
    assert!(!second.held(&b.store).await, "the other does not");
    assert!(
        first.held(&a.store).await,
        "kept while its connection lives"
    );
    assert!(!second.held(&b.store).await);
    drop(first);
    // The lock goes with the holder's connection; the other replica takes over.
    let deadline = Instant::now() + Duration::from_secs(15);
    while !second.held(&b.store).await {
        assert!(Instant::now() < deadline, "the lease never moved");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn periodic_jobs_are_enqueued_once_across_replicas() {
    if skip_on_sqlite("periodic_jobs_are_enqueued_once_across_replicas") {
        return;
    }
    let a = spawn_app_with(|c| c.workers = 0, Some(Arc::new(Hang))).await;
    let sites = fixtures(&a, 1, 3).await;
    a.exec(
        "INSERT INTO settings (key, value, updated_at) VALUES ('backup_schedule_hours', '24', ?)",
        &[&a.now()],
    )
    .await;
    // Two replicas whose schedulers tick at start-up, at the same moment.
    let (b, c) = tokio::join!(
        spawn_replica(&a, |c| c.workers = 1, Some(Arc::new(Hang))),
        spawn_replica(&a, |c| c.workers = 1, Some(Arc::new(Hang)))
    );
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let n = count(
            &a,
            "SELECT COUNT(*) FROM jobs WHERE job_type = 'backup_create'",
        )
        .await;
        if n as usize >= sites.len() {
            break;
        }
        assert!(Instant::now() < deadline, "{n} scheduled backups");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(
        count(
            &a,
            "SELECT COUNT(*) FROM jobs WHERE job_type = 'backup_create'"
        )
        .await,
        sites.len() as i64,
        "one scheduled backup per production environment, not one per replica"
    );
    // The periodic duties run on one replica: exactly one session of this database holds the
    // scheduler's advisory lock (key split into its two 32-bit halves, as pg_locks shows it).
    let key = pressluft::store::replicas::SCHEDULER_LOCK_KEY;
    let holders = count(
        &a,
        &format!(
            "SELECT COUNT(*) FROM pg_locks WHERE locktype = 'advisory' AND granted
               AND classid = {} AND objid = {} AND objsubid = 1
               AND database = (SELECT oid FROM pg_database WHERE datname = current_database())",
            key >> 32,
            key & 0xffff_ffff
        ),
    )
    .await;
    assert_eq!(holders, 1, "replicas holding the scheduler lease");
    drop((b, c));
}

#[tokio::test]
async fn a_session_works_on_any_replica() {
    if skip_on_sqlite("a_session_works_on_any_replica") {
        return;
    }
    let a = spawn_logged_in().await;
    let b = spawn_replica(&a, |_| {}, None).await;
    // The cookie the first replica set, sent to the second (as behind a load balancer).
    let r = a.client.get(b.url("/api/sites")).send().await.unwrap();
    assert_eq!(r.status(), 200, "replica b accepts replica a's session");
    let r = client().get(b.url("/api/sites")).send().await.unwrap();
    assert_eq!(r.status(), 401, "and still refuses no session");
}

#[tokio::test]
async fn a_replica_with_another_age_identity_refuses_to_start() {
    if skip_on_sqlite("a_replica_with_another_age_identity_refuses_to_start") {
        return;
    }
    let a = spawn_app().await;
    let dir = tempfile::tempdir().unwrap();
    let mut config = pressluft::config::Config::for_tests(dir.path());
    config.database_url = a.state.config.database_url.clone();
    let err = pressluft::startup::Application::build(
        config,
        Arc::new(pressluft::clock::ManualClock::starting_now()),
    )
    .await
    .err()
    .expect("a replica with its own new identity must not start");
    let text = format!("{err:#}");
    assert!(
        text.contains("cannot decrypt the stored secrets") && text.contains("age.key"),
        "{text}"
    );
    assert!(
        !text.contains("AGE-SECRET-KEY"),
        "no key material in the message"
    );
}

#[tokio::test]
async fn migrate_from_sqlite_moves_a_control_plane_that_serves_the_same_answers() {
    if skip_on_sqlite("migrate_from_sqlite_moves_a_control_plane") {
        return;
    }
    // A SQLite control plane with sites, environments, jobs and backups.
    let old = spawn_app_with(|c| c.database_url = None, None).await;
    old.login().await;
    let node = old.insert_node("n1", "active").await;
    let site = old.insert_site("Shop", "shop").await;
    let env = old.insert_environment(&site, &node, "Production").await;
    let staging = old.insert_environment(&site, &node, "Staging").await;
    let mut parent = JobFixture::new("cache_purge", "succeeded", &node);
    parent.site_id = Some(&site);
    parent.environment_id = Some(&env);
    let parent = old.insert_job(parent).await;
    let mut child = JobFixture::new("health_check", "failed", &node);
    child.site_id = Some(&site);
    child.environment_id = Some(&env);
    child.parent_job_id = Some(&parent);
    child.offset_ms = 5;
    old.insert_job(child).await;
    let now = old.now();
    old.exec(
        "INSERT INTO backups (id, environment_id, backup_scope, status, storage_type, storage_path,
           retention_until, checksum, size_bytes, created_at, completed_at, updated_at)
         VALUES ('b1', ?, 'full', 'completed', 'local', '/var/backups/pressluft/b1', ?,
           'sha256:00', 12, ?, ?, ?)",
        &[&env, &now, &now, &now, &now],
    )
    .await;
    let paths = [
        "/api/sites".to_string(),
        format!("/api/sites/{site}"),
        format!("/api/environments/{env}"),
        format!("/api/environments/{staging}"),
        format!("/api/environments/{env}/backups"),
        "/api/jobs".to_string(),
        "/api/nodes".to_string(),
    ];
    let mut before = Vec::new();
    for p in &paths {
        let (status, body) = old.get_json(p).await;
        assert_eq!(status, 200, "{p}: {body}");
        before.push(body);
    }

    // Copied into an empty PostgreSQL database…
    let url = fresh_test_database().await.unwrap();
    let target = pressluft::store::Store::connect(url.expose())
        .await
        .unwrap();
    target.migrate().await.unwrap();
    let source = pressluft::store::Store::open(&old.data_dir.join("pressluft.db"))
        .await
        .unwrap();
    let report = target.copy_from_sqlite(&source).await.unwrap();
    let copied = |t: &str| report.tables.iter().find(|(n, _)| *n == t).unwrap().1;
    assert_eq!(copied("sites"), 1);
    assert_eq!(copied("environments"), 2);
    assert_eq!(copied("jobs"), old.count("jobs").await as u64);
    assert_eq!(copied("backups"), 1);
    assert_eq!(copied("auth_sessions"), 1);
    // …and never into one that holds rows.
    let again = target.copy_from_sqlite(&source).await.unwrap_err();
    assert!(again.to_string().contains("not empty"), "{again}");

    // A control plane on the copy (same identity and secrets) answers the same, to the same
    // session.
    let new = spawn_replica(&old, |c| c.database_url = Some(url.clone()), None).await;
    for (p, want) in paths.iter().zip(&before) {
        let r = old.client.get(new.url(p)).send().await.unwrap();
        assert_eq!(r.status(), 200, "{p} on the copy");
        let got: serde_json::Value = r.json().await.unwrap();
        assert_eq!(&got, want, "{p} answers the same");
    }
}
