//! Clone benchmark (figures in docs/benchmarks.md), run as root on a provisioned node with
//! `cargo bench --bench clone`:
//!
//! creates a site through the real site service and job engine (Ansible over SSH to
//! 127.0.0.1, WordPress from `dir:/usr/share/wordpress`), fills its production environment with
//! `PL_BENCH_UPLOADS_MB` (500) MB of uploads and a database grown to `PL_BENCH_DB_MB` (100) MB,
//! then times `env_create` against the same run's baseline: `cp -a` of the uploads plus
//! `mysqldump | mysql` of the database. Target: clone time within 1.5× the baseline.
//!
//! Everything the benchmark creates on the node is removed at the end. With
//! `ANSIBLE_CALLBACKS_ENABLED=profile_tasks` set, the job's per-task times are printed too.

mod common;

use std::time::Instant;

use common::{mb, remove_site, sh, timed, wait_for};
use pressluft::sites::EnvironmentInput;

fn main() {
    if !std::env::args().any(|a| a == "--bench") {
        return; // `cargo test --all-targets` builds benches; only `cargo bench` runs them.
    }
    if !common::node_ready("clone") {
        return;
    }
    tokio::runtime::Runtime::new().unwrap().block_on(run());
}

async fn run() {
    let uploads_mb = mb("PL_BENCH_UPLOADS_MB", 500);
    let db_mb = mb("PL_BENCH_DB_MB", 100);
    let bench = common::Bench::start().await;
    let state = bench.state.clone();
    println!("clone benchmark: {uploads_mb} MB uploads, {db_mb} MB database");
    let site = bench.filled_site("Clone Bench", uploads_mb, db_mb).await;
    let (site_id, prod, uuid8) = (site.site_id.clone(), &site.prod, site.uuid8.as_str());
    let (uploads, db) = (&site.uploads, &site.db);
    let mut env_ids = vec![prod.id.clone()];

    println!("baseline (same data, same run):");
    let scratch = format!("/var/tmp/pl-bench-copy-{uuid8}");
    let baseline_db = format!("pl_bench_{uuid8}");
    let cp = timed("cp -a uploads", || {
        sh("cp", &["-a", uploads, &scratch]);
    });
    sh("mysql", &["-e", &format!("CREATE DATABASE {baseline_db}")]);
    let dump = timed("mysqldump | mysql", || {
        sh(
            "bash",
            &[
                "-o",
                "pipefail",
                "-c",
                &format!("mysqldump --single-transaction {db} | mysql {baseline_db}"),
            ],
        );
    });
    let baseline = cp + dump;
    println!("  baseline total: {:.1} s", baseline.as_secs_f64());
    let _ = std::fs::remove_dir_all(&scratch);
    sh("mysql", &["-e", &format!("DROP DATABASE {baseline_db}")]);

    println!("env_create (the product: Ansible over SSH, copy, dump | search-replace | import, drift baseline):");
    let t = Instant::now();
    let clone = state
        .sites
        .create_environment(
            &bench.actor,
            &site_id,
            EnvironmentInput {
                name: "Staging".into(),
                slug: "staging".into(),
                environment_type: "staging".into(),
                source_environment_id: None,
                promotion_preset: Some("content-protect".into()),
            },
        )
        .await
        .unwrap();
    env_ids.push(clone.environment_id.clone());
    let job = wait_for(&state, &clone.job_id).await;
    let wall = t.elapsed();
    let ran = pressluft::clock::parse_ts(job.finished_at.as_deref().unwrap()).unwrap()
        - pressluft::clock::parse_ts(job.started_at.as_deref().unwrap()).unwrap();
    println!(
        "  job ran: {:.1} s (enqueue to success: {:.1} s)",
        ran.as_seconds_f64(),
        wall.as_secs_f64()
    );
    // The playbook's own account of its steps, and with ANSIBLE_CALLBACKS_ENABLED=profile_tasks
    // in the environment the per-task times.
    let output = job.output_tail.unwrap_or_default();
    for line in output
        .lines()
        .skip_while(|l| !l.starts_with("TASK [Show what took how long]"))
    {
        println!("  | {line}");
    }
    let ratio = ran.as_seconds_f64() / baseline.as_secs_f64();
    println!(
        "clone / baseline = {ratio:.2} (target <= 1.50): {}",
        if ratio <= 1.5 { "met" } else { "NOT met" }
    );

    remove_site(&site_id, &env_ids);
    bench.finish().await;
}
