//! `release_rollback` for real on this machine (called from `e2e_sites.rs` while the site
//! exists): a `full` backup of the production environment, then a row inserted into its
//! database; a `release_rollback` job naming the current release as target and failed and that
//! backup as `restore_backup_id` runs `release-rollback.yml` and the node helper: the job
//! succeeds, the row is gone, `current` still points at a complete release and the site
//! answers 200. With one byte of the stored dump flipped the job fails with
//! `BACKUP_CHECKSUM_MISMATCH` and nothing changed. The job is enqueued directly, without a
//! parent: a manual rollback that restores a backup (the API's manual rollback never does; the
//! update flow in `e2e_updates.rs` covers the automatic one), so its own health gate follows.

use std::path::Path;

use pressluft::domain::{BackupStorageType, JobType};
use pressluft::jobs::ReleaseRollbackPayload;
use pressluft::services::accept::{JobRequest, Mutations};
use serde_json::Value;

use crate::helpers::{finished, gate_ended, run, succeeded, visitor, TestApp};

const MARKER: &str = "pl_e2e_after_backup";

fn sql(query: &str) -> String {
    run("mysql", &["--batch", "--skip-column-names", "-e", query])
        .trim()
        .to_string()
}

fn flip_byte(path: &Path) {
    let mut bytes = std::fs::read(path).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x01;
    std::fs::write(path, bytes).unwrap();
}

/// Enqueues a `release_rollback` of `environment_id` as the health gate would (no audit row:
/// nobody asked): back to `release_id` (also the failed one), restoring `backup_id`; returns
/// the job's id.
pub async fn enqueue_release_rollback(
    app: &TestApp,
    env: &Value,
    release_id: &str,
    backup_id: &str,
) -> String {
    let s = &app.state;
    let mutations = Mutations::new(s.store.clone(), s.engine.clone(), s.clock.clone());
    let m = mutations.begin().await.unwrap();
    let request = JobRequest {
        job_type: JobType::ReleaseRollback,
        site_id: Some(env["site_id"].as_str().unwrap()),
        environment_id: Some(env["id"].as_str().unwrap()),
        node_id: env["node_id"].as_str().unwrap(),
        payload: ReleaseRollbackPayload {
            failed_release_id: release_id.to_string(),
            target_release_id: release_id.to_string(),
            restore_backup_id: Some(backup_id.to_string()),
            restore_uploads: true,
            reason: "e2e: rollback with restore".into(),
            ..Default::default()
        },
    };
    mutations.accept(m, request, None).await.unwrap()
}

fn marker_count(db: &str) -> String {
    sql(&format!(
        "SELECT COUNT(*) FROM {db}.wp_options WHERE option_name = '{MARKER}'"
    ))
}

pub async fn rollback_restores_the_database(app: &TestApp, site_id: &str, env_id: &str) {
    let (status, env) = app.get_json(&format!("/api/environments/{env_id}")).await;
    assert_eq!(status, 200, "{env}");
    let release = env["current_release_id"].as_str().unwrap().to_string();
    let url = env["preview_url"].as_str().unwrap().to_string();
    let db = format!("wp_{}", &env_id[..8]);
    let env_root = format!("/var/www/sites/{site_id}/{env_id}");

    let created = app
        .state
        .backups
        .create(None, env_id, "full")
        .await
        .unwrap();
    succeeded(app, &created.job_id).await;
    let backup = app
        .store
        .get_backup(&created.backup_id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(backup.storage_type, BackupStorageType::Local, "{backup:?}");
    let stored_dump = Path::new(&backup.storage_path).join("db.sql.zst");

    sql(&format!(
        "INSERT INTO {db}.wp_options (option_name, option_value, autoload) \
         VALUES ('{MARKER}', 'x', 'no')"
    ));
    assert_eq!(marker_count(&db), "1");
    let current_before = std::fs::read_link(format!("{env_root}/current")).unwrap();

    let job = enqueue_release_rollback(app, &env, &release, &created.backup_id).await;
    let (done, output) = finished(app, &job).await;
    assert_eq!(done["status"], "succeeded", "{done}\n{output}");
    // Enqueued without a parent, it is a manual rollback: gated like a deploy.
    let (gate, rolled_back) = gate_ended(app, &job).await;
    assert!(rolled_back.is_none(), "{gate}");
    assert_eq!(marker_count(&db), "0", "the row is gone");
    let current = std::fs::read_link(format!("{env_root}/current")).unwrap();
    assert_eq!(current, current_before);
    assert!(
        Path::new(&env_root)
            .join(&current)
            .join("wp-includes/version.php")
            .is_file(),
        "current is a complete release"
    );
    let host = url.split("://").nth(1).unwrap().split('/').next().unwrap();
    let web = visitor(&[host]);
    let r = web.get(format!("{url}/")).send().await.unwrap();
    assert_eq!(r.status(), 200, "{url} after the rollback");
    assert!(
        !output.contains("AGE-SECRET-KEY"),
        "no data key in the output"
    );

    // A tampered backup: refused before anything changes.
    sql(&format!(
        "INSERT INTO {db}.wp_options (option_name, option_value, autoload) \
         VALUES ('{MARKER}', 'x', 'no')"
    ));
    flip_byte(&stored_dump);
    let job = enqueue_release_rollback(app, &env, &release, &created.backup_id).await;
    let (done, output) = finished(app, &job).await;
    flip_byte(&stored_dump);
    assert_eq!(done["status"], "failed", "{done}\n{output}");
    assert_eq!(done["error_code"], "BACKUP_CHECKSUM_MISMATCH", "{done}");
    assert_eq!(marker_count(&db), "1", "nothing changed");
    sql(&format!(
        "DELETE FROM {db}.wp_options WHERE option_name = '{MARKER}'"
    ));
}
