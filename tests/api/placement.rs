//! Placement across nodes (issue 17): `node_id` in `POST /api/sites` (unknown, not a UUID,
//! inactive, without a public IP), the placement rule with two eligible nodes (the local node,
//! else the oldest), environments staying on their site's node, and the dashboard showing the
//! choice and which node holds what.

use serde_json::{json, Value};

use crate::helpers::{assert_error, assert_field_error, job_id, page_text, CsrfForms, TestApp};
use crate::stand_in::StandIn;

async fn app() -> TestApp {
    let (app, _) = StandIn::new().spawn().await;
    app.login().await;
    app
}

/// Two active nodes with a public IP, `old` registered a second before `new`.
async fn two_nodes(app: &TestApp) -> (String, String) {
    let old = app.insert_node("old", "active").await;
    app.clock.advance(time::Duration::seconds(1));
    let new = app.insert_node("new", "active").await;
    (old, new)
}

/// Creates a site (accepted) and returns its `site_create` job.
async fn create(app: &TestApp, slug: &str, node_id: Option<&str>) -> Value {
    let mut body = json!({"name": "Shop", "slug": slug});
    if let Some(n) = node_id {
        body["node_id"] = json!(n);
    }
    let job = job_id(app.post_json("/api/sites", body).await).await;
    app.get_json(&format!("/api/jobs/{job}")).await.1
}

async fn env_node(app: &TestApp, env_id: &str) -> String {
    let (_, e) = app.get_json(&format!("/api/environments/{env_id}")).await;
    e["node_id"].as_str().unwrap().to_string()
}

#[tokio::test]
async fn the_rule_picks_the_local_node_else_the_oldest_eligible() {
    let app = app().await;
    let (old, new) = two_nodes(&app).await;
    let job = create(&app, "a", None).await;
    assert_eq!(job["node_id"], old.as_str(), "the oldest eligible node");
    assert_eq!(
        env_node(&app, job["environment_id"].as_str().unwrap()).await,
        old
    );

    app.exec("UPDATE nodes SET is_local = 1 WHERE id = ?", &[&new])
        .await;
    let job = create(&app, "b", None).await;
    assert_eq!(job["node_id"], new.as_str(), "the local node first");

    // Ineligible nodes are skipped by the rule: the local one down, the old one without an IP.
    app.exec(
        "UPDATE nodes SET status = 'unreachable' WHERE id = ?",
        &[&new],
    )
    .await;
    let third = app.insert_node("third", "active").await;
    app.exec("UPDATE nodes SET public_ip = NULL WHERE id = ?", &[&old])
        .await;
    let job = create(&app, "c", None).await;
    assert_eq!(job["node_id"], third.as_str());
}

#[tokio::test]
async fn a_chosen_node_holds_the_site_and_its_environments() {
    let app = app().await;
    let (old, new) = two_nodes(&app).await;
    let job = create(&app, "shop", Some(&new)).await;
    assert_eq!(
        job["node_id"],
        new.as_str(),
        "the chosen node, not the rule's"
    );
    let site_id = job["site_id"].as_str().unwrap().to_string();
    assert_eq!(
        env_node(&app, job["environment_id"].as_str().unwrap()).await,
        new
    );
    // Empty and null mean the rule.
    let job = create(&app, "rule", Some("")).await;
    assert_eq!(job["node_id"], old.as_str());
    let r = app
        .post_json(
            "/api/sites",
            json!({"name": "N", "slug": "null", "node_id": null}),
        )
        .await;
    let (_, j) = app
        .get_json(&format!("/api/jobs/{}", job_id(r).await))
        .await;
    assert_eq!(j["node_id"], old.as_str());

    // A staging environment of the site lands on the site's node, whatever the rule says.
    let r = app
        .post_json(
            &format!("/api/sites/{site_id}/environments"),
            json!({"name": "Staging", "slug": "staging", "environment_type": "staging",
                   "promotion_preset": "content-protect"}),
        )
        .await;
    let (_, staging) = app
        .get_json(&format!("/api/jobs/{}", job_id(r).await))
        .await;
    assert_eq!(staging["node_id"], new.as_str(), "{staging}");
    assert_eq!(
        env_node(&app, staging["environment_id"].as_str().unwrap()).await,
        new
    );
}

#[tokio::test]
async fn a_bad_node_id_is_refused_and_nothing_is_created() {
    let app = app().await;
    let (_, _) = two_nodes(&app).await;
    let down = app.insert_node("down", "unreachable").await;
    let no_ip = app.insert_node("noip", "active").await;
    app.exec("UPDATE nodes SET public_ip = NULL WHERE id = ?", &[&no_ip])
        .await;
    let provisioning = app.insert_node("fresh", "provisioning").await;
    let post = |node_id: Value| {
        app.post_json(
            "/api/sites",
            json!({"name": "Shop", "slug": "shop", "node_id": node_id}),
        )
    };

    for bad in [json!("not-a-uuid"), json!(uuid::Uuid::new_v4().to_string())] {
        let body = assert_field_error(post(bad).await, 400, "bad_request", "node_id").await;
        assert!(
            !body["message"].as_str().unwrap().contains("SELECT"),
            "{body}"
        );
    }
    assert_error(post(json!(42)).await, 400, "bad_request").await;
    for ineligible in [&down, &no_ip, &provisioning] {
        let body = assert_error(post(json!(ineligible)).await, 409, "node_not_active").await;
        assert!(
            body["message"].as_str().unwrap().contains("node_id"),
            "the message names node_id: {body}"
        );
    }
    assert_eq!(app.count("sites").await, 0);
    assert_eq!(app.count("environments").await, 0);
    assert_eq!(app.count("jobs").await, 0);
    let (_, audit) = app.get_json("/api/audit-logs?resource_id=shop").await;
    assert_eq!(audit[0]["result"], "rejected", "{audit}");
}

#[tokio::test]
async fn the_dashboard_offers_the_node_and_shows_what_each_holds() {
    let app = app().await;
    let old = app.insert_node("old", "active").await;
    let html = page_text(&app.client, app.url("/sites/new")).await;
    assert!(
        !html.contains("data-test=\"site-node\""),
        "one eligible node: no choice"
    );
    app.clock.advance(time::Duration::seconds(1));
    let new = app.insert_node("new", "active").await;
    let html = page_text(&app.client, app.url("/sites/new")).await;
    assert!(html.contains("data-test=\"site-node\""), "two: a choice");
    assert!(html.contains(&format!("<option value=\"{new}\">new (127.0.0.1)</option>")));
    assert!(html.contains(&format!("<option value=\"{old}\">old (127.0.0.1)</option>")));

    // The form places the site on the chosen node; a refused choice is shown next to the form.
    let forms = CsrfForms::new(&app, &app.client, &html);
    let r = forms
        .post(
            "/sites",
            &[("name", "Shop"), ("slug", "shop"), ("node_id", &new)],
        )
        .await;
    assert!(r.status().is_success() || r.status().is_redirection());
    let (_, sites) = app.get_json("/api/sites").await;
    let site_id = sites[0]["id"].as_str().unwrap().to_string();
    let env_id = sites[0]["primary_environment_id"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(env_node(&app, &env_id).await, new);
    app.exec(
        "UPDATE nodes SET status = 'unreachable' WHERE id = ?",
        &[&old],
    )
    .await;
    let r = forms
        .post(
            "/sites",
            &[("name", "Two"), ("slug", "two"), ("node_id", &old)],
        )
        .await;
    assert_eq!(r.status(), 409);
    assert!(r.text().await.unwrap().contains("node_id"));

    // The site page names (and links) the node of each environment; the node page lists them.
    let site_page = page_text(&app.client, app.url(&format!("/sites/{site_id}"))).await;
    assert!(
        site_page.contains(&format!(
            "href=\"/nodes/{new}\" data-test=\"env-node\">new<"
        )),
        "site page names the node"
    );
    let node_page = page_text(&app.client, app.url(&format!("/nodes/{new}"))).await;
    assert!(node_page.contains(&format!("data-env-id=\"{env_id}\"")));
    assert!(node_page.contains(&format!("href=\"/sites/{site_id}\">Shop<")));
    let other = page_text(&app.client, app.url(&format!("/nodes/{old}"))).await;
    assert!(other.contains("No site on this node"));
}
