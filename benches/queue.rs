//! Queue benchmarks (figures in docs/benchmarks.md), run with `cargo bench --bench queue`:
//!
//! 1. enqueue-to-start latency with an idle worker (target: median under 20 ms);
//! 2. claim throughput with a no-op runner over 10,000 queued jobs on 500 sites (target: over
//!    1,000 jobs/s).
//!
//! Both use the real engine, real SQLite (a file in a temp dir) and the real worker loop.
//! `PL_BENCH_WORKERS=N` sets the worker count of the throughput part (default 4),
//! `PL_BENCH_ONLY=latency|throughput` runs one part only.

use std::sync::Arc;
use std::time::{Duration, Instant};

use pressluft::clock::{format_ts, SystemClock};
use pressluft::config::Config;
use pressluft::domain::JobType;
use pressluft::jobs::runner::RunFuture;
use pressluft::jobs::{Engine, RunContext, RunOutcome, Runner};
use pressluft::startup::Application;
use pressluft::store::queue::NewJob;
use pressluft::store::JobRecord;
use tokio::sync::mpsc;

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
) -> (Application, pressluft::state::AppState) {
    let mut config = Config::for_tests(dir);
    config.workers = workers;
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

fn job(site: &(String, String, String)) -> NewJob {
    NewJob {
        id: uuid::Uuid::new_v4().to_string(),
        job_type: JobType::BackupCreate,
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
    let (app, state) = app(dir.path(), 1, Arc::new(Probe(tx))).await;
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
        let (id, started) = rx.recv().await.unwrap();
        assert_eq!(id, j.id);
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

async fn throughput() {
    let dir = tempfile::tempdir().unwrap();
    let (tx, _rx) = mpsc::unbounded_channel();
    let (_app, state) = app(dir.path(), 0, Arc::new(Probe(tx))).await;
    let sites = insert_fixtures(&state, 50, 500).await;
    let now = format_ts(time::OffsetDateTime::now_utc());
    let mut txn = state.store.begin_write().await.unwrap();
    for i in 0..10_000 {
        Engine::enqueue(&mut txn, &job(&sites[i % 500]), &now)
            .await
            .unwrap();
    }
    txn.commit().await.unwrap();
    let workers: usize = std::env::var("PL_BENCH_WORKERS")
        .ok()
        .and_then(|w| w.parse().ok())
        .unwrap_or(4);
    let started = Instant::now();
    let mut handles = Vec::new();
    for w in 0..workers {
        let engine = state.engine.clone();
        handles.push(tokio::spawn(async move {
            let mut n = 0;
            loop {
                let done = engine.run_until_idle(&format!("bench/{w}")).await.unwrap();
                n += done;
                if done == 0 {
                    break;
                }
            }
            n
        }));
    }
    let mut total = 0;
    for h in handles {
        total += h.await.unwrap();
    }
    let elapsed = started.elapsed();
    let (left,): (i64,) =
        pressluft::store::query_as("SELECT COUNT(*) FROM jobs WHERE status <> 'succeeded'")
            .fetch_one(state.store.pool())
            .await
            .unwrap();
    println!(
        "claim throughput (no-op runner, 10,000 jobs, 500 sites on 50 nodes, {workers} workers): {total} jobs in {:.2} s = {:.0} jobs/s (claim + complete); {left} not succeeded",
        elapsed.as_secs_f64(),
        total as f64 / elapsed.as_secs_f64()
    );
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
    // `PL_BENCH_ONLY=latency` or `=throughput` runs one part.
    let only = std::env::var("PL_BENCH_ONLY").unwrap_or_default();
    rt.block_on(async {
        if only != "throughput" {
            latency().await;
        }
        if only != "latency" {
            throughput().await;
        }
    });
}
