//! Issue 9, items 7 and 11: source URLs never reach link-local addresses and reach loopback only
//! with `--allow-loopback-sources`; credentials in a source URL never show (API, page, job
//! output, error message); a job's stored output is capped and streamed.

use pressluft::jobs::JobErrorCode;
use serde_json::json;

use crate::helpers::{
    assert_error, assert_field_error, spawn_app_with, CsrfForms, JobFixture, TestApp,
};
use crate::stand_in::{StandIn, Step};

async fn app(allow_loopback: bool, stand_in: Option<StandIn>) -> TestApp {
    let tweak = |c: &mut pressluft::config::Config| c.allow_loopback_sources = allow_loopback;
    let app = match stand_in {
        Some(stand_in) => stand_in.spawn_with(tweak).await.0,
        None => spawn_app_with(tweak, None).await,
    };
    app.login().await;
    app
}

/// An app with `stand_in` (loopback sources refused) after one `node_provision` ran.
async fn one_provision_run(stand_in: StandIn) -> (TestApp, String) {
    let app = app(false, Some(stand_in)).await;
    let node = app.insert_node("n", "active").await;
    let id = app
        .insert_job(JobFixture::new("node_provision", "queued", &node))
        .await;
    app.state.engine.run_until_idle("w").await.unwrap();
    (app, id)
}

#[tokio::test]
async fn link_local_sources_are_refused_and_loopback_only_with_the_flag() {
    let strict = app(false, None).await;
    for source in [
        "http://169.254.169.254/latest/meta-data/wp.tgz",
        "http://[fe80::1]/wp.tgz",
        "http://[::ffff:169.254.169.254]/wp.tgz",
        "http://2852039166/wp.tgz",
        "http://127.0.0.1:8080/wp.tgz",
        "http://localhost/wp.tgz",
        "https://user:pw@[::1]/wp.tgz",
    ] {
        let body = assert_field_error(
            strict.put_wordpress_source(source).await,
            400,
            "settings_invalid",
            "wordpress_source",
        )
        .await;
        assert!(
            body["message"]
                .as_str()
                .unwrap()
                .starts_with("wordpress_source: "),
            "{body}"
        );
    }
    assert_eq!(
        strict.setting("wordpress_source").await,
        None,
        "nothing was stored"
    );
    // Private ranges and node paths stay allowed.
    for source in [
        "http://10.0.0.8/wp.tgz",
        "https://192.168.1.20:8443/builds/wp.tgz",
        "dir:/usr/share/wordpress",
    ] {
        assert_eq!(
            strict.put_wordpress_source(source).await.status(),
            200,
            "{source}"
        );
    }

    let relaxed = app(true, None).await;
    for source in ["http://127.0.0.1:8080/wp.tgz", "http://localhost/wp.tgz"] {
        assert_eq!(
            relaxed.put_wordpress_source(source).await.status(),
            200,
            "{source}"
        );
    }
    let body = assert_error(
        relaxed
            .put_wordpress_source("http://169.254.169.254/wp.tgz")
            .await,
        400,
        "settings_invalid",
    )
    .await;
    assert!(
        body["message"].as_str().unwrap().contains("link-local"),
        "{body}"
    );
}

#[tokio::test]
async fn credentials_in_the_source_never_show() {
    let app = app(false, None).await;
    let secret_source = "https://deploy:t0ps3cret@artifacts.example.test/wp.tgz";
    let r = app.put_wordpress_source(secret_source).await;
    assert_eq!(r.status(), 200);
    let body = r.text().await.unwrap();
    assert!(
        !body.contains("t0ps3cret") && !body.contains("deploy"),
        "{body}"
    );
    assert!(
        body.contains("https://***@artifacts.example.test/wp.tgz"),
        "{body}"
    );

    let (_, settings) = app.get_json("/_admin/settings").await;
    assert_eq!(
        settings["settings"]["wordpress_source"],
        "https://***@artifacts.example.test/wp.tgz"
    );
    let page = app.text("/settings").await;
    assert!(!page.contains("t0ps3cret"), "settings page");
    assert!(page.contains("https://***@artifacts.example.test/wp.tgz"));

    // Saving the form unchanged (it shows `***`) keeps the stored credentials.
    let r = app
        .put_wordpress_source("https://***@artifacts.example.test/wp.tgz")
        .await;
    assert_eq!(r.status(), 200);
    assert_eq!(
        app.setting("wordpress_source").await.as_deref(),
        Some(secret_source)
    );
    // A failed form save does not echo credentials either.
    let html = app.text("/settings").await;
    let forms = CsrfForms::new(&app, &app.client, &html);
    let r = forms
        .save_wordpress_source("https://u:fr3shpass@h.test/wp.tgz", "not-hex")
        .await;
    assert_eq!(r.status(), 400);
    let page = r.text().await.unwrap();
    assert!(!page.contains("fr3shpass"), "re-rendered form");
}

#[tokio::test]
async fn credentials_in_job_output_and_error_messages_are_redacted() {
    // Prints what a run might print about its source, and fails with it.
    let leaky = StandIn::new().otherwise(Step::Print(
        vec![
            "fatal: [h]: FAILED! => {\"url\": \"https://deploy:t0ps3cret@artifacts.test/wp.tgz\"}"
                .into(),
        ],
        Box::new(Step::failing(JobErrorCode::SourceFetchFailed, "")),
    ));
    let (app, id) = one_provision_run(leaky).await;
    let out = app.text(&format!("/api/jobs/{id}/output")).await;
    assert!(out.contains("https://***@artifacts.test/wp.tgz"), "{out}");
    assert!(!out.contains("t0ps3cret"), "{out}");
    let (_, job) = app.get_json(&format!("/api/jobs/{id}")).await;
    let message = job["error_message"].as_str().unwrap();
    assert!(message.contains("https://***@artifacts.test"), "{job}");
    assert!(!message.contains("t0ps3cret"), "{job}");
    let page = app.text(&format!("/jobs/{id}")).await;
    assert!(!page.contains("t0ps3cret"));
}

#[tokio::test]
async fn job_output_is_capped_with_a_note_and_streamed() {
    use pressluft::jobs::output::{LOG_CAP_BYTES, TRUNCATION_NOTE};
    // Prints 11 MiB of output.
    let filler = "x".repeat(1000);
    let mut lines: Vec<String> = (0..11 * 1024).map(|i| format!("{i:06} {filler}")).collect();
    lines.push("the very last line".into());
    let chatty = StandIn::new().otherwise(Step::Print(lines, Box::new(Step::ok(json!({})))));
    let (app, id) = one_provision_run(chatty).await;
    let log = pressluft::jobs::output::job_log_path(&app.state.config.log_dir, &id);
    let size = std::fs::metadata(&log).unwrap().len();
    assert!(
        size <= LOG_CAP_BYTES + TRUNCATION_NOTE.len() as u64 + 1,
        "{size}"
    );

    let r = app.get(&format!("/api/jobs/{id}/output")).await;
    assert_eq!(r.status(), 200);
    assert!(
        r.headers().get("content-length").is_none(),
        "streamed (chunked), not read whole"
    );
    let out = r.text().await.unwrap();
    assert_eq!(out.len() as u64, size);
    assert!(out.starts_with("000000 "));
    assert!(
        out.ends_with(&format!("{TRUNCATION_NOTE}\n")),
        "visible note"
    );
    // The stored tail still holds the end of the output.
    let job = app.store.get_job(&id).await.unwrap().unwrap();
    assert!(job.output_tail.unwrap().ends_with("the very last line\n"));
}

/// Issue 12: the update source (`wordpress_update_source`, the `wordpress` group) follows the
/// same host rules; it is a base URL without credentials; empty is WordPress.org.
#[tokio::test]
async fn the_update_source_is_validated_like_a_source() {
    let strict = app(false, None).await;
    let put = |source: &'static str| {
        strict.put_json(
            "/_admin/settings/wordpress",
            json!({ "wordpress_source": "dir:/usr/share/wordpress", "wordpress_update_source": source }),
        )
    };
    for source in [
        "http://169.254.169.254/",
        "http://[fe80::1]/",
        "http://127.0.0.1:8099",
        "https://user:pw@updates.example.org",
        "ftp://updates.example.org",
        "dir:/srv/feed",
    ] {
        let body = assert_field_error(
            put(source).await,
            400,
            "settings_invalid",
            "wordpress_update_source",
        )
        .await;
        assert!(
            body["message"]
                .as_str()
                .unwrap()
                .starts_with("wordpress_update_source: "),
            "{body}"
        );
    }
    assert_eq!(strict.setting("wordpress_update_source").await, None);
    assert_eq!(put("https://updates.example.org/").await.status(), 200);
    assert_eq!(
        strict.setting("wordpress_update_source").await.as_deref(),
        Some("https://updates.example.org")
    );
    let (_, settings) = strict.get_json("/_admin/settings").await;
    assert!(
        settings.to_string().contains("https://updates.example.org"),
        "{settings}"
    );
    // Empty: back to WordPress.org.
    assert_eq!(put("").await.status(), 200);
    assert_eq!(strict.setting("wordpress_update_source").await, None);

    let relaxed = app(true, None).await;
    let r = relaxed
        .put_json(
            "/_admin/settings/wordpress",
            json!({ "wordpress_update_source": "http://127.0.0.1:8099" }),
        )
        .await;
    assert_eq!(r.status(), 200);
}
