//! Restore benchmark (issue 14; figures in docs/benchmarks.md), run as root on a provisioned
//! node with `cargo bench --bench restore`:
//!
//! creates a site through the real site service and job engine, fills its production
//! environment with `PL_BENCH_UPLOADS_MB` (1024) MB of uploads and a database grown to
//! `PL_BENCH_DB_MB` (500) MB, takes a `full` backup (not timed), then times the restore of that
//! backup into the same environment — from the request the API handler makes
//! (`Deploys::restore`) to the health gate's `health_check` succeeded, so the queue, Ansible
//! over SSH, the node helper (verification, the pre-restore full backup, the database import,
//! the release and uploads extraction, the swap, the switch) and the health gate all count —
//! against the same run's baseline: `zstd -d | mysql` into an empty database plus
//! `zstd -d | tar -x` of the same artifacts. The baseline reads **decrypted copies** of the
//! stored artifacts (made before, not timed, with `pressluft node backup-read --compressed`):
//! it does neither age decryption, nor the checksum verification, nor a pre-restore backup, nor
//! the health gate. It runs before and after the product; the ratio uses the faster of the two.
//! Every timed part (the product, each half of the baseline) starts after [`common::quiesce`]:
//! no part pays for the writes the one before left to MariaDB's page cleaner or the kernel.
//! Target: restore ≤ 1.3× the baseline. Everything created is removed at the end.

mod common;

use std::time::{Duration, Instant};

use common::{mb, remove_site, sh, timed};
use pressluft::domain::BackupStatus;
use pressluft::store::JobRecord;

fn main() {
    if !std::env::args().any(|a| a == "--bench") {
        return; // `cargo test --all-targets` builds benches; only `cargo bench` runs them.
    }
    if !common::node_ready("restore") {
        return;
    }
    // The node's phases (check, aside, live) of the restore, as the job logs them.
    tracing_subscriber::fmt()
        .with_env_filter("pressluft::jobs::env_restore=info")
        .init();
    tokio::runtime::Runtime::new().unwrap().block_on(run());
}

/// The follow-up of `parent`, once it is enqueued.
async fn follow_up(state: &pressluft::state::AppState, parent: &str) -> JobRecord {
    loop {
        let id: Option<(String,)> = pressluft::store::query_as(
            "SELECT id FROM jobs WHERE parent_job_id = ? ORDER BY created_at LIMIT 1",
        )
        .bind(parent)
        .fetch_optional(state.store.pool())
        .await
        .unwrap();
        if let Some((id,)) = id {
            return state.store.get_job(&id).await.unwrap().unwrap();
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn ran(job: &JobRecord) -> f64 {
    (pressluft::clock::parse_ts(job.finished_at.as_deref().unwrap()).unwrap()
        - pressluft::clock::parse_ts(job.started_at.as_deref().unwrap()).unwrap())
    .as_seconds_f64()
}

async fn run() {
    let uploads_mb = mb("PL_BENCH_UPLOADS_MB", 1024);
    let db_mb = mb("PL_BENCH_DB_MB", 500);
    let bench = common::Bench::start().await;
    let state = bench.state.clone();
    println!("restore benchmark: {uploads_mb} MB uploads, {db_mb} MB database, storage local");
    let site = bench.filled_site("Restore Bench", uploads_mb, db_mb).await;
    let (site_id, prod, uuid8) = (&site.site_id, &site.prod, site.uuid8.as_str());

    // The backup restored (not timed).
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
            BackupStatus::Failed | BackupStatus::Expired => panic!("backup {}", b.status),
            _ => tokio::time::sleep(Duration::from_millis(200)).await,
        }
    };
    println!(
        "backup {} made: {} MB stored",
        backup.id,
        backup.size_bytes.unwrap_or(0) >> 20
    );

    // Decrypted copies of its artifacts for the baseline (not timed).
    let scratch = format!("/var/backups/pl-bench-restore-{uuid8}");
    std::fs::create_dir_all(&scratch).unwrap();
    let mut conn = state.store.pool().acquire().await.unwrap();
    let access = pressluft::backups::storage::backup_access(&mut conn, &state.secrets, &backup)
        .await
        .unwrap();
    drop(conn);
    for artifact in ["db.sql.zst", "files.tar.zst"] {
        let spec = serde_json::json!({
            "contract_version": pressluft::node_helper::spec::CONTRACT_VERSION,
            "artifact": artifact, "storage": access.storage, "data_key": access.data_key,
            "compressed": true
        });
        let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_pressluft"))
            .args(["node", "backup-read"])
            .stdin(std::process::Stdio::piped())
            .stdout(std::fs::File::create(format!("{scratch}/{artifact}")).unwrap())
            .spawn()
            .unwrap();
        std::io::Write::write_all(
            &mut child.stdin.take().unwrap(),
            spec.to_string().as_bytes(),
        )
        .unwrap();
        assert!(child.wait().unwrap().success(), "backup-read {artifact}");
    }

    let before = baseline(&scratch, uuid8);
    common::quiesce();
    println!("env_restore (the product: queue, Ansible over SSH, verify, pre-restore backup, import and extraction side by side, swap, switch, health gate):");
    let t = Instant::now();
    let job_id = state
        .deploys
        .restore(&bench.actor, &prod.id, &backup.id)
        .await
        .unwrap();
    let job = common::wait_for(&state, &job_id).await;
    let gate = follow_up(&state, &job_id).await;
    let gate = common::wait_for(&state, &gate.id).await;
    let wall = t.elapsed();
    println!(
        "  request to healthy: {:.1} s (env_restore job ran {:.1} s, health_check {:.1} s)",
        wall.as_secs_f64(),
        ran(&job),
        ran(&gate)
    );
    let after = baseline(&scratch, uuid8);
    let baseline = before.min(after);
    let ratio = wall.as_secs_f64() / baseline.as_secs_f64();
    println!(
        "restore / baseline = {ratio:.2} (target <= 1.30): {}",
        if ratio <= 1.3 { "met" } else { "NOT met" }
    );

    let _ = std::fs::remove_dir_all(&scratch);
    for b in state.store.list_backups(&prod.id).await.unwrap() {
        if b.storage_type == pressluft::domain::BackupStorageType::Local {
            let _ = std::fs::remove_dir_all(b.storage_path.trim_end_matches('/'));
        }
    }
    remove_site(site_id, std::slice::from_ref(&prod.id));
    bench.finish().await;
}

/// `zstd -d | mysql` into an empty database plus `zstd -d | tar -x` into an empty directory, of
/// the decrypted artifacts in `scratch`; returns the total.
fn baseline(scratch: &str, uuid8: &str) -> Duration {
    println!("baseline (the same artifacts, decrypted, same run):");
    let db = format!("pl_bench_restore_{uuid8}");
    sh(
        "mysql",
        &[
            "-e",
            &format!("DROP DATABASE IF EXISTS {db}; CREATE DATABASE {db} CHARACTER SET utf8mb4"),
        ],
    );
    let dir = format!("{scratch}/files");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    common::quiesce();
    let import = timed("zstd -d | mysql", || {
        sh(
            "bash",
            &[
                "-o",
                "pipefail",
                "-c",
                &format!(
                    "zstd -q -d -c {scratch}/db.sql.zst | mysql --default-character-set=utf8mb4 {db}"
                ),
            ],
        );
    });
    common::quiesce();
    let files = timed("zstd -d | tar -x", || {
        sh(
            "bash",
            &[
                "-o",
                "pipefail",
                "-c",
                &format!("zstd -q -d -c {scratch}/files.tar.zst | tar -xf - -C {dir}"),
            ],
        );
    });
    sh("mysql", &["-e", &format!("DROP DATABASE IF EXISTS {db}")]);
    let _ = std::fs::remove_dir_all(&dir);
    let total = import + files;
    println!("  baseline total: {:.1} s", total.as_secs_f64());
    total
}
