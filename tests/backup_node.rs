//! `pressluft node backup-create | backup-verify | backup-read | backup-delete` against the real
//! thing: a scratch environment tree with link attacks, a scratch MariaDB database, node-local
//! storage and the S3-compatible test server (scripts/s3-test-server). The files-only cases run
//! always; the database, S3 and /var/backups cases run when PRESSLUFT_E2E=1 (this machine is a node; run them under
//! the node lock: `flock /tmp/pressluft-node.lock …`).

use std::io::{Read, Write};
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use serde_json::{json, Value};

mod node_common;
use node_common::{mysql, node, Output};

const S3_ENDPOINT: &str = "http://127.0.0.1:9900";
const S3_BUCKET: &str = "pressluft-test";
const KNOWN_TITLE: &str = "Pressluft canary post 7f3a91";
const KNOWN_UPLOAD: &str = "Pressluft canary upload c0ffee";

fn data_key() -> String {
    pressluft::node_helper::backup::generate_data_key()
}

/// An environment tree: release with secrets, drop-ins, caches and links that lead out.
fn env_tree(root: &Path) -> PathBuf {
    let release = root.join("releases/r1");
    std::fs::create_dir_all(release.join("wp-content/plugins/hello")).unwrap();
    std::fs::create_dir_all(release.join("wp-content/cache/pages")).unwrap();
    std::fs::create_dir_all(root.join("shared/uploads/2024")).unwrap();
    std::fs::create_dir_all(root.join("outside")).unwrap();
    std::fs::write(release.join("index.php"), "<?php // index").unwrap();
    std::fs::write(
        release.join("wp-config.php"),
        "define('DB_PASSWORD', 'hunter2');",
    )
    .unwrap();
    std::fs::write(release.join("wp-content/object-cache.php"), "<?php").unwrap();
    std::fs::write(release.join("wp-content/cache/pages/x.html"), "cached").unwrap();
    std::fs::write(release.join("wp-content/plugins/hello/hello.php"), "<?php").unwrap();
    std::fs::write(root.join("shared/uploads/2024/canary.txt"), KNOWN_UPLOAD).unwrap();
    std::fs::write(root.join("outside/secret.txt"), "outside secret").unwrap();
    symlink(
        "../../../shared/uploads",
        release.join("wp-content/uploads"),
    )
    .unwrap();
    // The attacks: links to a directory and a file outside, and to the node's /etc.
    symlink(
        root.join("outside"),
        release.join("wp-content/plugins/evil-dir"),
    )
    .unwrap();
    symlink("/etc/passwd", release.join("wp-content/plugins/passwd")).unwrap();
    symlink("/etc", root.join("shared/uploads/etc")).unwrap();
    symlink("releases/r1", root.join("current")).unwrap();
    release
}

fn local_storage(dir: &Path) -> Value {
    json!({"type": "local", "path": dir})
}

fn s3_storage(prefix: &str, endpoint: &str) -> Value {
    json!({
        "type": "s3", "bucket": S3_BUCKET, "prefix": prefix, "endpoint": endpoint,
        "region": "us-east-1", "access_key_id": "test", "secret_access_key": "testtest"
    })
}

fn create_spec(scope: &str, root: &Path, database: &str, storage: Value, key: &str) -> Value {
    json!({
        "contract_version": pressluft::node_helper::spec::CONTRACT_VERSION, "backup_id": "b-1", "environment_id": "e-1", "scope": scope,
        "created_at": "2026-12-02T10:00:00Z", "canonical_url": "https://example.test",
        "table_prefix": "wp_", "wordpress_version": "6.7",
        "env_root": root, "release": root.join("current"), "database": database,
        "storage": storage, "data_key": key
    })
}

fn verify(storage: &Value, key: &str, checksum: &str) -> Output {
    node(
        "backup-verify",
        &json!({"contract_version": pressluft::node_helper::spec::CONTRACT_VERSION, "checksum": checksum, "storage": storage, "data_key": key}),
    )
}

fn read(storage: &Value, key: &str, artifact: &str) -> Vec<u8> {
    let out = node(
        "backup-read",
        &json!({"contract_version": pressluft::node_helper::spec::CONTRACT_VERSION, "artifact": artifact, "storage": storage, "data_key": key}),
    );
    assert_eq!(out.code, 0, "{}", out.stderr);
    out.stdout
}

fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack
        .windows(needle.len())
        .any(|w| w == needle.as_bytes())
}

fn names(result: &Value) -> Vec<String> {
    result["artifacts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["name"].as_str().unwrap().to_string())
        .collect()
}

fn tar_entries(tar_bytes: &[u8]) -> Vec<(String, Vec<u8>)> {
    let mut archive = tar::Archive::new(tar_bytes);
    archive
        .entries()
        .unwrap()
        .map(|e| {
            let mut e = e.unwrap();
            let path = e.path().unwrap().to_string_lossy().into_owned();
            let mut data = Vec::new();
            e.read_to_end(&mut data).unwrap();
            (path, data)
        })
        .collect()
}

fn flip_byte(path: &Path) {
    let mut bytes = std::fs::read(path).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x01;
    std::fs::write(path, bytes).unwrap();
}

#[test]
fn files_backup_to_local_storage_is_encrypted_verified_and_never_follows_links() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("env");
    env_tree(&root);
    let dir = tmp.path().join("store/site/env/b-1");
    let storage = local_storage(&dir);
    let key = data_key();

    let result = node(
        "backup-create",
        &create_spec("files", &root, "unused", storage.clone(), &key),
    )
    .json();
    assert_eq!(names(&result), ["files.tar.zst", "manifest.json"]);
    let checksum = result["checksum"].as_str().unwrap().to_string();
    assert!(checksum.starts_with("sha256:"), "{checksum}");
    let stored: u64 = ["files.tar.zst", "manifest.json"]
        .iter()
        .map(|n| std::fs::metadata(dir.join(n)).unwrap().len())
        .sum();
    assert_eq!(result["size_bytes"].as_u64(), Some(stored));
    assert_eq!(
        std::fs::read_dir(&dir).unwrap().count(),
        2,
        "no partial files"
    );

    // Encrypted: neither the upload's text nor the manifest's URL is in the stored bytes.
    for name in ["files.tar.zst", "manifest.json"] {
        let bytes = std::fs::read(dir.join(name)).unwrap();
        assert!(!contains(&bytes, KNOWN_UPLOAD), "{name} holds plaintext");
        assert!(!contains(&bytes, "example.test"), "{name} holds plaintext");
    }

    let verified = verify(&storage, &key, &checksum).json();
    assert_eq!(verified["status"], "ok");

    let entries = tar_entries(&read(&storage, &key, "files.tar.zst"));
    let paths: Vec<&str> = entries.iter().map(|(p, _)| p.as_str()).collect();
    for expected in [
        "index.php",
        "wp-content/plugins/hello/hello.php",
        "wp-content/uploads/2024/canary.txt",
    ] {
        assert!(paths.contains(&expected), "{expected} missing in {paths:?}");
    }
    for path in &paths {
        assert!(
            !path.starts_with("wp-config.php")
                && !path.starts_with("wp-content/object-cache.php")
                && !path.starts_with("wp-content/cache")
                && !path.contains("evil-dir")
                && !path.contains("passwd")
                && !path.contains("uploads/etc"),
            "{path} must not be archived"
        );
    }
    for (_, data) in &entries {
        assert!(!contains(data, "outside secret") && !contains(data, "root:x:0:0"));
    }
    // `compressed`: the decrypted zstd stream (what a download serves), which standard zstd
    // decodes to the same archive.
    let compressed = node(
        "backup-read",
        &json!({"contract_version": pressluft::node_helper::spec::CONTRACT_VERSION, "artifact": "files.tar.zst", "storage": storage, "data_key": key, "compressed": true}),
    );
    assert_eq!(compressed.code, 0, "{}", compressed.stderr);
    assert_eq!(
        &compressed.stdout[..4],
        &[0x28, 0xb5, 0x2f, 0xfd],
        "a zstd frame"
    );
    assert_eq!(
        zstd::stream::decode_all(&compressed.stdout[..]).unwrap(),
        read(&storage, &key, "files.tar.zst")
    );
    let manifest: Value = serde_json::from_slice(&read(&storage, &key, "manifest.json")).unwrap();
    assert_eq!(manifest["backup_id"], "b-1");
    assert_eq!(manifest["canonical_url"], "https://example.test");

    // A wrong key cannot read it.
    let other = node(
        "backup-read",
        &json!({"contract_version": pressluft::node_helper::spec::CONTRACT_VERSION, "artifact": "files.tar.zst", "storage": storage, "data_key": data_key()}),
    );
    assert_eq!(other.code, 1, "{}", other.stderr);

    // One flipped byte: verify fails naming the artifact.
    flip_byte(&dir.join("files.tar.zst"));
    let failed = verify(&storage, &key, &checksum);
    assert_eq!(failed.code, 5, "{}", failed.stderr);
    assert!(failed.stderr.starts_with("BACKUP_CHECKSUM_MISMATCH"));
    assert!(failed.stderr.contains("files.tar.zst"), "{}", failed.stderr);
    flip_byte(&dir.join("manifest.json"));
    let failed = verify(&storage, &key, &checksum);
    assert_eq!(failed.code, 5);
    assert!(failed.stderr.contains("manifest.json"), "{}", failed.stderr);
}

/// A pre-operation backup (`fast`: zstd level 1, what a restore takes beside its import) is
/// stored, verified and read back like any other: the same files come out.
#[test]
fn a_fast_pre_operation_backup_verifies_and_reads_back_the_same_files() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("env");
    env_tree(&root);
    let key = data_key();
    let mut trees = Vec::new();
    for fast in [false, true] {
        let storage = local_storage(&tmp.path().join(format!("store/{fast}")));
        let mut spec = create_spec("files", &root, "unused", storage.clone(), &key);
        spec["fast"] = json!(fast);
        let result = node("backup-create", &spec).json();
        let checksum = result["checksum"].as_str().unwrap();
        assert_eq!(verify(&storage, &key, checksum).json()["status"], "ok");
        trees.push(tar_entries(&read(&storage, &key, "files.tar.zst")));
    }
    assert!(!trees[0].is_empty());
    assert_eq!(trees[0], trees[1], "a fast backup holds the same files");
}

#[test]
fn invalid_input_is_refused_without_echoing_secrets() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("b");
    let mut spec = create_spec(
        "db",
        tmp.path(),
        "bad name;",
        local_storage(&dir),
        &data_key(),
    );
    let out = node("backup-create", &spec);
    assert_eq!(out.code, 3, "{}", out.stderr);
    assert!(out.stderr.starts_with("BACKUP_SPEC_INVALID"));
    spec["data_key"] = json!("not-a-key-but-a-secret");
    spec["database"] = json!("ok_name");
    let out = node("backup-create", &spec);
    assert_eq!(out.code, 3);
    assert!(!out.stderr.contains("not-a-key-but-a-secret"));
    assert!(!dir.exists());

    // An environment whose WordPress cannot be read (no wp-includes/version.php here) is not
    // in a state to be backed up: PRECONDITION_FAILED (exit 3, not retried), nothing written.
    env_tree(tmp.path());
    let mut spec = create_spec(
        "files",
        tmp.path(),
        "unused",
        local_storage(&dir),
        &data_key(),
    );
    spec["wordpress_version"] = json!("");
    let out = node("backup-create", &spec);
    assert_eq!(out.code, 3, "{}", out.stderr);
    assert!(
        out.stderr
            .starts_with("PRECONDITION_FAILED: reading the WordPress version"),
        "{}",
        out.stderr
    );
    assert!(!dir.exists());
}

fn e2e() -> bool {
    if std::env::var_os("PRESSLUFT_E2E").is_none() {
        eprintln!("skipped: set PRESSLUFT_E2E=1 (a node: MariaDB, S3 test server)");
        return false;
    }
    true
}

fn sh(script: &str) -> String {
    let out = Command::new("bash")
        .args(["-c", script])
        .output()
        .expect("bash");
    assert!(
        out.status.success(),
        "{script}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// MariaDB up (provisioned by the e2e or by hand) and the S3 test server started.
fn node_services() {
    sh("mysql -e 'SELECT 1' >/dev/null 2>&1 || service mariadb start >/dev/null");
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/s3-test-server");
    sh(&format!("{script} >/dev/null"));
    sh(&format!(
        "curl -sf -o /dev/null -X PUT {S3_ENDPOINT}/{S3_BUCKET} || true"
    ));
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

fn s3_object(key: &str) -> Vec<u8> {
    let out = Command::new("curl")
        .args([
            "-sf",
            "--max-time",
            "30",
            &format!("{S3_ENDPOINT}/{S3_BUCKET}/{key}"),
        ])
        .output()
        .unwrap();
    assert!(out.status.success(), "GET {key}");
    out.stdout
}

fn s3_put(key: &str, bytes: &[u8]) {
    let tmp = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(tmp.path(), bytes).unwrap();
    sh(&format!(
        // moto parses curl's default form content type as a form and never answers.
        "curl -sf --max-time 30 -o /dev/null -X PUT -H 'Content-Type: application/octet-stream' \
         --data-binary @{} {S3_ENDPOINT}/{S3_BUCKET}/{key}",
        tmp.path().display()
    ));
}

fn s3_keys(prefix: &str) -> String {
    let out = Command::new("curl")
        .args(["-sf", &format!("{S3_ENDPOINT}/{S3_BUCKET}?prefix={prefix}")])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn db_and_full_backups_to_local_and_s3_restore_the_rows() {
    if !e2e() {
        return;
    }
    node_services();
    let pid = std::process::id();
    let source = ScratchDb::new(&format!("pl_backup_src_{pid}"));
    mysql(&format!(
        "CREATE TABLE {db}.wp_posts (ID INT PRIMARY KEY, post_title TEXT) ENGINE=InnoDB;
         INSERT INTO {db}.wp_posts VALUES (1, '{KNOWN_TITLE}'), (2, 'second');",
        db = source.0
    ));
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("env");
    env_tree(&root);
    let key = data_key();
    let prefix = format!("backups/site/env/b-{pid}");

    let local_dir = tmp.path().join("store/b-1");
    for (label, storage) in [
        ("local", local_storage(&local_dir)),
        ("s3", s3_storage(&prefix, S3_ENDPOINT)),
    ] {
        for scope in ["db", "full"] {
            eprintln!("backup {label} {scope}");
            let spec = create_spec(scope, &root, &source.0, storage.clone(), &key);
            let result = node("backup-create", &spec).json();
            let expected: &[&str] = if scope == "db" {
                &["db.sql.zst", "manifest.json"]
            } else {
                &["db.sql.zst", "files.tar.zst", "manifest.json"]
            };
            assert_eq!(names(&result), expected, "{label} {scope}");
            let checksum = result["checksum"].as_str().unwrap();
            assert_eq!(verify(&storage, &key, checksum).json()["status"], "ok");

            // No plaintext row in what is stored.
            for name in expected {
                let stored = match label {
                    "local" => std::fs::read(local_dir.join(name)).unwrap(),
                    _ => s3_object(&format!("{prefix}/{name}")),
                };
                assert!(!contains(&stored, KNOWN_TITLE), "{label} {name}: plaintext");
                assert!(
                    !contains(&stored, KNOWN_UPLOAD),
                    "{label} {name}: plaintext"
                );
            }

            eprintln!("verified {label} {scope}; restoring");
            // The decrypted dump imports into a scratch database with the rows.
            let restored = ScratchDb::new(&format!("pl_backup_dst_{pid}"));
            let dump = read(&storage, &key, "db.sql.zst");
            let mut import = Command::new("mysql")
                .arg(&restored.0)
                .stdin(Stdio::piped())
                .spawn()
                .unwrap();
            import.stdin.take().unwrap().write_all(&dump).unwrap();
            assert!(import.wait().unwrap().success());
            let title = mysql(&format!(
                "SELECT post_title FROM {}.wp_posts WHERE ID = 1",
                restored.0
            ));
            assert_eq!(title.trim(), KNOWN_TITLE, "{label} {scope}");

            // One flipped byte in the dump: verify names it.
            let flipped = match label {
                "local" => {
                    flip_byte(&local_dir.join("db.sql.zst"));
                    verify(&storage, &key, checksum)
                }
                _ => {
                    let object = format!("{prefix}/db.sql.zst");
                    let mut bytes = s3_object(&object);
                    let middle = bytes.len() / 2;
                    bytes[middle] ^= 1;
                    s3_put(&object, &bytes);
                    verify(&storage, &key, checksum)
                }
            };
            assert_eq!(flipped.code, 5, "{label} {scope}: {}", flipped.stderr);
            assert!(flipped.stderr.starts_with("BACKUP_CHECKSUM_MISMATCH"));
            assert!(flipped.stderr.contains("db.sql.zst"));
        }
    }
}

#[test]
fn unreachable_s3_and_failed_dumps_leave_nothing_behind() {
    if !e2e() {
        return;
    }
    node_services();
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("env");
    env_tree(&root);
    let key = data_key();

    // Nothing listens on port 9: a distinct, retryable failure before anything is written.
    let spec = create_spec(
        "full",
        &root,
        "mysql",
        s3_storage("backups/unreachable", "http://127.0.0.1:9"),
        &key,
    );
    let out = node("backup-create", &spec);
    assert_eq!(out.code, 4, "{}", out.stderr);
    assert!(
        out.stderr.starts_with("BACKUP_STORAGE_UNREACHABLE"),
        "{}",
        out.stderr
    );
    assert!(!out.stderr.contains("testtest") && !out.stderr.contains(&key));

    // A dump that fails midway (no such database) removes what was written, locally and on S3.
    let dir = tmp.path().join("store/b-1");
    let prefix = format!("backups/failed/b-{}", std::process::id());
    for storage in [local_storage(&dir), s3_storage(&prefix, S3_ENDPOINT)] {
        let spec = create_spec("full", &root, "pl_backup_no_such_db", storage, &key);
        let out = node("backup-create", &spec);
        assert_eq!(out.code, 1, "{}", out.stderr);
    }
    assert!(!dir.exists(), "local leftovers");
    assert!(!s3_keys(&prefix).contains("<Key>"), "S3 leftovers");
}

/// A temporary directory holding an [`env_tree`] at `env`.
fn scratch_env() -> (tempfile::TempDir, PathBuf) {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("env");
    env_tree(&root);
    (tmp, root)
}

fn delete(backups: Value) -> (i32, Value, String) {
    let out = node(
        "backup-delete",
        &json!({"contract_version": pressluft::node_helper::spec::CONTRACT_VERSION, "backups": backups}),
    );
    let report = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|_| panic!("one JSON line; stderr: {}", out.stderr));
    (out.code, report, out.stderr)
}

fn outcome<'a>(report: &'a Value, backup_id: &str) -> &'a Value {
    report["backups"]
        .as_array()
        .unwrap()
        .iter()
        .find(|b| b["backup_id"] == backup_id)
        .unwrap_or_else(|| panic!("{backup_id} in {report}"))
}

#[test]
fn backup_delete_touches_nothing_outside_the_local_backup_root() {
    let tmp = tempfile::tempdir().unwrap();
    let outside = tmp.path().join("site/env/b-1");
    std::fs::create_dir_all(&outside).unwrap();
    std::fs::write(outside.join("manifest.json"), "keep").unwrap();
    let escape = "/var/backups/pressluft/s/../../../../etc";
    let (code, report, _) = delete(json!([
        {"backup_id": "b-out", "storage": local_storage(&outside)},
        {"backup_id": "b-up", "storage": {"type": "local", "path": escape}},
    ]));
    assert_eq!(code, 1);
    for id in ["b-out", "b-up"] {
        let o = outcome(&report, id);
        assert_eq!(o["status"], "failed");
        assert!(
            o["reason"]
                .as_str()
                .unwrap()
                .starts_with("BACKUP_SPEC_INVALID"),
            "{o}"
        );
    }
    assert!(outside.join("manifest.json").exists());
    assert!(Path::new("/etc/passwd").exists());

    // A spec of another contract version is refused before anything is touched.
    let out = node(
        "backup-delete",
        &json!({"contract_version": 99, "backups": []}),
    );
    let refused = out.code == 3 && out.stderr.contains("older than the control plane");
    assert!(refused, "exit {}: {}", out.code, out.stderr);
}

#[test]
fn backup_delete_removes_local_and_s3_backups_without_following_links() {
    if !e2e() {
        return;
    }
    node_services();
    let (tmp, root) = scratch_env();
    let key = data_key();
    let run = format!("test-delete-{}", std::process::id());

    // A local backup made by backup-create, with links planted in its directory.
    let site_dir = PathBuf::from(format!("/var/backups/pressluft/{run}"));
    let dir = site_dir.join("env/b-local");
    let local = local_storage(&dir);
    node(
        "backup-create",
        &create_spec("files", &root, "unused", local.clone(), &key),
    )
    .json();
    let victim = tmp.path().join("victim");
    std::fs::create_dir_all(&victim).unwrap();
    std::fs::write(victim.join("precious.txt"), "keep me").unwrap();
    symlink(&victim, dir.join("evil-dir")).unwrap();
    symlink(victim.join("precious.txt"), dir.join("evil-file")).unwrap();
    std::fs::create_dir_all(dir.join("nested")).unwrap();
    symlink("/etc", dir.join("nested/etc")).unwrap();

    // An S3 backup, a stray object under its prefix, and a neighbour sharing the name's start.
    let prefix = format!("{run}/site/env/b-s3");
    let s3 = s3_storage(&prefix, S3_ENDPOINT);
    node(
        "backup-create",
        &create_spec("files", &root, "unused", s3.clone(), &key),
    )
    .json();
    s3_put(&format!("{prefix}/files.tar.zst.partial"), b"stray");
    s3_put(&format!("{prefix}-2/manifest.json"), b"neighbour");
    assert_eq!(s3_keys(&format!("{prefix}/")).matches("<Key>").count(), 3);

    let targets = json!([
        {"backup_id": "b-local", "storage": local},
        {"backup_id": "b-s3", "storage": s3},
    ]);
    let (code, report, stderr) = delete(targets.clone());
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(outcome(&report, "b-local")["status"], "deleted");
    assert_eq!(outcome(&report, "b-s3")["status"], "deleted");
    assert_eq!(outcome(&report, "b-s3")["removed"], 3);
    assert!(!dir.exists(), "the local backup is gone");
    assert!(!site_dir.exists(), "the emptied site directory too");
    assert_eq!(
        std::fs::read_to_string(victim.join("precious.txt")).unwrap(),
        "keep me",
        "links were removed, never followed"
    );
    assert!(Path::new("/etc/passwd").exists());
    assert!(
        !s3_keys(&format!("{prefix}/")).contains("<Key>"),
        "S3 objects gone"
    );
    assert!(
        s3_keys(&format!("{prefix}-2/")).contains("<Key>"),
        "neighbour kept"
    );

    // Again: already absent is deleted.
    let (code, report, _) = delete(targets);
    assert_eq!(code, 0);
    assert_eq!(outcome(&report, "b-s3")["removed"], 0);

    // An unreachable bucket fails alone (exit 4); the other backup is still deleted.
    let other = site_dir.join("env/b-other");
    std::fs::create_dir_all(&other).unwrap();
    std::fs::write(other.join("manifest.json"), "x").unwrap();
    let (code, report, stderr) = delete(json!([
        {"backup_id": "b-down", "storage": s3_storage(&prefix, "http://127.0.0.1:9")},
        {"backup_id": "b-other", "storage": local_storage(&other)},
    ]));
    assert_eq!(code, 4, "{stderr}");
    let down = outcome(&report, "b-down");
    assert_eq!(down["status"], "failed");
    let reason = down["reason"].as_str().unwrap();
    assert!(reason.starts_with("BACKUP_STORAGE_UNREACHABLE"), "{reason}");
    assert!(!reason.contains("testtest") && !stderr.contains("testtest"));
    assert_eq!(outcome(&report, "b-other")["status"], "deleted");
    assert!(!site_dir.exists());

    // The neighbour goes with its own prefix.
    let neighbour =
        json!([{"backup_id": "b-2", "storage": s3_storage(&format!("{prefix}-2"), S3_ENDPOINT)}]);
    let (code, report, stderr) = delete(neighbour);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(outcome(&report, "b-2")["removed"], 1);
    assert!(!s3_keys(&format!("{prefix}-2/")).contains("<Key>"));
}
