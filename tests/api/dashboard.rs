//! The dashboard over plain HTTP: redirects, the login form's CSRF, pages and live fragments.

use crate::events::read_until;
use crate::helpers::{client, spawn_app, JobFixture, TestApp, ADMIN_EMAIL, ADMIN_PASSWORD};

/// The hidden `csrf_token` value in a page.
fn csrf_field(html: &str) -> String {
    let marker = "name=\"csrf_token\" value=\"";
    let start = html.find(marker).expect("csrf field") + marker.len();
    html[start..start + html[start..].find('"').unwrap()].to_string()
}

async fn form_login(app: &TestApp, c: &reqwest::Client) -> reqwest::Response {
    let page = c
        .get(app.url("/login?next=/jobs"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let token = csrf_field(&page);
    c.post(app.url("/login"))
        .form(&[
            ("email", ADMIN_EMAIL),
            ("password", ADMIN_PASSWORD),
            ("csrf_token", &token),
            ("next", "/jobs"),
        ])
        .send()
        .await
        .unwrap()
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
    c.get(app.url("/login")).send().await.unwrap();
    let r = c
        .post(app.url("/login"))
        .form(&[
            ("email", ADMIN_EMAIL),
            ("password", ADMIN_PASSWORD),
            ("csrf_token", "forged"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    assert!(r
        .headers()
        .get_all("set-cookie")
        .iter()
        .all(|v| !v.to_str().unwrap().starts_with("session_token=")));

    let r = form_login(&app, &c).await;
    assert_eq!(r.status(), 303);
    assert_eq!(r.headers()["location"], "/jobs");
    let r = c.get(app.url("/jobs")).send().await.unwrap();
    assert_eq!(r.status(), 200);
}

#[tokio::test]
async fn form_login_failures_show_a_sentence() {
    let app = spawn_app().await;
    let c = client();
    let page = c
        .get(app.url("/login"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let r = c
        .post(app.url("/login"))
        .form(&[
            ("email", ADMIN_EMAIL),
            ("password", "wrong"),
            ("csrf_token", &csrf_field(&page)),
        ])
        .send()
        .await
        .unwrap();
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
    let app = spawn_app().await;
    let c = client();
    form_login(&app, &c).await;
    let node = app.insert_node("alpha", "active").await;
    let mut f = JobFixture::new("node_provision", "failed", &node);
    f.error_code = Some("ANSIBLE_HOST_UNREACHABLE");
    let id = app.insert_job(f).await;

    let html = c
        .get(app.url("/"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        html.contains("Running jobs") && html.contains("Active nodes"),
        "metric cards"
    );
    assert!(html.contains(&id[..8]) && html.contains("ANSIBLE_HOST_UNREACHABLE"));

    let html = c
        .get(app.url("/jobs?status=failed"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(html.contains(&id[..8]));
    let html = c
        .get(app.url("/jobs?status=queued"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(!html.contains(&id[..8]));
    assert!(html.contains("No job matches these filters."));
    let html = c
        .get(app.url("/jobs?status=bogus"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        html.contains("status: must be one of"),
        "bad filter explained inline"
    );

    let r = c.get(app.url(&format!("/jobs/{id}"))).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let html = r.text().await.unwrap();
    assert!(html.contains(&id) && html.contains("node alpha"));
}

#[tokio::test]
async fn live_fragments_follow_job_changes() {
    let app = spawn_app().await;
    let c = client();
    form_login(&app, &c).await;
    let node = app.insert_node("alpha", "active").await;
    let r = c
        .get(app.url("/ui/events?view=overview"))
        .send()
        .await
        .unwrap();
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
    let app = spawn_app().await;
    let c = client();
    form_login(&app, &c).await;
    let html = c
        .get(app.url("/"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let token = csrf_field(&html);

    let r = c
        .post(app.url("/logout"))
        .form(&[("csrf_token", "wrong")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    assert_eq!(
        c.get(app.url("/")).send().await.unwrap().status(),
        200,
        "still logged in"
    );

    let r = c
        .post(app.url("/logout"))
        .form(&[("csrf_token", token.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    assert_eq!(r.headers()["location"], "/login");
    assert_eq!(
        c.get(app.url("/")).send().await.unwrap().status(),
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
    let app = spawn_app().await;
    let c = client();
    form_login(&app, &c).await;
    let html = c
        .get(app.url("/nodes"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(html.contains("ssh-ed25519 "), "public key shown");
    assert!(html.contains("No nodes yet"), "helpful empty state");
    let token = csrf_field(&html);

    let r = c
        .post(app.url("/nodes"))
        .form(&[
            ("csrf_token", token.as_str()),
            ("name", "edge"),
            ("hostname", "not a host"),
            ("ssh_port", "22"),
            ("ssh_user", "root"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let html = r.text().await.unwrap();
    assert!(
        html.contains("must be an IP address or a DNS name"),
        "error next to the field"
    );
    assert!(html.contains("value=\"edge\""), "input kept");

    let r = c
        .post(app.url("/nodes"))
        .form(&[
            ("csrf_token", "forged"),
            ("name", "edge"),
            ("hostname", "10.0.0.9"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403, "per-session CSRF token required");

    let r = c
        .post(app.url("/nodes"))
        .form(&[
            ("csrf_token", token.as_str()),
            ("name", "edge"),
            ("hostname", "10.0.0.9"),
            ("public_ip", ""),
            ("ssh_port", "2222"),
            ("ssh_user", "deploy"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    let location = r.headers()["location"].to_str().unwrap().to_string();
    assert!(location.starts_with("/jobs/"), "{location}");
    let job = c
        .get(app.url(&location))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        job.contains("node_provision") && job.contains("Cancel job"),
        "job page with progress"
    );
    let node = app.store.list_nodes().await.unwrap().pop().unwrap();
    assert_eq!(
        (node.ssh_port, node.ssh_user.as_str(), node.status.as_str()),
        (2222, "deploy", "provisioning")
    );

    let html = c
        .get(app.url("/audit"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(html.contains("node_provision") && html.contains("accepted"));
}
