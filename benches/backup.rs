//! Backup benchmark (issue 11; figures in docs/benchmarks.md), run as root on a provisioned
//! node with `cargo bench --bench backup`:
//!
//! creates a site through the real site service and job engine, fills its production
//! environment with `PL_BENCH_UPLOADS_MB` (1024) MB of uploads and a database grown to
//! `PL_BENCH_DB_MB` (500) MB, then times a `full` backup — from the request the API handler
//! makes (`Backups::create`) to the backup row `completed`, so the queue, Ansible over SSH and
//! the node helper all count — against the same run's baseline:
//! `mysqldump --single-transaction | zstd -3 -T0` plus `tar | zstd -3 -T0` of the same
//! release and uploads, written to the same disk, run before and after the product (the ratio
//! uses the faster of the two, so a warm cache never favours the product). While the job runs,
//! the node helper's peak RSS is sampled from /proc (`VmHWM` of `pressluft node backup-create`).
//! Targets: backup ≤ 1.2× the baseline; helper peak RSS < 64 MB.
//!
//! `PL_BENCH_S3=1` stores the backup in the moto S3 server (scripts/s3-test-server) instead
//! of the node's local directory. Everything created is removed at the end.

mod common;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{mb, remove_site, sh, timed};
use pressluft::domain::BackupStatus;

fn main() {
    if !std::env::args().any(|a| a == "--bench") {
        return; // `cargo test --all-targets` builds benches; only `cargo bench` runs them.
    }
    if !common::node_ready("backup") {
        return;
    }
    tokio::runtime::Runtime::new().unwrap().block_on(run());
}

/// The largest `VmHWM` (kB) of any `pressluft node backup-create` process seen until `stop`.
fn sample_helper_rss(stop: Arc<AtomicBool>, peak_kb: Arc<AtomicU64>) {
    while !stop.load(Ordering::Relaxed) {
        for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
            let dir = entry.path();
            let Ok(cmdline) = std::fs::read(dir.join("cmdline")) else {
                continue;
            };
            let args: Vec<&[u8]> = cmdline.split(|b| *b == 0).collect();
            let is_helper = args.len() >= 3
                && args[0].ends_with(b"pressluft")
                && args[1] == b"node"
                && args[2] == b"backup-create";
            if !is_helper {
                continue;
            }
            let status = std::fs::read_to_string(dir.join("status")).unwrap_or_default();
            if let Some(kb) = status
                .lines()
                .find_map(|l| l.strip_prefix("VmHWM:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
            {
                peak_kb.fetch_max(kb, Ordering::Relaxed);
            }
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

async fn run() {
    let uploads_mb = mb("PL_BENCH_UPLOADS_MB", 1024);
    let db_mb = mb("PL_BENCH_DB_MB", 500);
    let s3 = std::env::var("PL_BENCH_S3").is_ok_and(|v| v == "1");
    let bench = common::Bench::start().await;
    let state = bench.state.clone();
    println!(
        "backup benchmark: {uploads_mb} MB uploads, {db_mb} MB database, storage {}",
        if s3 { "s3 (moto)" } else { "local" }
    );
    if s3 {
        common::use_s3_storage(&bench).await;
    }
    let site = bench.filled_site("Backup Bench", uploads_mb, db_mb).await;
    let (site_id, prod, uuid8) = (&site.site_id, &site.prod, site.uuid8.as_str());
    let (prod_root, db) = (&site.prod_root, &site.db);

    // The baseline runs before and after the product, so neither side profits alone from a
    // warm page cache or buffer pool; the ratio uses the faster baseline.
    let before = baseline(db, prod_root, uuid8);
    println!("backup_create (the product: queue, Ansible over SSH, dump/tar | zstd | age | sha256 | store):");
    let stop = Arc::new(AtomicBool::new(false));
    let peak_kb = Arc::new(AtomicU64::new(0));
    let sampler = {
        let (stop, peak_kb) = (stop.clone(), peak_kb.clone());
        std::thread::spawn(move || sample_helper_rss(stop, peak_kb))
    };
    let t = Instant::now();
    let created = state
        .backups
        .create(Some(&bench.actor), &prod.id, "full")
        .await
        .unwrap();
    let backup = loop {
        let b = state
            .store
            .get_backup(&created.backup_id)
            .await
            .unwrap()
            .unwrap();
        match b.status {
            BackupStatus::Completed => break b,
            BackupStatus::Failed | BackupStatus::Expired => {
                let job = state.store.get_job(&created.job_id).await.unwrap().unwrap();
                panic!(
                    "backup {}: {:?} {:?}\n{}",
                    b.status,
                    job.error_code,
                    job.error_message,
                    job.output_tail.unwrap_or_default()
                );
            }
            _ => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    };
    let wall = t.elapsed();
    stop.store(true, Ordering::Relaxed);
    sampler.join().unwrap();
    let job = state.store.get_job(&created.job_id).await.unwrap().unwrap();
    let ran = pressluft::clock::parse_ts(job.finished_at.as_deref().unwrap()).unwrap()
        - pressluft::clock::parse_ts(job.started_at.as_deref().unwrap()).unwrap();
    println!(
        "  request to completed: {:.1} s (job ran {:.1} s), {} MB stored, {}",
        wall.as_secs_f64(),
        ran.as_seconds_f64(),
        backup.size_bytes.unwrap_or(0) >> 20,
        backup.checksum.as_deref().unwrap_or("no checksum")
    );
    let after = baseline(db, prod_root, uuid8);
    let baseline = before.min(after);
    let ratio = wall.as_secs_f64() / baseline.as_secs_f64();
    println!(
        "backup / baseline = {ratio:.2} (target <= 1.20): {}",
        if ratio <= 1.2 { "met" } else { "NOT met" }
    );
    let peak_mb = peak_kb.load(Ordering::Relaxed) as f64 / 1024.0;
    println!(
        "node helper peak RSS = {peak_mb:.1} MB (target < 64 MB): {}",
        if peak_mb > 0.0 && peak_mb < 64.0 {
            "met"
        } else {
            "NOT met (0 = not sampled)"
        }
    );

    if backup.storage_type == pressluft::domain::BackupStorageType::Local {
        let _ = std::fs::remove_dir_all(backup.storage_path.trim_end_matches('/'));
    }
    remove_site(site_id, std::slice::from_ref(&prod.id));
    bench.finish().await;
}

/// `mysqldump --single-transaction | zstd -3 -T0` plus `tar | zstd -3 -T0` of the same release
/// and uploads, written to the same disk as the product's local backups; returns the total.
fn baseline(db: &str, prod_root: &str, uuid8: &str) -> Duration {
    println!("baseline (same data, same run, same disk):");
    let scratch = format!("/var/backups/pl-bench-baseline-{uuid8}");
    std::fs::create_dir_all(&scratch).unwrap();
    let dump = timed("mysqldump --single-transaction | zstd -3 -T0", || {
        sh(
            "bash",
            &[
                "-o",
                "pipefail",
                "-c",
                &format!("mysqldump --single-transaction --quick {db} | zstd -q -3 -T0 > {scratch}/db.sql.zst"),
            ],
        );
    });
    let files = timed("tar | zstd -3 -T0", || {
        sh(
            "bash",
            &[
                "-o",
                "pipefail",
                "-c",
                &format!(
                    "tar -cf - -C {prod_root}/current/ . -C {prod_root}/shared uploads | zstd -q -3 -T0 > {scratch}/files.tar.zst"
                ),
            ],
        );
    });
    let baseline = dump + files;
    let baseline_size = sh("du", &["-sb", &scratch]);
    println!(
        "  baseline total: {:.1} s, {} MB written",
        baseline.as_secs_f64(),
        baseline_size
            .split_whitespace()
            .next()
            .and_then(|b| b.parse::<u64>().ok())
            .unwrap_or(0)
            >> 20
    );
    let _ = std::fs::remove_dir_all(&scratch);
    baseline
}
