//! Queue benchmarks (figures in docs/benchmarks.md), run with `cargo bench --bench queue`:
//!
//! 1. enqueue-to-start latency with an idle worker (target: median under 20 ms);
//! 2. claim throughput with a no-op runner over 10,000 queued jobs on 500 sites (target: over
//!    1,000 jobs/s).
//!
//! Both use the real engine, real SQLite (a file in a temp dir) and the real worker loop.
//!
//! 3. the same throughput on PostgreSQL (issue 17), once with one replica and once with two
//!    (two `Application`s on one database, as `tests/api/replicas.rs` spawns them; each
//!    replica's engine runs the workers), next to SQLite's figure. `PL_BENCH_DATABASE_URL`
//!    names a PostgreSQL server by an admin URL (e.g. `postgres://postgres@127.0.0.1:55434/postgres`,
//!    `scripts/pg-test-server` prints one): each part creates a fresh database there and drops
//!    it after. Without it these parts print that they were skipped.
//!
//! Every throughput part checks that each of the 10,000 jobs ran exactly once (the runner's
//! reports, counted by job id) and ended `succeeded` (counted in the database).
//! `PL_BENCH_WORKERS=N` sets the worker count of the throughput parts, per replica (default 4);
//! `PL_BENCH_ONLY=latency|throughput|postgres` runs the latency part, the throughput parts, or
//! the PostgreSQL parts only.

use std::sync::Arc;
use std::time::{Duration, Instant};

use pressluft::clock::{format_ts, SystemClock};
use pressluft::config::{Config, DatabaseUrl};
use pressluft::domain::JobType;
use pressluft::jobs::runner::RunFuture;
use pressluft::jobs::{Engine, RunContext, RunOutcome, Runner};
use pressluft::startup::Application;
use pressluft::store::queue::NewJob;
use pressluft::store::JobRecord;
use tokio::sync::mpsc;

/// The variable naming the PostgreSQL server of parts 3 (an admin URL; a database is created
/// per part).
const DATABASE_URL_VAR: &str = "PL_BENCH_DATABASE_URL";
/// Jobs, sites and nodes of the throughput parts.
const JOBS: usize = 10_000;
const SITES: usize = 500;
const NODES: usize = 50;

/// Reports when each job starts, then succeeds at once.
struct Probe(mpsc::UnboundedSender<(String, Instant)>);

impl Runner for Probe {
    fn run<'a>(&'a self, job: &'a JobRecord, _ctx: RunContext) -> RunFuture<'a> {
        let _ = self.0.send((job.id.clone(), Instant::now()));
        Box::pin(async {
            RunOutcome::Succeeded {
                result: serde_json::json!({}),
            }
        })
    }
}

async fn app(
    dir: &std::path::Path,
    workers: usize,
    runner: Arc<dyn Runner>,
    database_url: Option<DatabaseUrl>,
) -> (Application, pressluft::state::AppState) {
    let mut config = Config::for_tests(dir);
    config.workers = workers;
    config.database_url = database_url;
    let app = Application::build_with_runner(config, Arc::new(SystemClock), Some(runner))
        .await
        .unwrap();
    let state = app.state().clone();
    (app, state)
}

async fn insert_fixtures(
    state: &pressluft::state::AppState,
    nodes: usize,
    sites: usize,
) -> Vec<(String, String, String)> {
    let now = format_ts(time::OffsetDateTime::now_utc());
    let pool = state.store.pool();
    let mut node_ids = Vec::new();
    for i in 0..nodes {
        let id = uuid::Uuid::new_v4().to_string();
        pressluft::store::query("INSERT INTO nodes (id, name, hostname, ssh_port, ssh_user, status, is_local, created_at, updated_at) VALUES (?, ?, 'h', 22, 'root', 'active', 0, ?, ?)")
            .bind(&id).bind(format!("n{i}")).bind(&now).bind(&now).execute(pool).await.unwrap();
        node_ids.push(id);
    }
    let mut out = Vec::new();
    for i in 0..sites {
        let site = uuid::Uuid::new_v4().to_string();
        let env = uuid::Uuid::new_v4().to_string();
        let node = node_ids[i % nodes].clone();
        pressluft::store::query("INSERT INTO sites (id, name, slug, status, created_at, updated_at) VALUES (?, ?, ?, 'active', ?, ?)")
            .bind(&site).bind(format!("s{i}")).bind(format!("s-{i}")).bind(&now).bind(&now).execute(pool).await.unwrap();
        pressluft::store::query("INSERT INTO environments (id, site_id, name, slug, environment_type, status, node_id, promotion_preset, preview_url, created_at, updated_at) VALUES (?, ?, 'P', 'production', 'production', 'active', ?, 'content-protect', 'http://x', ?, ?)")
            .bind(&env).bind(&site).bind(&node).bind(&now).bind(&now).execute(pool).await.unwrap();
        out.push((site, env, node));
    }
    out
}

/// A `cache_purge` job: a kind with no start-time validation and no hooks, so what is timed is
/// the claim, the no-op runner and the completion. (Until issue 17 this was `backup_create`,
/// whose start-time validation, added with the backup kinds, refuses a job without its
/// `backups` row: every job then failed at the claim and the runner never ran.)
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

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

async fn latency() {
    let dir = tempfile::tempdir().unwrap();
    let (tx, mut rx) = mpsc::unbounded_channel();
    let (app, state) = app(dir.path(), 1, Arc::new(Probe(tx)), None).await;
    let sites = insert_fixtures(&state, 1, 1).await;
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(app.run(async move {
        let _ = stop_rx.await;
    }));
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut samples = Vec::new();
    for _ in 0..300 {
        let j = job(&sites[0]);
        let enqueued = Instant::now();
        let now = format_ts(time::OffsetDateTime::now_utc());
        let mut tx = state.store.begin_write().await.unwrap();
        Engine::enqueue(&mut tx, &j, &now).await.unwrap();
        tx.commit().await.unwrap();
        state.engine.enqueued();
        // The running application's scheduler enqueues jobs of its own (the environment's
        // health checks), which the probe reports too: wait for this one.
        let started = loop {
            let (id, started) = rx.recv().await.unwrap();
            if id == j.id {
                break started;
            }
        };
        samples.push(started - enqueued);
        // Let the job complete so the worker is idle again.
        tokio::time::sleep(Duration::from_millis(15)).await;
    }
    samples.sort();
    println!(
        "enqueue-to-start latency (idle worker, {} samples): median {:.2} ms, p95 {:.2} ms, max {:.2} ms",
        samples.len(),
        percentile(&samples, 0.5).as_secs_f64() * 1000.0,
        percentile(&samples, 0.95).as_secs_f64() * 1000.0,
        samples.last().unwrap().as_secs_f64() * 1000.0
    );
    let _ = stop_tx.send(());
    let _ = server.await;
}

/// A fresh database on the PostgreSQL server of `admin`; its name and URL.
async fn create_database(admin: &str) -> (String, DatabaseUrl) {
    use sqlx::{Connection, Executor};
    sqlx::any::install_default_drivers();
    let name = format!("pl_bench_{}", uuid::Uuid::new_v4().simple());
    let mut conn = sqlx::AnyConnection::connect(admin)
        .await
        .expect("PostgreSQL server of PL_BENCH_DATABASE_URL reachable");
    conn.execute(format!("CREATE DATABASE {name}").as_str())
        .await
        .expect("bench database created");
    conn.close().await.ok();
    let mut url = url::Url::parse(admin).expect("PL_BENCH_DATABASE_URL is a URL");
    url.set_path(&format!("/{name}"));
    let url = DatabaseUrl::parse(url.as_str()).expect("PL_BENCH_DATABASE_URL is a postgres:// URL");
    (name, url)
}

async fn drop_database(admin: &str, name: &str) {
    use sqlx::{Connection, Executor};
    let mut conn = sqlx::AnyConnection::connect(admin).await.unwrap();
    conn.execute(format!("DROP DATABASE {name} WITH (FORCE)").as_str())
        .await
        .expect("bench database dropped");
    conn.close().await.ok();
}

/// Claim + complete throughput over [`JOBS`] queued jobs: on SQLite (`admin` = `None`, one
/// replica) or on a fresh PostgreSQL database of the server `admin` names, with `replicas`
/// `Application`s on it (the second with a copy of the first's age identity and secrets, as a
/// replica needs). Each replica's engine runs `workers` workers; workers stop when a claim
/// finds nothing.
async fn throughput(admin: Option<&str>, replicas: usize, workers: usize) {
    let database = match admin {
        Some(admin) => Some(create_database(admin).await),
        None => None,
    };
    let (tx, mut rx) = mpsc::unbounded_channel();
    let mut dirs: Vec<tempfile::TempDir> = Vec::new();
    let mut apps = Vec::new();
    for r in 0..replicas {
        let dir = tempfile::tempdir().unwrap();
        if r > 0 {
            let first = dirs[0].path();
            std::fs::copy(first.join("age.key"), dir.path().join("age.key")).unwrap();
            let status = std::process::Command::new("cp")
                .arg("-a")
                .arg(first.join("secrets"))
                .arg(dir.path())
                .status()
                .unwrap();
            assert!(status.success(), "secrets copied to the second replica");
        }
        let url = database.as_ref().map(|(_, url)| url.clone());
        apps.push(app(dir.path(), 0, Arc::new(Probe(tx.clone())), url).await);
        dirs.push(dir);
    }
    drop(tx);
    let state = apps[0].1.clone();
    let sites = insert_fixtures(&state, NODES, SITES).await;
    let now = format_ts(time::OffsetDateTime::now_utc());
    let mut txn = state.store.begin_write().await.unwrap();
    for i in 0..JOBS {
        Engine::enqueue(&mut txn, &job(&sites[i % SITES]), &now)
            .await
            .unwrap();
    }
    txn.commit().await.unwrap();
    let started = Instant::now();
    let mut handles = Vec::new();
    for (r, (_, replica)) in apps.iter().enumerate() {
        for w in 0..workers {
            let engine = replica.engine.clone();
            handles.push((
                r,
                tokio::spawn(async move {
                    let mut n = 0;
                    loop {
                        let done = engine
                            .run_until_idle(&format!("bench{r}/{w}"))
                            .await
                            .unwrap();
                        n += done;
                        if done == 0 {
                            break;
                        }
                    }
                    n
                }),
            ));
        }
    }
    let mut per_replica = vec![0usize; replicas];
    for (r, h) in handles {
        per_replica[r] += h.await.unwrap();
    }
    let elapsed = started.elapsed();
    let total: usize = per_replica.iter().sum();

    // Exactly once: every job ran once (the runner's reports) and ended succeeded.
    let mut runs = 0usize;
    let mut distinct = std::collections::HashSet::new();
    while let Ok((id, _)) = rx.try_recv() {
        runs += 1;
        distinct.insert(id);
    }
    let (succeeded,): (i64,) =
        pressluft::store::query_as("SELECT COUNT(*) FROM jobs WHERE status = 'succeeded'")
            .fetch_one(state.store.pool())
            .await
            .unwrap();
    let (left,): (i64,) =
        pressluft::store::query_as("SELECT COUNT(*) FROM jobs WHERE status <> 'succeeded'")
            .fetch_one(state.store.pool())
            .await
            .unwrap();
    let once = runs == JOBS && distinct.len() == JOBS && total == JOBS && succeeded == JOBS as i64;
    let on = match admin {
        None => "SQLite".to_string(),
        Some(_) => format!(
            "PostgreSQL, {replicas} replica{} ({})",
            if replicas == 1 { "" } else { "s" },
            per_replica
                .iter()
                .map(|n| n.to_string())
                .collect::<Vec<_>>()
                .join(" + ")
        ),
    };
    println!(
        "claim throughput on {on} (no-op runner, {JOBS} jobs, {SITES} sites on {NODES} nodes, {workers} workers per replica): {total} jobs in {:.2} s = {:.0} jobs/s (claim + complete); {succeeded} succeeded, {left} not; {runs} runs of {} distinct jobs: {}",
        elapsed.as_secs_f64(),
        total as f64 / elapsed.as_secs_f64(),
        distinct.len(),
        if once { "each exactly once" } else { "NOT each exactly once" }
    );
    drop(state);
    drop(apps);
    if let (Some(admin), Some((name, _))) = (admin, &database) {
        // Let the pools' connections close before the database goes.
        tokio::time::sleep(Duration::from_millis(200)).await;
        drop_database(admin, name).await;
    }
    assert!(once, "every job must run exactly once and end succeeded");
}

fn main() {
    // `cargo bench` passes `--bench`; `cargo test --all-targets` runs this binary without it,
    // and then it only confirms that it builds.
    if !std::env::args().any(|a| a == "--bench") {
        println!("queue benchmark: run with `cargo bench --bench queue`");
        return;
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    // `PL_BENCH_ONLY=latency`, `=throughput` or `=postgres` runs those parts only.
    let only = std::env::var("PL_BENCH_ONLY").unwrap_or_default();
    let workers: usize = std::env::var("PL_BENCH_WORKERS")
        .ok()
        .and_then(|w| w.parse().ok())
        .unwrap_or(4);
    rt.block_on(async {
        if only.is_empty() || only == "latency" {
            latency().await;
        }
        if only.is_empty() || only == "throughput" {
            throughput(None, 1, workers).await;
        }
        if only.is_empty() || only == "throughput" || only == "postgres" {
            match std::env::var(DATABASE_URL_VAR) {
                Ok(admin) => {
                    throughput(Some(&admin), 1, workers).await;
                    throughput(Some(&admin), 2, workers).await;
                }
                Err(_) => println!(
                    "claim throughput on PostgreSQL (1 and 2 replicas): skipped, {DATABASE_URL_VAR} is not set (an admin URL of a PostgreSQL server, e.g. the one scripts/pg-test-server prints)"
                ),
            }
        }
    });
}
