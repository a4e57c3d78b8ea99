//! Restore drills for real on this machine (issue 14, item 4), called from `e2e_sites.rs`'s
//! flow while the site exists: a full backup of production, then a drill through the API — it
//! passes, its record names the backup with its times, its job succeeded, and nothing of the
//! temporary environment is left on the node (Linux user, pool, database and user, server
//! block, Redis ACL user and keys, directory: `e2e_delete`'s checks). Then one byte of the
//! backup's files artifact is flipped on disk: the drill fails with `DRILL_FAILED` naming the
//! checksum mismatch, is shown on the dashboard as failed, again leaves nothing behind, and the
//! site and production stay active and serving. The byte is flipped back at the end, and a
//! drill from the dashboard runs in the browser (tests/browser/drill.mjs).

use std::path::Path;

use serde_json::{json, Value};

use crate::e2e_delete::assert_gone;
use crate::helpers::{finished, job_id, succeeded, visitor, TestApp};

fn flip_byte(path: &Path) {
    let mut bytes = std::fs::read(path).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x01;
    std::fs::write(path, bytes).unwrap();
}

async fn last_drill(app: &TestApp, site_id: &str) -> Value {
    let (status, list) = app.get_json(&format!("/api/sites/{site_id}/drills")).await;
    assert_eq!(status, 200, "{list}");
    list[0].clone()
}

async fn production_serves(app: &TestApp, site_id: &str, prod_id: &str) {
    let (_, site) = app.get_json(&format!("/api/sites/{site_id}")).await;
    assert_eq!(site["status"], "active", "{site}");
    let (_, env) = app.get_json(&format!("/api/environments/{prod_id}")).await;
    assert_eq!(env["status"], "active", "{env}");
    let url = env["preview_url"].as_str().unwrap();
    let host = url.split("://").nth(1).unwrap().split('/').next().unwrap();
    let r = visitor(&[host])
        .get(format!("{url}/"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "{url} serves");
}

pub async fn drills(app: &TestApp, site_id: &str, prod_id: &str) {
    let r = app
        .post_json(
            &format!("/api/environments/{prod_id}/backups"),
            json!({"backup_scope": "full"}),
        )
        .await;
    assert_eq!(r.status(), 202);
    let created: Value = r.json().await.unwrap();
    succeeded(app, created["job_id"].as_str().unwrap()).await;
    let backup_id = created["backup_id"].as_str().unwrap().to_string();
    let (_, backup) = app.get_json(&format!("/api/backups/{backup_id}")).await;
    assert_eq!(backup["status"], "completed", "{backup}");

    // Drills are listed newest first by their start; the test's clock stands still unless
    // moved, so each drill starts a second after the one before.
    app.clock.advance(time::Duration::seconds(1));
    // A healthy backup: the drill passes and leaves nothing behind.
    let started = std::time::Instant::now();
    let job = job_id(
        app.post_empty(&format!("/api/sites/{site_id}/drills"))
            .await,
    )
    .await;
    let (done, output) = finished(app, &job).await;
    assert_eq!(done["status"], "succeeded", "{done}\n{output}");
    let drill = last_drill(app, site_id).await;
    assert_eq!(drill["status"], "passed", "{drill}");
    assert_eq!(drill["backup_id"], backup_id.as_str());
    assert_eq!(drill["job_id"], job.as_str());
    assert!(drill["started_at"].is_string() && drill["finished_at"].is_string());
    assert!(drill["duration_ms"].as_i64().is_some_and(|ms| ms > 0));
    eprintln!(
        "drill passed in {:.1} s (record: {} ms)",
        started.elapsed().as_secs_f64(),
        drill["duration_ms"]
    );
    let temp = drill["environment_id"].as_str().unwrap().to_string();
    let (_, env) = app.get_json(&format!("/api/environments/{temp}")).await;
    assert_eq!(env["status"], "deleted", "{env}");
    assert_gone(site_id, &temp);
    assert!(
        !output.contains("AGE-SECRET-KEY"),
        "no data key in the output"
    );
    production_serves(app, site_id, prod_id).await;

    // A corrupted backup: the drill fails with the reason, shown, and again nothing is left.
    assert_eq!(backup["storage_type"], "local", "{backup}");
    let artifact = Path::new(backup["storage_path"].as_str().unwrap()).join("files.tar.zst");
    flip_byte(&artifact);
    app.clock.advance(time::Duration::seconds(1));
    let job = job_id(
        app.post_empty(&format!("/api/sites/{site_id}/drills"))
            .await,
    )
    .await;
    let (done, output) = finished(app, &job).await;
    assert_eq!(done["status"], "failed", "{done}\n{output}");
    assert_eq!(done["error_code"], "DRILL_FAILED", "{done}");
    let drill = last_drill(app, site_id).await;
    assert_eq!(drill["status"], "failed", "{drill}");
    let reason = drill["reason"].as_str().unwrap();
    assert!(reason.contains("checksum mismatch"), "{reason}");
    let temp = drill["environment_id"].as_str().unwrap().to_string();
    let (_, env) = app.get_json(&format!("/api/environments/{temp}")).await;
    assert_eq!(env["status"], "deleted", "{env}");
    assert_gone(site_id, &temp);
    production_serves(app, site_id, prod_id).await;
    let alerts = app.text("/ui/drills/alerts").await;
    assert!(
        alerts.contains("Restore drill failed") && alerts.contains(site_id),
        "{alerts}"
    );
    let panel = app.text(&format!("/ui/sites/{site_id}/drills")).await;
    assert!(panel.contains("alert-error") && panel.contains("checksum mismatch"));
    flip_byte(&artifact);

    // From the dashboard: Run drill, watch it pass (the failed one was shown before).
    app.clock.advance(time::Duration::seconds(1));
    crate::e2e::browser_script(app, "drill.mjs", &[("PRESSLUFT_SITE_ID", site_id)]).await;
    let drill = last_drill(app, site_id).await;
    assert_eq!(drill["status"], "passed", "{drill}");
    assert_gone(site_id, drill["environment_id"].as_str().unwrap());
    production_serves(app, site_id, prod_id).await;
}
