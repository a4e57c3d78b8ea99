//! The restore library (src/node_helper/backup/restore.rs) and `pressluft node release-rollback`
//! against the real thing: backups made with `pressluft node backup-create` of a scratch MariaDB
//! database and a scratch environment tree into node-local storage, then restored. The uploads
//! cases run as root (they run `tar` as another user); the database cases run when
//! PRESSLUFT_E2E=1 (this machine is a node; run them under the node lock:
//! `flock /tmp/pressluft-node.lock …`).

use std::os::unix::fs::symlink;
use std::path::Path;
use std::process::Command;

use pressluft::node_helper::backup::restore::{self, Verified};
use pressluft::node_helper::backup::BackupError;
use pressluft::node_helper::spec::{RollbackRestore, CONTRACT_VERSION};
use serde_json::{json, Value};

mod node_common;
use node_common::{mysql, node};

/// The environment user of the uploads cases (exists on every Debian: the web server's).
const ENV_USER: &str = "www-data";

fn is_root() -> bool {
    // SAFETY: no arguments, no memory.
    unsafe { libc::geteuid() == 0 }
}

fn e2e() -> bool {
    if std::env::var_os("PRESSLUFT_E2E").is_none() {
        eprintln!("skipped: set PRESSLUFT_E2E=1 (a node: MariaDB)");
        return false;
    }
    true
}

struct ScratchDb(String);

impl ScratchDb {
    fn new(name: &str) -> Self {
        let _ = Command::new("sh")
            .args([
                "-c",
                "mysql -e 'SELECT 1' >/dev/null 2>&1 || service mariadb start >/dev/null",
            ])
            .status();
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

/// An environment tree: a complete release `r1` (current) and `r2`, shared/uploads with a
/// canary, and a directory outside the environment.
fn env_tree(root: &Path) {
    for release in ["r1", "r2"] {
        let dir = root.join("releases").join(release);
        std::fs::create_dir_all(dir.join("wp-includes")).unwrap();
        std::fs::create_dir_all(dir.join("wp-content")).unwrap();
        std::fs::write(
            dir.join("wp-includes/version.php"),
            "<?php $wp_version = '6.7';",
        )
        .unwrap();
        symlink("../../../shared/uploads", dir.join("wp-content/uploads")).unwrap();
    }
    std::fs::create_dir_all(root.join("shared/uploads/2024")).unwrap();
    std::fs::write(root.join("shared/uploads/2024/canary.txt"), "canary").unwrap();
    std::fs::create_dir_all(root.join("outside")).unwrap();
    std::fs::write(root.join("outside/keep.txt"), "outside").unwrap();
    symlink("releases/r1", root.join("current")).unwrap();
}

/// Makes a backup with the node helper; returns the checksum.
fn backup(scope: &str, root: &Path, database: &str, store: &Path, key: &str) -> String {
    let out = node(
        "backup-create",
        &json!({
            "contract_version": CONTRACT_VERSION, "backup_id": "b-1", "environment_id": "e-1",
            "scope": scope, "created_at": "2026-12-02T10:00:00Z",
            "canonical_url": "https://example.test", "table_prefix": "wp_",
            "wordpress_version": "6.7", "env_root": root, "release": root.join("current"),
            "database": database, "storage": {"type": "local", "path": store}, "data_key": key
        }),
    );
    assert_eq!(out.code, 0, "{}", out.stderr);
    let result: Value = serde_json::from_slice(&out.stdout).unwrap();
    result["checksum"].as_str().unwrap().to_string()
}

fn restore_spec(
    checksum: &str,
    store: &Path,
    key: &str,
    database: &str,
    skip: &[&str],
    uploads: bool,
) -> Value {
    json!({
        "checksum": checksum, "storage": {"type": "local", "path": store}, "data_key": key,
        "database": database, "skip_tables": skip, "uploads": uploads
    })
}

fn verified(spec: &Value) -> Result<Verified, BackupError> {
    let spec: RollbackRestore = serde_json::from_value(spec.clone()).unwrap();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    restore::open_verified(&spec, runtime.handle())
}

fn flip_byte(path: &Path) {
    let mut bytes = std::fs::read(path).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x01;
    std::fs::write(path, bytes).unwrap();
}

fn rows(database: &str, table: &str) -> String {
    mysql(&format!("SELECT * FROM `{database}`.`{table}` ORDER BY 1;"))
}

fn tables(database: &str) -> String {
    mysql(&format!(
        "SELECT TABLE_NAME FROM information_schema.TABLES WHERE TABLE_SCHEMA = '{database}' \
         ORDER BY 1;"
    ))
}

#[test]
fn the_database_comes_back_skipped_tables_stay_and_a_flipped_byte_changes_nothing() {
    if !e2e() {
        return;
    }
    let db = ScratchDb::new("pl_rollback_test");
    let name = db.0.as_str();
    mysql(&format!(
        "CREATE TABLE {name}.wp_options (option_id INT PRIMARY KEY, option_name VARCHAR(64), \
           option_value LONGTEXT) CHARACTER SET utf8mb4;
         CREATE TABLE {name}.wp_users (ID INT PRIMARY KEY, user_login VARCHAR(60));
         INSERT INTO {name}.wp_options VALUES (1, 'siteurl', 'https://example.test'),
           (2, 'blogname', 'Before the update'), (3, 'weird', 'line\nbreak ` quote '' ; \\\\');
         INSERT INTO {name}.wp_users VALUES (1, 'admin');"
    ));
    let options_before = rows(name, "wp_options");
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("env");
    env_tree(&root);
    let store = tmp.path().join("store");
    let key = pressluft::node_helper::backup::generate_data_key();
    let checksum = backup("db", &root, name, &store, &key);

    // What an update might do: a new row, a new table, a dropped row; a user signs up.
    mysql(&format!(
        "INSERT INTO {name}.wp_options VALUES (4, 'plugin_option', 'added');
         CREATE TABLE {name}.wp_plugin_new (id INT);
         DELETE FROM {name}.wp_options WHERE option_id = 2;
         INSERT INTO {name}.wp_users VALUES (2, 'newcomer');"
    ));
    let users_now = rows(name, "wp_users");

    // A flipped byte: the rollback refuses before anything changes (exit 5).
    let dump = store.join("db.sql.zst");
    let intact = std::fs::read(&dump).unwrap();
    flip_byte(&dump);
    let spec = json!({
        "contract_version": CONTRACT_VERSION, "environment_id": "e-1",
        "target_release_name": "r2", "failed_release_name": "r1",
        "restore": restore_spec(&checksum, &store, &key, name, &[], false),
        "go_live": {"env_root": root, "env_user": ENV_USER, "hosts": ["example.test"],
                    "redis_prefix": "pressluft_e-1:", "release_keep": 5},
        "node": {"supported_os": {"debian 12": "8.2", "ubuntu 24.04": "8.3"}, "php_dir": ""}
    });
    let refused = node("release-rollback", &spec);
    assert_eq!(refused.code, 5, "{}", refused.stderr);
    assert!(
        refused.stderr.starts_with("BACKUP_CHECKSUM_MISMATCH"),
        "{}",
        refused.stderr
    );
    assert!(refused.stderr.contains("db.sql.zst"), "{}", refused.stderr);
    assert!(!refused.stderr.contains(&key), "no secret in the message");
    assert!(rows(name, "wp_options").contains("plugin_option"));
    assert!(tables(name).contains("wp_plugin_new"));
    assert_eq!(
        std::fs::read_link(root.join("current")).unwrap(),
        Path::new("releases/r1"),
        "current unchanged"
    );
    std::fs::write(&dump, intact).unwrap();

    // A target release that is not complete: exit 3, nothing changed.
    let mut missing = spec.clone();
    missing["target_release_name"] = json!("r9");
    let refused = node("release-rollback", &missing);
    assert_eq!(refused.code, 3, "{}", refused.stderr);
    assert!(refused.stderr.starts_with("PRECONDITION_FAILED"));
    assert!(tables(name).contains("wp_plugin_new"));

    // The restore with `users` skipped.
    let verified = verified(&restore_spec(
        &checksum,
        &store,
        &key,
        name,
        &["users"],
        false,
    ))
    .unwrap();
    verified.restore_database(name, &["users".into()]).unwrap();
    assert_eq!(
        rows(name, "wp_options"),
        options_before,
        "rows as backed up"
    );
    assert_eq!(
        tables(name),
        "wp_options\nwp_users\n",
        "the new table is gone"
    );
    assert_eq!(
        rows(name, "wp_users"),
        users_now,
        "the skipped table as it is"
    );
    let (incoming, outgoing) = restore::scratch_databases(name);
    let scratch = mysql(&format!(
        "SELECT COUNT(*) FROM information_schema.SCHEMATA WHERE SCHEMA_NAME IN \
         ('{incoming}', '{outgoing}');"
    ));
    assert_eq!(scratch.trim(), "0", "the scratch databases are dropped");

    // Again (a retry after a crash): the same outcome; without skipping, users come back too.
    verified.restore_database(name, &[]).unwrap();
    assert_eq!(rows(name, "wp_options"), options_before);
    assert_eq!(rows(name, "wp_users").trim(), "1\tadmin");

    // A hostile skip name is refused before anything runs.
    assert!(matches!(
        verified.restore_database(name, &["x`; DROP DATABASE mysql; --".into()]),
        Err(BackupError::Spec(_))
    ));
}

#[test]
fn uploads_are_replaced_and_a_linked_shared_uploads_is_refused() {
    if !is_root() {
        eprintln!("skipped: the uploads restore runs tar as another user (needs root)");
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("env");
    env_tree(&root);
    let store = tmp.path().join("store");
    let key = pressluft::node_helper::backup::generate_data_key();
    let checksum = backup("files", &root, "unused", &store, &key);
    let uploads = root.join("shared/uploads");

    // After the backup: the canary changed, a new file and directory, an old one removed.
    std::fs::write(uploads.join("2024/canary.txt"), "changed").unwrap();
    std::fs::create_dir_all(uploads.join("2025")).unwrap();
    std::fs::write(uploads.join("2025/new.jpg"), "new").unwrap();

    let spec = restore_spec(&checksum, &store, &key, "unused", &[], true);
    let verified = verified(&spec).unwrap();
    assert!(verified.restore_database("unused", &[]).is_err(), "no dump");
    verified.restore_uploads(&root, ENV_USER).unwrap();
    assert_eq!(
        std::fs::read_to_string(uploads.join("2024/canary.txt")).unwrap(),
        "canary"
    );
    assert!(!uploads.join("2025").exists(), "what came later is gone");
    assert!(!root.join("shared/uploads.restore").exists());
    let meta = std::fs::symlink_metadata(&uploads).unwrap();
    assert!(meta.is_dir());
    let (uid, _) = pressluft::node_helper::nofollow::user_ids(ENV_USER).unwrap();
    use std::os::unix::fs::MetadataExt;
    assert_eq!(
        std::fs::metadata(uploads.join("2024/canary.txt"))
            .unwrap()
            .uid(),
        uid,
        "extracted as the environment's user"
    );
    // The release's own link still leads there.
    assert_eq!(
        std::fs::read_to_string(root.join("current/wp-content/uploads/2024/canary.txt")).unwrap(),
        "canary"
    );

    // A retry does the same.
    verified.restore_uploads(&root, ENV_USER).unwrap();
    assert!(uploads.join("2024/canary.txt").is_file());

    // shared/uploads swapped for a link out of the environment: refused, nothing touched.
    std::fs::remove_dir_all(&uploads).unwrap();
    symlink(root.join("outside"), &uploads).unwrap();
    let err = verified.restore_uploads(&root, ENV_USER).unwrap_err();
    assert!(matches!(err, BackupError::Precondition(_)), "{err}");
    assert!(err.to_string().contains("symbolic link"), "{err}");
    assert_eq!(
        std::fs::read_dir(root.join("outside")).unwrap().count(),
        1,
        "the outside directory is untouched"
    );
    assert!(root.join("outside/keep.txt").is_file());
    assert!(std::fs::symlink_metadata(&uploads)
        .unwrap()
        .file_type()
        .is_symlink());
    assert!(!root.join("shared/uploads.restore").exists());

    // A flipped byte in the archive: refused before anything changes.
    std::fs::remove_file(&uploads).unwrap();
    std::fs::create_dir(&uploads).unwrap();
    std::fs::write(uploads.join("mine.txt"), "mine").unwrap();
    flip_byte(&store.join("files.tar.zst"));
    let err = verified_err(&spec);
    assert!(matches!(err, BackupError::Mismatch(_)), "{err}");
    assert!(uploads.join("mine.txt").is_file());
}

fn verified_err(spec: &Value) -> BackupError {
    match verified(spec) {
        Ok(_) => panic!("verified a tampered backup"),
        Err(e) => e,
    }
}
