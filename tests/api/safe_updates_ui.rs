//! The Safe updates pages over plain HTTP (the stand-in runner where a job would run), with
//! runs inserted through the store: a held run shows its three images per page, the changed
//! share against the threshold, its reasons and fatals (escaped), and Approve behind a
//! confirmation; a `no_updates` run says so and offers nothing; the overview lists the held
//! site; the settings form names each bad field and needs the CSRF token; Run now and Dismiss.

use pressluft::domain::{SafeUpdateOutcome, SafeUpdateTrigger};
use pressluft::store::safe_updates::{finish_run, insert_run, NewRun, RunFindings};
use serde_json::json;

use crate::backups_ui::{fixture, Fixture};
use crate::helpers::{get_with, page_text, post_form, CsrfForms, JobFixture, TestApp};

/// The site and node of the fixture's environment, made the site's production.
pub async fn site_and_node(app: &TestApp, env: &str) -> (String, String) {
    let (site, node): (String, String) =
        pressluft::store::query_as("SELECT site_id, node_id FROM environments WHERE id = ?")
            .bind(env)
            .fetch_one(app.store.pool())
            .await
            .unwrap();
    app.exec(
        "UPDATE sites SET primary_environment_id = ? WHERE id = ?",
        &[env, &site],
    )
    .await;
    (site, node)
}

/// Inserts a finished run of `site` (its job succeeded) through the store, with `pages` and
/// `fatals`; answers its id.
pub async fn insert_finished_run(
    app: &TestApp,
    site: &str,
    node: &str,
    outcome: SafeUpdateOutcome,
    updates: serde_json::Value,
    pages: serde_json::Value,
    fatals: serde_json::Value,
) -> String {
    let mut job = JobFixture::new("safe_update", "succeeded", node);
    job.site_id = Some(site);
    let job_id = app.insert_job(job).await;
    let run_id = uuid::Uuid::new_v4().to_string();
    let now = app.now();
    let mut conn = app.store.pool().acquire().await.unwrap();
    insert_run(
        &mut conn,
        &NewRun {
            id: &run_id,
            site_id: site,
            job_id: &job_id,
            trigger: SafeUpdateTrigger::Manual,
            apply_backup_id: &uuid::Uuid::new_v4().to_string(),
        },
        &now,
    )
    .await
    .unwrap();
    let findings = RunFindings {
        updates_json: updates.to_string(),
        pages_json: pages.to_string(),
        fatals_json: fatals.to_string(),
        ..Default::default()
    };
    assert!(finish_run(&mut conn, &run_id, outcome, &findings, &now)
        .await
        .unwrap());
    run_id
}

/// A held run of the header-colour kind: one page (`/`) changed 12.3 % with its images written
/// into the run's directory, a reason and a fatal carrying markup.
pub async fn insert_held_run(app: &TestApp, site: &str, node: &str) -> String {
    let run = insert_finished_run(
        app,
        site,
        node,
        SafeUpdateOutcome::Held,
        json!([{"kind": "plugin", "id": "pl-fixture/pl-fixture.php", "from": "1.0", "to": "1.2"}]),
        json!([{
            "path": "/", "status_before": 200, "status_after": 200, "changed_percent": 12.3,
            "passed": false, "reasons": ["changed 12.3 % > 0.5 % <script>alert(1)</script>"],
            "console_errors": ["Uncaught <b>TypeError</b>"],
            "images": {"before": "0-before.png", "after": "0-after.png", "diff": "0-diff.png"}
        }]),
        json!(["PHP Fatal error: <i>boom</i> in /x.php:12"]),
    )
    .await;
    write_images(app, &run, 0);
    run
}

/// A solid `width` x `height` RGB PNG (zlib via flate2; enough for a browser to decode).
pub fn solid_png(width: u32, height: u32, rgb: [u8; 3]) -> Vec<u8> {
    use std::io::Write;
    fn chunk(out: &mut Vec<u8>, kind: &[u8; 4], data: &[u8]) {
        out.extend_from_slice(&(data.len() as u32).to_be_bytes());
        let mut crc = flate2::Crc::new();
        crc.update(kind);
        crc.update(data);
        out.extend_from_slice(kind);
        out.extend_from_slice(data);
        out.extend_from_slice(&crc.sum().to_be_bytes());
    }
    // Each row: filter type 0, then the pixels.
    let row: Vec<u8> = std::iter::once(0u8)
        .chain(rgb.iter().copied().cycle().take(3 * width as usize))
        .collect();
    let raw = row.repeat(height as usize);
    let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
    z.write_all(&raw).unwrap();
    let mut header = Vec::new();
    header.extend_from_slice(&width.to_be_bytes());
    header.extend_from_slice(&height.to_be_bytes());
    header.extend_from_slice(&[8, 2, 0, 0, 0]);
    let mut out = b"\x89PNG\r\n\x1a\n".to_vec();
    chunk(&mut out, b"IHDR", &header);
    chunk(&mut out, b"IDAT", &z.finish().unwrap());
    chunk(&mut out, b"IEND", &[]);
    out
}

/// Writes small PNGs `<i>-before.png`, `-after.png`, `-diff.png` into the run's directory.
pub fn write_images(app: &TestApp, run: &str, i: usize) {
    let dir = app.state.config.data_dir.join("safe-updates").join(run);
    std::fs::create_dir_all(&dir).unwrap();
    for (kind, colour) in [
        ("before", [30, 30, 200]),
        ("after", [200, 30, 30]),
        ("diff", [255, 0, 255]),
    ] {
        std::fs::write(
            dir.join(format!("{i}-{kind}.png")),
            solid_png(64, 40, colour),
        )
        .unwrap();
    }
}

#[tokio::test]
async fn a_held_run_shows_its_images_and_approve_starts_the_production_update() {
    let Fixture { app, c, env } = fixture().await;
    let (site, node) = site_and_node(&app, &env).await;
    let run = insert_held_run(&app, &site, &node).await;

    let html = page_text(&c, app.url(&format!("/sites/{site}/safe-updates"))).await;
    assert!(
        html.contains(&format!("data-run-id=\"{run}\" data-outcome=\"held\"")),
        "{html}"
    );
    assert!(html.contains("plugin pl-fixture/pl-fixture.php 1.0 → 1.2"));

    let page = page_text(&c, app.url(&format!("/safe-updates/{run}"))).await;
    for kind in ["before", "after", "diff"] {
        let img = format!("<img src=\"/api/safe-updates/{run}/images/0-{kind}.png\"");
        assert!(page.contains(&img), "{kind} image: {page}");
    }
    assert_eq!(page.matches("loading=\"lazy\"").count(), 3);
    assert!(page.contains("12.30 % (threshold 0.5 %)"), "{page}");
    assert!(page.contains("data-test=\"approve-safe-update\""));
    assert!(page.contains("data-test=\"dismiss-safe-update\""));
    // User and node text is escaped, never markup.
    assert!(
        page.contains("&#60;script&#62;alert(1)&#60;/script&#62;"),
        "{page}"
    );
    assert!(!page.contains("<script>alert(1)"));
    assert!(page.contains("&#60;i&#62;boom&#60;/i&#62;"));
    assert!(page.contains("Uncaught &#60;b&#62;TypeError&#60;/b&#62;"));
    // The run's job, live with the job page's panel.
    assert!(page.contains("data-test=\"safe-update-job\""));
    assert!(
        !page.contains("data-test=\"approve-form\""),
        "no confirmation yet"
    );

    // The images the page links are served to the session.
    let r = get_with(
        &c,
        app.url(&format!("/api/safe-updates/{run}/images/0-diff.png")),
    )
    .await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "image/png");

    // A page whose images were never written links none.
    std::fs::remove_file(
        app.state
            .config
            .data_dir
            .join(format!("safe-updates/{run}/0-after.png")),
    )
    .unwrap();
    let page = page_text(&c, app.url(&format!("/safe-updates/{run}"))).await;
    assert_eq!(page.matches("data-test=\"safe-update-shot\"").count(), 2);

    // Approve: the confirmation first, then the POST (with its CSRF token).
    let confirm = page_text(&c, app.url(&format!("/safe-updates/{run}?confirm=approve"))).await;
    assert!(confirm.contains("data-test=\"approve-form\""), "{confirm}");
    let path = format!("/safe-updates/{run}/approve");
    let r = post_form(&c, app.url(&path), &[]).await;
    assert_eq!(r.status(), 403, "no CSRF token");
    let forms = CsrfForms::new(&app, &c, &confirm);
    let r = forms.post(&path, &[]).await;
    assert_eq!(r.status(), 303);
    assert_eq!(
        r.headers()["location"],
        format!("/safe-updates/{run}?approved=1").as_str()
    );
    let (outcome, apply): (String, Option<String>) = pressluft::store::query_as(
        "SELECT outcome, apply_job_id FROM safe_update_runs WHERE id = ?",
    )
    .bind(&run)
    .fetch_one(app.store.pool())
    .await
    .unwrap();
    assert_eq!(outcome, "approved");
    let apply = apply.expect("the production update's job");
    let (kind, job_env): (String, String) =
        pressluft::store::query_as("SELECT job_type, environment_id FROM jobs WHERE id = ?")
            .bind(&apply)
            .fetch_one(app.store.pool())
            .await
            .unwrap();
    assert_eq!(
        (kind.as_str(), job_env.as_str()),
        ("env_update", env.as_str())
    );

    let page = page_text(&c, app.url(&format!("/safe-updates/{run}?approved=1"))).await;
    assert!(
        page.contains("data-test=\"safe-update-approved\""),
        "{page}"
    );
    assert!(page.contains(&format!(
        "href=\"/jobs/{apply}\" data-test=\"approved-job-link\""
    )));
    assert!(page.contains(&format!(
        "data-test=\"safe-update-apply-job\" data-job-id=\"{apply}\""
    )));
    assert!(page.contains("by admin@example.com"), "who decided");
    assert!(!page.contains("data-test=\"approve-safe-update\""));

    // Approving again is refused on the page; the run stays approved.
    let r = forms.post(&path, &[]).await;
    assert_eq!(r.status(), 409);
    let body = r.text().await.unwrap();
    assert!(body.contains("data-test=\"safe-update-notice\""), "{body}");
    assert!(body.contains("Not approved"));

    // The live fragment: the same outcome renders the panel; another reloads the page.
    let r = get_with(
        &c,
        app.url(&format!("/ui/safe-updates/{run}/status?shown=approved")),
    )
    .await;
    assert!(r.headers().get("hx-refresh").is_none());
    assert!(r
        .text()
        .await
        .unwrap()
        .contains("data-outcome=\"approved\""));
    let r = get_with(
        &c,
        app.url(&format!("/ui/safe-updates/{run}/status?shown=held")),
    )
    .await;
    assert_eq!(r.headers()["hx-refresh"], "true");
}

#[tokio::test]
async fn a_no_updates_run_says_so_and_offers_no_decision() {
    let Fixture { app, c, env } = fixture().await;
    let (site, node) = site_and_node(&app, &env).await;
    let run = insert_finished_run(
        &app,
        &site,
        &node,
        SafeUpdateOutcome::NoUpdates,
        json!([]),
        json!([]),
        json!([]),
    )
    .await;
    let html = page_text(&c, app.url(&format!("/ui/sites/{site}/safe-updates/runs"))).await;
    assert!(
        html.contains(&format!(
            "data-run-id=\"{run}\" data-outcome=\"no_updates\""
        )),
        "{html}"
    );
    assert!(html.contains("status-passed"));
    let page = page_text(&c, app.url(&format!("/safe-updates/{run}"))).await;
    assert!(page.contains("Nothing to update."), "{page}");
    assert!(page.contains("data-test=\"safe-update-no-updates\""));
    assert!(!page.contains("data-test=\"approve-safe-update\""));
    assert!(!page.contains("data-test=\"safe-update-shot\""));
    // Neither the confirmation nor an approval for a run that is not held.
    let page = page_text(&c, app.url(&format!("/safe-updates/{run}?confirm=approve"))).await;
    assert!(!page.contains("data-test=\"approve-form\""));
    let forms = CsrfForms::new(&app, &c, &page);
    for action in ["approve", "dismiss"] {
        let r = forms
            .post(&format!("/safe-updates/{run}/{action}"), &[])
            .await;
        let status = r.status();
        let body = r.text().await.unwrap();
        assert_eq!(status, 409, "{action}: {body}");
        assert!(body.contains("only a held run"), "{action}: {body}");
    }
    // The overview lists nothing.
    let pending = page_text(&c, app.url("/ui/safe-updates/pending")).await;
    assert!(pending.contains("data-count=\"0\""), "{pending}");
    // Unknown and malformed run ids.
    let r = get_with(
        &c,
        app.url(&format!("/safe-updates/{}", uuid::Uuid::new_v4())),
    )
    .await;
    assert_eq!(r.status(), 404);
    let r = get_with(&c, app.url("/safe-updates/..%2F..%2Fetc")).await;
    assert_eq!(r.status(), 400);
}

#[tokio::test]
async fn the_overview_lists_sites_with_a_held_run_and_dismiss_clears_it() {
    let Fixture { app, c, env } = fixture().await;
    let (site, node) = site_and_node(&app, &env).await;
    app.exec(
        "UPDATE sites SET name = ? WHERE id = ?",
        &["Shop <em>one</em>", &site],
    )
    .await;
    let run = insert_held_run(&app, &site, &node).await;
    let overview = page_text(&c, app.url("/")).await;
    assert!(overview.contains("hx-get=\"/ui/safe-updates/pending\""));
    let site_page = page_text(&c, app.url(&format!("/sites/{site}"))).await;
    assert!(site_page.contains(&format!("href=\"/sites/{site}/safe-updates\"")));

    let pending = page_text(&c, app.url("/ui/safe-updates/pending")).await;
    assert!(pending.contains(&format!("data-site-id=\"{site}\" data-run-id=\"{run}\"")));
    assert!(
        pending.contains(&format!(
            "<a href=\"/safe-updates/{run}\">Shop &#60;em&#62;one&#60;/em&#62;</a>"
        )),
        "{pending}"
    );

    let page = page_text(&c, app.url(&format!("/safe-updates/{run}"))).await;
    let forms = CsrfForms::new(&app, &c, &page);
    let path = format!("/safe-updates/{run}/dismiss");
    assert_eq!(post_form(&c, app.url(&path), &[]).await.status(), 403);
    let r = forms.post(&path, &[]).await;
    assert_eq!(r.status(), 303);
    let page = page_text(&c, app.url(&format!("/safe-updates/{run}"))).await;
    assert!(page.contains("data-outcome=\"dismissed\""), "{page}");
    let pending = page_text(&c, app.url("/ui/safe-updates/pending")).await;
    assert!(pending.contains("data-count=\"0\""), "{pending}");
    assert_eq!(app.count("jobs").await, 1, "dismiss starts nothing");
}

#[tokio::test]
async fn the_settings_form_names_each_bad_field_and_saves() {
    let Fixture { app, c, env } = fixture().await;
    let (site, _) = site_and_node(&app, &env).await;
    let path = format!("/sites/{site}/safe-updates/settings");
    let html = page_text(&c, app.url(&format!("/sites/{site}/safe-updates"))).await;
    assert!(html.contains("data-test=\"safe-updates-settings\""));
    assert!(html.contains("value=\"0.5\""), "default threshold");
    assert!(html.contains("data-path=\"/\""), "home's masks field");
    let forms = CsrfForms::new(&app, &c, &html);
    let good: Vec<(&str, &str)> = vec![
        ("safe_updates_schedule", "daily"),
        ("safe_updates_window", "02:00-04:00"),
        ("safe_updates_paths", "/\n/about/\n"),
        ("safe_updates_threshold", "1.5"),
        ("mask_path_0", "/"),
        ("mask_0", "0,0,1280,90\n"),
    ];
    let with = |field: &'static str, value: &'static str| {
        let mut f = good.clone();
        f.retain(|(k, _)| *k != field);
        f.push((field, value));
        f
    };
    let cases = [
        (
            with("safe_updates_window", "2-4"),
            "safe-updates-window-error",
            "value=\"2-4\"",
        ),
        (
            with("safe_updates_threshold", "lots"),
            "safe-updates-threshold-error",
            "value=\"lots\"",
        ),
        (
            with("safe_updates_threshold", "101"),
            "safe-updates-threshold-error",
            "value=\"101\"",
        ),
        (
            with("safe_updates_paths", "//evil.example/"),
            "safe-updates-paths-error",
            "//evil.example/",
        ),
        (
            with("safe_updates_paths", "/a/../b"),
            "safe-updates-paths-error",
            "/a/../b",
        ),
        (
            with("safe_updates_schedule", "hourly"),
            "safe-updates-schedule-error",
            "",
        ),
        (
            with("mask_0", "0,0,1280"),
            "safe-updates-mask-error",
            "0,0,1280",
        ),
        (
            with("mask_0", "0,0,0,10"),
            "safe-updates-masks-error",
            "0,0,0,10",
        ),
    ];
    for (fields, error, kept) in cases {
        let r = forms.post(&path, &fields).await;
        assert_eq!(r.status(), 400, "{error}");
        let page = r.text().await.unwrap();
        assert!(
            page.contains(&format!("data-test=\"{error}\"")),
            "{error}: {page}"
        );
        assert_eq!(
            page.matches("class=\"field-error\"").count(),
            1,
            "{error}: one error"
        );
        assert!(
            page.contains(kept),
            "{error}: the value sent is shown again"
        );
    }
    let (schedule,): (String,) =
        pressluft::store::query_as("SELECT safe_updates_schedule FROM sites WHERE id = ?")
            .bind(&site)
            .fetch_one(app.store.pool())
            .await
            .unwrap();
    assert_eq!(schedule, "off", "nothing saved");

    assert_eq!(
        post_form(&c, app.url(&path), &good).await.status(),
        403,
        "no CSRF token"
    );
    let r = forms.post(&path, &good).await;
    assert_eq!(r.status(), 303);
    let row: (String, Option<String>, String, f64, String) = pressluft::store::query_as(
        "SELECT safe_updates_schedule, safe_updates_window, safe_updates_paths,
                safe_updates_threshold, safe_updates_masks FROM sites WHERE id = ?",
    )
    .bind(&site)
    .fetch_one(app.store.pool())
    .await
    .unwrap();
    assert_eq!(row.0, "daily");
    assert_eq!(row.1.as_deref(), Some("02:00-04:00"));
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&row.2).unwrap(),
        json!(["/", "/about/"])
    );
    assert_eq!(row.3, 1.5);
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&row.4).unwrap(),
        json!({"/": [{"x": 0, "y": 0, "width": 1280, "height": 90}]})
    );
    let html = page_text(&c, app.url(&format!("/sites/{site}/safe-updates?saved=1"))).await;
    assert!(html.contains("data-test=\"safe-updates-saved\""));
    assert!(html.contains("value=\"02:00-04:00\""));
    assert!(
        html.contains("data-path=\"/about/\""),
        "a masks field per check page"
    );
    assert!(html.contains(">0,0,1280,90</textarea>"));

    // Removing a page removes its masks with it; an empty window is "any time".
    let r = forms
        .post(
            &path,
            &[
                ("safe_updates_schedule", "off"),
                ("safe_updates_window", ""),
                ("safe_updates_paths", "/about/"),
                ("safe_updates_threshold", "0.5"),
                ("mask_path_0", "/"),
                ("mask_0", ""),
                ("mask_path_1", "/about/"),
                ("mask_1", "1,2,3,4"),
                ("mask_path_2", "/gone/"),
                ("mask_2", "1,1,1,1"),
            ],
        )
        .await;
    assert_eq!(r.status(), 303);
    let (window, masks): (Option<String>, String) = pressluft::store::query_as(
        "SELECT safe_updates_window, safe_updates_masks FROM sites WHERE id = ?",
    )
    .bind(&site)
    .fetch_one(app.store.pool())
    .await
    .unwrap();
    assert_eq!(window, None);
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&masks).unwrap(),
        json!({"/about/": [{"x": 1, "y": 2, "width": 3, "height": 4}]})
    );
}

#[tokio::test]
async fn run_now_leads_to_the_runs_page_with_its_job() {
    let Fixture { app, c, env } = fixture().await;
    let (site, _) = site_and_node(&app, &env).await;
    let html = page_text(&c, app.url(&format!("/sites/{site}/safe-updates"))).await;
    let path = format!("/sites/{site}/safe-updates");
    assert_eq!(post_form(&c, app.url(&path), &[]).await.status(), 403);
    assert_eq!(app.count("safe_update_runs").await, 0);
    let forms = CsrfForms::new(&app, &c, &html);
    let r = forms.post(&path, &[]).await;
    assert_eq!(r.status(), 303);
    let location = r.headers()["location"].to_str().unwrap().to_string();
    let run = location.strip_prefix("/safe-updates/").unwrap().to_string();
    let page = page_text(&c, app.url(&location)).await;
    assert!(page.contains("data-outcome=\"running\""), "{page}");
    assert!(page.contains("data-test=\"safe-update-job\""));
    assert!(
        page.contains("hx-trigger=\"sse:jobs, every 5s\""),
        "polls while it runs"
    );
    let (job_type,): (String,) = pressluft::store::query_as(
        "SELECT j.job_type FROM jobs j JOIN safe_update_runs r ON r.job_id = j.id WHERE r.id = ?",
    )
    .bind(&run)
    .fetch_one(app.store.pool())
    .await
    .unwrap();
    assert_eq!(job_type, "safe_update");
    // A second run while one runs is refused on the page.
    let r = forms.post(&path, &[]).await;
    assert_eq!(r.status(), 409);
    assert!(r
        .text()
        .await
        .unwrap()
        .contains("data-test=\"safe-updates-notice\""));
}

#[tokio::test]
async fn an_image_the_run_did_not_take_is_not_linked() {
    let Fixture { app, c, env } = fixture().await;
    let (site, node) = site_and_node(&app, &env).await;
    let run = insert_finished_run(
        &app,
        &site,
        &node,
        SafeUpdateOutcome::Held,
        json!([{"kind": "core", "id": "wordpress", "from": "6.8", "to": "6.9"}]),
        json!([{
            "path": "/shop/", "status_before": 200, "status_after": 500, "changed_percent": null,
            "passed": false, "reasons": ["HTTP 500 after the update"], "console_errors": [],
            "images": {"before": "0-before.png", "after": null, "diff": null}
        }]),
        json!([]),
    )
    .await;
    write_images(&app, &run, 0);
    let page = page_text(&c, app.url(&format!("/safe-updates/{run}"))).await;
    assert_eq!(
        page.matches("data-test=\"safe-update-shot\"").count(),
        1,
        "{page}"
    );
    assert!(page.contains(&format!("/api/safe-updates/{run}/images/0-before.png")));
    assert!(!page.contains("0-after.png") && !page.contains("0-diff.png"));
    assert_eq!(page.matches("No image.").count(), 2);
    assert!(page.contains("200 → 500"));
    assert!(page.contains("HTTP 500 after the update"));
    assert!(page.contains("core wordpress 6.8 → 6.9"));
}
