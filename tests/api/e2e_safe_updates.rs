//! Safe automatic updates end to end on this machine (issue 16; called by the site flow of
//! `e2e_sites.rs` on the live production environment, after the custom domains): the local
//! update feed (tests/e2e/update-feed.py, through the `wordpress_update_source` setting) offers
//! the fixture plugin's versions one after the other, and each `safe_update` run clones
//! production into a temporary environment, screenshots the check pages with the system's
//! chromium before and after applying the offered version there, compares and decides:
//! - 1.1 (nothing visible) → `applied`: production's `env_update` with exactly 1.1 succeeds
//!   (pre-update backup on disk, health gate passed), production runs 1.1 — and the run is the
//!   benchmark: 5 check pages, timed (docs/benchmarks.md "Safe updates", target < 90 s);
//! - 1.2 (the theme's header turns red) → `held` with the home page's diff image whose changed
//!   box covers the header; production keeps 1.1; approving applies 1.2;
//! - 2.0 (fatals on load) → `held` with the PHP fatal error named; dismissed, production kept;
//! - nothing offered → `no_updates` without an environment.
//!
//! After every run the temporary environment is gone: its row `deleted` and nothing of it left
//! on the node (user, pool, server block, database, Redis user, directory).

use std::os::unix::fs::PermissionsExt;
use std::time::Instant;

use pressluft::sites::layout::EnvLayout;
use serde_json::{json, Value};

use crate::e2e_updates::{
    current_release, install_fixture, set_update_source, UpdateFeed, FIXTURE,
};
use crate::helpers::{finished, gate_ended, TestApp};

/// The fixture plugin's version in production's live release (`None`: not installed).
fn live_version(layout: &EnvLayout) -> Option<String> {
    let php = std::fs::read_to_string(format!(
        "{}/current/wp-content/plugins/{FIXTURE}",
        layout.env_root
    ))
    .ok()?;
    php.lines()
        .find_map(|l| l.trim().strip_prefix("* Version: "))
        .map(str::to_string)
}

async fn patch_site(app: &TestApp, site: &str, body: Value) {
    let r = app
        .client
        .patch(app.url(&format!("/api/sites/{site}")))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
}

/// Runs a safe update through the API; answers the finished run and how long its job took.
async fn safe_update(app: &TestApp, site: &str) -> (Value, std::time::Duration) {
    app.clock.advance(time::Duration::seconds(1));
    let started = Instant::now();
    let r = app
        .post_empty(&format!("/api/sites/{site}/safe-updates"))
        .await;
    assert_eq!(r.status(), 202, "{}", r.text().await.unwrap());
    let body: Value = r.json().await.unwrap();
    let job_id = body["job_id"].as_str().unwrap();
    let (job, output) = finished(app, job_id).await;
    let took = started.elapsed();
    assert_eq!(job["status"], "succeeded", "{job}\n{output}");
    let (status, run) = app
        .get_json(&format!(
            "/api/safe-updates/{}",
            body["run_id"].as_str().unwrap()
        ))
        .await;
    assert_eq!(status, 200);
    (run, took)
}

/// The run's temporary environment is deleted: the row and everything on the node.
async fn assert_temp_gone(app: &TestApp, site: &str, run: &Value) {
    let temp = run["temp_environment_id"]
        .as_str()
        .unwrap_or_else(|| panic!("a temporary environment: {run}"));
    let (_, e) = app.get_json(&format!("/api/environments/{temp}")).await;
    assert_eq!(e["status"], "deleted", "{e}");
    crate::e2e_delete::assert_gone(site, temp);
}

/// A small classic theme with a header (`<header class="site-header">` and `wp_head()`), made
/// production's active theme: the deploy step left a text-only theme active, and 1.2's visible
/// change is the colour of the theme's header.
fn activate_header_theme(layout: &EnvLayout) {
    const THEME: &str = "pl-e2e-header";
    let src = tempfile::Builder::new()
        .prefix("pl-e2e-theme-")
        .tempdir_in("/tmp")
        .unwrap();
    let dir = src.path().join(THEME);
    std::fs::create_dir(&dir).unwrap();
    std::fs::write(
        dir.join("style.css"),
        "/*\nTheme Name: Pressluft E2E Header\n*/\n",
    )
    .unwrap();
    std::fs::write(
        dir.join("index.php"),
        "<!DOCTYPE html><html><head><?php wp_head(); ?></head><body style=\"margin:0\">\n\
         <header class=\"site-header\" style=\"height:120px;padding:20px;background:#eee\">\n\
         <p class=\"site-title\"><a href=\"/\">Pressluft E2E</a></p></header>\n\
         <main><p>PL-E2E-SAFE-UPDATES</p></main><?php wp_footer(); ?></body></html>\n",
    )
    .unwrap();
    for p in [src.path(), dir.as_path()] {
        std::fs::set_permissions(p, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    for f in ["style.css", "index.php"] {
        std::fs::set_permissions(dir.join(f), std::fs::Permissions::from_mode(0o644)).unwrap();
    }
    let current = format!("{}/current", layout.env_root);
    let themes = format!("{current}/wp-content/themes/");
    crate::helpers::run(
        "runuser",
        &[
            "-u",
            &layout.env_user,
            "--",
            "cp",
            "-r",
            dir.to_str().unwrap(),
            &themes,
        ],
    );
    for name in ["template", "stylesheet"] {
        let set = json!({"name": name, "value": THEME}).to_string();
        crate::e2e_sites::bridge(&layout.env_user, &current, &["option-set", &set]);
    }
}

/// An image of the run, as PNG bytes.
async fn image(app: &TestApp, url: &Value) -> Vec<u8> {
    let r = app.get(url.as_str().expect("an image URL")).await;
    assert_eq!(r.status(), 200, "{url}");
    assert_eq!(r.headers()["content-type"], "image/png");
    let bytes = r.bytes().await.unwrap().to_vec();
    assert!(bytes.starts_with(b"\x89PNG\r\n\x1a\n"), "{url} is a PNG");
    bytes
}

pub async fn safe_updates(app: &TestApp, site_id: &str, env_id: &str) {
    let layout = EnvLayout::new(site_id, env_id);
    let feed = UpdateFeed::start();
    set_update_source(app, &feed.url).await;
    // From a known start: the fixture at 1.0 in production's live release.
    if live_version(&layout).as_deref() != Some("1.0") {
        install_fixture(&feed, &layout, "1.0");
    }
    assert_eq!(live_version(&layout).as_deref(), Some("1.0"));
    activate_header_theme(&layout);
    // Five check pages (the benchmark's), each of a default WordPress.
    let pages = ["/", "/?p=1", "/?page_id=2", "/?s=pressluft", "/?cat=1"];
    patch_site(app, site_id, json!({"safe_updates_paths": pages})).await;

    // 1.1 changes nothing visible: applied to production.
    feed.offer("1.1");
    let (run, took) = safe_update(app, site_id).await;
    eprintln!(
        "benchmark: safe-update run with {} check pages took {:.1} s (target < 90 s)",
        pages.len(),
        took.as_secs_f64()
    );
    assert_eq!(run["outcome"], "applied", "{run}");
    assert_eq!(
        run["updates"],
        json!([{"kind": "plugin", "id": FIXTURE, "from": "1.0", "to": "1.1"}])
    );
    assert_eq!(run["pages"].as_array().unwrap().len(), 5, "{run}");
    for p in run["pages"].as_array().unwrap() {
        assert_eq!(p["passed"], true, "{p}");
        image(app, &p["images"]["diff"]).await;
    }
    assert_temp_gone(app, site_id, &run).await;
    let apply = run["apply_job_id"].as_str().unwrap().to_string();
    let (_, rollback) = gate_ended(app, &apply).await;
    assert!(rollback.is_none(), "the update passed its health gate");
    assert_eq!(live_version(&layout).as_deref(), Some("1.1"));
    let (payload,): (String,) =
        pressluft::store::query_as("SELECT payload_json FROM jobs WHERE id = ?")
            .bind(&apply)
            .fetch_one(app.state.store.pool())
            .await
            .unwrap();
    let payload: Value = serde_json::from_str(&payload).unwrap();
    assert_eq!(
        payload["versions"],
        json!([{"kind": "plugin", "id": FIXTURE, "version": "1.1"}])
    );
    let backup = payload["pre_backup_id"].as_str().unwrap();
    let dir = format!("/var/backups/pressluft/{site_id}/{env_id}/{backup}");
    assert!(
        std::path::Path::new(&format!("{dir}/manifest.json")).is_file(),
        "the pre-update backup {dir} exists"
    );
    let (_, b) = app.get_json(&format!("/api/backups/{backup}")).await;
    assert_eq!(b["status"], "completed", "{b}");

    // 1.2 turns the header red: held with the diff on the header; production keeps 1.1.
    patch_site(app, site_id, json!({"safe_updates_paths": ["/"]})).await;
    feed.offer("1.2");
    let release_before = current_release(&layout);
    let (run, _) = safe_update(app, site_id).await;
    assert_eq!(run["outcome"], "held", "{run}");
    assert_eq!(run["apply_job_id"], Value::Null);
    let home = &run["pages"][0];
    assert_eq!(home["path"], "/");
    assert_eq!(home["passed"], false, "{home}");
    assert!(
        home["reasons"][0].as_str().unwrap().contains("changed"),
        "{home}"
    );
    let changed = &home["changed_box"];
    assert!(
        changed["y"].as_u64().unwrap() < 200 && changed["height"].as_u64().unwrap() > 20,
        "the change is at the top of the page, the header: {changed}"
    );
    let before = image(app, &home["images"]["before"]).await;
    let after = image(app, &home["images"]["after"]).await;
    image(app, &home["images"]["diff"]).await;
    assert_ne!(before, after);
    assert_temp_gone(app, site_id, &run).await;
    assert_eq!(live_version(&layout).as_deref(), Some("1.1"));
    assert_eq!(
        current_release(&layout),
        release_before,
        "production untouched"
    );
    // Approved: production gets exactly 1.2.
    let id = run["id"].as_str().unwrap();
    let r = app
        .post_empty(&format!("/api/safe-updates/{id}/approve"))
        .await;
    assert_eq!(r.status(), 202);
    let apply = crate::helpers::job_id(r).await;
    let (_, rollback) = gate_ended(app, &apply).await;
    assert!(
        rollback.is_none(),
        "the approved update passed its health gate"
    );
    assert_eq!(live_version(&layout).as_deref(), Some("1.2"));
    let (_, run) = app.get_json(&format!("/api/safe-updates/{id}")).await;
    assert_eq!(run["outcome"], "approved");
    assert_eq!(run["apply_job_id"], apply.as_str());

    // 2.0 fatals: held with the fatal error named; dismissed; production keeps 1.2.
    feed.offer("2.0");
    let release_before = current_release(&layout);
    let (run, _) = safe_update(app, site_id).await;
    assert_eq!(run["outcome"], "held", "{run}");
    let fatals = run["fatals"].as_array().unwrap();
    assert!(
        fatals.iter().any(|f| f
            .as_str()
            .unwrap()
            .contains("pressluft_fixture_v2_undefined_function")),
        "the fatal error is named: {run}"
    );
    assert!(
        run["reason"].as_str().unwrap().contains("PHP fatal error"),
        "{run}"
    );
    assert_temp_gone(app, site_id, &run).await;
    let id = run["id"].as_str().unwrap();
    let r = app
        .post_empty(&format!("/api/safe-updates/{id}/dismiss"))
        .await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.json::<Value>().await.unwrap()["outcome"], "dismissed");
    assert_eq!(live_version(&layout).as_deref(), Some("1.2"));
    assert_eq!(
        current_release(&layout),
        release_before,
        "production untouched"
    );

    // Nothing offered (1.2 is installed, 2.0 withdrawn): no_updates, no environment.
    feed.withdraw("2.0");
    let envs_before = app.count("environments").await;
    let (run, _) = safe_update(app, site_id).await;
    assert_eq!(run["outcome"], "no_updates", "{run}");
    assert_eq!(run["temp_environment_id"], Value::Null);
    assert_eq!(
        app.count("environments").await,
        envs_before,
        "no environment row"
    );

    // Leave the site as found: WordPress's own update source, no check pages.
    patch_site(app, site_id, json!({"safe_updates_paths": []})).await;
    set_update_source(app, "").await;
}
