//! The wildcard preview certificate's control-plane side, through the HTTP API with a stand-in
//! runner: with `preview_domain` set, a new environment gets an `https://` preview URL and its
//! `env_create` is refused at its start with `PRECONDITION_FAILED` naming the certificate until a
//! `node_provision` reported the wildcard for that domain (kept in its payload, shown on the node
//! page); a report for another domain does not count; the extra-vars carry the rendered
//! credentials as a secret. The clock stands still (as in the end-to-end flow): the newest
//! report wins by insertion order. The real issuance: e2e_wildcard.rs.

use serde_json::{json, Value};

use crate::helpers::{job_id, TestApp};
use crate::stand_in::{StandIn, Step};

const DOMAIN: &str = "preview.example.com";

async fn accepted(app: &TestApp, path: &str, body: Value) -> String {
    job_id(app.post_json(path, body).await).await
}

async fn run(app: &TestApp) {
    app.state.engine.run_until_idle("w").await.unwrap();
}

async fn add_clone(app: &TestApp, site: &str, slug: &str) -> (String, String) {
    let body = json!({"name": slug, "slug": slug, "environment_type": "clone",
                      "promotion_preset": "content-protect"});
    let job = accepted(app, &format!("/api/sites/{site}/environments"), body).await;
    let env = app.job(&job).await["environment_id"]
        .as_str()
        .unwrap()
        .to_string();
    (env, job)
}

async fn set(app: &TestApp, key: &str, value: &str) {
    app.exec(
        "INSERT INTO settings (key, value, updated_at) VALUES (?, ?, ?)
           ON CONFLICT (key) DO UPDATE SET value = excluded.value",
        &[key, value, &app.now()],
    )
    .await;
}

fn provisioned(domain: &str) -> Step {
    Step::ok(json!({
        "os": "debian 12", "php_version": "8.2",
        "firewall": {"status": "skipped", "message": ""},
        "fail2ban": {"status": "skipped", "message": ""},
        "preview_certificate": {"domain": domain, "present": true,
                                "not_after": "Dec  3 10:00:00 2031 GMT"},
    }))
}

#[tokio::test]
async fn https_previews_wait_for_the_wildcard_of_their_domain() {
    let (app, runner) = StandIn::new()
        .then("node_provision", provisioned("old.example.com"))
        .then("node_provision", provisioned(DOMAIN))
        .otherwise(Step::Plausible)
        .spawn()
        .await;
    app.login().await;
    let node = app.insert_node("edge", "active").await;
    let site_job = accepted(&app, "/api/sites", json!({"name": "Shop", "slug": "shop"})).await;
    run(&app).await;
    let site = app.job(&site_job).await["site_id"]
        .as_str()
        .unwrap()
        .to_string();
    let page = app.text(&format!("/nodes/{node}")).await;
    assert!(page.contains("unknown until the next successful provisioning"));

    // Preview domain set, no certificate reported: refused at the start, naming it.
    set(&app, "preview_domain", DOMAIN).await;
    let (env, job) = add_clone(&app, &site, "one").await;
    let (_, e) = app.get_json(&format!("/api/environments/{env}")).await;
    let url = e["preview_url"].as_str().unwrap();
    assert_eq!(url, format!("https://{}.{DOMAIN}", &env[..8]));
    run(&app).await;
    let j = app.job(&job).await;
    assert_eq!(j["status"], "failed", "{j}");
    assert_eq!(j["error_code"], "PRECONDITION_FAILED");
    let message = j["error_message"].as_str().unwrap();
    assert!(
        message.contains("pressluft-preview") && message.contains(&format!("*.{DOMAIN}")),
        "{message}"
    );
    assert_eq!(runner.runs_of(&job), 0, "no playbook ran");

    // A wildcard for another domain does not count.
    let p = accepted(&app, &format!("/api/nodes/{node}/provision"), json!({})).await;
    run(&app).await;
    assert_eq!(app.job(&p).await["status"], "succeeded");
    let (_, job) = add_clone(&app, &site, "two").await;
    run(&app).await;
    assert_eq!(app.job(&job).await["error_code"], "PRECONDITION_FAILED");
    // A safe update's temporary environment would have an https preview too: refused at the
    // start, before any environment exists, and the run says failed.
    let envs = app.count("environments").await;
    let job = accepted(&app, &format!("/api/sites/{site}/safe-updates"), json!({})).await;
    run(&app).await;
    let j = app.job(&job).await;
    assert_eq!(
        (j["status"].as_str(), j["error_code"].as_str()),
        (Some("failed"), Some("PRECONDITION_FAILED")),
        "{j}"
    );
    assert!(
        j["error_message"]
            .as_str()
            .unwrap()
            .contains(&format!("*.{DOMAIN}")),
        "{j}"
    );
    assert_eq!(runner.runs_of(&job), 0, "no playbook ran");
    assert_eq!(
        app.count("environments").await,
        envs,
        "no temporary environment"
    );
    let (_, runs) = app
        .get_json(&format!("/api/sites/{site}/safe-updates"))
        .await;
    assert_eq!(runs["items"][0]["outcome"], "failed", "{runs}");

    // The node reported *.preview.example.com: the environment is created, and the node page
    // shows the certificate.
    let p = accepted(&app, &format!("/api/nodes/{node}/provision"), json!({})).await;
    run(&app).await;
    assert_eq!(app.job(&p).await["status"], "succeeded");
    let (env, job) = add_clone(&app, &site, "three").await;
    run(&app).await;
    let j = app.job(&job).await;
    assert_eq!(j["status"], "succeeded", "{j}");
    assert_eq!(runner.runs_of(&job), 1);
    let page = app.text(&format!("/nodes/{node}")).await;
    assert!(page.contains("wildcard-present") && page.contains(&format!("*.{DOMAIN}")));
    let page = app.text(&format!("/environments/{env}")).await;
    assert!(page.contains(&format!("https://{}.{DOMAIN}", &env[..8])));
    assert!(!page.contains("HTTP only"), "no HTTP-only note for https");

    // The run's variables: the rendered ini is a secret of the run (masked in its output).
    let secret = "dG9wLXNlY3JldA==";
    app.state
        .secrets
        .put(
            "dns01_credentials",
            &json!({"server": "127.0.0.1", "port": "5353", "key_name": "k.",
                    "key_algorithm": "hmac-sha256", "key_secret": secret})
            .to_string(),
        )
        .unwrap();
    set(&app, "dns01_provider", "rfc2136").await;
    let mut conn = app.store.pool().acquire().await.unwrap();
    let job = pressluft::store::queue::fetch_job(&mut conn, &p)
        .await
        .unwrap()
        .unwrap();
    drop(conn);
    let node = app.store.get_node(&node).await.unwrap().unwrap();
    let resolved = pressluft::jobs::kinds::extra_vars(
        &app.store,
        &app.state.secrets,
        &app.state.config,
        &job,
        &node,
    )
    .await
    .unwrap();
    let ini = resolved.vars["preview_certificate_credentials_ini"]
        .as_str()
        .unwrap();
    assert!(ini.contains(&format!("dns_rfc2136_secret = {secret}")));
    assert!(resolved.secrets.iter().any(|s| s == secret));
    assert!(resolved.secrets.iter().any(|s| s == ini));
    assert_eq!(resolved.vars["preview_certificate_domain"], DOMAIN);
    assert_eq!(resolved.vars["preview_certificate_refusal"], "");
    // A provider without a packaged plugin: refused by name, before anything changes.
    set(&app, "dns01_provider", "hetzner").await;
    let resolved = pressluft::jobs::kinds::extra_vars(
        &app.store,
        &app.state.secrets,
        &app.state.config,
        &job,
        &node,
    )
    .await
    .unwrap();
    let refusal = resolved.vars["preview_certificate_refusal"]
        .as_str()
        .unwrap();
    assert!(refusal.contains("hetzner"), "{refusal}");
    assert!(!resolved
        .vars
        .contains_key("preview_certificate_credentials_ini"));
}
