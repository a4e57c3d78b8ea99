//! Backups for real on this machine (called from `e2e_sites.rs` while the site exists): `db`,
//! `files` and `full` backups of the production environment to local storage and to the S3 test
//! server (moto, `scripts/s3-test-server`) end `completed` with the right artifacts, Verify
//! passes, one flipped byte makes Verify fail with `BACKUP_CHECKSUM_MISMATCH`, the stored bytes
//! never show a post's title (encrypted), `pressluft node backup-read` of the database artifact
//! imports into a scratch database with that post, an unreachable S3 endpoint fails retryably
//! with `BACKUP_STORAGE_UNREACHABLE` and leaves nothing in the bucket, and no S3 secret key or
//! data key shows up in job output, job logs or any API response of the flow.

use std::path::Path;
use std::time::Duration;

use futures_util::TryStreamExt;
use object_store::aws::AmazonS3Builder;
use object_store::ObjectStore;
use pressluft::backups::data_key_secret;
use pressluft::domain::{BackupStatus, VerifyStatus};
use serde_json::{json, Value};

use crate::backup_jobs::{backup, start_backup, start_verify};
use crate::helpers::{output_with_stdin, run, wait_for_job, TestApp};

const S3_ENDPOINT: &str = "http://127.0.0.1:9900";
const S3_BUCKET: &str = "pressluft-e2e-backups";
const S3_ACCESS_KEY: &str = "pl-e2e-access";
/// A secret key the flow must never show anywhere (moto accepts any).
const S3_SECRET_KEY: &str = "pl-e2e-s3-secret-7f3a9c1d";

fn sql(query: &str) -> String {
    run("mysql", &["--batch", "--skip-column-names", "-e", query])
        .trim()
        .to_string()
}

/// Configures S3 backups through `PUT /_admin/settings/backups` (`None`: back to local
/// storage, credentials deleted).
async fn configure_s3(app: &TestApp, endpoint: Option<&str>) {
    let body = match endpoint {
        // The flow keeps scheduled backups off (e2e.rs; a group is written whole).
        Some(e) => json!({
            "backup_schedule_hours": 0,
            "backup_s3_bucket": S3_BUCKET,
            "backup_s3_endpoint": e,
            "backup_s3_region": "us-east-1",
            "backup_s3_prefix": "pressluft",
            "backup_s3_credentials": {"access_key_id": S3_ACCESS_KEY, "secret_access_key": S3_SECRET_KEY},
        }),
        None => json!({"backup_schedule_hours": 0, "backup_s3_credentials": null}),
    };
    let r = app.put_json("/_admin/settings/backups", body).await;
    let status = r.status();
    let text = r.text().await.unwrap();
    assert_eq!(status, 200, "{text}");
    assert!(
        !text.contains(S3_SECRET_KEY),
        "settings response shows the secret"
    );
}

/// What the flow saw: every job (JSON and output) and every secret it must not show.
#[derive(Default)]
struct Seen {
    responses: Vec<String>,
    job_ids: Vec<String>,
    secrets: Vec<String>,
}

impl Seen {
    fn data_key(&mut self, app: &TestApp, backup_id: &str) -> String {
        let key = app
            .state
            .secrets
            .get(&data_key_secret(backup_id))
            .unwrap()
            .expect("the backup's data key")
            .expose()
            .to_string();
        self.secrets.push(key.clone());
        key
    }
}

/// Runs a job to its end, retries included (the backoff skipped with the test clock).
async fn finish(app: &TestApp, seen: &mut Seen, job_id: &str) -> Value {
    loop {
        let job = wait_for_job(app, job_id, Duration::from_secs(10 * 60)).await;
        if job["status"] == "queued" {
            app.clock.advance(time::Duration::minutes(16));
            app.state.engine.enqueued();
            tokio::time::sleep(Duration::from_secs(1)).await;
            continue;
        }
        let output = app.text(&format!("/api/jobs/{job_id}/output")).await;
        seen.responses.push(job.to_string());
        seen.responses.push(output);
        seen.job_ids.push(job_id.to_string());
        return job;
    }
}

/// Backs up `env_id` with `scope`; returns the backup id once its job succeeded.
async fn backed_up(app: &TestApp, seen: &mut Seen, env_id: &str, scope: &str) -> String {
    let (id, job) = start_backup(app, env_id, scope).await;
    let j = finish(app, seen, &job).await;
    assert_eq!(
        j["status"],
        "succeeded",
        "{scope}: {j}\n{}",
        seen.responses.last().unwrap()
    );
    let b = backup(app, &id).await;
    assert_eq!(b.status, BackupStatus::Completed, "{b:?}");
    assert!(b.checksum.as_deref().unwrap().starts_with("sha256:"));
    assert!(b.size_bytes.unwrap() > 0);
    seen.data_key(app, &id);
    id
}

/// Verifies `backup_id`; returns the job.
async fn verified(app: &TestApp, seen: &mut Seen, backup_id: &str) -> Value {
    let job = start_verify(app, backup_id).await;
    finish(app, seen, &job).await
}

fn artifacts(scope: &str) -> Vec<&'static str> {
    match scope {
        "db" => vec!["db.sql.zst", "manifest.json"],
        "files" => vec!["files.tar.zst", "manifest.json"],
        _ => vec!["db.sql.zst", "files.tar.zst", "manifest.json"],
    }
}

fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack
        .windows(needle.len())
        .any(|w| w == needle.as_bytes())
}

fn flip_byte(path: &Path) {
    let mut bytes = std::fs::read(path).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x01;
    std::fs::write(path, bytes).unwrap();
}

/// The S3 test bucket (created when missing).
fn bucket() -> object_store::aws::AmazonS3 {
    run(
        concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/s3-test-server"),
        &[],
    );
    let _ = std::process::Command::new("curl")
        .args([
            "-sf",
            "-o",
            "/dev/null",
            "-X",
            "PUT",
            &format!("{S3_ENDPOINT}/{S3_BUCKET}"),
        ])
        .status();
    AmazonS3Builder::new()
        .with_endpoint(S3_ENDPOINT)
        .with_allow_http(true)
        .with_bucket_name(S3_BUCKET)
        .with_region("us-east-1")
        .with_access_key_id(S3_ACCESS_KEY)
        .with_secret_access_key(S3_SECRET_KEY)
        .build()
        .unwrap()
}

/// Objects (name → bytes) below the backup's S3 prefix.
async fn s3_objects(
    store: &object_store::aws::AmazonS3,
    storage_path: &str,
) -> Vec<(String, Vec<u8>)> {
    let (_, prefix) = pressluft::backups::storage::split_s3_path(storage_path).unwrap();
    let prefix = object_store::path::Path::from(prefix);
    let metas: Vec<_> = store.list(Some(&prefix)).try_collect().await.unwrap();
    let mut objects = Vec::new();
    for meta in metas {
        let bytes = store
            .get(&meta.location)
            .await
            .unwrap()
            .bytes()
            .await
            .unwrap();
        let name = meta.location.filename().unwrap().to_string();
        objects.push((name, bytes.to_vec()));
    }
    objects.sort();
    objects
}

/// The database artifact's plaintext through `pressluft node backup-read`.
fn read_db_artifact(storage: Value, data_key: &str) -> Vec<u8> {
    let spec = json!({"contract_version": pressluft::node_helper::spec::CONTRACT_VERSION, "artifact": "db.sql.zst", "storage": storage,
        "data_key": data_key});
    let mut read = std::process::Command::new(env!("CARGO_BIN_EXE_pressluft"));
    read.args(["node", "backup-read"]);
    let out = output_with_stdin(read, spec.to_string().as_bytes());
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

pub async fn backups(app: &TestApp, site_id: &str, env_id: &str) {
    let started = std::time::Instant::now();
    let mut seen = Seen {
        secrets: vec![S3_SECRET_KEY.to_string()],
        ..Default::default()
    };
    // A post with a unique title: the backups hold it, but never readably.
    let db = format!("wp_{}", &env_id[..8]);
    let title = format!(
        "pl-e2e-backup-post-{}",
        &uuid::Uuid::new_v4().simple().to_string()[..12]
    );
    sql(&format!(
        "INSERT INTO {db}.wp_posts (post_author, post_date, post_date_gmt, post_content, post_title,
           post_excerpt, post_status, post_name, to_ping, pinged, post_modified, post_modified_gmt,
           post_content_filtered, post_type)
         VALUES (1, NOW(), UTC_TIMESTAMP(), 'e2e body', '{title}', '', 'publish', '{title}', '', '',
           NOW(), UTC_TIMESTAMP(), '', 'post')"
    ));

    // Local storage: db, files, full.
    let mut local = Vec::new();
    for scope in ["db", "files", "full"] {
        let id = backed_up(app, &mut seen, env_id, scope).await;
        let dir = format!("/var/backups/pressluft/{site_id}/{env_id}/{id}");
        let b = backup(app, &id).await;
        assert_eq!(b.storage_path, format!("{dir}/"));
        let mut names: Vec<String> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        assert_eq!(names, artifacts(scope), "{scope}: {dir}");
        for name in &names {
            let bytes = std::fs::read(format!("{dir}/{name}")).unwrap();
            assert!(!contains(&bytes, &title), "{scope}/{name} is encrypted");
        }
        let v = verified(app, &mut seen, &id).await;
        assert_eq!(v["status"], "succeeded", "{v}");
        assert_eq!(backup(app, &id).await.verify_status, Some(VerifyStatus::Ok));
        local.push((id, dir));
    }

    // The database artifact, decrypted on the node, imports with the post.
    let (db_backup, db_dir) = &local[0];
    let key = seen.data_key(app, db_backup);
    let dump = read_db_artifact(json!({"type": "local", "path": db_dir}), &key);
    assert!(contains(&dump, &title), "the dump holds the post");
    let scratch = "pl_e2e_backup_restore";
    sql(&format!(
        "DROP DATABASE IF EXISTS {scratch}; CREATE DATABASE {scratch}"
    ));
    let mut import = std::process::Command::new("mysql");
    import.arg(scratch);
    let out = output_with_stdin(import, &dump);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let found = sql(&format!(
        "SELECT COUNT(*) FROM {scratch}.wp_posts WHERE post_title = '{title}'"
    ));
    let options = sql(&format!("SELECT COUNT(*) FROM {scratch}.wp_options"));
    sql(&format!("DROP DATABASE {scratch}"));
    assert_eq!(found, "1", "the imported dump has the post");
    assert_ne!(options, "0", "and the site's options");

    // One flipped byte: Verify fails with BACKUP_CHECKSUM_MISMATCH, not retried.
    flip_byte(Path::new(&format!("{db_dir}/db.sql.zst")));
    let v = verified(app, &mut seen, db_backup).await;
    assert_eq!(v["status"], "failed", "{v}");
    assert_eq!(v["error_code"], "BACKUP_CHECKSUM_MISMATCH", "{v}");
    assert_eq!(v["attempt_count"], 1, "{v}");
    assert!(
        v["error_message"].as_str().unwrap().contains("db.sql.zst"),
        "{v}"
    );
    let b = backup(app, db_backup).await;
    assert_eq!(b.verify_status, Some(VerifyStatus::Mismatch));
    assert_eq!(b.status, BackupStatus::Completed);

    // S3 (the moto test server): db, files, full.
    let store = bucket();
    let host_only = crate::helpers::HOST_ONLY_BACKUP_STORAGE.write().await;
    configure_s3(app, Some(S3_ENDPOINT)).await;
    for scope in ["db", "files", "full"] {
        let id = backed_up(app, &mut seen, env_id, scope).await;
        let b = backup(app, &id).await;
        assert!(
            b.storage_path.starts_with(&format!(
                "s3://{S3_BUCKET}/pressluft/{site_id}/{env_id}/{id}"
            )),
            "{b:?}"
        );
        let objects = s3_objects(&store, &b.storage_path).await;
        let names: Vec<&str> = objects.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, artifacts(scope), "{scope}");
        let stored: i64 = objects.iter().map(|(_, b)| b.len() as i64).sum();
        assert_eq!(Some(stored), b.size_bytes, "size_bytes is what is stored");
        for (name, bytes) in &objects {
            assert!(!contains(bytes, &title), "s3 {scope}/{name} is encrypted");
        }
        let v = verified(app, &mut seen, &id).await;
        assert_eq!(v["status"], "succeeded", "{v}");
        assert_eq!(backup(app, &id).await.verify_status, Some(VerifyStatus::Ok));
    }

    // S3 unreachable (a closed port): retried, then failed; nothing half-written.
    configure_s3(app, Some("http://127.0.0.1:9")).await;
    let (id, job) = start_backup(app, env_id, "full").await;
    let j = finish(app, &mut seen, &job).await;
    assert_eq!(j["status"], "failed", "{j}");
    assert_eq!(j["error_code"], "BACKUP_STORAGE_UNREACHABLE", "{j}");
    assert_eq!(j["attempt_count"], 3, "retryable: every attempt ran {j}");
    let b = backup(app, &id).await;
    assert_eq!(b.status, BackupStatus::Failed);
    assert_eq!(b.error_code.as_deref(), Some("BACKUP_STORAGE_UNREACHABLE"));
    assert!(
        s3_objects(&store, &b.storage_path).await.is_empty(),
        "nothing in the bucket"
    );
    seen.data_key(app, &id);
    configure_s3(app, None).await;
    drop(host_only);

    // No secret anywhere: job JSON, output (API), output_tail and the log files.
    for job_id in &seen.job_ids {
        let record = app.store.get_job(job_id).await.unwrap().unwrap();
        seen.responses.push(record.output_tail.unwrap_or_default());
        let log = pressluft::jobs::output::job_log_path(&app.state.config.log_dir, job_id);
        seen.responses
            .push(std::fs::read_to_string(&log).unwrap_or_default());
    }
    let (_, jobs) = app.get_json("/api/jobs").await;
    seen.responses.push(jobs.to_string());
    for secret in &seen.secrets {
        for (i, text) in seen.responses.iter().enumerate() {
            assert!(
                !text.contains(secret.as_str()),
                "a secret shows in response/log #{i}"
            );
        }
    }
    eprintln!(
        "e2e backups: {} jobs in {:.0?}",
        seen.job_ids.len(),
        started.elapsed()
    );
}
