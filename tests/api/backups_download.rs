//! The real download of a backup artifact from this machine as the node: a files backup made
//! by `pressluft node backup-create` into the local backup root, served by
//! `GET /backups/{id}/artifacts/files.tar.zst` through SSH to 127.0.0.1 and the node helper
//! (this build, installed at its provisioned path for the test), decompressed with zstd = the
//! archive `backup-read` returns. A backup the key cannot open is an error page without the
//! node's output. Runs when PRESSLUFT_E2E=1, under the node lock.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::{json, Value};

use crate::backups_ui::{fixture, insert_backup, Fixture};
use crate::e2e::AuthorizedKey;
use crate::helpers::{get_with, output_with_stdin};

const HELPER: &str = "/usr/local/bin/pressluft";

/// This build's node helper at its provisioned path while alive; the previous one restored.
struct InstalledHelper(Option<PathBuf>);

impl InstalledHelper {
    fn install() -> Self {
        let saved = Path::new(HELPER).exists().then(|| {
            let saved = PathBuf::from(format!("{HELPER}.before-download-test"));
            std::fs::copy(HELPER, &saved).unwrap();
            saved
        });
        std::fs::copy(env!("CARGO_BIN_EXE_pressluft"), format!("{HELPER}.new")).unwrap();
        std::fs::rename(format!("{HELPER}.new"), HELPER).unwrap();
        InstalledHelper(saved)
    }
}

impl Drop for InstalledHelper {
    fn drop(&mut self) {
        if let Some(saved) = &self.0 {
            let _ = std::fs::rename(saved, HELPER);
        }
    }
}

/// Removes a directory tree when dropped.
struct Removed(PathBuf);

impl Drop for Removed {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// `pressluft node <command>` of this build with `input` on stdin; must succeed.
fn node(command: &str, input: &Value) -> std::process::Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_pressluft"));
    cmd.args(["node", command]);
    let out = output_with_stdin(cmd, input.to_string().as_bytes());
    assert!(
        out.status.success(),
        "{command}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_local_backup_downloads_from_the_node_as_zstd() {
    if std::env::var_os("PRESSLUFT_E2E").is_none() {
        eprintln!("skipped: set PRESSLUFT_E2E=1 (under the node lock) to read from this machine");
        return;
    }
    let Fixture { app, c, env } = fixture().await;
    app.exec(
        "UPDATE nodes SET hostname = '127.0.0.1', ssh_user = 'root', ssh_port = 22",
        &[],
    )
    .await;
    let public = app.state.secrets.ensure_ssh_key_pair().unwrap();
    let _authorized = AuthorizedKey::add(&public);
    let _helper = InstalledHelper::install();

    // An environment tree with a known upload, backed up (files) into the local backup root.
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("env");
    let release = root.join("releases/r1");
    std::fs::create_dir_all(release.join("wp-content/plugins/hello")).unwrap();
    std::fs::create_dir_all(root.join("shared/uploads")).unwrap();
    std::fs::write(release.join("index.php"), "<?php // index").unwrap();
    let upload: Vec<u8> = (0..300_000u32).flat_map(|i| i.to_le_bytes()).collect();
    std::fs::write(root.join("shared/uploads/big.bin"), &upload).unwrap();
    std::os::unix::fs::symlink("releases/r1", root.join("current")).unwrap();

    let id = insert_backup(&app, &env, "files", "completed", ("local", "")).await;
    let dir = PathBuf::from(format!(
        "{}/test-download/{id}",
        pressluft::backups::LOCAL_BACKUP_ROOT
    ));
    let _cleanup = Removed(dir.parent().unwrap().to_path_buf());
    app.exec(
        "UPDATE backups SET storage_path = ? WHERE id = ?",
        &[&format!("{}/", dir.display()), &id],
    )
    .await;
    let key = pressluft::node_helper::backup::generate_data_key();
    app.state
        .secrets
        .put(&pressluft::backups::data_key_secret(&id), &key)
        .unwrap();
    let storage = json!({"type": "local", "path": dir});
    node(
        "backup-create",
        &json!({
            "contract_version": pressluft::node_helper::spec::CONTRACT_VERSION, "backup_id": id, "environment_id": env, "scope": "files",
            "created_at": "2026-12-02T10:00:00Z", "canonical_url": "https://example.test",
            "table_prefix": "wp_", "wordpress_version": "6.7",
            "env_root": root, "release": root.join("current"), "database": "unused",
            "storage": storage, "data_key": key
        }),
    );
    let plain = node(
        "backup-read",
        &json!({"contract_version": pressluft::node_helper::spec::CONTRACT_VERSION, "artifact": "files.tar.zst", "storage": storage, "data_key": key}),
    )
    .stdout;

    let r = get_with(
        &c,
        app.url(&format!("/backups/{id}/artifacts/files.tar.zst")),
    )
    .await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "application/zstd");
    let disposition = r.headers()["content-disposition"]
        .to_str()
        .unwrap()
        .to_string();
    assert!(
        disposition.starts_with("attachment; filename=\"shop-production-")
            && disposition.ends_with("-files.tar.zst\""),
        "{disposition}"
    );
    let body = r.bytes().await.unwrap();
    assert_eq!(&body[..4], &[0x28, 0xb5, 0x2f, 0xfd], "a zstd stream");
    let decoded = zstd::stream::decode_all(&body[..]).unwrap();
    assert_eq!(decoded.len(), plain.len());
    assert!(decoded == plain, "the download is the archive");
    assert!(
        decoded.windows(64).any(|w| w == &upload[1000..1064]),
        "the upload is inside"
    );
    let (audited,): (i64,) = pressluft::store::query_as(
        "SELECT COUNT(*) FROM audit_logs WHERE action = 'backup_download' AND result = 'succeeded' AND resource_id = ?",
    )
    .bind(&id)
    .fetch_one(app.store.pool())
    .await
    .unwrap();
    assert_eq!(audited, 1);

    // A key that cannot open it: an error page naming the helper's code, none of its output.
    app.state
        .secrets
        .put(
            &pressluft::backups::data_key_secret(&id),
            &pressluft::node_helper::backup::generate_data_key(),
        )
        .unwrap();
    let r = get_with(
        &c,
        app.url(&format!("/backups/{id}/artifacts/files.tar.zst")),
    )
    .await;
    assert_eq!(r.status(), 502);
    let html = r.text().await.unwrap();
    assert!(
        html.contains("the node could not read the backup (BACKUP_FAILED)"),
        "{html}"
    );
    assert!(
        !html.contains("age:") && !html.contains(&dir.display().to_string()),
        "{html}"
    );
}
