//! `backup_cleanup` for real on this machine (called from `e2e_sites.rs` while the site exists):
//! a completed local backup of production past its retention, with links planted in its
//! directory, is picked up by the scheduler's cleanup run (called here: the e2e app's manual
//! clock never passes the first check's minute), deleted by the worker through
//! `backup-cleanup.yml` and the node helper's `backup-delete` over SSH, and expires; its data key
//! goes at the next look; the links' targets are untouched.

use std::os::unix::fs::symlink;
use std::path::Path;

use pressluft::backups::{data_key_secret, local_storage_path};
use uuid::Uuid;

use crate::helpers::{finished, TestApp};

pub async fn expired_backups_are_deleted(app: &TestApp, site_id: &str, env_id: &str) {
    let backup_id = Uuid::new_v4().to_string();
    let path = local_storage_path(site_id, env_id, &backup_id);
    let dir = Path::new(&path);
    std::fs::create_dir_all(dir).unwrap();
    std::fs::write(dir.join("manifest.json"), "sealed").unwrap();
    std::fs::write(dir.join("files.tar.zst"), "sealed").unwrap();
    let victim = tempfile::tempdir().unwrap();
    std::fs::write(victim.path().join("precious.txt"), "keep me").unwrap();
    symlink(victim.path(), dir.join("evil-dir")).unwrap();
    symlink("/etc", dir.join("etc")).unwrap();
    let key = pressluft::node_helper::backup::generate_data_key();
    app.state
        .secrets
        .put(&data_key_secret(&backup_id), &key)
        .unwrap();
    let now = app.now();
    app.exec(
        "INSERT INTO backups (id, environment_id, backup_scope, status, storage_type,
           storage_path, retention_until, checksum, size_bytes, created_at, completed_at,
           updated_at)
         VALUES (?, ?, 'full', 'completed', 'local', ?, ?, 'sha256:00', 12, ?, ?, ?)",
        &[&backup_id, env_id, &path, &now, &now, &now, &now],
    )
    .await;

    let run = app.state.backups.run_cleanup().await.unwrap();
    assert_eq!(run.enqueued, 1, "{run:?}");
    let job_id: String = pressluft::store::query_scalar(
        "SELECT id FROM jobs WHERE job_type = 'backup_cleanup' AND site_id = ?",
    )
    .bind(site_id)
    .fetch_one(app.store.pool())
    .await
    .unwrap();
    let (job, output) = finished(app, &job_id).await;
    assert_eq!(job["status"], "succeeded", "{job}\n{output}");
    assert!(
        output.contains(&format!("{backup_id}: deleted")),
        "{output}"
    );
    assert!(!output.contains(&key), "no data key in the output");
    let backup = app.store.get_backup(&backup_id).await.unwrap().unwrap();
    assert_eq!(backup.status.to_string(), "expired");
    assert!(!dir.exists(), "artifacts gone");
    assert_eq!(
        std::fs::read_to_string(victim.path().join("precious.txt")).unwrap(),
        "keep me",
        "links removed, never followed"
    );
    assert!(Path::new("/etc/passwd").exists());

    // The scheduler's own periodic pass may have shredded the key first (0 then).
    let removed = app.state.backups.remove_expired_keys().await.unwrap();
    assert!(removed <= 1, "only this backup's key: {removed}");
    let gone = app.state.secrets.get(&data_key_secret(&backup_id)).unwrap();
    assert!(gone.is_none(), "crypto-shredded");
}
