//! Custom domains through the API (api.md Backups and domains, domains-and-tls.md §3): the
//! host-name rules (400 naming `hostname`, nothing stored, nothing audited), normalisation,
//! global uniqueness (409 `conflict`, audited `rejected`), the `domain_add` job with its payload
//! and audit, the `DELETE` rules (409 while `pending` or while a `domain_remove` is queued),
//! and the transitions with the stand-in runner: the first active domain becomes the primary,
//! a later one does not, removing the primary hands it to the oldest remaining active domain
//! and then clears it; a final DNS_MISMATCH leaves the domain `failed` (retried first), a node
//! without public IP is refused before anything runs. The real node work is
//! tests/api/e2e_domains.rs.

use serde_json::{json, Value};
use time::Duration;

use crate::deploys_api::{app_with_environment, payload};
use crate::helpers::*;
use crate::stand_in::{failing_three_times, StandIn, Step};
use pressluft::jobs::JobErrorCode;

async fn add(app: &TestApp, env: &str, hostname: &str) -> reqwest::Response {
    app.post_json(
        &format!("/api/environments/{env}/domains"),
        json!({ "hostname": hostname }),
    )
    .await
}

async fn remove(app: &TestApp, domain: &str) -> reqwest::Response {
    app.client
        .delete(app.url(&format!("/api/domains/{domain}")))
        .send()
        .await
        .expect("DELETE")
}

async fn list(app: &TestApp, env: &str) -> Vec<Value> {
    let (status, v) = app
        .get_json(&format!("/api/environments/{env}/domains"))
        .await;
    assert_eq!(status, 200, "{v}");
    v.as_array().unwrap().clone()
}

async fn primary(app: &TestApp, env: &str) -> Value {
    let (_, e) = app.get_json(&format!("/api/environments/{env}")).await;
    e["primary_domain_id"].clone()
}

/// The audit rows (action, resource_type, resource_id, result) of `action`.
async fn audit(app: &TestApp, action: &str) -> Vec<(String, String, String, String)> {
    pressluft::store::query_as(
        "SELECT action, resource_type, resource_id, result FROM audit_logs WHERE action = ?
         ORDER BY created_at, rowid",
    )
    .bind(action)
    .fetch_all(app.store.pool())
    .await
    .unwrap()
}

async fn accepted(r: reqwest::Response) -> Value {
    assert_eq!(r.status(), 202);
    r.json().await.unwrap()
}

#[tokio::test]
async fn bad_host_names_are_refused_naming_hostname_and_store_nothing() {
    let (app, _node, _site, env) = app_with_environment().await;
    let now = app.now();
    for (key, value) in [
        ("preview_domain", "wp.example.test"),
        ("control_plane_domain", "pressluft.example.test"),
    ] {
        app.exec(
            "INSERT INTO settings (key, value, updated_at) VALUES (?, ?, ?)",
            &[key, value, &now],
        )
        .await;
    }
    for bad in [
        "localhost",
        "203.0.113.5",
        "::1",
        "*.example.test",
        "a.1-2-3-4.sslip.io",
        "sslip.io",
        "-shop.example.test",
        "shop_.example.test",
        "a..example.test",
        "shop example.test",
        "",
        "a1b2c3d4.wp.example.test",
        "wp.example.test",
        "pressluft.example.test",
        &format!("{}.example.test", "a".repeat(64)),
        &format!("{}example.test", "abcdefghi.".repeat(25)),
    ] {
        let r = add(&app, &env, bad).await;
        assert_field_error(r, 400, "bad_request", "hostname").await;
    }
    // Not a string, an unknown field, no body.
    let r = app
        .post_json(
            &format!("/api/environments/{env}/domains"),
            json!({"hostname": 5}),
        )
        .await;
    assert_eq!(r.status(), 400);
    let r = app
        .post_json(
            &format!("/api/environments/{env}/domains"),
            json!({"hostname": "shop.example.test", "primary": true}),
        )
        .await;
    assert_eq!(r.status(), 400);
    assert_eq!(app.count("domains").await, 0);
    assert_eq!(app.count("jobs").await, 0);
    assert!(
        audit(&app, "domain_add").await.is_empty(),
        "a 400 is only logged"
    );
}

#[tokio::test]
async fn an_added_domain_is_pending_with_its_job_payload_and_audit() {
    let (app, _node, site, env) = app_with_environment().await;
    let body = accepted(add(&app, &env, "  Shop.Example.TEST. ").await).await;
    let domain = body["domain_id"].as_str().unwrap().to_string();
    let job_id = body["job_id"].as_str().unwrap().to_string();
    let domains = list(&app, &env).await;
    assert_eq!(domains.len(), 1);
    let d = &domains[0];
    assert_eq!(d["id"], domain.as_str());
    assert_eq!(
        d["hostname"], "shop.example.test",
        "lower-cased, trailing dot dropped"
    );
    assert_eq!(d["tls_status"], "pending");
    assert_eq!(d["tls_issuer"], "letsencrypt");
    assert_eq!(d["environment_id"], env.as_str());
    for k in ["created_at", "updated_at"] {
        assert!(d[k].is_string(), "{k}: {d}");
    }
    let job = app.job(&job_id).await;
    assert_eq!(job["job_type"], "domain_add");
    assert_eq!(job["status"], "queued");
    assert_eq!(job["environment_id"], env.as_str());
    assert_eq!(job["site_id"], site.as_str());
    let p = payload(&app, &job_id).await;
    assert_eq!(p["domain_id"], domain.as_str());
    assert_eq!(p["hostname"], "shop.example.test");
    assert_eq!(
        audit(&app, "domain_add").await,
        [(
            "domain_add".into(),
            "domain".into(),
            domain.clone(),
            "accepted".into()
        )]
    );
    assert!(
        primary(&app, &env).await.is_null(),
        "not primary before it is active"
    );

    // Pending: no DELETE (cancel or await the add).
    assert_error(remove(&app, &domain).await, 409, "conflict").await;
    let rows = audit(&app, "domain_remove").await;
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].3, "rejected");
}

#[tokio::test]
async fn host_names_are_unique_across_environments() {
    let (app, node, site, env) = app_with_environment().await;
    accepted(add(&app, &env, "shop.example.test").await).await;
    let r = add(&app, &env, "SHOP.example.test.").await;
    let body = assert_error(r, 409, "conflict").await;
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("this environment"),
        "{body}"
    );
    let other = app.insert_environment(&site, &node, "Staging").await;
    let r = add(&app, &other, "shop.example.test").await;
    let body = assert_error(r, 409, "conflict").await;
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("another environment"),
        "{body}"
    );
    assert_eq!(app.count("domains").await, 1);
    let results: Vec<String> = audit(&app, "domain_add")
        .await
        .into_iter()
        .map(|r| r.3)
        .collect();
    assert_eq!(results, ["accepted", "rejected", "rejected"]);
}

#[tokio::test]
async fn unknown_resources_and_env_rules() {
    let (app, node, _site, env) = app_with_environment().await;
    let missing = uuid::Uuid::new_v4().to_string();
    assert_error(
        add(&app, &missing, "shop.example.test").await,
        404,
        "not_found",
    )
    .await;
    let (status, _) = app
        .get_json(&format!("/api/environments/{missing}/domains"))
        .await;
    assert_eq!(status, 404);
    assert_error(remove(&app, &missing).await, 404, "not_found").await;
    // A failed environment, then an inactive node.
    app.exec(
        "UPDATE environments SET status = 'failed' WHERE id = ?",
        &[&env],
    )
    .await;
    assert_error(add(&app, &env, "shop.example.test").await, 409, "conflict").await;
    app.exec(
        "UPDATE environments SET status = 'active' WHERE id = ?",
        &[&env],
    )
    .await;
    app.exec(
        "UPDATE nodes SET status = 'unreachable' WHERE id = ?",
        &[&node],
    )
    .await;
    assert_error(
        add(&app, &env, "shop.example.test").await,
        409,
        "node_not_active",
    )
    .await;
    assert_eq!(app.count("domains").await, 0);
}

#[tokio::test]
async fn the_first_active_domain_is_primary_and_removals_hand_it_on() {
    let (app, runner, env, _) = StandIn::new()
        .otherwise(Step::Plausible)
        .spawn_with_site()
        .await;
    let first = accepted(add(&app, &env, "shop.example.test").await).await;
    let first_id = first["domain_id"].as_str().unwrap().to_string();
    app.state.engine.run_until_idle("w").await.unwrap();
    assert_eq!(
        app.job(first["job_id"].as_str().unwrap()).await["status"],
        "succeeded"
    );
    // The still test clock would give both rows the same created_at ("oldest" then falls to
    // the random id); a real clock differs by at least a millisecond.
    app.clock.advance(time::Duration::seconds(1));
    let second = accepted(add(&app, &env, "www.example.test").await).await;
    let second_id = second["domain_id"].as_str().unwrap().to_string();
    app.state.engine.run_until_idle("w").await.unwrap();
    let domains = list(&app, &env).await;
    assert_eq!(
        column(&Value::Array(domains.clone()), "tls_status"),
        ["active", "active"]
    );
    assert_eq!(
        primary(&app, &env).await,
        first_id.as_str(),
        "the first active domain"
    );
    // The canonical URL follows the primary (jobs of this environment use it).
    let url = pressluft::store::environments::canonical_url(
        &mut app.store.pool().acquire().await.unwrap(),
        &env,
    )
    .await
    .unwrap();
    assert_eq!(url.as_deref(), Some("https://shop.example.test"));

    // Removing the primary: disabled at once, was_primary recorded; a second DELETE while its
    // job is queued is refused.
    let job = job_id(remove(&app, &first_id).await).await;
    let p = payload(&app, &job).await;
    assert_eq!(
        (&p["domain_id"], &p["hostname"], &p["was_primary"]),
        (&json!(first_id), &json!("shop.example.test"), &json!(true))
    );
    assert_eq!(list(&app, &env).await[0]["tls_status"], "disabled");
    assert_error(remove(&app, &first_id).await, 409, "conflict").await;
    app.state.engine.run_until_idle("w").await.unwrap();
    assert_eq!(app.job(&job).await["status"], "succeeded");
    let left = list(&app, &env).await;
    assert_eq!(left.len(), 1, "the row is deleted: {left:?}");
    assert_eq!(
        primary(&app, &env).await,
        second_id.as_str(),
        "the oldest remaining takes over"
    );

    // Removing the last one: back to the preview URL.
    let job = job_id(remove(&app, &second_id).await).await;
    assert_eq!(payload(&app, &job).await["was_primary"], true);
    app.state.engine.run_until_idle("w").await.unwrap();
    assert!(list(&app, &env).await.is_empty());
    assert!(primary(&app, &env).await.is_null());
    let results: Vec<String> = audit(&app, "domain_remove")
        .await
        .into_iter()
        .map(|r| r.3)
        .collect();
    assert_eq!(results, ["succeeded", "rejected", "succeeded"]);
    assert_eq!(runner.runs().len(), 5, "site_create, two adds, two removes");
}

#[tokio::test]
async fn a_dns_mismatch_is_retried_then_fails_the_domain_which_can_be_removed() {
    let message = "DNS for shop.example.test does not point to this server (127.0.0.1). Please create an A record pointing shop.example.test to 127.0.0.1 and try again.";
    let (app, runner, env, _) = StandIn::new()
        .script(
            failing_three_times("domain_add", JobErrorCode::DnsMismatch)
                .into_iter()
                .map(|(t, _)| (t, Step::failing(JobErrorCode::DnsMismatch, message)))
                .collect(),
        )
        .otherwise(Step::Plausible)
        .spawn_with_site()
        .await;
    let body = accepted(add(&app, &env, "shop.example.test").await).await;
    let job = body["job_id"].as_str().unwrap().to_string();
    let domain = body["domain_id"].as_str().unwrap().to_string();
    for _ in 0..3 {
        app.clock.advance(Duration::minutes(10));
        app.state.engine.run_until_idle("w").await.unwrap();
    }
    let j = app.job(&job).await;
    assert_eq!(j["status"], "failed");
    assert_eq!(j["error_code"], "DNS_MISMATCH");
    assert_eq!(j["error_message"], message);
    assert_eq!(runner.runs_of(&job), 3, "DNS_MISMATCH is retried");
    assert_eq!(list(&app, &env).await[0]["tls_status"], "failed");
    assert!(primary(&app, &env).await.is_null());
    let rows = audit(&app, "domain_add").await;
    assert_eq!(rows[0].3, "failed");
    // A failed domain can be removed (what an attempt left on the node goes).
    let rm = job_id(remove(&app, &domain).await).await;
    assert_eq!(payload(&app, &rm).await["was_primary"], false);
    app.state.engine.run_until_idle("w").await.unwrap();
    assert!(list(&app, &env).await.is_empty());
}

#[tokio::test]
async fn a_node_without_public_ip_is_refused_before_the_playbook() {
    let (app, runner, env, _) = StandIn::new()
        .otherwise(Step::Plausible)
        .spawn_with_site()
        .await;
    app.exec("UPDATE nodes SET public_ip = NULL", &[]).await;
    let body = accepted(add(&app, &env, "shop.example.test").await).await;
    let job = body["job_id"].as_str().unwrap().to_string();
    app.state.engine.run_until_idle("w").await.unwrap();
    let j = app.job(&job).await;
    assert_eq!(j["status"], "failed");
    assert_eq!(j["error_code"], "PRECONDITION_FAILED");
    assert!(
        j["error_message"].as_str().unwrap().contains("public_ip"),
        "{j}"
    );
    assert_eq!(runner.runs_of(&job), 0);
    assert_eq!(list(&app, &env).await[0]["tls_status"], "failed");
}

#[tokio::test]
async fn a_cancelled_add_leaves_a_removable_failed_domain() {
    let (app, _runner, env, _) = StandIn::new()
        .otherwise(Step::Plausible)
        .spawn_with_site()
        .await;
    let body = accepted(add(&app, &env, "shop.example.test").await).await;
    let job = body["job_id"].as_str().unwrap();
    let r = app.post_empty(&format!("/api/jobs/{job}/cancel")).await;
    assert_eq!(r.status(), 200);
    assert_eq!(list(&app, &env).await[0]["tls_status"], "failed");
    let domain = body["domain_id"].as_str().unwrap();
    assert_eq!(remove(&app, domain).await.status(), 202);
}

#[tokio::test]
async fn domain_changes_reach_the_resource_feed() {
    let (app, _node, _site, env) = app_with_environment().await;
    let since = app.now();
    let body = accepted(add(&app, &env, "shop.example.test").await).await;
    let changes = app
        .store
        .resources_changed_since(&since, 100)
        .await
        .unwrap();
    let d = changes
        .iter()
        .find(|c| c.id == body["domain_id"].as_str().unwrap())
        .expect("the domain is in the feed");
    assert_eq!(d.resource_type.as_str(), "domain");
    assert_eq!(d.status.as_str(), "pending");
}

async fn htmx_post(app: &TestApp, path: &str, fields: &[(&str, &str)]) -> reqwest::Response {
    app.client
        .post(app.url(path))
        .header("HX-Request", "true")
        .form(fields)
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn the_domains_panel_adds_shows_the_dns_message_and_removes() {
    let message = "DNS for shop.example.test does not point to this server (127.0.0.1). Please create an A record pointing shop.example.test to 127.0.0.1 and try again.";
    let (app, _runner, env, _) = StandIn::new()
        .then(
            "domain_add",
            Step::failing(JobErrorCode::DnsMismatch, message),
        )
        .otherwise(Step::Plausible)
        .spawn_with_site()
        .await;
    let page = app.text(&format!("/environments/{env}")).await;
    assert!(
        page.contains(&format!("hx-get=\"/environments/{env}/domains\"")),
        "the page loads the panel"
    );
    let token = csrf_field(&page);
    let path = format!("/environments/{env}/domains");
    let panel = app.text(&path).await;
    assert!(panel.contains("data-test=\"domains-empty\""), "{panel}");
    assert!(
        panel.contains("data-test=\"domain-ip\">127.0.0.1<"),
        "the A record's target: {panel}"
    );

    // A refused host name comes back in the form with the reason; nothing is stored.
    let r = htmx_post(
        &app,
        &path,
        &[("csrf_token", &token), ("hostname", "*.example.test")],
    )
    .await;
    assert_eq!(r.status(), 200);
    let panel = r.text().await.unwrap();
    assert!(panel.contains("wildcard"), "{panel}");
    assert!(panel.contains("value=\"*.example.test\""), "{panel}");
    // Without the token: refused.
    let r = htmx_post(&app, &path, &[("hostname", "shop.example.test")]).await;
    assert_eq!(r.status(), 403);
    assert_eq!(app.count("domains").await, 0);

    let r = htmx_post(
        &app,
        &path,
        &[("csrf_token", &token), ("hostname", "shop.example.test")],
    )
    .await;
    let panel = r.text().await.unwrap();
    assert!(panel.contains("data-status=\"pending\""), "{panel}");
    assert!(
        panel.contains("shop.example.test → 127.0.0.1"),
        "the A record to create: {panel}"
    );
    assert!(
        !panel.contains("data-test=\"domain-remove\""),
        "no Remove while pending: {panel}"
    );

    // The first attempt finds the DNS elsewhere: the exact message, while the retry waits.
    app.state.engine.run_until_idle("w").await.unwrap();
    let panel = app.text(&path).await;
    assert!(
        panel.contains(&format!("data-test=\"domain-dns-error\">{}<", message)),
        "{panel}"
    );
    // The retry succeeds: active and primary.
    app.clock.advance(Duration::minutes(2));
    app.state.engine.run_until_idle("w").await.unwrap();
    let panel = app.text(&path).await;
    assert!(
        panel.contains("data-status=\"active\" data-primary=\"true\""),
        "{panel}"
    );
    assert!(panel.contains("data-test=\"domain-primary\""), "{panel}");
    assert!(!panel.contains("domain-dns-error"), "{panel}");

    // Remove (without htmx: back to the page).
    let domain = list(&app, &env).await[0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let r = post_form(
        &app.client,
        app.url(&format!("/domains/{domain}/remove")),
        &[("csrf_token", &token)],
    )
    .await;
    assert_eq!(r.status(), 303);
    assert_eq!(
        r.headers()["location"].to_str().unwrap(),
        format!("/environments/{env}#domains")
    );
    let panel = app.text(&path).await;
    assert!(panel.contains("data-status=\"disabled\""), "{panel}");
    app.state.engine.run_until_idle("w").await.unwrap();
    assert!(app
        .text(&path)
        .await
        .contains("data-test=\"domains-empty\""));
}
