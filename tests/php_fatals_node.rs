//! `pressluft node php-fatals` (issue 16) against real files: the reader
//! (`node_helper::php_fatals::fatals_in`) on prepared environment trees — the log missing, a
//! real log, a log linked elsewhere, a linked `logs/` directory, a FIFO, a log larger than the
//! 4 MiB tail — and the command itself: specs whose names are not the derived ones are refused
//! (exit 3), and, as root with PRESSLUFT_E2E=1 (it writes below /var/www/sites; run it under the
//! node lock), a prepared log in a real environment root read end to end.

use std::os::unix::fs::symlink;
use std::path::Path;

use pressluft::node_helper::php_fatals::{fatals_in, TAIL_BYTES};
use pressluft::node_helper::spec::CONTRACT_VERSION;
use serde_json::json;
use time::OffsetDateTime;

mod node_common;
use node_common::node;

fn at(s: &str) -> OffsetDateTime {
    OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339).unwrap()
}

const LOG: &str = "\
[03-Dec-2026 14:04:00 UTC] PHP Fatal error:  Uncaught Error: before the update in /var/www/x/old.php:3
[03-Dec-2026 14:05:01 UTC] PHP Warning:  Undefined variable $a in /var/www/x/a.php on line 2
[03-Dec-2026 14:05:02 UTC] PHP Fatal error:  Uncaught Error: Call to undefined function pressluft_fixture_v2_undefined_function() in /var/www/x/wp-content/plugins/pressluft-fixture/pressluft-fixture.php:9
Stack trace:
#0 /var/www/x/wp-settings.php(560): include_once()
#1 {main}
  thrown in /var/www/x/wp-content/plugins/pressluft-fixture/pressluft-fixture.php on line 9
";

const FATAL: &str = "PHP Fatal error: Uncaught Error: Call to undefined function pressluft_fixture_v2_undefined_function() in /var/www/x/wp-content/plugins/pressluft-fixture/pressluft-fixture.php:9";

fn env_root() -> tempfile::TempDir {
    tempfile::tempdir().unwrap()
}

#[test]
fn the_log_is_read_from_the_environment_root() {
    let root = env_root();
    let since = at("2026-12-03T14:05:00Z");
    // No logs/ yet, then no log yet: nothing, no error.
    assert!(fatals_in(root.path(), since).unwrap().is_empty());
    std::fs::create_dir(root.path().join("logs")).unwrap();
    assert!(fatals_in(root.path(), since).unwrap().is_empty());
    std::fs::write(root.path().join("logs/php-error.log"), LOG).unwrap();
    assert_eq!(fatals_in(root.path(), since).unwrap(), vec![FATAL]);
    assert_eq!(
        fatals_in(root.path(), at("2026-12-03T14:00:00Z"))
            .unwrap()
            .len(),
        2
    );
}

#[test]
fn links_and_special_files_are_refused() {
    let since = at("2026-12-03T14:00:00Z");
    // The log linked to a file elsewhere (e.g. root's secrets): refused, not followed.
    let root = env_root();
    let secret = root.path().join("outside.log");
    std::fs::write(&secret, LOG).unwrap();
    std::fs::create_dir(root.path().join("logs")).unwrap();
    symlink(&secret, root.path().join("logs/php-error.log")).unwrap();
    let err = fatals_in(root.path(), since).unwrap_err();
    assert!(
        format!("{err:#}").contains("without following links"),
        "{err:#}"
    );

    // logs/ itself a link to another directory holding a log.
    let root = env_root();
    let elsewhere = root.path().join("elsewhere");
    std::fs::create_dir(&elsewhere).unwrap();
    std::fs::write(elsewhere.join("php-error.log"), LOG).unwrap();
    symlink(&elsewhere, root.path().join("logs")).unwrap();
    assert!(fatals_in(root.path(), since).is_err());

    // The environment root reached through a link.
    let real = env_root();
    std::fs::create_dir(real.path().join("logs")).unwrap();
    std::fs::write(real.path().join("logs/php-error.log"), LOG).unwrap();
    let holder = env_root();
    let linked = holder.path().join("env");
    symlink(real.path(), &linked).unwrap();
    assert!(fatals_in(&linked, since).is_err());

    // A FIFO instead of the log: refused at once (a read would block for ever).
    let root = env_root();
    std::fs::create_dir(root.path().join("logs")).unwrap();
    let fifo = root.path().join("logs/php-error.log");
    let c = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
    // SAFETY: a valid NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
    let err = fatals_in(root.path(), since).unwrap_err();
    assert!(err.to_string().contains("not a regular file"), "{err:#}");
}

#[test]
fn only_the_logs_tail_is_read() {
    let root = env_root();
    std::fs::create_dir(root.path().join("logs")).unwrap();
    let early = "[03-Dec-2026 14:05:01 UTC] PHP Fatal error:  early, beyond the tail\n";
    let filler = format!(
        "[03-Dec-2026 14:05:01 UTC] PHP Notice:  {}\n",
        "x".repeat(200)
    );
    let mut log = String::from(early);
    while (log.len() as u64) < TAIL_BYTES + 4096 {
        log.push_str(&filler);
    }
    log.push_str(LOG);
    std::fs::write(root.path().join("logs/php-error.log"), &log).unwrap();
    let found = fatals_in(root.path(), at("2026-12-03T14:05:00Z")).unwrap();
    assert_eq!(found, vec![FATAL], "only the last 4 MiB are read");
}

fn spec(env_id: &str, env_root: &str, env_user: &str, since: &str) -> serde_json::Value {
    json!({
        "contract_version": CONTRACT_VERSION,
        "environment_id": env_id,
        "env_root": env_root,
        "env_user": env_user,
        "since": since,
    })
}

#[test]
fn specs_that_name_other_files_are_refused() {
    let env = "0a1b2c3d-1111-4222-8333-444455556666";
    let site = "9f8e7d6c-1111-4222-8333-444455556666";
    let root = format!("/var/www/sites/{site}/{env}");
    for (env_root, user, since) in [
        ("/etc", "pl_0a1b2c3d", "2026-12-03T14:05:00Z"),
        ("/var/log", "pl_0a1b2c3d", "2026-12-03T14:05:00Z"),
        (root.as_str(), "root", "2026-12-03T14:05:00Z"),
        (root.as_str(), "pl_0a1b2c3d", "yesterday"),
    ] {
        let out = node("php-fatals", &spec(env, env_root, user, since));
        assert_eq!(out.code, 3, "{env_root} {user} {since}: {}", out.stderr);
    }
    let out = node(
        "php-fatals",
        &spec(
            env,
            &format!("/var/www/sites/{site}/../../../etc/{env}"),
            "pl_0a1b2c3d",
            "2026-12-03T14:05:00Z",
        ),
    );
    assert_eq!(out.code, 3, "{}", out.stderr);
    // A field the helper does not know (e.g. a raw log path) is refused too.
    let mut with_path = spec(env, &root, "pl_0a1b2c3d", "2026-12-03T14:05:00Z");
    with_path["log_path"] = json!("/etc/shadow");
    let out = node("php-fatals", &with_path);
    assert_eq!(out.code, 3, "{}", out.stderr);
}

#[test]
fn a_real_environment_root_end_to_end() {
    // SAFETY: no arguments, no memory.
    if unsafe { libc::geteuid() } != 0 || std::env::var_os("PRESSLUFT_E2E").is_none() {
        eprintln!("skipped: as root with PRESSLUFT_E2E=1 (writes below /var/www/sites)");
        return;
    }
    let site = uuid::Uuid::new_v4().to_string();
    let env = uuid::Uuid::new_v4().to_string();
    let site_dir = format!("/var/www/sites/{site}");
    let root = format!("{site_dir}/{env}");
    struct Cleanup(String);
    impl Drop for Cleanup {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
    let _cleanup = Cleanup(site_dir.clone());
    std::fs::create_dir_all(format!("{root}/logs")).unwrap();
    std::fs::write(format!("{root}/logs/php-error.log"), LOG).unwrap();
    let user = format!("pl_{}", &env[..8]);
    let out = node(
        "php-fatals",
        &spec(&env, &root, &user, "2026-12-03T14:05:00Z"),
    );
    assert_eq!(out.json(), json!({"fatals": [FATAL]}));
    // Linked to another file: exit 1 with the reason, nothing read.
    std::fs::remove_file(format!("{root}/logs/php-error.log")).unwrap();
    symlink("/etc/shadow", format!("{root}/logs/php-error.log")).unwrap();
    let out = node(
        "php-fatals",
        &spec(&env, &root, &user, "2026-12-03T14:05:00Z"),
    );
    assert_eq!(out.code, 1, "{}", out.stderr);
    assert!(
        out.stderr.contains("without following links"),
        "{}",
        out.stderr
    );
    assert!(out.stdout.is_empty());
    assert!(Path::new(&root).is_dir());
}
