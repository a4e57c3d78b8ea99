//! `pressluft node env-restore` (src/node_helper/env_restore.rs) against the real thing: a
//! scratch environment tree (releases, `shared/` with `wp-config.php` and uploads, the web
//! server's user as the environment user), a scratch MariaDB database, a `full` backup made
//! with `pressluft node backup-create` into node-local storage; then the site changes (a post
//! deleted, a new release, uploads changed) and the backup is restored — into the same
//! environment (everything back, a new release, the pre-restore backup made) and into a second
//! environment with another URL (home/siteurl and a serialized option rewritten, `s:` lengths
//! right); a flipped byte is refused with exit 5 before anything changes. Runs as root with
//! PRESSLUFT_E2E=1, under the node lock (`flock /tmp/pressluft-node.lock …`): it reloads
//! PHP-FPM and Nginx and purges Redis keys like every go-live.

use std::os::unix::fs::symlink;
use std::path::Path;
use std::process::Command;

use pressluft::node_helper::spec::CONTRACT_VERSION;
use serde_json::{json, Value};

mod node_common;
use node_common::{mysql, node};

const ENV_USER: &str = "www-data";
const PHP_DIR: &str = "/usr/local/lib/pressluft/php";

fn ready() -> bool {
    // SAFETY: no arguments, no memory.
    if unsafe { libc::geteuid() } != 0 || std::env::var_os("PRESSLUFT_E2E").is_none() {
        eprintln!("skipped: needs root and PRESSLUFT_E2E=1 (a provisioned node)");
        return false;
    }
    if !Path::new(PHP_DIR).join("bridge.php").is_file() {
        eprintln!("skipped: the node is not provisioned ({PHP_DIR}/bridge.php)");
        return false;
    }
    for service in ["mariadb", "redis-server", "php8.2-fpm", "nginx"] {
        let _ = Command::new("sh")
            .args([
                "-c",
                &format!("service {service} status >/dev/null 2>&1 || service {service} start >/dev/null 2>&1"),
            ])
            .status();
    }
    true
}

struct ScratchDb(String);

impl ScratchDb {
    fn new(name: &str) -> Self {
        mysql(&format!(
            "DROP DATABASE IF EXISTS {name}; CREATE DATABASE {name} CHARACTER SET utf8mb4;"
        ));
        ScratchDb(name.to_string())
    }
}

impl Drop for ScratchDb {
    fn drop(&mut self) {
        let _ = Command::new("mysql")
            .args(["-e", &format!("DROP DATABASE IF EXISTS {}", self.0)])
            .status();
    }
}

/// A PHP serialized array holding `url` (the form WordPress stores widget and theme options in).
fn serialized(url: &str) -> String {
    format!("a:1:{{s:3:\"url\";s:{}:\"{url}\";}}", url.len())
}

/// A WordPress-like database at `url`: options (home, siteurl, a serialized one) and posts.
fn seed_db(name: &str, url: &str) {
    mysql(&format!(
        "CREATE TABLE {name}.wp_options (option_id INT PRIMARY KEY, option_name VARCHAR(64),
           option_value LONGTEXT) CHARACTER SET utf8mb4;
         CREATE TABLE {name}.wp_posts (ID INT PRIMARY KEY, post_title TEXT) CHARACTER SET utf8mb4;
         INSERT INTO {name}.wp_options VALUES (1, 'home', '{url}'), (2, 'siteurl', '{url}'),
           (3, 'theme_mods', '{ser}');
         INSERT INTO {name}.wp_posts VALUES (1, 'Hello'), (2, 'Kept by the backup');",
        ser = serialized(url)
    ));
}

/// An environment tree owned by the environment user: release `r1` (current) with a theme,
/// `shared/wp-config.php`, `shared/uploads` with a canary.
fn env_tree(root: &Path, theme: &str) {
    let release = root.join("releases/r1");
    std::fs::create_dir_all(release.join("wp-includes")).unwrap();
    std::fs::create_dir_all(release.join("wp-content/themes/t")).unwrap();
    std::fs::write(
        release.join("wp-includes/version.php"),
        "<?php $wp_version = '6.7';",
    )
    .unwrap();
    std::fs::write(release.join("index.php"), "<?php // index").unwrap();
    std::fs::write(release.join("wp-content/themes/t/style.css"), theme).unwrap();
    std::fs::create_dir_all(root.join("shared/uploads/2024")).unwrap();
    std::fs::write(root.join("shared/uploads/2024/canary.txt"), "canary").unwrap();
    std::fs::write(
        root.join("shared/wp-config.php"),
        "<?php\ndefine('DB_NAME', 'x');\n$table_prefix = 'wp_';\n",
    )
    .unwrap();
    symlink("../../shared/wp-config.php", release.join("wp-config.php")).unwrap();
    symlink(
        "../../../shared/uploads",
        release.join("wp-content/uploads"),
    )
    .unwrap();
    symlink("releases/r1", root.join("current")).unwrap();
    let status = Command::new("chown")
        .args(["-R", &format!("{ENV_USER}:{ENV_USER}")])
        .arg(root)
        .status()
        .unwrap();
    assert!(status.success());
}

fn backup_spec(root: &Path, database: &str, store: &Path, key: &str, id: &str) -> Value {
    json!({
        "contract_version": CONTRACT_VERSION, "backup_id": id, "environment_id": "e-prod",
        "scope": "full", "created_at": "2026-12-02T10:00:00Z",
        "canonical_url": "https://prod.test", "table_prefix": "wp_",
        "wordpress_version": "6.7", "env_root": root, "release": root.join("current"),
        "database": database, "storage": {"type": "local", "path": store}, "data_key": key
    })
}

#[allow(clippy::too_many_arguments)]
fn restore_spec(
    root: &Path,
    database: &str,
    url: &str,
    checksum: &str,
    store: &Path,
    key: &str,
    current: &str,
    release: &str,
    pre_backup: Option<Value>,
) -> Value {
    json!({
        "contract_version": CONTRACT_VERSION, "environment_id": "e-target",
        "release_name": release, "current_release_name": current,
        "backup": {"backup_id": "b-1", "checksum": checksum,
                   "storage": {"type": "local", "path": store}, "data_key": key},
        "db_name": database, "canonical_url": url, "redis_cache_enabled": false,
        "pre_backup": pre_backup,
        "go_live": {"env_root": root, "env_user": ENV_USER, "hosts": ["restore-node.test"],
                    "redis_prefix": "pressluft_restore-node-test:", "release_keep": 5},
        "node": {"supported_os": {"debian 12": "8.2", "ubuntu 24.04": "8.3"}, "php_dir": PHP_DIR}
    })
}

fn value(database: &str, sql: &str) -> String {
    mysql(&format!("USE {database}; {sql}")).trim().to_string()
}

fn current(root: &Path) -> String {
    std::fs::read_link(root.join("current"))
        .unwrap()
        .to_string_lossy()
        .into_owned()
}

#[test]
fn a_backup_comes_back_into_its_environment_and_into_another_with_the_url_rewritten() {
    if !ready() {
        return;
    }
    let prod_db = ScratchDb::new("pl_restore_prod");
    let stage_db = ScratchDb::new("pl_restore_stage");
    let (prod, stage) = (prod_db.0.as_str(), stage_db.0.as_str());
    seed_db(prod, "https://prod.test");
    seed_db(stage, "https://staging.test");
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("prod");
    let stage_root = tmp.path().join("stage");
    env_tree(&root, "v1");
    env_tree(&stage_root, "staging theme");
    let store = tmp.path().join("store");
    let key = pressluft::node_helper::backup::generate_data_key();
    let made = node(
        "backup-create",
        &backup_spec(&root, prod, &store, &key, "b-1"),
    )
    .json();
    let checksum = made["checksum"].as_str().unwrap().to_string();

    // After the backup: a post deleted, a deploy (r2, another theme), uploads changed.
    mysql(&format!("DELETE FROM {prod}.wp_posts WHERE ID = 2;"));
    let r2 = root.join("releases/r2");
    let status = Command::new("cp")
        .args(["-a"])
        .arg(root.join("releases/r1"))
        .arg(&r2)
        .status()
        .unwrap();
    assert!(status.success());
    std::fs::write(r2.join("wp-content/themes/t/style.css"), "v2").unwrap();
    std::fs::remove_file(root.join("current")).unwrap();
    symlink("releases/r2", root.join("current")).unwrap();
    std::fs::write(root.join("shared/uploads/2024/canary.txt"), "changed").unwrap();
    std::fs::write(root.join("shared/uploads/later.txt"), "later").unwrap();

    // One flipped byte in the files archive: exit 5 before anything changes (no pre-restore
    // backup either).
    let pre_store = tmp.path().join("pre-store");
    let pre = backup_spec(&root, prod, &pre_store, &key, "b-pre");
    let files = store.join("files.tar.zst");
    let intact = std::fs::read(&files).unwrap();
    let mut flipped = intact.clone();
    let middle = flipped.len() / 2;
    flipped[middle] ^= 0x01;
    std::fs::write(&files, &flipped).unwrap();
    let spec = restore_spec(
        &root,
        prod,
        "https://prod.test",
        &checksum,
        &store,
        &key,
        "r2",
        "r3",
        Some(pre.clone()),
    );
    let refused = node("env-restore", &spec);
    assert_eq!(refused.code, 5, "{}", refused.stderr);
    assert!(
        refused.stderr.starts_with("BACKUP_CHECKSUM_MISMATCH"),
        "{}",
        refused.stderr
    );
    assert!(!refused.stderr.contains(&key), "no secret in the message");
    assert_eq!(current(&root), "releases/r2");
    assert!(!root.join("releases/r3").exists());
    assert!(!pre_store.exists(), "no pre-restore backup was taken");
    assert_eq!(value(prod, "SELECT COUNT(*) FROM wp_posts;"), "1");
    assert_eq!(
        std::fs::read_to_string(root.join("shared/uploads/2024/canary.txt")).unwrap(),
        "changed"
    );
    std::fs::write(&files, &intact).unwrap();

    // A hostile release name is refused (exit 3).
    let mut hostile = spec.clone();
    hostile["release_name"] = json!("../../etc");
    assert_eq!(node("env-restore", &hostile).code, 3);

    // The restore into the same environment.
    let out = node("env-restore", &spec).json();
    assert_eq!(out["release_name"], "r3");
    assert_eq!(
        out["restored"],
        json!({"files": true, "uploads": true, "database": true})
    );
    assert_eq!(out["search_replace"], Value::Null, "same URL: no rewrite");
    assert!(out["pre_backup"]["checksum"]
        .as_str()
        .unwrap()
        .starts_with("sha256:"));
    assert!(
        pre_store.join("manifest.json").is_file(),
        "pre-restore backup"
    );
    assert_eq!(current(&root), "releases/r3");
    assert_eq!(
        value(prod, "SELECT post_title FROM wp_posts WHERE ID = 2;"),
        "Kept by the backup"
    );
    let r3 = root.join("releases/r3");
    assert_eq!(
        std::fs::read_to_string(r3.join("wp-content/themes/t/style.css")).unwrap(),
        "v1",
        "the release from the backup's files"
    );
    assert_eq!(
        std::fs::read_link(r3.join("wp-config.php")).unwrap(),
        Path::new("../../shared/wp-config.php")
    );
    assert!(std::fs::symlink_metadata(r3.join("wp-content/uploads"))
        .unwrap()
        .file_type()
        .is_symlink());
    assert_eq!(
        std::fs::read_to_string(root.join("shared/uploads/2024/canary.txt")).unwrap(),
        "canary"
    );
    assert!(!root.join("shared/uploads/later.txt").exists());
    assert!(!root.join("shared/uploads.restore").exists());
    assert!(r2.is_dir(), "the previous release is kept");
    use std::os::unix::fs::MetadataExt;
    let (uid, _) = pressluft::node_helper::nofollow::user_ids(ENV_USER).unwrap();
    assert_eq!(
        std::fs::metadata(r3.join("index.php")).unwrap().uid(),
        uid,
        "extracted as the environment's user"
    );
    let scratch = mysql(
        "SELECT COUNT(*) FROM information_schema.SCHEMATA WHERE SCHEMA_NAME LIKE 'pressluft\\_rs\\_%';",
    );
    assert_eq!(scratch.trim(), "0", "the scratch databases are dropped");

    // Into another environment with another URL: rewritten, serialized lengths right.
    let out = node(
        "env-restore",
        &restore_spec(
            &stage_root,
            stage,
            "https://staging.test/",
            &checksum,
            &store,
            &key,
            "r1",
            "r2",
            None,
        ),
    )
    .json();
    assert_eq!(out["source_url"], "https://prod.test");
    assert_eq!(out["target_url"], "https://staging.test");
    assert!(out["search_replace"].is_string(), "{out}");
    assert_eq!(out["pre_backup"], Value::Null);
    for option in ["home", "siteurl"] {
        assert_eq!(
            value(
                stage,
                &format!("SELECT option_value FROM wp_options WHERE option_name = '{option}';")
            ),
            "https://staging.test"
        );
    }
    assert_eq!(
        value(
            stage,
            "SELECT option_value FROM wp_options WHERE option_name = 'theme_mods';"
        ),
        serialized("https://staging.test")
    );
    assert_eq!(
        value(stage, "SELECT COUNT(*) FROM wp_posts;"),
        "2",
        "production's posts"
    );
    assert_eq!(
        std::fs::read_to_string(stage_root.join("current/wp-content/themes/t/style.css")).unwrap(),
        "v1"
    );
    // Production is untouched by the restore into staging.
    assert_eq!(
        value(
            prod,
            "SELECT option_value FROM wp_options WHERE option_name = 'home';"
        ),
        "https://prod.test"
    );
}
