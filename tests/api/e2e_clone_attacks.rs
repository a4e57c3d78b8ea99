//! Attacks on `env_create` from a site's own user and database (issue 9, security items 3
//! and 4), end to end on this machine through the API (called by `e2e_sites` after its own
//! sites are removed; it creates and removes its own site):
//!
//! - production's user plants links in its release (`wp-content/pl-etc` → `/etc`,
//!   `wp-content/pl-shadow` → `/etc/shadow`, `wp-content/mu-plugins` → a root-owned directory
//!   outside the environment) and in its uploads, and its database holds a table and a column
//!   whose names carry a newline and a `mysql` client command (`\! touch <marker>`): the clone
//!   succeeds, copies the links as links, runs no command, and nothing outside the environment
//!   changes (`/etc`, `/etc/shadow`, the decoy directory: owner, mode, entries);
//! - production's user swaps `releases/<name>` for a link to a root-owned WordPress-looking
//!   directory: the clone fails with `PRECONDITION_FAILED` naming the link, before creating
//!   anything, and the directory is unchanged.

use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::process::Command;

use serde_json::json;

use crate::helpers::{finished, post_environment, post_job};
use crate::helpers::{output_with_stdin, run, TestApp};

const MARKER: &str = "/tmp/pl-e2e-clone-attack-marker";
const DECOY_MU: &str = "/var/tmp/pl-e2e-decoy-mu-plugins";
const DECOY_RELEASE: &str = "/var/tmp/pl-e2e-decoy-release";

/// Runs `input` through a `mysql` client with `args` and returns its output (stdout, stderr).
fn mysql(args: &[&str], input: &str) -> (bool, String) {
    let mut command = Command::new("mysql");
    command.args(args);
    let out = output_with_stdin(command, input.as_bytes());
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

fn sql(query: &str) -> String {
    let (ok, out) = mysql(&["--batch", "--skip-column-names", "--binary-mode"], query);
    assert!(ok, "{query}: {out}");
    out.trim().to_string()
}

/// Owner, group, mode and (for a decoy directory) its sorted entries of each path, not
/// following a link at the path itself (`/etc`'s entries change legitimately: useradd).
fn snapshot(paths: &[&str]) -> Vec<String> {
    paths
        .iter()
        .map(|p| {
            let m = std::fs::symlink_metadata(p).unwrap();
            let mut entries = Vec::new();
            if m.is_dir() && p.starts_with("/var/tmp/pl-e2e") {
                for e in std::fs::read_dir(p).unwrap() {
                    let e = e.unwrap();
                    let em = e.metadata().unwrap();
                    entries.push(format!(
                        "{} {}:{} {:o}",
                        e.file_name().to_string_lossy(),
                        em.uid(),
                        em.gid(),
                        em.mode()
                    ));
                }
                entries.sort();
            }
            format!(
                "{p} {}:{} {:o} [{}]",
                m.uid(),
                m.gid(),
                m.mode(),
                entries.join(", ")
            )
        })
        .collect()
}

fn as_user(user: &str, args: &[&str]) {
    let mut argv = vec!["-u", user, "--"];
    argv.extend_from_slice(args);
    run("runuser", &argv);
}

/// The `mysql` client as db-copy runs it executes no client command, even one standing on its
/// own line outside any quote (as older `mysqldump` versions could put a table name there).
fn the_copy_client_runs_no_client_command() {
    let _ = std::fs::remove_file(MARKER);
    let mut args: Vec<&str> = pressluft::node_helper::db_copy::CLIENT_ARGS.to_vec();
    args.extend(["--database", "mysql"]);
    let (_, out) = mysql(
        &args,
        &format!("SELECT 1;\n\\! touch {MARKER}\nSELECT 2;\n"),
    );
    assert!(
        !Path::new(MARKER).exists(),
        "the client ran a shell command: {out}"
    );
}

pub async fn clone_attacks(app: &TestApp) {
    the_copy_client_runs_no_client_command();

    let create = post_job(
        app,
        "/api/sites",
        json!({"name": "E2E Attacks", "slug": "e2e-attacks"}),
    )
    .await;
    let (job, output) = finished(app, &create).await;
    assert_eq!(job["status"], "succeeded", "{job}\n{output}");
    let site_id = job["site_id"].as_str().unwrap().to_string();
    let prod_id = job["environment_id"].as_str().unwrap().to_string();
    let prod_user = format!("pl_{}", &prod_id[..8]);
    let prod_root = format!("/var/www/sites/{site_id}/{prod_id}");
    let current = std::fs::read_link(format!("{prod_root}/current")).unwrap();
    let release = format!("{prod_root}/{}", current.display());
    let mut environments = vec![prod_id.clone()];

    // The decoys: root-owned directories outside every environment.
    for dir in [DECOY_MU, DECOY_RELEASE] {
        let _ = std::fs::remove_dir_all(dir);
    }
    std::fs::create_dir_all(DECOY_MU).unwrap();
    std::fs::write(format!("{DECOY_MU}/keep.txt"), "decoy").unwrap();
    std::fs::create_dir_all(format!("{DECOY_RELEASE}/wp-includes")).unwrap();
    std::fs::create_dir_all(format!("{DECOY_RELEASE}/wp-content")).unwrap();
    std::fs::write(
        format!("{DECOY_RELEASE}/wp-includes/version.php"),
        "<?php\n",
    )
    .unwrap();
    run("chmod", &["-R", "u=rwX,go=rX", DECOY_MU, DECOY_RELEASE]);
    let watched = [
        "/etc",
        "/etc/shadow",
        "/etc/passwd",
        DECOY_MU,
        DECOY_RELEASE,
        "/var/tmp/pl-e2e-decoy-release/wp-includes",
        "/var/tmp/pl-e2e-decoy-release/wp-content",
    ];
    let before = snapshot(&watched);

    // Production's user plants links; its database holds names carrying client commands.
    let _ = std::fs::remove_file(MARKER);
    as_user(
        &prod_user,
        &["ln", "-s", "/etc", &format!("{release}/wp-content/pl-etc")],
    );
    as_user(
        &prod_user,
        &[
            "ln",
            "-s",
            "/etc/shadow",
            &format!("{release}/wp-content/pl-shadow"),
        ],
    );
    as_user(
        &prod_user,
        &[
            "mv",
            "-T",
            &format!("{release}/wp-content/mu-plugins"),
            &format!("{release}/wp-content/mu-plugins.aside"),
        ],
    );
    as_user(
        &prod_user,
        &[
            "ln",
            "-s",
            DECOY_MU,
            &format!("{release}/wp-content/mu-plugins"),
        ],
    );
    as_user(
        &prod_user,
        &[
            "ln",
            "-s",
            "/etc",
            &format!("{prod_root}/shared/uploads/pl-etc"),
        ],
    );
    let evil = format!("x\n\\! touch {MARKER}\n--x");
    sql(&format!(
        "CREATE TABLE `wp_{}`.`{evil}` (`{evil}` int); INSERT INTO `wp_{}`.`{evil}` VALUES (7);",
        &prod_id[..8],
        &prod_id[..8]
    ));

    let clone_job = post_environment(app, &site_id, "Attacked", "attacked", "clone").await;
    let (job, output) = finished(app, &clone_job).await;
    let clone_id = job["environment_id"].as_str().unwrap().to_string();
    environments.push(clone_id.clone());

    // Production as it was (before asserting, so a failure leaves no trap behind).
    for link in [
        "wp-content/pl-etc",
        "wp-content/pl-shadow",
        "wp-content/mu-plugins",
    ] {
        std::fs::remove_file(format!("{release}/{link}")).unwrap();
    }
    std::fs::remove_file(format!("{prod_root}/shared/uploads/pl-etc")).unwrap();
    std::fs::rename(
        format!("{release}/wp-content/mu-plugins.aside"),
        format!("{release}/wp-content/mu-plugins"),
    )
    .unwrap();

    assert_eq!(job["status"], "succeeded", "{job}\n{output}");
    assert!(
        !Path::new(MARKER).exists(),
        "a client command from a table name ran during the clone"
    );
    let clone_db = format!("wp_{}", &clone_id[..8]);
    assert_eq!(
        sql(&format!(
            "SELECT COUNT(*) FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = '{clone_db}' \
             AND TABLE_NAME LIKE 'x%touch%' AND COLUMN_NAME LIKE 'x%touch%'"
        )),
        "1",
        "the table with the odd names was copied as data"
    );
    let clone_user = format!("pl_{}", &clone_id[..8]);
    let clone_release = format!("/var/www/sites/{site_id}/{clone_id}/current");
    for (link, target) in [
        ("wp-content/pl-etc", "/etc"),
        ("wp-content/pl-shadow", "/etc/shadow"),
    ] {
        let path = format!("{clone_release}/{link}");
        let m = std::fs::symlink_metadata(&path).unwrap();
        assert!(m.file_type().is_symlink(), "{path} copied as a link");
        assert_eq!(std::fs::read_link(&path).unwrap(), Path::new(target));
    }
    let uploads_link = format!("/var/www/sites/{site_id}/{clone_id}/shared/uploads/pl-etc");
    assert!(std::fs::symlink_metadata(&uploads_link)
        .unwrap()
        .file_type()
        .is_symlink());
    let mu = std::fs::symlink_metadata(format!("{clone_release}/wp-content/mu-plugins")).unwrap();
    assert!(mu.is_dir(), "the clone's mu-plugins is its own directory");
    let plugin = std::fs::metadata(format!(
        "{clone_release}/wp-content/mu-plugins/pressluft.php"
    ))
    .unwrap();
    let owner = run("id", &["-u", &clone_user]);
    assert_eq!(plugin.uid().to_string(), owner.trim());
    assert_eq!(plugin.mode() & 0o7777, 0o640);
    assert_eq!(
        snapshot(&watched),
        before,
        "nothing outside the environment changed"
    );

    // releases/<name> swapped for a link to a root-owned directory that looks like WordPress.
    let aside = format!("{release}.aside");
    as_user(&prod_user, &["mv", "-T", &release, &aside]);
    as_user(&prod_user, &["ln", "-s", DECOY_RELEASE, &release]);
    let swapped = post_environment(app, &site_id, "Swapped", "swapped", "clone").await;
    let (job, output) = finished(app, &swapped).await;
    std::fs::remove_file(&release).unwrap();
    std::fs::rename(&aside, &release).unwrap();
    let swapped_id = job["environment_id"].as_str().unwrap().to_string();
    environments.push(swapped_id.clone());
    assert_eq!(job["status"], "failed", "{job}\n{output}");
    assert_eq!(job["error_code"], "PRECONDITION_FAILED", "{job}");
    let message = job["error_message"].as_str().unwrap();
    assert!(message.contains("symbolic link"), "{message}");
    assert!(
        !Command::new("id")
            .arg(format!("pl_{}", &swapped_id[..8]))
            .output()
            .unwrap()
            .status
            .success(),
        "no user for the refused environment"
    );
    assert_eq!(
        snapshot(&watched),
        before,
        "nothing outside the environment changed"
    );

    let mut args = vec![site_id.as_str()];
    args.extend(environments.iter().map(String::as_str));
    run(
        concat!(env!("CARGO_MANIFEST_DIR"), "/tests/e2e/remove-site.sh"),
        &args,
    );
    for dir in [DECOY_MU, DECOY_RELEASE] {
        std::fs::remove_dir_all(dir).unwrap();
    }
}
