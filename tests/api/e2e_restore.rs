//! `env_restore` for real on this machine (called from `e2e_sites.rs` with the first site, its
//! production and staging), through `POST /api/environments/{id}/restore`, the node helper, the
//! health gate and the dashboard.
//!
//! (a) Production: a canary post and a serialized option holding production's URL, a full
//! backup, the post deleted → restored into production: the post is back, the job and its gate
//! succeeded, the new release (`backup:<id>`) is current and healthy, the pre-restore backup is
//! completed. (b) The same backup into staging: staging's `home`/`siteurl` are staging's URL, the
//! serialized option holds staging's URL with correct `s:` lengths (PHP's own `unserialize`),
//! staging serves pages linking to itself, production is untouched. (c) One flipped byte in a
//! stored artifact of a completed local backup: the restore fails with
//! `BACKUP_CHECKSUM_MISMATCH` before anything changes — same release, same database checksum, no
//! pre-restore backup written, the environment `active` (the byte is put back after). (d) The
//! dashboard restores production's backup into staging with the confirmation
//! (tests/browser/restore.mjs) and watches the job succeed. Both environments stay active and
//! serving.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use serde_json::{json, Value};

use crate::backup_jobs::start_backup;
use crate::helpers::{gate_ended, post_job, run, run_with_stdin, succeeded, wait_for_job, TestApp};

const CANARY: &str = "PL restore canary post";

fn sql(query: &str) -> String {
    run("mysql", &["--batch", "--skip-column-names", "-e", query])
        .trim()
        .to_string()
}

/// A PHP serialized array holding `url` twice (a plain and a nested value).
fn serialized(url: &str) -> String {
    let shop = format!("{url}/shop");
    let inner = format!("a:1:{{s:4:\"link\";s:{}:\"{shop}\";}}", shop.len());
    format!(
        "a:2:{{s:3:\"url\";s:{}:\"{url}\";s:6:\"nested\";{inner}}}",
        url.len()
    )
}

fn current(env_root: &str) -> String {
    std::fs::read_link(format!("{env_root}/current"))
        .unwrap()
        .to_string_lossy()
        .into_owned()
}

/// The database's checksum: every table's `CHECKSUM TABLE`, sorted.
fn db_checksum(db: &str) -> String {
    let tables = sql(&format!(
        "SELECT TABLE_NAME FROM information_schema.TABLES WHERE TABLE_SCHEMA = '{db}' ORDER BY 1"
    ));
    let list: Vec<String> = tables.lines().map(|t| format!("`{db}`.`{t}`")).collect();
    sql(&format!("CHECKSUM TABLE {}", list.join(", ")))
}

/// `GET url/path` through nginx on this machine: (status, body).
fn page(url: &str, path: &str) -> (String, String) {
    let host = pressluft::sites::layout::url_host(url).to_string();
    let out = Command::new("curl")
        .args([
            "--silent",
            "--max-time",
            "30",
            "--write-out",
            "\n%{http_code}",
            "--resolve",
            &format!("{host}:80:127.0.0.1"),
            &format!(
                "http://{host}/{path}?pl-restore={}",
                uuid::Uuid::new_v4().simple()
            ),
        ])
        .output()
        .expect("curl");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (body, code) = text.rsplit_once('\n').unwrap_or((&text, ""));
    (code.to_string(), body.to_string())
}

async fn environment(app: &TestApp, id: &str) -> Value {
    app.get_json(&format!("/api/environments/{id}")).await.1
}

async fn restore(app: &TestApp, env_id: &str, backup_id: &str) -> String {
    app.clock.advance(time::Duration::seconds(1));
    post_job(
        app,
        &format!("/api/environments/{env_id}/restore"),
        json!({ "backup_id": backup_id }),
    )
    .await
}

/// The job's `pre_backup_id` and that backup's row.
async fn pre_backup(app: &TestApp, job_id: &str) -> Value {
    let (payload,): (String,) =
        pressluft::store::query_as("SELECT payload_json FROM jobs WHERE id = ?")
            .bind(job_id)
            .fetch_one(app.store.pool())
            .await
            .unwrap();
    let payload: Value = serde_json::from_str(&payload).unwrap();
    let id = payload["pre_backup_id"].as_str().unwrap();
    app.get_json(&format!("/api/backups/{id}")).await.1
}

/// The serialized option's value in `db`, unserialized by PHP: `[url, nested link]`.
fn unserialized(db: &str) -> Vec<String> {
    let raw = sql(&format!(
        "SELECT option_value FROM {db}.wp_options WHERE option_name = 'pl_restore_serialized'"
    ));
    let php = run_with_stdin(
        "php",
        &[
            "-r",
            "$v = unserialize(stream_get_contents(STDIN)); if ($v === false) exit(1); \
             echo $v['url'], \"\\n\", $v['nested']['link'];",
        ],
        &raw,
    );
    php.lines().map(str::to_string).collect()
}

pub async fn restores(app: &TestApp, site_id: &str, prod_id: &str, staging_id: &str) {
    let prod = environment(app, prod_id).await;
    let staging = environment(app, staging_id).await;
    let prod_url = prod["preview_url"]
        .as_str()
        .unwrap()
        .trim_end_matches('/')
        .to_string();
    let staging_url = staging["preview_url"]
        .as_str()
        .unwrap()
        .trim_end_matches('/')
        .to_string();
    let prod_root = format!("/var/www/sites/{site_id}/{prod_id}");
    let staging_root = format!("/var/www/sites/{site_id}/{staging_id}");
    let (prod_db, staging_db) = (
        format!("wp_{}", &prod_id[..8]),
        format!("wp_{}", &staging_id[..8]),
    );

    // (a) A canary post and a serialized option, a full backup, then the post deleted.
    let value = serialized(&prod_url).replace('\'', "''");
    sql(&format!(
        "DELETE FROM {prod_db}.wp_options WHERE option_name = 'pl_restore_serialized';
         INSERT INTO {prod_db}.wp_options (option_name, option_value, autoload)
           VALUES ('pl_restore_serialized', '{value}', 'no');
         INSERT INTO {prod_db}.wp_posts (post_author, post_date, post_date_gmt, post_content,
           post_title, post_excerpt, post_status, comment_status, ping_status, post_name, to_ping,
           pinged, post_modified, post_modified_gmt, post_content_filtered, guid, post_type)
         VALUES (1, NOW(), NOW(), 'canary', '{CANARY}', '', 'publish', 'open', 'open',
           'pl-restore-canary', '', '', NOW(), NOW(), '', '{prod_url}/?p=pl-restore', 'post');"
    ));
    let (backup_id, backup_job) = start_backup(app, prod_id, "full").await;
    succeeded(app, &backup_job).await;
    let posts = |db: &str| {
        sql(&format!(
            "SELECT COUNT(*) FROM {db}.wp_posts WHERE post_title = '{CANARY}'"
        ))
    };
    sql(&format!(
        "DELETE FROM {prod_db}.wp_posts WHERE post_title = '{CANARY}'"
    ));
    assert_eq!(posts(&prod_db), "0");
    let before = current(&prod_root);

    let job = restore(app, prod_id, &backup_id).await;
    let (gate, rollback) = gate_ended(app, &job).await;
    assert!(rollback.is_none(), "the restore passed its gate: {gate}");
    let (_, done) = app.get_json(&format!("/api/jobs/{job}")).await;
    assert_eq!(done["job_type"], "env_restore");
    assert_eq!(done["status"], "succeeded", "{done}");
    assert_eq!(posts(&prod_db), "1", "the deleted post is back");
    assert_ne!(current(&prod_root), before, "a new release is live");
    let (_, releases) = app
        .get_json(&format!("/api/environments/{prod_id}/releases"))
        .await;
    assert_eq!(
        releases[0]["source_ref"],
        format!("backup:{backup_id}"),
        "{releases}"
    );
    assert_eq!(releases[0]["health_status"], "healthy", "{releases}");
    let pre = pre_backup(app, &job).await;
    assert_eq!(pre["status"], "completed", "{pre}");
    assert_eq!(pre["backup_scope"], "full", "{pre}");
    assert_eq!(environment(app, prod_id).await["status"], "active");
    let (code, body) = page(&prod_url, "");
    assert_eq!(code, "200", "{body}");

    // (b) Production's backup into staging: URLs rewritten, serialized values intact.
    let staging_before = current(&staging_root);
    let job = restore(app, staging_id, &backup_id).await;
    let (gate, rollback) = gate_ended(app, &job).await;
    assert!(
        rollback.is_none(),
        "the restore into staging passed its gate: {gate}"
    );
    for option in ["home", "siteurl"] {
        assert_eq!(
            sql(&format!(
                "SELECT option_value FROM {staging_db}.wp_options WHERE option_name = '{option}'"
            )),
            staging_url,
            "{option}"
        );
    }
    assert_eq!(
        unserialized(&staging_db),
        [staging_url.clone(), format!("{staging_url}/shop")],
        "the serialized option holds staging's URL with the right lengths"
    );
    assert_eq!(posts(&staging_db), "1", "production's content");
    assert_ne!(
        current(&staging_root),
        staging_before,
        "a new release on staging"
    );
    assert_eq!(
        unserialized(&prod_db),
        [prod_url.clone(), format!("{prod_url}/shop")],
        "production untouched"
    );
    let (code, body) = page(&staging_url, "");
    assert_eq!(code, "200", "{body}");
    let staging_host = pressluft::sites::layout::url_host(&staging_url).to_string();
    let prod_host = pressluft::sites::layout::url_host(&prod_url).to_string();
    assert!(!body.contains(&prod_host), "no production URL on staging");
    // The home page is the deployed theme's (it may print no link); WordPress's login page
    // links to the site through home/siteurl.
    let (code, login) = page(&staging_url, "wp-login.php");
    assert_eq!(code, "200", "{login}");
    assert!(
        login.contains(&staging_host),
        "staging links to itself: {login}"
    );
    assert!(!login.contains(&prod_host), "no production URL on staging");
    let (_, releases) = app
        .get_json(&format!("/api/environments/{staging_id}/releases"))
        .await;
    assert_eq!(releases[0]["source_ref"], format!("backup:{backup_id}"));
    assert!(
        releases[0]["notes"]
            .as_str()
            .unwrap_or_default()
            .contains("rewritten"),
        "{releases}"
    );

    // (c) One flipped byte: refused before anything changes.
    let backup = app.store.get_backup(&backup_id).await.unwrap().unwrap();
    assert_eq!(
        backup.storage_type,
        pressluft::domain::BackupStorageType::Local,
        "{backup:?}"
    );
    let artifact = Path::new(&backup.storage_path).join("db.sql.zst");
    let intact = std::fs::read(&artifact).unwrap();
    let mut flipped = intact.clone();
    let middle = flipped.len() / 2;
    flipped[middle] ^= 0x01;
    std::fs::write(&artifact, &flipped).unwrap();
    let live = current(&prod_root);
    let checksum = db_checksum(&prod_db);
    let job = restore(app, prod_id, &backup_id).await;
    let failed = wait_for_job(app, &job, Duration::from_secs(600)).await;
    std::fs::write(&artifact, &intact).unwrap();
    assert_eq!(failed["status"], "failed", "{failed}");
    assert_eq!(failed["error_code"], "BACKUP_CHECKSUM_MISMATCH", "{failed}");
    assert!(
        failed["error_message"]
            .as_str()
            .unwrap_or_default()
            .contains("db.sql.zst"),
        "{failed}"
    );
    assert_eq!(current(&prod_root), live, "same release");
    assert_eq!(db_checksum(&prod_db), checksum, "same database");
    let pre = pre_backup(app, &job).await;
    assert_eq!(pre["status"], "failed", "no pre-restore backup: {pre}");
    let pre_path = app
        .store
        .get_backup(pre["id"].as_str().unwrap())
        .await
        .unwrap()
        .unwrap()
        .storage_path;
    assert!(
        !Path::new(&pre_path).join("manifest.json").exists(),
        "nothing was written for the pre-restore backup"
    );
    assert_eq!(environment(app, prod_id).await["status"], "active");
    let (_, site) = app.get_json(&format!("/api/sites/{site_id}")).await;
    assert_eq!(site["status"], "active", "{site}");

    // (d) The dashboard: restore production's backup into staging with the confirmation.
    let out = crate::e2e::browser_script(
        app,
        "restore.mjs",
        &[
            ("PRESSLUFT_ENVIRONMENT_ID", staging_id),
            ("PRESSLUFT_BACKUP_ID", &backup_id),
        ],
    )
    .await;
    let job = out
        .lines()
        .find_map(|l| l.strip_prefix("JOB "))
        .expect("the browser reported its job")
        .to_string();
    let (gate, rollback) = gate_ended(app, &job).await;
    assert!(rollback.is_none(), "{gate}");
    for env in [prod_id, staging_id] {
        assert_eq!(environment(app, env).await["status"], "active");
    }
    let (code, _) = page(&staging_url, "");
    assert_eq!(code, "200");
    let (code, _) = page(&prod_url, "");
    assert_eq!(code, "200");
}
