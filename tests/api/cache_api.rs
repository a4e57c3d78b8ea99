//! The cache controls (api.md Environments, domains-and-tls.md §6): `PATCH
//! /api/environments/{id}/cache` and `POST …/cache/purge` — validation naming the fields, 202
//! with the flags written at request time in the job's transaction, the payloads, the audit
//! rows, 404 and the "env ok" conflicts; the job's variables read the flags when it runs; and
//! the dashboard's Caching panel (fragment, toggles and purge through htmx).

use serde_json::{json, Value};

use crate::deploys_api::{app_with_environment, payload};
use crate::helpers::*;

async fn patch(app: &TestApp, env: &str, body: Value) -> reqwest::Response {
    app.client
        .patch(app.url(&format!("/api/environments/{env}/cache")))
        .json(&body)
        .send()
        .await
        .expect("PATCH")
}

async fn purge(app: &TestApp, env: &str) -> reqwest::Response {
    app.post_empty(&format!("/api/environments/{env}/cache/purge"))
        .await
}

async fn flags(app: &TestApp, env: &str) -> (Value, Value) {
    let (status, e) = app.get_json(&format!("/api/environments/{env}")).await;
    assert_eq!(status, 200, "{e}");
    (
        e["fastcgi_cache_enabled"].clone(),
        e["redis_cache_enabled"].clone(),
    )
}

/// The audit rows (action, resource_id, result, job_id) of `action`.
async fn audit(app: &TestApp, action: &str) -> Vec<(String, String, String, Option<String>)> {
    pressluft::store::query_as(
        "SELECT action, resource_id, result, job_id FROM audit_logs WHERE action = ?
         ORDER BY created_at, rowid",
    )
    .bind(action)
    .fetch_all(app.store.pool())
    .await
    .unwrap()
}

#[tokio::test]
async fn a_toggle_writes_the_flags_with_its_job_and_audit() {
    let (app, _node, site, env) = app_with_environment().await;
    assert_eq!(flags(&app, &env).await, (json!(true), json!(true)));

    let job_id = job_id(patch(&app, &env, json!({"fastcgi_cache_enabled": false})).await).await;
    assert_eq!(flags(&app, &env).await, (json!(false), json!(true)));
    let job = app.job(&job_id).await;
    assert_eq!(job["job_type"], "env_cache_toggle");
    assert_eq!(job["status"], "queued");
    assert_eq!(job["environment_id"], env.as_str());
    assert_eq!(job["site_id"], site.as_str());
    let p = payload(&app, &job_id).await;
    assert_eq!(
        (&p["fastcgi_cache_enabled"], &p["redis_cache_enabled"]),
        (&json!(false), &json!(true)),
        "the payload records the whole requested state: {p}"
    );
    let rows = audit(&app, "env_cache_toggle").await;
    assert_eq!(
        rows,
        [(
            "env_cache_toggle".into(),
            env.clone(),
            "accepted".into(),
            Some(job_id.clone())
        )]
    );

    // The other flag alone; then both at once.
    job_id_of(patch(&app, &env, json!({"redis_cache_enabled": false})).await).await;
    assert_eq!(flags(&app, &env).await, (json!(false), json!(false)));
    let both = job_id_of(
        patch(
            &app,
            &env,
            json!({"fastcgi_cache_enabled": true, "redis_cache_enabled": true}),
        )
        .await,
    )
    .await;
    assert_eq!(flags(&app, &env).await, (json!(true), json!(true)));
    let p = payload(&app, &both).await;
    assert_eq!(p["fastcgi_cache_enabled"], true);
    // Cache jobs change no status (state-machines.md).
    let (_, e) = app.get_json(&format!("/api/environments/{env}")).await;
    assert_eq!(e["status"], "active");
    let (_, s) = app.get_json(&format!("/api/sites/{site}")).await;
    assert_eq!(s["status"], "active");
}

async fn job_id_of(r: reqwest::Response) -> String {
    assert_eq!(r.status(), 202);
    job_id(r).await
}

#[tokio::test]
async fn a_purge_is_accepted_with_both_caches_and_audited() {
    let (app, _node, _site, env) = app_with_environment().await;
    let id = job_id_of(purge(&app, &env).await).await;
    let job = app.job(&id).await;
    assert_eq!(job["job_type"], "cache_purge");
    let p = payload(&app, &id).await;
    assert_eq!((&p["fastcgi"], &p["redis"]), (&json!(true), &json!(true)));
    let rows = audit(&app, "cache_purge").await;
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].2, "accepted");
    assert_eq!(rows[0].3.as_deref(), Some(id.as_str()));
    // The flags stay as they were.
    assert_eq!(flags(&app, &env).await, (json!(true), json!(true)));
}

#[tokio::test]
async fn bad_toggles_name_their_fields_and_change_nothing() {
    let (app, _node, _site, env) = app_with_environment().await;
    // Empty: 400 naming both fields.
    for body in [json!({}), json!({"fastcgi_cache_enabled": null})] {
        let b = assert_field_error(
            patch(&app, &env, body).await,
            400,
            "bad_request",
            "fastcgi_cache_enabled",
        )
        .await;
        assert!(
            b["details"]["fields"]["redis_cache_enabled"].is_string(),
            "{b}"
        );
    }
    assert_field_error(
        patch(&app, &env, json!({"fastcgi_cache_enabled": "no"})).await,
        400,
        "bad_request",
        "fastcgi_cache_enabled",
    )
    .await;
    assert_field_error(
        patch(&app, &env, json!({"redis_cache_enabled": 0})).await,
        400,
        "bad_request",
        "redis_cache_enabled",
    )
    .await;
    assert_field_error(
        patch(
            &app,
            &env,
            json!({"fastcgi_cache_enabled": false, "page_cache": false}),
        )
        .await,
        400,
        "bad_request",
        "page_cache",
    )
    .await;
    // Not JSON.
    let r = app
        .client
        .patch(app.url(&format!("/api/environments/{env}/cache")))
        .body("fastcgi_cache_enabled=false")
        .header("content-type", "application/x-www-form-urlencoded")
        .send()
        .await
        .unwrap();
    assert!(r.status().is_client_error(), "{}", r.status());
    // A malformed id.
    assert_field_error(
        patch(&app, "not-a-uuid", json!({"fastcgi_cache_enabled": false})).await,
        400,
        "bad_request",
        "id",
    )
    .await;
    assert_eq!(flags(&app, &env).await, (json!(true), json!(true)));
    assert_eq!(app.count("jobs").await, 0);
}

#[tokio::test]
async fn unknown_environments_are_404_and_refusals_are_409_with_a_rejected_audit() {
    let (app, node, site, env) = app_with_environment().await;
    let unknown = uuid::Uuid::new_v4().to_string();
    assert_error(
        patch(&app, &unknown, json!({"fastcgi_cache_enabled": false})).await,
        404,
        "not_found",
    )
    .await;
    assert_error(purge(&app, &unknown).await, 404, "not_found").await;
    let unauthenticated = client()
        .patch(app.url(&format!("/api/environments/{env}/cache")))
        .json(&json!({"fastcgi_cache_enabled": false}))
        .send()
        .await
        .unwrap();
    assert_error(unauthenticated, 401, "unauthorized").await;

    // The environment failed.
    app.exec(
        "UPDATE environments SET status = 'failed' WHERE id = ?",
        &[&env],
    )
    .await;
    assert_error(
        patch(&app, &env, json!({"fastcgi_cache_enabled": false})).await,
        409,
        "conflict",
    )
    .await;
    assert_error(purge(&app, &env).await, 409, "conflict").await;
    // The site failed.
    app.exec(
        "UPDATE environments SET status = 'active' WHERE id = ?",
        &[&env],
    )
    .await;
    app.exec("UPDATE sites SET status = 'failed' WHERE id = ?", &[&site])
        .await;
    assert_error(
        patch(&app, &env, json!({"redis_cache_enabled": false})).await,
        409,
        "conflict",
    )
    .await;
    // The node is not active.
    app.exec("UPDATE sites SET status = 'active' WHERE id = ?", &[&site])
        .await;
    app.exec(
        "UPDATE nodes SET status = 'unreachable' WHERE id = ?",
        &[&node],
    )
    .await;
    assert_error(
        patch(&app, &env, json!({"fastcgi_cache_enabled": false})).await,
        409,
        "node_not_active",
    )
    .await;
    assert_error(purge(&app, &env).await, 409, "node_not_active").await;

    // Nothing was enqueued and no flag changed; every refusal is audited.
    assert_eq!(app.count("jobs").await, 0);
    assert_eq!(flags(&app, &env).await, (json!(true), json!(true)));
    let toggles = audit(&app, "env_cache_toggle").await;
    let purges = audit(&app, "cache_purge").await;
    assert_eq!((toggles.len(), purges.len()), (3, 2));
    assert!(toggles
        .iter()
        .chain(&purges)
        .all(|(_, r, result, job)| r == &env && result == "rejected" && job.is_none()));
}

/// The playbook variables of the job the engine claims next.
async fn claimed_vars(app: &TestApp, node: &str) -> (String, Value) {
    let claimed = app.state.engine.claim("w").await.unwrap().unwrap();
    let node_row = app.store.get_node(node).await.unwrap().unwrap();
    let state = &app.state;
    let vars = pressluft::jobs::kinds::extra_vars(
        &state.store,
        &state.secrets,
        &state.config,
        &claimed,
        &node_row,
    )
    .await
    .unwrap();
    (claimed.id, Value::Object(vars.vars))
}

#[tokio::test]
async fn the_jobs_read_the_flags_and_hosts_when_they_run() {
    let (app, node, _site, env) = app_with_environment().await;
    let first = job_id_of(patch(&app, &env, json!({"fastcgi_cache_enabled": false})).await).await;
    // A later request changes the intent before the first job runs: the run applies it.
    app.exec(
        "UPDATE environments SET fastcgi_cache_enabled = 1, redis_cache_enabled = 0 WHERE id = ?",
        &[&env],
    )
    .await;
    // A custom domain of the environment (issue 15's rows) is one of its hosts.
    let now = app.now();
    app.exec(
        "INSERT INTO domains (id, environment_id, hostname, tls_status, created_at, updated_at)
         VALUES (?, ?, 'shop.example.test', 'pending', ?, ?)",
        &[&uuid::Uuid::new_v4().to_string(), &env, &now, &now],
    )
    .await;
    let (id, vars) = claimed_vars(&app, &node).await;
    assert_eq!(id, first);
    let spec = &vars["node_spec"];
    assert_eq!(spec["environment_id"], env.as_str());
    assert_eq!(spec["fastcgi_cache_enabled"], true, "{spec}");
    assert_eq!(spec["redis_cache_enabled"], false, "{spec}");
    assert_eq!(vars["fastcgi_cache_enabled"], true);
    assert_eq!(spec["redis_prefix"], format!("pressluft_{env}:").as_str());
    let preview_host = format!("{}.127-0-0-1.sslip.io", &env[..8]);
    assert_eq!(spec["hosts"], json!([preview_host, "shop.example.test"]));
    assert_eq!(vars["preview_host"], preview_host.as_str());
    assert_eq!(spec["domain_blocks"], json!([]));
    assert_eq!(
        vars["php_fpm_socket"],
        format!("/run/php/pressluft-{env}.sock").as_str()
    );
}

#[tokio::test]
async fn a_purge_names_only_the_environments_hosts_and_prefix() {
    let (app, node, _site, env) = app_with_environment().await;
    let id = job_id_of(purge(&app, &env).await).await;
    let (claimed, vars) = claimed_vars(&app, &node).await;
    assert_eq!(claimed, id);
    let spec = &vars["node_spec"];
    assert_eq!(
        spec["hosts"],
        json!([format!("{}.127-0-0-1.sslip.io", &env[..8])])
    );
    assert_eq!(spec["redis_prefix"], format!("pressluft_{env}:").as_str());
    assert_eq!(
        (&spec["fastcgi"], &spec["redis"]),
        (&json!(true), &json!(true))
    );
    assert_eq!(vars["environment_id"], env.as_str());
}

/// The environment page's session: its CSRF token.
async fn page_token(app: &TestApp, env: &str) -> String {
    let page = app.text(&format!("/environments/{env}")).await;
    assert!(
        page.contains(&format!("hx-get=\"/environments/{env}/cache\"")),
        "the page loads the Caching panel"
    );
    csrf_field(&page)
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
async fn the_caching_panel_toggles_and_purges_from_the_dashboard() {
    let (app, node, _site, env) = app_with_environment().await;
    let token = page_token(&app, &env).await;
    let panel = app.text(&format!("/environments/{env}/cache")).await;
    assert!(panel.contains("data-test=\"fastcgi-state\">on<"), "{panel}");
    assert!(panel.contains("data-test=\"redis-state\">on<"), "{panel}");
    assert!(panel.contains("none yet"), "{panel}");

    // Page cache off (htmx): the panel comes back with the flag off and the job queued.
    let path = format!("/environments/{env}/cache");
    let r = htmx_post(
        &app,
        &path,
        &[("csrf_token", &token), ("fastcgi_cache_enabled", "false")],
    )
    .await;
    assert_eq!(r.status(), 200);
    let panel = r.text().await.unwrap();
    assert!(
        panel.contains("data-test=\"fastcgi-state\">off<"),
        "{panel}"
    );
    assert!(panel.contains("data-status=\"queued\""), "{panel}");
    assert!(
        panel.contains("Page cache off · object cache on"),
        "{panel}"
    );
    assert_eq!(flags(&app, &env).await, (json!(false), json!(true)));

    // Without htmx: back to the environment page. The test clock stands still: the panel
    // still shows the newest job (insertion order breaks the tie).
    let r = post_form(
        &app.client,
        app.url(&format!("/environments/{env}/cache/purge")),
        &[("csrf_token", &token)],
    )
    .await;
    assert_eq!(r.status(), 303);
    assert_eq!(
        r.headers()["location"].to_str().unwrap(),
        format!("/environments/{env}#cache")
    );
    let panel = app.text(&format!("/environments/{env}/cache")).await;
    assert!(panel.contains("Purge <span"), "{panel}");

    // Without the token: refused, nothing enqueued.
    let jobs = app.count("jobs").await;
    let r = htmx_post(&app, &path, &[("redis_cache_enabled", "false")]).await;
    assert_eq!(r.status(), 403);
    let r = htmx_post(
        &app,
        &path,
        &[("csrf_token", &token), ("redis_cache_enabled", "maybe")],
    )
    .await;
    assert_eq!(r.status(), 400);
    assert_eq!(app.count("jobs").await, jobs);

    // A refusal shows in the panel.
    app.exec(
        "UPDATE nodes SET status = 'unreachable' WHERE id = ?",
        &[&node],
    )
    .await;
    let r = htmx_post(
        &app,
        &path,
        &[("csrf_token", &token), ("redis_cache_enabled", "false")],
    )
    .await;
    assert_eq!(r.status(), 200);
    let panel = r.text().await.unwrap();
    assert!(panel.contains("data-test=\"cache-error\""), "{panel}");
    assert!(panel.contains("not active"), "{panel}");
    assert_eq!(app.count("jobs").await, jobs);
    assert_eq!(flags(&app, &env).await, (json!(false), json!(true)));
}
