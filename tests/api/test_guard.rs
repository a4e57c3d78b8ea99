//! The test command must not destroy a real installation (issue 9): `scripts/test` (and
//! `tests/install/check.sh`) start with `scripts/refuse-real-installation`, which refuses when
//! the data directory's database holds data, naming what it found and the variable that allows
//! it on a disposable machine. These tests build a real installation's database (the binary's
//! own migrations and `admin create`, plus rows) under a fake root.

use std::path::Path;
use std::process::{Command, Output};

const BIN: &str = env!("CARGO_BIN_EXE_pressluft");
const GUARD: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/scripts/refuse-real-installation"
);

fn guard(root: &Path, disposable: bool) -> Output {
    let mut c = Command::new(GUARD);
    c.arg("scripts/test")
        .env("PRESSLUFT_TEST_INSTALL_ROOT", root)
        // CI sets it for the whole run; each case here decides for itself.
        .env_remove("PRESSLUFT_TEST_DISPOSABLE");
    if disposable {
        c.env("PRESSLUFT_TEST_DISPOSABLE", "1");
    }
    c.output().unwrap()
}

/// An installation's data directory under `root` with one admin `email`.
fn install(root: &Path, email: &str) -> std::path::PathBuf {
    let data = root.join("var/lib/pressluft");
    std::fs::create_dir_all(&data).unwrap();
    let mut command = Command::new(BIN);
    command
        .args(["admin", "create", "--email", email, "--password-stdin"])
        .arg("--data-dir")
        .arg(&data)
        .arg("--log-dir")
        .arg(root.join("log"));
    let out = crate::helpers::output_with_stdin(command, b"a-long-enough-password\n");
    assert!(out.status.success());
    data.join("pressluft.db")
}

async fn add_node_and_sites(db: &Path, sites: usize) {
    use sqlx::Connection;
    let mut conn = sqlx::SqliteConnection::connect(&format!("sqlite://{}", db.display()))
        .await
        .unwrap();
    let now = "2026-01-01T00:00:00.000Z";
    sqlx::query(
        "INSERT INTO nodes (id, name, hostname, status, is_local, created_at, updated_at)
         VALUES ('00000000-0000-4000-8000-000000000001', 'local', '127.0.0.1', 'active', 1, ?, ?)",
    )
    .bind(now)
    .bind(now)
    .execute(&mut conn)
    .await
    .unwrap();
    for i in 0..sites {
        sqlx::query(
            "INSERT INTO sites (id, name, slug, status, created_at, updated_at)
             VALUES (?, ?, ?, 'active', ?, ?)",
        )
        .bind(format!("00000000-0000-4000-8000-00000000010{i}"))
        .bind(format!("Site {i}"))
        .bind(format!("site-{i}"))
        .bind(now)
        .bind(now)
        .execute(&mut conn)
        .await
        .unwrap();
    }
    conn.close().await.unwrap();
}

#[tokio::test]
async fn the_test_command_refuses_a_real_installation() {
    let root = tempfile::tempdir().unwrap();
    let db = install(root.path(), "owner@example.com");
    add_node_and_sites(&db, 3).await;

    let out = guard(root.path(), false);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{stderr}");
    assert!(
        stderr.contains(&format!("{} holds 1 admin, 1 node, 3 sites", db.display())),
        "names what it found: {stderr}"
    );
    assert!(
        stderr.contains("PRESSLUFT_TEST_DISPOSABLE=1"),
        "names the variable: {stderr}"
    );

    // On a disposable machine the variable allows it; nothing was touched either way.
    let out = guard(root.path(), true);
    assert!(out.status.success(), "{out:?}");
    assert!(db.exists());

    // scripts/test refuses before it changes anything: its first command is the guard.
    let test =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/test")).unwrap();
    let first = test
        .lines()
        .find(|l| {
            !l.starts_with('#')
                && !l.trim().is_empty()
                && !l.starts_with("set ")
                && !l.starts_with("cd ")
        })
        .unwrap();
    assert_eq!(first, "./scripts/refuse-real-installation scripts/test");
    // And the installer check refuses before it removes anything.
    let check = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/install/check.sh"
    ))
    .unwrap();
    let guard_at = check.find("scripts/refuse-real-installation").unwrap();
    assert!(guard_at < check.find("rm -rf /var/lib/pressluft").unwrap());
    assert!(guard_at < check.find("trap finish EXIT").unwrap());
}

#[tokio::test]
async fn no_installation_or_the_install_checks_own_one_is_not_refused() {
    let root = tempfile::tempdir().unwrap();
    assert!(guard(root.path(), false).status.success(), "nothing there");

    // What tests/install/check.sh leaves behind: its own admin, its local node, no sites.
    let db = install(root.path(), "admin@install.test");
    add_node_and_sites(&db, 0).await;
    let out = guard(root.path(), false);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // A site on it makes it someone's installation.
    add_node_and_sites_only_sites(&db).await;
    assert_eq!(guard(root.path(), false).status.code(), Some(3));
}

async fn add_node_and_sites_only_sites(db: &Path) {
    use sqlx::Connection;
    let mut conn = sqlx::SqliteConnection::connect(&format!("sqlite://{}", db.display()))
        .await
        .unwrap();
    sqlx::query(
        "INSERT INTO sites (id, name, slug, status, created_at, updated_at)
         VALUES ('00000000-0000-4000-8000-000000000200', 'Shop', 'shop', 'active',
                 '2026-01-01T00:00:00.000Z', '2026-01-01T00:00:00.000Z')",
    )
    .execute(&mut conn)
    .await
    .unwrap();
    conn.close().await.unwrap();
}
