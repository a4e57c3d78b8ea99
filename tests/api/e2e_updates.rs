//! WordPress updates end to end on this machine (issue 12; called by the site flow of
//! `e2e_sites.rs` on the live production environment): a local update feed
//! (tests/e2e/update-feed.py) stands in for api.wordpress.org through the
//! `wordpress_update_source` setting. The fixture plugin's versions: 1.0 (installed), 1.1
//! (changes nothing visible), 1.2 (turns the theme's header red: a visible change; issue 16's
//! safe updates), 2.0 (fatals on load). v1.0 is installed and activated, the node's
//! `update-check` lists v1.1; an exact-versions update (issue 16) that tested 1.2 is refused
//! (`PRECONDITION_FAILED`, nothing changed), the one that tested 1.1 makes a new release with
//! v1.1 live after the pre-update backup, keeping the old release as it was. Updating again
//! (scope plugins) with nothing new succeeds without a release; the broken 2.0 is rolled back
//! and its fatal error is what `pressluft node php-fatals` reports from production's PHP error
//! log. `pressluft node menu-paths` lists the primary menu's same-host paths.

use std::io::{BufRead, BufReader};
use std::os::unix::fs::PermissionsExt;
use std::process::{Child, Command, Stdio};
use std::time::SystemTime;

use pressluft::sites::layout::EnvLayout;
use pressluft::sites::Actor;
use serde_json::{json, Value};

use crate::e2e_sites::bridge;
use crate::helpers::{
    finished, gate_ended, host, output_with_stdin, run, succeeded, visitor, TestApp,
};
use pressluft::node_helper::spec::UpdateVersion;

pub const FIXTURE: &str = "pressluft-fixture/pressluft-fixture.php";
const FEED: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/e2e/update-feed.py");

/// The local update feed: a directory of offered packages and the server (stopped on drop).
pub struct UpdateFeed {
    pub dir: tempfile::TempDir,
    pub url: String,
    server: Child,
}

impl UpdateFeed {
    /// Builds the fixture zips and starts the feed on 127.0.0.1 (a free port).
    pub fn start() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().to_str().unwrap().to_string();
        run("python3", &[FEED, "fixtures", &root]);
        let mut server = Command::new("python3")
            .args([FEED, "serve", &root])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut line = String::new();
        BufReader::new(server.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let port: u16 = line.trim().parse().expect("the feed printed its port");
        UpdateFeed {
            dir,
            url: format!("http://127.0.0.1:{port}"),
            server,
        }
    }

    /// The fixture plugin's zip of `version` (1.0, 1.1, 1.2 with the red header, or 2.0, the
    /// broken one).
    pub fn fixture_zip(&self, version: &str) -> std::path::PathBuf {
        self.dir.path().join(format!("fixtures/{version}.zip"))
    }

    /// Offers the fixture plugin at `version` from now on.
    pub fn offer(&self, version: &str) {
        let d = self.dir.path().join("plugins/pressluft-fixture");
        std::fs::create_dir_all(&d).unwrap();
        std::fs::copy(self.fixture_zip(version), d.join(format!("{version}.zip"))).unwrap();
    }

    /// Offers the fixture plugin at `version` no more (the feed offers the newest one left).
    pub fn withdraw(&self, version: &str) {
        let zip = self
            .dir
            .path()
            .join(format!("plugins/pressluft-fixture/{version}.zip"));
        let _ = std::fs::remove_file(zip);
    }
}

impl Drop for UpdateFeed {
    fn drop(&mut self) {
        let _ = self.server.kill();
        let _ = self.server.wait();
    }
}

/// Installs the fixture plugin `version` into the current release as the environment's user
/// and activates it.
pub fn install_fixture(feed: &UpdateFeed, layout: &EnvLayout, version: &str) {
    // Readable by the environment's user (the feed's directory is root's).
    let zip = format!("/tmp/pl-e2e-fixture-{}.zip", uuid::Uuid::new_v4().simple());
    std::fs::copy(feed.fixture_zip(version), &zip).unwrap();
    std::fs::set_permissions(&zip, std::fs::Permissions::from_mode(0o644)).unwrap();
    let plugins = format!("{}/current/wp-content/plugins", layout.env_root);
    run(
        "runuser",
        &[
            "-u",
            &layout.env_user,
            "--",
            "unzip",
            "-q",
            "-o",
            &zip,
            "-d",
            &plugins,
        ],
    );
    std::fs::remove_file(&zip).unwrap();
    let current = format!("{}/current", layout.env_root);
    let active = bridge(
        &layout.env_user,
        &current,
        &["option-get", r#"{"name":"active_plugins"}"#],
    );
    let mut plugins: Vec<Value> = active["value"].as_array().cloned().unwrap_or_default();
    if !plugins.contains(&json!(FIXTURE)) {
        plugins.push(json!(FIXTURE));
    }
    let set = json!({"name": "active_plugins", "value": plugins}).to_string();
    bridge(&layout.env_user, &current, &["option-set", &set]);
}

/// Points WordPress's updates of every environment at `source` (the `wordpress` group is
/// written whole: the WordPress source is kept).
pub async fn set_update_source(app: &TestApp, source: &str) {
    let wordpress_source = app.setting("wordpress_source").await;
    let r = app
        .put_json(
            "/_admin/settings/wordpress",
            json!({"wordpress_source": wordpress_source, "wordpress_update_source": source}),
        )
        .await;
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
}

/// The release `current` points to.
pub fn current_release(layout: &EnvLayout) -> String {
    std::fs::read_link(format!("{}/current", layout.env_root))
        .unwrap()
        .to_string_lossy()
        .trim_start_matches("releases/")
        .to_string()
}

fn release_names(layout: &EnvLayout) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(format!("{}/releases", layout.env_root))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

fn plugin_version(layout: &EnvLayout, release: &str) -> String {
    let php = std::fs::read_to_string(format!(
        "{}/releases/{release}/wp-content/plugins/{FIXTURE}",
        layout.env_root
    ))
    .unwrap();
    php.lines()
        .find_map(|l| l.trim().strip_prefix("* Version: "))
        .unwrap()
        .to_string()
}

fn modified(path: &str) -> SystemTime {
    std::fs::metadata(path)
        .unwrap_or_else(|e| panic!("{path}: {e}"))
        .modified()
        .unwrap()
}

/// The admin as the actor of a service call.
pub async fn admin(app: &TestApp) -> Actor {
    let (user_id, email): (String, String) =
        pressluft::store::query_as("SELECT id, email FROM users WHERE email = ?")
            .bind(crate::helpers::ADMIN_EMAIL)
            .fetch_one(app.state.store.pool())
            .await
            .unwrap();
    Actor { user_id, email }
}

/// Starts `env_update` through the deploy service and waits until it succeeded; returns the
/// job's id and payload.
async fn update(app: &TestApp, env_id: &str, scope: &str) -> (String, Value) {
    // The test clock stands still: a second apart, releases list in the order they were made.
    app.clock.advance(time::Duration::seconds(1));
    let job_id = app
        .state
        .deploys
        .update(&admin(app).await, env_id, scope)
        .await
        .unwrap();
    succeeded(app, &job_id).await;
    let (payload,): (String,) =
        pressluft::store::query_as("SELECT payload_json FROM jobs WHERE id = ?")
            .bind(&job_id)
            .fetch_one(app.state.store.pool())
            .await
            .unwrap();
    (job_id, serde_json::from_str(&payload).unwrap())
}

/// Starts `env_update` of exactly `versions` through the deploy service (issue 16) and waits
/// until it finished; returns the job.
async fn update_versions(app: &TestApp, env_id: &str, versions: Value) -> Value {
    app.clock.advance(time::Duration::seconds(1));
    let versions: Vec<UpdateVersion> = serde_json::from_value(versions).unwrap();
    let job_id = app
        .state
        .deploys
        .update_versions(&admin(app).await, env_id, versions)
        .await
        .unwrap();
    let (job, output) = finished(app, &job_id).await;
    assert!(
        matches!(job["status"].as_str(), Some("succeeded" | "failed")),
        "{job}\n{output}"
    );
    job
}

/// The PHP fatal errors production logged since `since` (`pressluft node php-fatals`).
fn php_fatals(layout: &EnvLayout, env_id: &str, since: &str) -> Vec<String> {
    let spec = json!({
        "contract_version": pressluft::node_helper::spec::CONTRACT_VERSION,
        "environment_id": env_id,
        "env_root": layout.env_root,
        "env_user": layout.env_user,
        "since": since,
    });
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_pressluft"));
    cmd.args(["node", "php-fatals"]);
    let out = output_with_stdin(cmd, spec.to_string().as_bytes());
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let answer: Value = serde_json::from_slice(&out.stdout).unwrap();
    serde_json::from_value(answer["fatals"].clone()).unwrap()
}

/// `pressluft node menu-paths` on production, as the control plane asks it (one SSH command,
/// `deploys::updates::menu_paths`): without a menu, the pages (Twenty Twenty-Three has no
/// classic menu; its navigation falls back to them); with a navigation menu, its links on the
/// site's own host only, deduplicated, `/` first. The menu is removed again.
async fn menu_paths(app: &TestApp, layout: &EnvLayout, env_id: &str, preview: &str) {
    let paths = || async {
        pressluft::deploys::updates::menu_paths(
            &app.state.store,
            &app.state.secrets,
            &app.state.config,
            env_id,
        )
        .await
        .unwrap()
    };
    let pages = paths().await;
    assert_eq!(pages[0], "/", "{pages:?}");
    assert!(pages.len() >= 2, "the sample page is listed: {pages:?}");
    assert!(
        pages
            .iter()
            .all(|p| p.starts_with('/') && !p.starts_with("//")),
        "{pages:?}"
    );

    let home = preview.trim_end_matches('/');
    let links = [
        format!("{home}/about/#team"),
        "https://evil.example/x".into(),
        "//evil.example/y".into(),
        "/shop/".into(),
        "/about/".into(),
        "javascript:alert(1)".into(),
        format!("{home}:8443/other-port/"),
    ];
    let content: String = links
        .iter()
        .map(|url| {
            format!(
                "<!-- wp:navigation-link {} /-->",
                json!({"label": "x", "url": url})
            )
        })
        .collect();
    let db = &layout.db_name;
    let sql = format!(
        "INSERT INTO {db}.wp_posts (post_author, post_date, post_date_gmt, post_content, \
         post_title, post_excerpt, post_status, post_name, to_ping, pinged, post_modified, \
         post_modified_gmt, post_content_filtered, post_type) VALUES (1, NOW(), \
         UTC_TIMESTAMP(), '{}', 'pressluft-e2e-nav', '', 'publish', 'pressluft-e2e-nav', '', \
         '', NOW(), UTC_TIMESTAMP(), '', 'wp_navigation')",
        content.replace('\\', "\\\\").replace('\'', "''")
    );
    run("mysql", &["-e", &sql]);
    let menu = paths().await;
    run(
        "mysql",
        &[
            "-e",
            &format!("DELETE FROM {db}.wp_posts WHERE post_name = 'pressluft-e2e-nav'"),
        ],
    );
    assert_eq!(menu, vec!["/", "/about/", "/shop/"]);
}

/// The option the broken fixture (v2.0) writes when it loads, before its fatal error.
const V2_RAN: &str = "pressluft_fixture_v2_ran";

fn v2_ran(db: &str) -> String {
    run(
        "mysql",
        &[
            "--batch",
            "--skip-column-names",
            "-e",
            &format!("SELECT COUNT(*) FROM {db}.wp_options WHERE option_name = '{V2_RAN}'"),
        ],
    )
    .trim()
    .to_string()
}

/// The audit row's result of the request that enqueued `job_id`.
async fn audit_result(app: &TestApp, job_id: &str) -> String {
    let (result,): (String,) =
        pressluft::store::query_as("SELECT result FROM audit_logs WHERE job_id = ?")
            .bind(job_id)
            .fetch_one(app.state.store.pool())
            .await
            .unwrap();
    result
}

pub async fn updates(app: &TestApp, site_id: &str, env_id: &str) {
    let layout = EnvLayout::new(site_id, env_id);
    let (_, env) = app.get_json(&format!("/api/environments/{env_id}")).await;
    let preview = env["preview_url"].as_str().unwrap().to_string();
    let feed = UpdateFeed::start();
    install_fixture(&feed, &layout, "1.0");
    set_update_source(app, &feed.url).await;
    feed.offer("1.1");
    menu_paths(app, &layout, env_id, &preview).await;

    // The node's update-check (one command, as the control plane runs it over SSH).
    let spec = json!({
        "contract_version": pressluft::node_helper::spec::CONTRACT_VERSION,
        "environment_id": env_id,
        "env_root": layout.env_root,
        "env_user": layout.env_user,
        "update_source": feed.url,
        "allow_loopback_sources": true,
        "php_dir": "/usr/local/lib/pressluft/php",
    });
    let mut check = Command::new(env!("CARGO_BIN_EXE_pressluft"));
    check.args(["node", "update-check"]);
    let out = output_with_stdin(check, spec.to_string().as_bytes());
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let available: Value = serde_json::from_slice(&out.stdout).unwrap();
    let plugin = available["plugins"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["id"] == FIXTURE)
        .unwrap_or_else(|| panic!("the fixture's update is listed: {available}"));
    assert_eq!(plugin["current_version"], "1.0", "{available}");
    assert_eq!(plugin["new_version"], "1.1", "{available}");
    assert_eq!(plugin["name"], "Pressluft Fixture", "{available}");
    // Without loopback sources the node refuses the feed (exit 3, nothing asked).
    let mut strict = spec.clone();
    strict["allow_loopback_sources"] = json!(false);
    let mut check = Command::new(env!("CARGO_BIN_EXE_pressluft"));
    check.args(["node", "update-check"]);
    let out = output_with_stdin(check, strict.to_string().as_bytes());
    assert_eq!(out.status.code(), Some(3), "{out:?}");

    // Exact versions (issue 16): an update that tested 1.2 while 1.1 is offered is refused
    // before anything changes (no backup, no release).
    let before = current_release(&layout);
    let releases_before = release_names(&layout);
    let refused = update_versions(
        app,
        env_id,
        json!([{"kind": "plugin", "id": FIXTURE, "version": "1.2"}]),
    )
    .await;
    assert_eq!(refused["status"], "failed", "{refused}");
    assert_eq!(refused["error_code"], "PRECONDITION_FAILED", "{refused}");
    assert_eq!(
        refused["error_message"],
        format!("plugin {FIXTURE}: 1.1 is offered now, 1.2 was tested"),
        "{refused}"
    );
    assert_eq!(current_release(&layout), before);
    assert_eq!(
        release_names(&layout),
        releases_before,
        "no release was made"
    );
    assert_eq!(plugin_version(&layout, &before), "1.0");

    // The update of exactly 1.1: a new release with v1.1, live; the old one untouched.
    let job = update_versions(
        app,
        env_id,
        json!([{"kind": "plugin", "id": FIXTURE, "version": "1.1"}]),
    )
    .await;
    assert_eq!(job["status"], "succeeded", "{job}");
    let job_id = job["id"].as_str().unwrap().to_string();
    let (payload,): (String,) =
        pressluft::store::query_as("SELECT payload_json FROM jobs WHERE id = ?")
            .bind(&job_id)
            .fetch_one(app.state.store.pool())
            .await
            .unwrap();
    let payload: Value = serde_json::from_str(&payload).unwrap();
    assert_eq!(
        payload["versions"],
        json!([{"kind": "plugin", "id": FIXTURE, "version": "1.1"}])
    );
    let (_, rollback) = gate_ended(app, &job_id).await;
    assert!(rollback.is_none(), "the update passed its health gate");
    let after = current_release(&layout);
    assert_ne!(before, after, "a new release is live");
    assert_eq!(plugin_version(&layout, &after), "1.1");
    assert_eq!(
        plugin_version(&layout, &before),
        "1.0",
        "the old release is kept as it was"
    );
    let r = visitor(&[host(&preview)])
        .get(&preview)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "the site answers after the update");

    // The pre-update backup was written first.
    let backup_id = payload["pre_backup_id"].as_str().unwrap();
    let dir = format!("/var/backups/pressluft/{site_id}/{env_id}/{backup_id}");
    for artifact in ["db.sql.zst", "files.tar.zst", "manifest.json"] {
        assert!(
            std::path::Path::new(&format!("{dir}/{artifact}")).is_file(),
            "{dir}/{artifact}"
        );
    }
    let updated_file = format!(
        "{}/releases/{after}/wp-content/plugins/{FIXTURE}",
        layout.env_root
    );
    assert!(
        modified(&format!("{dir}/manifest.json")) <= modified(&updated_file),
        "the backup was complete before the release was updated"
    );

    // Recorded: the release is current and healthy, the pre-update backup completed before it.
    let (_, releases) = app
        .get_json(&format!("/api/environments/{env_id}/releases"))
        .await;
    let newest = &releases[0];
    assert!(
        newest["path"].as_str().unwrap().ends_with(&after),
        "{releases}"
    );
    assert_eq!(newest["health_status"], "healthy", "{newest}");
    assert!(
        newest["notes"].as_str().unwrap().contains(&format!(
            "updates: all (exact versions): plugin {FIXTURE} 1.0 → 1.1"
        )),
        "{newest}"
    );
    let (_, env) = app.get_json(&format!("/api/environments/{env_id}")).await;
    assert_eq!(env["current_release_id"], newest["id"]);
    assert_eq!(env["status"], "active");
    let (_, backup) = app.get_json(&format!("/api/backups/{backup_id}")).await;
    assert_eq!(backup["status"], "completed", "{backup}");
    assert!(
        backup["completed_at"].as_str().unwrap() <= newest["created_at"].as_str().unwrap(),
        "the pre-update backup completed before the release: {backup} {newest}"
    );
    assert_eq!(audit_result(app, &job_id).await, "succeeded");

    // Nothing new: success, no release, no gate.
    let releases = release_names(&layout);
    let (job_id, _) = update(app, env_id, "plugins").await;
    assert_eq!(release_names(&layout), releases, "no new release directory");
    assert_eq!(current_release(&layout), after);
    let gates: i64 = app
        .count(&format!("jobs WHERE parent_job_id = '{job_id}'"))
        .await;
    assert_eq!(gates, 0, "nothing to update: no health gate");

    // An update that breaks the site: the newer package fatals on every page. The health gate
    // fails and the rollback restores the previous release AND the database from the
    // pre-update backup: the option the broken plugin wrote when it loaded is gone.
    let db = layout.db_name.clone();
    feed.offer("2.0");
    let before_broken = time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap();
    let (job_id, payload) = update(app, env_id, "plugins").await;
    let broken = current_release(&layout);
    assert_eq!(plugin_version(&layout, &broken), "2.0");
    let (gate, rollback) = gate_ended(app, &job_id).await;
    let rollback = rollback.expect("the broken update is rolled back");
    assert!(
        gate["error_message"].as_str().unwrap().contains("http"),
        "{gate}"
    );
    assert_eq!(
        current_release(&layout),
        after,
        "the previous release is live again"
    );
    assert_eq!(
        v2_ran(&db),
        "0",
        "the database came back from the pre-update backup"
    );
    let rollback_payload: Value = serde_json::from_str(
        &pressluft::store::query_as::<(String,)>("SELECT payload_json FROM jobs WHERE id = ?")
            .bind(rollback["id"].as_str().unwrap())
            .fetch_one(app.state.store.pool())
            .await
            .unwrap()
            .0,
    )
    .unwrap();
    assert_eq!(
        rollback_payload["restore_backup_id"],
        payload["pre_backup_id"]
    );
    let r = visitor(&[host(&preview)])
        .get(&preview)
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.status(),
        200,
        "the site answers with the previous release"
    );
    let (_, releases) = app
        .get_json(&format!("/api/environments/{env_id}/releases"))
        .await;
    assert_eq!(releases[0]["health_status"], "unhealthy", "{releases}");
    assert!(
        releases[0]["notes"]
            .as_str()
            .unwrap()
            .contains("rolled back"),
        "{releases}"
    );
    let (_, env) = app.get_json(&format!("/api/environments/{env_id}")).await;
    assert_eq!(env["status"], "active");
    assert!(env["current_release_id"] != releases[0]["id"]);
    assert_eq!(audit_result(app, &job_id).await, "failed", "rolled back");
    // The broken plugin stays on disk only in the failed release (kept for inspection).
    assert_eq!(plugin_version(&layout, &after), "1.1");

    // Its fatal error is in production's own PHP error log (the pool's error_log), as
    // `php-fatals` reports it (issue 16); nothing from before the update.
    let fatals = php_fatals(&layout, env_id, &before_broken);
    assert!(
        fatals.iter().any(|f| f.starts_with("PHP Fatal error")
            && f.contains("pressluft_fixture_v2_undefined_function")),
        "{fatals:?}"
    );
    assert!(fatals.len() <= 20 && fatals.iter().all(|f| f.chars().count() <= 300));
    let later = (time::OffsetDateTime::now_utc() + time::Duration::minutes(1))
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap();
    assert!(php_fatals(&layout, env_id, &later).is_empty());

    // 2.0 withdrawn: nothing is offered, so an update that tested 2.0 is refused too.
    feed.withdraw("2.0");
    let refused = update_versions(
        app,
        env_id,
        json!([{"kind": "plugin", "id": FIXTURE, "version": "2.0"}]),
    )
    .await;
    assert_eq!(refused["error_code"], "PRECONDITION_FAILED", "{refused}");
    assert_eq!(
        refused["error_message"],
        format!("plugin {FIXTURE}: no update is offered now, 2.0 was tested"),
        "{refused}"
    );
    assert_eq!(current_release(&layout), after);

    set_update_source(app, "").await;
}
