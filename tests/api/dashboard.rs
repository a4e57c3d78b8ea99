//! The dashboard over plain HTTP: redirects, the login form's CSRF, pages and live fragments.

use crate::events::read_until;
use crate::helpers::{
    client, get_with, page_text, post_form, spawn_app, submit_login_form, CsrfForms, JobFixture,
    TestApp, ADMIN_EMAIL, ADMIN_PASSWORD,
};

async fn form_login(app: &TestApp, c: &reqwest::Client) -> reqwest::Response {
    submit_login_form(app, c, "/login?next=/jobs", ADMIN_PASSWORD, Some("/jobs")).await
}

/// A fresh app and a browser-like client logged in through the form.
async fn logged_in() -> (TestApp, reqwest::Client) {
    let app = spawn_app().await;
    let c = client();
    form_login(&app, &c).await;
    (app, c)
}

#[tokio::test]
async fn pages_redirect_to_login_with_next() {
    let app = spawn_app().await;
    let r = client()
        .get(app.url("/jobs?status=failed"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    assert_eq!(
        r.headers()["location"],
        "/login?next=%2Fjobs%3Fstatus%3Dfailed"
    );
}

#[tokio::test]
async fn form_login_needs_the_double_submit_token() {
    let app = spawn_app().await;
    let c = client();
    get_with(&c, app.url("/login")).await;
    let r = post_form(
        &c,
        app.url("/login"),
        &[
            ("email", ADMIN_EMAIL),
            ("password", ADMIN_PASSWORD),
            ("csrf_token", "forged"),
        ],
    )
    .await;
    assert_eq!(r.status(), 403);
    assert!(r
        .headers()
        .get_all("set-cookie")
        .iter()
        .all(|v| !v.to_str().unwrap().starts_with("session_token=")));

    let r = form_login(&app, &c).await;
    assert_eq!(r.status(), 303);
    assert_eq!(r.headers()["location"], "/jobs");
    let r = get_with(&c, app.url("/jobs")).await;
    assert_eq!(r.status(), 200);
}

#[tokio::test]
async fn form_login_failures_show_a_sentence() {
    let app = spawn_app().await;
    let c = client();
    let r = submit_login_form(&app, &c, "/login", "wrong", None).await;
    assert_eq!(r.status(), 401);
    let html = r.text().await.unwrap();
    assert!(html.contains("Invalid email or password."), "{html}");
    assert!(
        html.contains(&format!("value=\"{ADMIN_EMAIL}\"")),
        "e-mail kept"
    );
}

#[tokio::test]
async fn overview_and_jobs_pages_render_rows() {
    let (app, c) = logged_in().await;
    let node = app.insert_node("alpha", "active").await;
    let mut f = JobFixture::new("node_provision", "failed", &node);
    f.error_code = Some("ANSIBLE_HOST_UNREACHABLE");
    let id = app.insert_job(f).await;

    let html = page_text(&c, app.url("/")).await;
    assert!(
        html.contains("Running jobs") && html.contains("Active nodes"),
        "metric cards"
    );
    assert!(html.contains(&id[..8]) && html.contains("ANSIBLE_HOST_UNREACHABLE"));

    let html = page_text(&c, app.url("/jobs?status=failed")).await;
    assert!(html.contains(&id[..8]));
    let html = page_text(&c, app.url("/jobs?status=queued")).await;
    assert!(!html.contains(&id[..8]));
    assert!(html.contains("No job matches these filters."));
    let html = page_text(&c, app.url("/jobs?status=bogus")).await;
    assert!(
        html.contains("status: must be one of"),
        "bad filter explained inline"
    );

    let r = get_with(&c, app.url(&format!("/jobs/{id}"))).await;
    assert_eq!(r.status(), 200);
    let html = r.text().await.unwrap();
    assert!(html.contains(&id) && html.contains("node alpha"));
}

#[tokio::test]
async fn live_fragments_follow_job_changes() {
    let (app, c) = logged_in().await;
    let node = app.insert_node("alpha", "active").await;
    let r = get_with(&c, app.url("/ui/events?view=overview")).await;
    assert_eq!(r.status(), 200);
    let mut f = JobFixture::new("node_provision", "running", &node);
    f.offset_ms = 1000;
    let id = app.insert_job(f).await;
    let seen = read_until(r, &format!("data-job-id=\"{id}\"")).await;
    assert!(seen.contains("event: metrics"), "{seen}");
    assert!(seen.contains("event: jobs"));
}

#[tokio::test]
async fn dashboard_logout_needs_its_token_and_revokes() {
    let (app, c) = logged_in().await;
    let html = page_text(&c, app.url("/")).await;
    let forms = CsrfForms::new(&app, &c, &html);

    let r = post_form(&c, app.url("/logout"), &[("csrf_token", "wrong")]).await;
    assert_eq!(r.status(), 403);
    assert_eq!(
        get_with(&c, app.url("/")).await.status(),
        200,
        "still logged in"
    );

    let r = forms.post("/logout", &[]).await;
    assert_eq!(r.status(), 303);
    assert_eq!(r.headers()["location"], "/login");
    assert_eq!(
        get_with(&c, app.url("/")).await.status(),
        303,
        "back to login"
    );
}

#[tokio::test]
async fn assets_are_embedded() {
    let app = spawn_app().await;
    for (path, ty) in [
        ("/assets/app.css", "text/css"),
        ("/assets/vendor/htmx.min.js", "text/javascript"),
        ("/assets/vendor/htmx-ext-sse.js", "text/javascript"),
    ] {
        let r = client().get(app.url(path)).send().await.unwrap();
        assert_eq!(r.status(), 200, "{path}");
        assert!(r.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with(ty));
    }
    assert_eq!(
        client()
            .get(app.url("/assets/nope.js"))
            .send()
            .await
            .unwrap()
            .status(),
        404
    );
}

#[tokio::test]
async fn node_register_form_shows_field_errors_and_starts_a_job() {
    let (app, c) = logged_in().await;
    let html = page_text(&c, app.url("/nodes")).await;
    assert!(html.contains("ssh-ed25519 "), "public key shown");
    assert!(html.contains("No nodes yet"), "helpful empty state");
    let forms = CsrfForms::new(&app, &c, &html);

    let r = forms
        .post(
            "/nodes",
            &[
                ("name", "edge"),
                ("hostname", "not a host"),
                ("ssh_port", "22"),
                ("ssh_user", "root"),
            ],
        )
        .await;
    assert_eq!(r.status(), 400);
    let html = r.text().await.unwrap();
    assert!(
        html.contains("must be an IP address or a DNS name"),
        "error next to the field"
    );
    assert!(html.contains("value=\"edge\""), "input kept");

    let r = post_form(
        &c,
        app.url("/nodes"),
        &[
            ("csrf_token", "forged"),
            ("name", "edge"),
            ("hostname", "10.0.0.9"),
        ],
    )
    .await;
    assert_eq!(r.status(), 403, "per-session CSRF token required");

    let r = forms
        .post(
            "/nodes",
            &[
                ("name", "edge"),
                ("hostname", "10.0.0.9"),
                ("public_ip", ""),
                ("ssh_port", "2222"),
                ("ssh_user", "deploy"),
            ],
        )
        .await;
    assert_eq!(r.status(), 303);
    let location = r.headers()["location"].to_str().unwrap().to_string();
    assert!(location.starts_with("/jobs/"), "{location}");
    let job = page_text(&c, app.url(&location)).await;
    assert!(
        job.contains("node_provision") && job.contains("Cancel job"),
        "job page with progress"
    );
    let node = app.store.list_nodes().await.unwrap().pop().unwrap();
    assert_eq!(
        (node.ssh_port, node.ssh_user.as_str(), node.status.as_str()),
        (2222, "deploy", "provisioning")
    );

    let html = page_text(&c, app.url("/audit")).await;
    assert!(html.contains("node_provision") && html.contains("accepted"));
}

#[tokio::test]
async fn the_new_site_form_needs_a_node_and_keeps_bad_input() {
    let (app, c) = logged_in().await;
    assert!(page_text(&c, app.url("/sites"))
        .await
        .contains("No sites yet"));
    let html = page_text(&c, app.url("/sites/new")).await;
    let forms = CsrfForms::new(&app, &c, &html);
    assert!(html.contains("sslip.io"), "preview URL formula shown");

    // No node yet: a sentence, not a stack trace; nothing created.
    let r = forms
        .post("/sites", &[("name", "Shop"), ("slug", "shop")])
        .await;
    assert_eq!(r.status(), 409);
    assert!(r
        .text()
        .await
        .unwrap()
        .contains("register and provision a node"));

    app.insert_node("edge", "active").await;
    let r = forms
        .post("/sites", &[("name", "Shop"), ("slug", "Bad Slug")])
        .await;
    assert_eq!(r.status(), 400);
    let html = r.text().await.unwrap();
    assert!(
        html.contains("field-error") && html.contains("lowercase letters"),
        "error next to the slug"
    );
    assert!(html.contains("value=\"Shop\""), "input kept");
}

/// A site created through the dashboard form (an empty slug, derived from the name "My Shop")
/// on an active node, by a logged-in browser-like client.
struct FormSite {
    app: TestApp,
    c: reqwest::Client,
    token: String,
    /// The site page the form redirected to.
    location: String,
    site_id: String,
    /// The production environment's id and preview URL.
    prod: Prod,
}

struct Prod {
    id: String,
    preview_url: String,
}

async fn site_from_the_form() -> FormSite {
    let (app, c) = logged_in().await;
    app.insert_node("edge", "active").await;
    let forms = CsrfForms::new(&app, &c, &page_text(&c, app.url("/sites/new")).await);
    let r = forms
        .post("/sites", &[("name", "My Shop"), ("slug", "")])
        .await;
    let token = forms.token;
    assert_eq!(r.status(), 303);
    let location = r.headers()["location"].to_str().unwrap().to_string();
    let site_id = location.trim_start_matches("/sites/").to_string();
    let prod = app
        .store
        .list_environments(&site_id)
        .await
        .unwrap()
        .remove(0);
    let prod = Prod {
        id: prod.id,
        preview_url: prod.preview_url,
    };
    FormSite {
        app,
        c,
        token,
        location,
        site_id,
        prod,
    }
}

/// An empty slug is derived from the name; the site page shows production deploying at once.
#[tokio::test]
async fn a_site_from_the_form_shows_its_production_deploying() {
    let FormSite {
        app,
        c,
        location,
        site_id,
        prod,
        ..
    } = site_from_the_form().await;
    let site = app.store.get_site(&site_id).await.unwrap().unwrap();
    assert_eq!(site.slug, "my-shop");
    let html = page_text(&c, app.url(&location)).await;
    assert!(
        html.contains(&prod.preview_url),
        "preview URL shown at once"
    );
    assert!(html.contains("env-production") && html.contains("deploying"));
    assert!(html.contains("HTTP only — set a preview domain for HTTPS"));
    assert!(
        html.contains("site_create"),
        "the job is listed with its status"
    );
    let html = page_text(&c, app.url(&format!("/environments/{}", prod.id))).await;
    assert!(html.contains("No release yet") && html.contains(&prod.preview_url));
    assert!(page_text(&c, app.url("/sites")).await.contains("my-shop"));
}

#[tokio::test]
async fn the_environment_form_validates_then_shows_the_new_card() {
    let FormSite {
        app,
        c,
        token,
        location,
        site_id,
        prod,
    } = site_from_the_form().await;
    let html = page_text(&c, app.url(&format!("/sites/{site_id}/environments/new"))).await;
    assert!(html.contains(&prod.id), "production offered as source");
    let create = |preset: &'static str| {
        let fields = [
            ("csrf_token", token.clone()),
            ("name", "Staging".into()),
            ("slug", "staging".into()),
            ("environment_type", "staging".into()),
            ("source_environment_id", prod.id.clone()),
            ("promotion_preset", preset.into()),
        ];
        let (c, url) = (
            c.clone(),
            app.url(&format!("/sites/{site_id}/environments")),
        );
        async move { c.post(url).form(&fields).send().await.unwrap() }
    };
    let r = create("nope").await;
    assert_eq!(r.status(), 400);
    assert!(r
        .text()
        .await
        .unwrap()
        .contains("must be one of: content-protect"));
    let r = create("content-protect").await;
    assert_eq!(r.status(), 303);
    let html = page_text(&c, app.url(&location)).await;
    assert!(
        html.contains("env-staging") && html.contains("cloning"),
        "new card at once"
    );
}

/// Live: the site page's stream re-renders the cards when the environment changes.
#[tokio::test]
async fn the_site_page_stream_re_renders_changed_cards() {
    let FormSite {
        app,
        c,
        site_id,
        prod,
        ..
    } = site_from_the_form().await;
    let r = get_with(&c, app.url(&format!("/ui/events?view=site&id={site_id}"))).await;
    assert_eq!(r.status(), 200);
    app.clock.advance(time::Duration::seconds(1));
    app.exec(
        "UPDATE environments SET status = 'failed', updated_at = ? WHERE id = ?",
        &[&app.now(), &prod.id],
    )
    .await;
    app.state.events.jobs_changed();
    let seen = read_until(r, "status-failed").await;
    assert!(seen.contains("event: environments"), "{seen}");
}

#[tokio::test]
async fn settings_page_saves_the_wordpress_source() {
    let (app, c) = logged_in().await;
    let html = page_text(&c, app.url("/settings")).await;
    assert!(html.contains("https://wordpress.org/latest.tar.gz"));
    let forms = CsrfForms::new(&app, &c, &html);
    let r = forms.save_wordpress_source("ftp://x", "").await;
    assert_eq!(r.status(), 400);
    assert!(r
        .text()
        .await
        .unwrap()
        .contains("must be an http(s):// URL"));
    let r = forms
        .save_wordpress_source("dir:/usr/share/wordpress", "")
        .await;
    assert_eq!(r.status(), 200);
    assert!(r.text().await.unwrap().contains("Settings saved"));
    assert_eq!(
        app.setting("wordpress_source").await.as_deref(),
        Some("dir:/usr/share/wordpress")
    );
}

/// Issue 12: the update source is a field of the Settings page's WordPress form, validated
/// as the API does.
#[tokio::test]
async fn settings_page_saves_the_update_source() {
    let (app, c) = logged_in().await;
    let html = page_text(&c, app.url("/settings")).await;
    assert!(html.contains("name=\"wordpress_update_source\""), "{html}");
    assert!(
        html.contains("name=\"safe_updates_retention_days\" value=\"30\""),
        "the safe-update retention with its default: {html}"
    );
    let forms = CsrfForms::new(&app, &c, &html);
    let fields = |source: &'static str| {
        [
            ("wordpress_source", "dir:/usr/share/wordpress"),
            ("wordpress_source_sha256", ""),
            ("wordpress_update_source", source),
            ("safe_updates_retention_days", ""),
        ]
    };
    let r = forms
        .post(
            "/settings/wordpress",
            &[
                ("wordpress_source", "dir:/usr/share/wordpress"),
                ("safe_updates_retention_days", "0"),
            ],
        )
        .await;
    assert_eq!(r.status(), 400);
    assert!(r
        .text()
        .await
        .unwrap()
        .contains("must be a whole number from 1 to 3650"));
    assert_eq!(app.setting("safe_updates_retention_days").await, None);
    let r = forms
        .post("/settings/wordpress", &fields("http://169.254.169.254/"))
        .await;
    assert_eq!(r.status(), 400);
    assert!(r.text().await.unwrap().contains("link-local"));
    assert_eq!(app.setting("wordpress_update_source").await, None);
    let r = forms
        .post(
            "/settings/wordpress",
            &fields("https://updates.example.org"),
        )
        .await;
    assert_eq!(r.status(), 200);
    assert_eq!(
        app.setting("wordpress_update_source").await.as_deref(),
        Some("https://updates.example.org")
    );
    let html = page_text(&c, app.url("/settings")).await;
    assert!(
        html.contains("value=\"https://updates.example.org\""),
        "{html}"
    );
}

/// The node page (issue 9): details, firewall state, the last failure with its code and
/// message, and the provisioning history (only this node's `node_provision` jobs); linked from
/// the nodes list.
#[tokio::test]
async fn node_page_shows_details_history_last_failure_and_firewall() {
    let (app, c) = logged_in().await;
    let node = app.insert_node("alpha", "active").await;
    let other = app.insert_node("beta", "active").await;
    app.exec("UPDATE nodes SET firewall_status = 'unavailable', provision_warning = 'The kernel refused nftables.' WHERE id = ?", &[&node]).await;
    let ok = app
        .insert_job(JobFixture::new("node_provision", "succeeded", &node))
        .await;
    let mut f = JobFixture::new("node_provision", "failed", &node);
    f.offset_ms = 1000;
    f.error_code = Some("NODE_UNREACHABLE");
    let failed = app.insert_job(f).await;
    app.exec(
        "UPDATE jobs SET error_message = 'ssh: connect to host refused' WHERE id = ?",
        &[&failed],
    )
    .await;
    let elsewhere = app
        .insert_job(JobFixture::new("node_provision", "failed", &other))
        .await;
    let site = app.insert_site("Shop", "shop").await;
    let mut f = JobFixture::new("site_create", "succeeded", &node);
    f.site_id = Some(&site);
    let site_job = app.insert_job(f).await;

    let list = page_text(&c, app.url("/nodes")).await;
    assert!(
        list.contains(&format!("href=\"/nodes/{node}\"")),
        "linked from the list"
    );

    let r = get_with(&c, app.url(&format!("/nodes/{node}"))).await;
    assert_eq!(r.status(), 200);
    let html = r.text().await.unwrap();
    assert!(html.contains("alpha"));
    assert!(
        html.contains("sse-connect=\"/ui/events?view=node&amp;id="),
        "live"
    );
    assert!(
        html.contains("unavailable: the kernel refused the firewall"),
        "{html}"
    );
    assert!(html.contains("The kernel refused nftables."));
    assert!(html.contains("data-test=\"node-last-failure\""));
    assert!(html.contains("NODE_UNREACHABLE"));
    assert!(html.contains("ssh: connect to host refused"));
    for id in [&ok, &failed] {
        assert!(
            html.contains(&format!("data-job-id=\"{id}\"")),
            "history lists {id}"
        );
    }
    for id in [&elsewhere, &site_job] {
        assert!(!html.contains(&format!("data-job-id=\"{id}\"")), "not {id}");
    }

    // A node that never failed has no failure box.
    let html = page_text(&c, app.url(&format!("/nodes/{other}"))).await;
    assert!(html.contains("data-test=\"node-last-failure\""));
    let fresh = app.insert_node("gamma", "provisioning").await;
    let html = page_text(&c, app.url(&format!("/nodes/{fresh}"))).await;
    assert!(!html.contains("data-test=\"node-last-failure\""));
    assert!(html.contains("unknown until the first successful provisioning"));
    assert!(html.contains("No provisioning job for this node yet."));
}

#[tokio::test]
async fn node_page_updates_live() {
    let (app, c) = logged_in().await;
    let node = app.insert_node("alpha", "provisioning").await;
    let r = get_with(&c, app.url(&format!("/ui/events?view=node&id={node}"))).await;
    assert_eq!(r.status(), 200);
    let mut f = JobFixture::new("node_provision", "running", &node);
    f.offset_ms = 1000;
    let id = app.insert_job(f).await;
    let seen = read_until(r, &format!("data-job-id=\"{id}\"")).await;
    assert!(seen.contains("event: node"), "{seen}");
    assert!(seen.contains("data-test=\"node-status\""));
}

/// Reads a live stream chunk by chunk, keeping what it has seen.
struct Live {
    stream: std::pin::Pin<Box<dyn futures_util::Stream<Item = reqwest::Result<axum::body::Bytes>>>>,
    seen: String,
}

impl Live {
    fn new(r: reqwest::Response) -> Self {
        assert_eq!(r.status(), 200);
        Live {
            stream: Box::pin(r.bytes_stream()),
            seen: String::new(),
        }
    }

    /// Everything read until `needle` appears (within 10 s), from the end of the last read.
    async fn until(&mut self, needle: &str) -> String {
        use futures_util::StreamExt;
        let start = self.seen.len();
        let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
        while !self.seen[start..].contains(needle) {
            let chunk = tokio::time::timeout_at(deadline, self.stream.next())
                .await
                .unwrap_or_else(|_| panic!("{needle:?} not seen within 10 s; got {:?}", self.seen))
                .expect("stream open")
                .expect("chunk");
            self.seen.push_str(&String::from_utf8_lossy(&chunk));
        }
        self.seen[start..].to_string()
    }
}

/// A site page's stream renders for its own site's jobs and rows only: a job and an
/// environment change of another site send no fragment, while the same changes of this site do.
#[tokio::test]
async fn site_stream_ignores_other_sites() {
    let (app, c) = logged_in().await;
    let node = app.insert_node("edge", "active").await;
    let site = app.insert_site("Shop", "shop").await;
    let env = app.insert_environment(&site, &node, "Production").await;
    let other = app.insert_site("Blog", "blog").await;
    let other_env = app.insert_environment(&other, &node, "Production").await;
    // Let the change feed pass these inserts before the page listens.
    app.state.events.jobs_changed();
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    let mut live =
        Live::new(get_with(&c, app.url(&format!("/ui/events?view=site&id={site}"))).await);
    let fail_env = |id: String| {
        let app = &app;
        async move {
            app.clock.advance(time::Duration::seconds(1));
            app.exec(
                "UPDATE environments SET status = 'failed', updated_at = ? WHERE id = ?",
                &[&app.now(), &id],
            )
            .await;
            app.state.events.jobs_changed();
        }
    };
    let job_for = |site: String, env: String| {
        let app = &app;
        let node = node.clone();
        async move {
            app.clock.advance(time::Duration::seconds(1));
            let mut f = JobFixture::new("env_create", "queued", &node);
            f.site_id = Some(&site);
            f.environment_id = Some(&env);
            let id = app.insert_job(f).await;
            app.state.events.jobs_changed();
            id
        }
    };

    // Another site's job and environment change: nothing on this page's stream.
    let other_job = job_for(other.clone(), other_env.clone()).await;
    fail_env(other_env.clone()).await;
    // Longer than the change feed's wake and the debounce: a fragment would be on its way.
    tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
    // This site's job: one render, after which only this job shows.
    let job = job_for(site.clone(), env.clone()).await;
    let seen = live.until(&format!("data-job-id=\"{job}\"")).await;
    assert_eq!(seen.matches("event: jobs").count(), 1, "{seen}");
    assert_eq!(seen.matches("event: environments").count(), 1, "{seen}");
    assert!(
        !seen.contains(&other_job) && !seen.contains(&other_env),
        "{seen}"
    );
    assert!(!seen.contains("status-failed"), "{seen}");

    // This site's environment: its card re-renders.
    fail_env(env.clone()).await;
    let seen = live.until("status-failed").await;
    assert!(seen.contains("event: environments"), "{seen}");
}

/// Dashboard pages answer unknown ids, malformed ids and server errors with an HTML page
/// (status 404/400/500), not the API's JSON; the API keeps its JSON.
#[tokio::test]
async fn dashboard_errors_are_html_pages() {
    let (app, c) = logged_in().await;
    let unknown = uuid::Uuid::new_v4();
    for path in [
        format!("/nodes/{unknown}"),
        format!("/sites/{unknown}"),
        format!("/environments/{unknown}"),
        format!("/jobs/{unknown}"),
    ] {
        let r = get_with(&c, app.url(&path)).await;
        assert_eq!(r.status(), 404, "{path}");
        assert!(
            r.headers()["content-type"]
                .to_str()
                .unwrap()
                .starts_with("text/html"),
            "{path}"
        );
        let html = r.text().await.unwrap();
        assert!(html.contains("data-test=\"error-page\""), "{path}: {html}");
        assert!(html.contains("404 · Not Found"), "{path}");
        assert!(html.contains(">not_found<"), "{path}");
    }
    let r = get_with(&c, app.url("/nodes/not-a-uuid")).await;
    assert_eq!(r.status(), 400);
    let html = r.text().await.unwrap();
    assert!(html.contains("data-test=\"error-page\"") && html.contains("must be a UUID"));

    // A server error: the page says so without the cause (which only the log gets).
    let node = app.insert_node("alpha", "active").await;
    app.exec("ALTER TABLE jobs RENAME TO jobs_gone", &[]).await;
    let r = get_with(&c, app.url(&format!("/nodes/{node}"))).await;
    assert_eq!(r.status(), 500);
    assert!(r.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/html"));
    let html = r.text().await.unwrap();
    assert!(html.contains("data-test=\"error-page\"") && html.contains(">internal_error<"));
    assert!(
        !html.contains("jobs_gone") && !html.contains("no such table"),
        "{html}"
    );

    // The API under the same session keeps its JSON errors.
    let r = get_with(&c, app.url(&format!("/api/nodes/{unknown}"))).await;
    crate::helpers::assert_error(r, 404, "not_found").await;
}
