//! Sites end to end on this machine as the node (called by `e2e.rs` after provisioning), through
//! the HTTP API only: create a site from Debian's WordPress package, submit a staging clone
//! while `site_create` has not finished (it must wait, never overlap), then a second clone after
//! a serialized option holding the production URL was stored, and check what a visitor and
//! the node see: the title over the preview host, the FastCGI cache, PHP running as the
//! environment's user, open_basedir isolation, rewritten URLs and separate users, databases
//! and pools. Finally the dashboard flow in a real browser (tests/browser/sites.mjs).

use std::process::Command;
use std::time::Duration;

use serde_json::{json, Value};

use crate::helpers::{host, output_with_stdin, page_text, post_environment, run, visitor, TestApp};
use crate::helpers::{post_job, succeeded, wait_for_job};

fn sql(query: &str) -> String {
    run("mysql", &["--batch", "--skip-column-names", "-e", query])
        .trim()
        .to_string()
}

async fn environment(app: &TestApp, id: &str) -> Value {
    app.get_json(&format!("/api/environments/{id}")).await.1
}

/// Runs the PHP bridge as an environment's user.
pub fn bridge(env_user: &str, wp_root: &str, args: &[&str]) -> Value {
    let wp_root = format!("PRESSLUFT_WP_ROOT={wp_root}");
    let mut argv = vec![
        "-u",
        env_user,
        "--",
        "env",
        wp_root.as_str(),
        "php",
        "/usr/local/lib/pressluft/php/bridge.php",
    ];
    argv.extend_from_slice(args);
    serde_json::from_str(run("runuser", &argv).trim()).unwrap()
}

pub async fn sites_on_this_machine(app: &TestApp) {
    db_copy_matches_the_dump_pipeline();
    run(
        concat!(env!("CARGO_MANIFEST_DIR"), "/tests/e2e/wordpress-source.sh"),
        &[],
    );
    let r = app.put_wordpress_source("dir:/usr/share/wordpress").await;
    assert_eq!(r.status(), 200);

    // Create the site and, at once, a staging clone of it: the clone waits for site_create.
    let create = post_job(
        app,
        "/api/sites",
        json!({"name": "E2E Shop", "slug": "e2e-shop"}),
    )
    .await;
    let (_, job) = app.get_json(&format!("/api/jobs/{create}")).await;
    let site_id = job["site_id"].as_str().unwrap().to_string();
    let prod_id = job["environment_id"].as_str().unwrap().to_string();
    let staging_job = post_environment(app, &site_id, "Staging", "staging", "staging").await;
    let created = succeeded(app, &create).await;
    let staged = succeeded(app, &staging_job).await;
    assert!(
        staged["started_at"].as_str().unwrap() >= created["finished_at"].as_str().unwrap(),
        "the clone started only after site_create finished: {created} {staged}"
    );
    let (_, site) = app.get_json(&format!("/api/sites/{site_id}")).await;
    assert_eq!(site["status"], "active");

    let prod = environment(app, &prod_id).await;
    let staging_id = staged["environment_id"].as_str().unwrap().to_string();
    let staging = environment(app, &staging_id).await;
    assert_eq!(prod["status"], "active");
    assert_eq!(staging["status"], "active");
    let prod_url = prod["preview_url"].as_str().unwrap().to_string();
    let staging_url = staging["preview_url"].as_str().unwrap().to_string();
    let (prod_host, staging_host) = (host(&prod_url), host(&staging_url));

    // What a visitor sees.
    let web = visitor(&[prod_host, staging_host]);
    for url in [&prod_url, &staging_url] {
        let r = web.get(format!("{url}/")).send().await.unwrap();
        assert_eq!(r.status(), 200, "{url}");
        let body = r.text().await.unwrap();
        assert!(body.contains("<title>E2E Shop"), "{url}: {body:.400}");
        let login = web.get(format!("{url}/wp-login.php")).send().await.unwrap();
        assert_eq!(login.status(), 200, "{url}/wp-login.php");
    }
    let staging_home = page_text(&web, format!("{staging_url}/")).await;
    assert!(
        staging_home.contains(staging_host),
        "staging links to itself"
    );
    assert!(
        !staging_home.contains(prod_host),
        "no production URL left on staging"
    );
    let second = web.get(format!("{prod_url}/")).send().await.unwrap();
    assert_eq!(
        second.headers()["x-fastcgi-cache"].to_str().unwrap(),
        "HIT",
        "the second anonymous request is served from the page cache"
    );

    // Who runs what on the node.
    let (prod_user, staging_user) = (
        format!("pl_{}", &prod_id[..8]),
        format!("pl_{}", &staging_id[..8]),
    );
    // The node's PHP version (Debian 12: 8.2, Ubuntu 24.04: 8.3), as the playbooks choose it.
    let php = run(
        "php",
        &["-r", "echo PHP_MAJOR_VERSION, '.', PHP_MINOR_VERSION;"],
    );
    let pool_users = run("ps", &["-o", "user:32=", "-C", &format!("php-fpm{php}")]);
    assert!(
        pool_users.lines().any(|u| u.trim() == prod_user),
        "PHP runs as {prod_user}: {pool_users}"
    );
    run("id", &[&prod_user]);
    run("id", &[&staging_user]);
    assert_ne!(prod_user, staging_user);
    let dbs = sql("SHOW DATABASES");
    for db in [
        format!("wp_{}", &prod_id[..8]),
        format!("wp_{}", &staging_id[..8]),
    ] {
        assert!(dbs.lines().any(|l| l == db), "database {db}: {dbs}");
    }
    for env in [&prod_id, &staging_id] {
        assert!(
            std::path::Path::new(&format!("/etc/php/{php}/fpm/pool.d/pressluft-{env}.conf"))
                .exists(),
            "own pool for {env}"
        );
    }
    let staging_db = format!("wp_{}", &staging_id[..8]);
    let home = sql(&format!(
        "SELECT option_value FROM {staging_db}.wp_options WHERE option_name = 'home'"
    ));
    let siteurl = sql(&format!(
        "SELECT option_value FROM {staging_db}.wp_options WHERE option_name = 'siteurl'"
    ));
    assert_eq!(
        (home.as_str(), siteurl.as_str()),
        (staging_url.as_str(), staging_url.as_str())
    );

    // open_basedir: PHP of production cannot read staging's wp-config.php.
    let prod_root = format!("/var/www/sites/{site_id}/{prod_id}");
    let probe = format!("{prod_root}/current/pl-e2e-probe.php");
    std::fs::write(
        &probe,
        format!(
            "<?php var_dump(@file_get_contents('/var/www/sites/{site_id}/{staging_id}/shared/wp-config.php'));"
        ),
    )
    .unwrap();
    run("chown", &[&format!("{prod_user}:www-data"), &probe]);
    let body = page_text(&web, format!("{prod_url}/pl-e2e-probe.php")).await;
    std::fs::remove_file(&probe).unwrap();
    assert!(
        body.contains("bool(false)"),
        "open_basedir must block: {body}"
    );

    crate::e2e_isolation::environments_are_isolated(
        &site_id,
        &prod_id,
        &staging_id,
        &prod_url,
        &staging_url,
    )
    .await;
    crate::e2e_health::health_checks(app, &site_id, &prod_id, &create).await;
    crate::e2e_backups::backups(app, &site_id, &prod_id).await;
    crate::e2e_backup_cleanup::expired_backups_are_deleted(app, &site_id, &prod_id).await;
    crate::e2e_updates::updates(app, &site_id, &prod_id).await;
    crate::e2e_rollback::rollback_restores_the_database(app, &site_id, &prod_id).await;

    // A serialized option holding the production URL comes out rewritten in a new clone.
    let current = format!("{prod_root}/current");
    let value = json!({"name": "pl_e2e_serialized", "value": {
        "url": prod_url, "nested": {"links": [format!("{prod_url}/shop"), "other"]}}});
    let set = bridge(&prod_user, &current, &["option-set", &value.to_string()]);
    assert_eq!(set["updated"], true, "{set}");
    let clone_job = post_environment(app, &site_id, "Clone", "clone", "clone").await;
    let cloned = succeeded(app, &clone_job).await;
    let clone_id = cloned["environment_id"].as_str().unwrap().to_string();
    let clone = environment(app, &clone_id).await;
    let clone_url = clone["preview_url"].as_str().unwrap().to_string();
    let clone_root = format!("/var/www/sites/{site_id}/{clone_id}/current");
    let got = bridge(
        &format!("pl_{}", &clone_id[..8]),
        &clone_root,
        &["option-get", r#"{"name": "pl_e2e_serialized"}"#],
    );
    assert_eq!(got["value"]["url"], clone_url.as_str(), "{got}");
    assert_eq!(
        got["value"]["nested"]["links"][0],
        format!("{clone_url}/shop").as_str()
    );
    let raw = sql(&format!(
        "SELECT option_value FROM wp_{}.wp_options WHERE option_name = 'pl_e2e_serialized'",
        &clone_id[..8]
    ));
    let mut php = Command::new("php");
    php.args(["-r", "echo unserialize(stream_get_contents(STDIN))['url'];"]);
    let check = output_with_stdin(php, raw.as_bytes());
    assert_eq!(
        String::from_utf8_lossy(&check.stdout),
        clone_url,
        "php unserialize: {raw}"
    );

    // The drift baseline of production was captured for each clone.
    let (baselines,): (i64,) = pressluft::store::query_as(
        "SELECT COUNT(*) FROM drift_checks WHERE is_baseline = 1 AND environment_id IN (?, ?)",
    )
    .bind(&staging_id)
    .bind(&clone_id)
    .fetch_one(app.store.pool())
    .await
    .unwrap();
    assert_eq!(baselines, 2);
    let (tables, paths): (String, String) = pressluft::store::query_as(
        "SELECT db_checksums_json, file_checksums_json FROM drift_checks WHERE environment_id = ?",
    )
    .bind(&clone_id)
    .fetch_one(app.store.pool())
    .await
    .unwrap();
    let (tables, paths): (Value, Value) = (
        serde_json::from_str(&tables).unwrap(),
        serde_json::from_str(&paths).unwrap(),
    );
    assert!(
        tables["wp_posts"]["rows"].as_u64().unwrap() >= 1,
        "{tables}"
    );
    assert!(
        tables["wp_wc_orders"].is_null(),
        "absent tables are null: {tables}"
    );
    assert!(
        paths["wp-content/uploads"]
            .as_str()
            .unwrap()
            .starts_with("sha256:"),
        "{paths}"
    );

    // A precondition failing on the node (the source's uploads are missing): the helper stops
    // before changing anything, the job fails with PRECONDITION_FAILED naming the path, the
    // site is active again and no user or database was created for the new environment.
    let uploads = format!("{prod_root}/shared/uploads");
    let aside = format!("{prod_root}/shared/uploads.e2e-aside");
    std::fs::rename(&uploads, &aside).unwrap();
    let refused = post_environment(app, &site_id, "Broken", "broken", "clone").await;
    let job = wait_for_job(app, &refused, Duration::from_secs(5 * 60)).await;
    std::fs::rename(&aside, &uploads).unwrap();
    assert_eq!(job["status"], "failed", "{job}");
    assert_eq!(job["error_code"], "PRECONDITION_FAILED", "{job}");
    let message = job["error_message"].as_str().unwrap();
    assert!(message.contains("shared/uploads"), "{message}");
    let (_, site) = app.get_json(&format!("/api/sites/{site_id}")).await;
    assert_eq!(site["status"], "active", "{site}");
    let broken_id = job["environment_id"].as_str().unwrap();
    let broken_user = format!("pl_{}", &broken_id[..8]);
    assert!(
        !Command::new("id")
            .arg(&broken_user)
            .output()
            .unwrap()
            .status
            .success(),
        "no user {broken_user}"
    );
    assert!(
        !sql("SHOW DATABASES")
            .lines()
            .any(|l| l == format!("wp_{}", &broken_id[..8])),
        "no database for the refused environment"
    );

    // The same flow from the dashboard, in a real browser.
    let out = crate::e2e::browser_script(app, "sites.mjs", &[]).await;
    let browser_site = out
        .lines()
        .find_map(|l| l.strip_prefix("SITE "))
        .expect("the browser reported its site");
    let (_, envs) = app
        .get_json(&format!("/api/sites/{browser_site}/environments"))
        .await;
    let types = crate::helpers::column(&envs, "environment_type");
    assert_eq!(types, ["production", "staging"]);

    // Backups from the dashboard on the live production environment (create, watch it
    // complete, download, verify), once the backup jobs have their playbooks.
    let playbooks = concat!(env!("CARGO_MANIFEST_DIR"), "/ansible/playbooks");
    if ["backup-create.yml", "backup-verify.yml"]
        .iter()
        .all(|p| std::path::Path::new(playbooks).join(p).exists())
    {
        crate::e2e::browser_script(
            app,
            "backups.mjs",
            &[("PRESSLUFT_ENVIRONMENT_ID", &prod_id)],
        )
        .await;
    } else {
        eprintln!("skipped tests/browser/backups.mjs: the backup jobs have no playbooks yet");
    }

    crate::e2e_deploys::deploys(app, &site_id, &prod_id).await;
    crate::e2e_cache::cache_controls(app, &site_id, &prod_id, &staging_id).await;
    crate::e2e_magic_login::magic_login(app, &site_id, &prod_id).await;
    crate::e2e_import::imports(app, browser_site).await;
    crate::e2e_drill::drills(app, &site_id, &prod_id).await;
    crate::e2e_restore::restores(app, &site_id, &prod_id, &staging_id).await;
    crate::e2e_drift::drift(app, browser_site).await;
    crate::e2e_promote::promotion(app, &site_id, &prod_id).await;
    crate::e2e_settings::settings(app).await;
    crate::e2e_wildcard::wildcard_previews(app, &site_id, &prod_id).await;
    crate::e2e_domains::custom_domains(app, &site_id, &prod_id).await;
    crate::e2e_safe_updates::safe_updates(app, &site_id, &prod_id).await;
    crate::e2e_cphttps::dashboard_https(app).await;

    // Delete both sites through the product (staging first, then the site; the browser's
    // from the dashboard): the node is left as it was for the steps after this one.
    crate::e2e_delete::deletes(app, &site_id, browser_site).await;
    crate::e2e_clone_attacks::clone_attacks(app).await;
    crate::e2e_injection::user_data_is_never_templated(app).await;
}

/// `pressluft node db-copy` (the clone's parallel database copy) against the plain pipeline it
/// replaces, `mysqldump | pressluft node search-replace | mysql`, on real MariaDB: every table
/// must come out identical (CHECKSUM TABLE), with the awkward parts of a dump present — a
/// serialized value holding the URL, a JSON-escaped URL, NUL bytes and multibyte text, a row
/// with id 0, a TIMESTAMP (session time zone), an empty table, a table large enough for many
/// INSERT statements (spread over the connections), a trigger (copied, never fired by the
/// copy) and a view.
fn db_copy_matches_the_dump_pipeline() {
    let (from, to) = ("http://src.example.test", "https://copy.example.test");
    let serialized = format!("{from}/shop");
    let serialized = format!(
        "a:2:{{s:4:\"home\";s:{}:\"{serialized}\";s:1:\"n\";i:1;}}",
        serialized.len()
    );
    sql("DROP DATABASE IF EXISTS pl_dbcopy_src; DROP DATABASE IF EXISTS pl_dbcopy_a; \
         DROP DATABASE IF EXISTS pl_dbcopy_b; CREATE DATABASE pl_dbcopy_src CHARACTER SET utf8mb4; \
         CREATE DATABASE pl_dbcopy_a CHARACTER SET utf8mb4; CREATE DATABASE pl_dbcopy_b CHARACTER SET utf8mb4");
    sql(&format!(
        "USE pl_dbcopy_src;
         CREATE TABLE wp_options (option_id bigint unsigned NOT NULL AUTO_INCREMENT PRIMARY KEY,
           option_name varchar(191) NOT NULL UNIQUE, option_value longtext NOT NULL);
         CREATE TABLE log (id int NOT NULL AUTO_INCREMENT PRIMARY KEY, msg text);
         CREATE TRIGGER log_options AFTER INSERT ON wp_options FOR EACH ROW
           INSERT INTO log (msg) VALUES (NEW.option_name);
         SET SESSION sql_mode = 'NO_AUTO_VALUE_ON_ZERO';
         INSERT INTO wp_options VALUES (0, 'zero', '{from}/zero'),
           (1, 'serialized', '{serialized}'),
           (2, 'json', '{{\"u\":\"http:\\\\/\\\\/src.example.test\\\\/a\"}}'),
           (3, 'bytes', CONCAT('ünïcödé ', CHAR(0), ' {from}/x ', CHAR(39), '\\\\'));
         CREATE TABLE stamped (id int PRIMARY KEY, at timestamp NOT NULL, note text);
         SET SESSION time_zone = '+05:00';
         INSERT INTO stamped VALUES (1, '2026-11-26 10:00:00', '{from}');
         CREATE TABLE empty_table (id int PRIMARY KEY);
         CREATE TABLE big (id int PRIMARY KEY, body text);
         INSERT INTO big SELECT seq, REPEAT('see {from}/page and more text ', 8) FROM seq_1_to_40000;
         CREATE VIEW option_names AS SELECT option_name FROM wp_options;"
    ));
    let bin = env!("CARGO_BIN_EXE_pressluft");
    run(
        bin,
        &[
            "node",
            "db-copy",
            "--source",
            "pl_dbcopy_src",
            "--target",
            "pl_dbcopy_a",
            "--from",
            from,
            "--to",
            to,
            "--connections",
            "3",
        ],
    );
    run(
        "bash",
        &[
            "-o",
            "pipefail",
            "-c",
            &format!(
                "mysqldump --single-transaction --default-character-set=utf8mb4 pl_dbcopy_src \
             | {bin} node search-replace --from {from} --to {to} 2>/dev/null \
             | mysql --default-character-set=utf8mb4 pl_dbcopy_b"
            ),
        ],
    );
    for table in ["wp_options", "log", "stamped", "empty_table", "big"] {
        let checksum = |db: &str| sql(&format!("CHECKSUM TABLE {db}.{table}"));
        let (a, b) = (checksum("pl_dbcopy_a"), checksum("pl_dbcopy_b"));
        assert_eq!(
            a.split('\t').nth(1),
            b.split('\t').nth(1),
            "{table} differs between db-copy and the dump pipeline"
        );
    }
    assert_eq!(sql("SELECT COUNT(*) FROM pl_dbcopy_a.big"), "40000");
    assert_eq!(
        sql("SELECT COUNT(*) FROM pl_dbcopy_a.big WHERE body LIKE '%copy.example.test/page%'"),
        "40000"
    );
    assert_eq!(
        sql("SELECT COUNT(*) FROM pl_dbcopy_a.log"),
        "4",
        "the trigger fired only when the source was filled"
    );
    assert_eq!(
        sql("SELECT TRIGGER_NAME FROM information_schema.TRIGGERS WHERE TRIGGER_SCHEMA = 'pl_dbcopy_a'"),
        "log_options"
    );
    assert_eq!(sql("SELECT COUNT(*) FROM pl_dbcopy_a.option_names"), "4");
    let value =
        sql("SELECT option_value FROM pl_dbcopy_a.wp_options WHERE option_name = 'serialized'");
    assert!(
        value.contains(&format!("s:{}:\"{to}/shop\"", to.len() + 5)),
        "{value}"
    );
    sql("DROP DATABASE pl_dbcopy_src; DROP DATABASE pl_dbcopy_a; DROP DATABASE pl_dbcopy_b");
}
