//! Sites and environments through the HTTP API, with a scripted runner standing in for Ansible:
//! validation and error codes, placement and preview URLs, the transactions that create rows,
//! jobs and audit rows, and the state machine around `site_create` and `env_create` (the
//! control plane's own logic; the real node work is the end-to-end test).

use pressluft::jobs::{JobErrorCode, RunOutcome};
use serde_json::{json, Value};

use pressluft::jobs::kinds::ResolvedVars;
use pressluft::store::JobRecord;

use crate::helpers::{assert_error, assert_field_error, column, job_id, TestApp, ADMIN_EMAIL};
use crate::stand_in::{StandIn, Step};

fn baseline() -> Value {
    json!({"release_path": "/x", "table_prefix": "wp_", "drift_baseline": {
        "tables": {"wp_posts": {"rows": 3, "checksum": "123"}, "wp_wc_orders": null},
        "paths": {"wp-content/uploads": "sha256:00"}}})
}

/// Runs of a type answer with the next outcome scripted for it, success with `{}` without one.
async fn app_with(script: Vec<(&'static str, RunOutcome)>) -> (TestApp, String) {
    let steps = script
        .into_iter()
        .map(|(job_type, outcome)| (job_type, Step::Answer(outcome)))
        .collect();
    let (app, _) = StandIn::new().script(steps).spawn().await;
    app.login().await;
    let node = app.insert_node("edge", "active").await;
    (app, node)
}

async fn create_site(app: &TestApp, slug: &str) -> (String, String) {
    let job = job_id(
        app.post_json("/api/sites", json!({"name": " Shop ", "slug": slug}))
            .await,
    )
    .await;
    let (_, j) = app.get_json(&format!("/api/jobs/{job}")).await;
    (j["site_id"].as_str().unwrap().to_string(), job)
}

/// A site just created through the API (its `site_create` not run yet), with the WordPress
/// source set: the shared start of the create-then-clone tests below.
struct NewSite {
    app: TestApp,
    node: String,
    site_id: String,
    create_job: String,
    prod_id: String,
}

async fn new_site() -> NewSite {
    let (app, node) = app_with(vec![(
        "env_create",
        RunOutcome::Succeeded { result: baseline() },
    )])
    .await;
    let r = app.put_wordpress_source("dir:/usr/share/wordpress").await;
    assert_eq!(r.status(), 200);
    let (site_id, create_job) = create_site(&app, "shop").await;
    let prod_id = environment_ids(&app, &site_id).await.remove(0);
    NewSite {
        app,
        node,
        site_id,
        create_job,
        prod_id,
    }
}

/// The ids of a site's environments, in the API's order (production first).
async fn environment_ids(app: &TestApp, site_id: &str) -> Vec<String> {
    let (_, envs) = app
        .get_json(&format!("/api/sites/{site_id}/environments"))
        .await;
    column(&envs, "id").into_iter().map(String::from).collect()
}

/// [`new_site`] plus a staging clone submitted (one second later) before `site_create` ran.
struct PendingClone {
    site: NewSite,
    clone_job: String,
    staging_id: String,
}

async fn pending_clone() -> PendingClone {
    let site = new_site().await;
    site.app.clock.advance(time::Duration::seconds(1));
    let clone_job = job_id(
        site.app
            .post_json(
                &format!("/api/sites/{}/environments", site.site_id),
                json!({"name": "Staging", "slug": "staging", "environment_type": "staging",
                       "promotion_preset": "commerce-protect"}),
            )
            .await,
    )
    .await;
    let staging_id = environment_ids(&site.app, &site.site_id).await.remove(1);
    PendingClone {
        site,
        clone_job,
        staging_id,
    }
}

/// The playbook variables of a claimed job.
async fn vars_of(app: &TestApp, job: &JobRecord, node: &str) -> ResolvedVars {
    let state = &app.state;
    let node_row = app.store.get_node(node).await.unwrap().unwrap();
    pressluft::jobs::kinds::extra_vars(&app.store, &state.secrets, &state.config, job, &node_row)
        .await
        .unwrap()
}

/// [`pending_clone`] with `site_create` claimed (by worker w1), its release name and variables.
async fn site_create_claimed() -> (PendingClone, JobRecord, String, ResolvedVars) {
    let flow = pending_clone().await;
    let app = &flow.site.app;
    let first = app.state.engine.claim("w1").await.unwrap().unwrap();
    let payload: Value = serde_json::from_str(&first.payload_json).unwrap();
    let release_name = payload["release_name"].as_str().unwrap().to_string();
    let vars = vars_of(app, &first, &flow.site.node).await;
    (flow, first, release_name, vars)
}

/// [`site_create_claimed`] after `site_create` ran, and the clone claimed one second later.
async fn clone_claimed() -> (PendingClone, String, ResolvedVars, JobRecord) {
    let (flow, first, release_name, create_vars) = site_create_claimed().await;
    let app = &flow.site.app;
    app.state.engine.execute(first, "w1").await.unwrap();
    app.clock.advance(time::Duration::seconds(1));
    let second = app.state.engine.claim("w1").await.unwrap().unwrap();
    (flow, release_name, create_vars, second)
}

#[tokio::test]
async fn a_new_site_deploys_its_production_environment() {
    let NewSite {
        app,
        node,
        site_id,
        create_job,
        prod_id,
    } = new_site().await;
    let (_, site) = app.get_json(&format!("/api/sites/{site_id}")).await;
    assert_eq!(
        (site["name"].as_str(), site["slug"].as_str()),
        (Some("Shop"), Some("shop"))
    );
    assert_eq!(site["status"], "deploying");
    let (_, envs) = app
        .get_json(&format!("/api/sites/{site_id}/environments"))
        .await;
    let prod = envs[0].clone();
    assert_eq!(site["primary_environment_id"], prod_id.as_str());
    assert_eq!(
        (
            prod["environment_type"].as_str(),
            prod["slug"].as_str(),
            prod["name"].as_str()
        ),
        (Some("production"), Some("production"), Some("Production"))
    );
    assert_eq!(prod["status"], "deploying");
    assert_eq!(prod["node_id"], node.as_str());
    assert_eq!(prod["promotion_preset"], "content-protect");
    assert_eq!(
        (
            prod["fastcgi_cache_enabled"].as_bool(),
            prod["redis_cache_enabled"].as_bool()
        ),
        (Some(true), Some(true))
    );
    assert_eq!(
        prod["preview_url"],
        format!("http://{}.127-0-0-1.sslip.io", &prod_id[..8]).as_str()
    );
    let (_, job) = app.get_json(&format!("/api/jobs/{create_job}")).await;
    assert_eq!(
        (job["job_type"].as_str(), job["environment_id"].as_str()),
        (Some("site_create"), Some(prod_id.as_str()))
    );
}

/// A clone submitted while site_create has not run yet is accepted and waits: the first claim
/// is site_create, with its release name fixed; the clone cannot start beside it.
#[tokio::test]
async fn a_clone_submitted_before_site_create_ran_waits_for_it() {
    let PendingClone {
        site, staging_id, ..
    } = pending_clone().await;
    let NewSite {
        app,
        site_id,
        create_job,
        prod_id,
        ..
    } = &site;
    let (_, envs) = app
        .get_json(&format!("/api/sites/{site_id}/environments"))
        .await;
    assert_eq!(envs.as_array().unwrap().len(), 2);
    let staging = envs[1].clone();
    assert_eq!(staging["status"], "cloning");
    assert_eq!(staging["source_environment_id"], prod_id.as_str());
    assert_eq!(staging["environment_type"], "staging");
    assert_ne!(staging_id[..8], prod_id[..8]);

    let state = &app.state;
    let first = state.engine.claim("w1").await.unwrap().unwrap();
    assert_eq!(&first.id, create_job);
    assert!(
        state.engine.claim("w2").await.unwrap().is_none(),
        "one job per site"
    );
    let payload: Value = serde_json::from_str(&first.payload_json).unwrap();
    let release_name = payload["release_name"].as_str().unwrap().to_string();
    assert!(release_name.ends_with(&create_job[..8]), "{release_name}");
    assert_eq!(payload["site_title"], "Shop");
    assert_eq!(payload["wp_admin_email"], ADMIN_EMAIL);
}

/// The playbook's variables follow the contract; secrets are listed for masking.
#[tokio::test]
async fn site_create_variables_follow_the_contract_and_list_the_secrets() {
    let (flow, _, release_name, vars) = site_create_claimed().await;
    let NewSite {
        site_id, prod_id, ..
    } = &flow.site;
    let v = &vars.vars;
    assert_eq!(
        v["env_root"],
        format!("/var/www/sites/{site_id}/{prod_id}").as_str()
    );
    assert_eq!(v["env_user"], format!("pl_{}", &prod_id[..8]).as_str());
    assert_eq!(v["db_name"], format!("wp_{}", &prod_id[..8]).as_str());
    assert_eq!(v["redis_prefix"], format!("pressluft_{prod_id}:").as_str());
    assert_eq!(
        v["release_path"],
        format!("/var/www/sites/{site_id}/{prod_id}/releases/{release_name}").as_str()
    );
    assert_eq!(
        v["preview_host"],
        format!("{}.127-0-0-1.sslip.io", &prod_id[..8]).as_str()
    );
    assert_eq!(v["wordpress_source"], "dir:/usr/share/wordpress");
    assert_eq!(v["wp_salts"].as_array().unwrap().len(), 8);
    let password = v["db_password"].as_str().unwrap();
    assert!(password.len() >= 32);
    assert!(
        vars.secrets.iter().any(|s| s == password),
        "the password is masked"
    );
    assert_eq!(v["redis_user"], format!("pressluft_{prod_id}").as_str());
    let redis_password = v["redis_password"].as_str().unwrap();
    assert!(redis_password.len() >= 32 && redis_password != password);
    assert!(
        vars.secrets.iter().any(|s| s == redis_password),
        "the Redis password is masked"
    );
    assert_eq!(vars.secrets.len(), 10);
}

#[tokio::test]
async fn site_create_success_activates_the_site_and_records_its_release() {
    let (flow, first, release_name, _) = site_create_claimed().await;
    let NewSite {
        app,
        site_id,
        create_job,
        prod_id,
        ..
    } = &flow.site;
    app.state.engine.execute(first, "w1").await.unwrap();
    let (_, site) = app.get_json(&format!("/api/sites/{site_id}")).await;
    assert_eq!(site["status"], "active");
    let (_, prod) = app.get_json(&format!("/api/environments/{prod_id}")).await;
    assert_eq!(prod["status"], "active");
    let (_, releases) = app
        .get_json(&format!("/api/environments/{prod_id}/releases"))
        .await;
    assert_eq!(releases.as_array().unwrap().len(), 1);
    assert_eq!(prod["current_release_id"], releases[0]["id"]);
    assert_eq!(releases[0]["source_type"], "upload");
    assert_eq!(releases[0]["source_ref"], "dir:/usr/share/wordpress");
    assert_eq!(releases[0]["health_status"], "unknown");
    assert_eq!(releases[0]["job_id"], create_job.as_str());
    assert!(releases[0]["path"]
        .as_str()
        .unwrap()
        .ends_with(&release_name));
}

/// Now the clone runs: the site is cloning meanwhile; its variables point at the source and
/// it has its own credentials.
#[tokio::test]
async fn the_clone_runs_after_site_create_with_its_own_credentials() {
    let (flow, _, create_vars, second) = clone_claimed().await;
    let (app, node) = (&flow.site.app, &flow.site.node);
    let (site_id, prod_id) = (&flow.site.site_id, &flow.site.prod_id);
    let v = &create_vars.vars;
    assert_eq!(second.id, flow.clone_job);
    let (_, site) = app.get_json(&format!("/api/sites/{site_id}")).await;
    assert_eq!(site["status"], "cloning");
    let (_, prod) = app.get_json(&format!("/api/environments/{prod_id}")).await;
    let (_, staging) = app
        .get_json(&format!("/api/environments/{}", flow.staging_id))
        .await;
    let (_, releases) = app
        .get_json(&format!("/api/environments/{prod_id}/releases"))
        .await;
    let vars = vars_of(app, &second, node).await;
    assert_eq!(vars.vars["source_canonical_url"], prod["preview_url"]);
    assert_eq!(vars.vars["canonical_url"], staging["preview_url"]);
    assert_eq!(
        vars.vars["source_db_name"],
        format!("wp_{}", &prod_id[..8]).as_str()
    );
    assert_eq!(vars.vars["source_release_path"], releases[0]["path"]);
    assert_eq!(
        vars.vars["production_db_name"],
        format!("wp_{}", &prod_id[..8]).as_str()
    );
    assert_eq!(vars.vars["drift_tables"].as_array().unwrap().len(), 18);
    assert_ne!(
        vars.vars["db_password"], v["db_password"],
        "own credentials"
    );
    assert_ne!(vars.vars["redis_password"], v["redis_password"]);
    assert_eq!(
        vars.vars["redis_user"],
        format!("pressluft_{}", flow.staging_id).as_str()
    );
}

/// After the clone: everything is active, the clone has its baseline and release, both
/// creates are audited, and the pages list the releases.
#[tokio::test]
async fn a_finished_clone_records_its_baseline_audit_and_releases() {
    let (flow, release_name, _, second) = clone_claimed().await;
    let NewSite { app, site_id, .. } = &flow.site;
    let staging_id = &flow.staging_id;
    app.state.engine.execute(second, "w1").await.unwrap();

    let (_, site) = app.get_json(&format!("/api/sites/{site_id}")).await;
    assert_eq!(site["status"], "active");
    let (_, staging) = app
        .get_json(&format!("/api/environments/{staging_id}"))
        .await;
    assert_eq!(staging["status"], "active");
    assert_eq!(staging["drift_status"], "unknown");
    let (_, rel) = app
        .get_json(&format!("/api/environments/{staging_id}/releases"))
        .await;
    assert_eq!(rel[0]["notes"], "cloned from Production");
    assert_eq!(rel[0]["source_ref"], "dir:/usr/share/wordpress");
    let (baseline_tables, preset): (String, String) = pressluft::store::query_as(
        "SELECT db_checksums_json, promotion_preset FROM drift_checks WHERE environment_id = ? AND is_baseline = 1",
    )
    .bind(staging_id)
    .fetch_one(app.store.pool())
    .await
    .unwrap();
    assert_eq!(preset, "commerce-protect");
    let tables: Value = serde_json::from_str(&baseline_tables).unwrap();
    assert_eq!(tables["wp_posts"]["rows"], 3);
    assert!(tables["wp_wc_orders"].is_null());

    // Audit: both creates accepted, then succeeded.
    let (_, audit) = app.get_json("/api/audit-logs").await;
    let (actions, results) = (column(&audit, "action"), column(&audit, "result"));
    let rows: Vec<String> = actions
        .iter()
        .zip(results)
        .map(|(a, r)| format!("{a} {r}"))
        .collect();
    assert!(rows.contains(&"site_create succeeded".into()), "{rows:?}");
    assert!(rows.contains(&"env_create succeeded".into()), "{rows:?}");
    assert!(
        rows.contains(&"settings_update succeeded".into()),
        "{rows:?}"
    );

    let (_, list) = app.get_json("/api/sites").await;
    assert_eq!(list.as_array().unwrap().len(), 1);

    // The site page lists both environments' releases; the environment page its own.
    let html = app.text(&format!("/sites/{site_id}")).await;
    assert!(
        html.contains("cloned from Production") && html.contains(&release_name),
        "{html}"
    );
    assert_eq!(html.matches("status-active\">current").count(), 2);
    let html = app.text(&format!("/environments/{staging_id}")).await;
    assert!(html.contains("cloned from Production") && html.contains("env-staging"));
}

#[tokio::test]
async fn bad_site_input_is_refused_and_nothing_is_created() {
    let (app, _) = app_with(vec![]).await;
    for (body, field) in [
        (json!({"name": "", "slug": "a"}), "name"),
        (json!({"name": "x".repeat(101), "slug": "a"}), "name"),
        (json!({"name": "A", "slug": "-a"}), "slug"),
        (json!({"name": "A", "slug": "Upper"}), "slug"),
        (json!({"name": "A", "slug": "x".repeat(41)}), "slug"),
    ] {
        assert_field_error(
            app.post_json("/api/sites", body).await,
            400,
            "bad_request",
            field,
        )
        .await;
    }
    assert_error(
        app.post_json("/api/sites", json!({"name": "A", "slug": "a", "x": 1}))
            .await,
        400,
        "bad_request",
    )
    .await;
    assert_error(
        app.post_json("/api/sites", json!({"name": "A"})).await,
        400,
        "bad_request",
    )
    .await;

    create_site(&app, "taken").await;
    app.clock.advance(time::Duration::seconds(1));
    let e = assert_error(
        app.post_json("/api/sites", json!({"name": "B", "slug": "taken"}))
            .await,
        409,
        "conflict",
    )
    .await;
    assert!(e["message"].as_str().unwrap().contains("taken"));
    assert_eq!(app.count("sites").await, 1);
    assert_eq!(app.count("environments").await, 1);
    assert_eq!(app.count("jobs").await, 1);
    let (_, audit) = app.get_json("/api/audit-logs?resource_id=taken").await;
    assert_eq!(audit[0]["result"], "rejected");
}

#[tokio::test]
async fn no_eligible_node_is_node_not_active() {
    let (app, _) = StandIn::new().spawn().await;
    app.login().await;
    app.insert_node("down", "unreachable").await;
    assert_error(
        app.post_json("/api/sites", json!({"name": "A", "slug": "a"}))
            .await,
        409,
        "node_not_active",
    )
    .await;
    assert_eq!(app.count("sites").await, 0);
    assert_eq!(app.count("environments").await, 0);
    assert_eq!(app.count("jobs").await, 0);
}

#[tokio::test]
async fn bad_environment_input_is_refused() {
    let (app, _) = app_with(vec![]).await;
    let (site_id, _) = create_site(&app, "one").await;
    app.state.engine.run_until_idle("w").await.unwrap();
    app.clock.advance(time::Duration::seconds(1));
    let (other_site, _) = create_site(&app, "two").await;
    let (_, other_envs) = app
        .get_json(&format!("/api/sites/{other_site}/environments"))
        .await;
    let foreign = other_envs[0]["id"].as_str().unwrap().to_string();
    let path = format!("/api/sites/{site_id}/environments");
    let base = json!({"name": "Staging", "slug": "staging", "environment_type": "staging", "promotion_preset": "content-protect"});
    let with = |k: &str, v: Value| {
        let mut b = base.clone();
        b[k] = v;
        b
    };
    for (body, field) in [
        (with("name", json!("")), "name"),
        (with("slug", json!("no_underscores")), "slug"),
        (
            with("environment_type", json!("preview")),
            "environment_type",
        ),
        (
            with("promotion_preset", json!("everything")),
            "promotion_preset",
        ),
        (with("promotion_preset", Value::Null), "promotion_preset"),
        (
            with("source_environment_id", json!(foreign)),
            "source_environment_id",
        ),
        (
            with(
                "source_environment_id",
                json!(uuid::Uuid::new_v4().to_string()),
            ),
            "source_environment_id",
        ),
        (
            with("source_environment_id", json!("not-a-uuid")),
            "source_environment_id",
        ),
    ] {
        assert_field_error(app.post_json(&path, body).await, 400, "bad_request", field).await;
    }
    let unknown = format!("/api/sites/{}/environments", uuid::Uuid::new_v4());
    for (to, body, status, code) in [
        (&unknown, base.clone(), 404, "not_found"),
        (
            &path,
            with("environment_type", json!("production")),
            409,
            "conflict",
        ),
        (&path, with("slug", json!("production")), 409, "conflict"),
    ] {
        assert_error(app.post_json(to, body).await, status, code).await;
    }
    assert_eq!(app.count("environments").await, 2, "nothing half-created");

    // A failed source is refused.
    app.exec(
        "UPDATE environments SET status = 'failed' WHERE site_id = ?",
        &[&site_id],
    )
    .await;
    assert_error(app.post_json(&path, base.clone()).await, 409, "conflict").await;
    assert_eq!(app.count("environments").await, 2);
    let (_, audit) = app
        .get_json(&format!("/api/audit-logs?resource_id={site_id}"))
        .await;
    let rejected = audit
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a["result"] == "rejected")
        .count();
    assert_eq!(rejected, 3, "{audit}");
}

#[tokio::test]
async fn failures_and_cancels_follow_the_state_machine() {
    let fail = |code| RunOutcome::Failed {
        code,
        message: "scripted".into(),
        result: None,
    };
    let (app, _) = app_with(vec![
        ("site_create", fail(JobErrorCode::AnsibleSyntaxError)),
        ("env_create", fail(JobErrorCode::PreconditionFailed)),
        ("env_create", fail(JobErrorCode::AnsibleSyntaxError)),
    ])
    .await;
    let engine = &app.state.engine;
    // site_create failing: the site and its environment exist only for it -> both failed.
    let (failed_site, _) = create_site(&app, "broken").await;
    engine.run_until_idle("w").await.unwrap();
    let (_, s) = app.get_json(&format!("/api/sites/{failed_site}")).await;
    assert_eq!(s["status"], "failed");
    let (_, envs) = app
        .get_json(&format!("/api/sites/{failed_site}/environments"))
        .await;
    assert_eq!(envs[0]["status"], "failed");

    app.clock.advance(time::Duration::seconds(1));
    let (site_id, _) = create_site(&app, "fine").await;
    engine.run_until_idle("w").await.unwrap();
    let path = format!("/api/sites/{site_id}/environments");
    let body = |slug: &str| json!({"name": slug, "slug": slug, "environment_type": "clone", "promotion_preset": "content-protect"});
    let env_status = |slug: &'static str| {
        let app = &app;
        let site_id = site_id.clone();
        async move {
            let (_, envs) = app
                .get_json(&format!("/api/sites/{site_id}/environments"))
                .await;
            envs.as_array()
                .unwrap()
                .iter()
                .find(|e| e["slug"] == slug)
                .unwrap()["status"]
                .as_str()
                .unwrap()
                .to_string()
        }
    };
    let site_status = || async {
        app.get_json(&format!("/api/sites/{site_id}")).await.1["status"]
            .as_str()
            .unwrap()
            .to_string()
    };

    // A pre-mutation failure: the new environment failed, the site is active again.
    app.clock.advance(time::Duration::seconds(1));
    job_id(app.post_json(&path, body("pre")).await).await;
    engine.run_until_idle("w").await.unwrap();
    assert_eq!(env_status("pre").await, "failed");
    assert_eq!(site_status().await, "active");

    // Cancelled while queued: the new environment failed, the site keeps its status.
    app.clock.advance(time::Duration::seconds(1));
    let queued = job_id(app.post_json(&path, body("cancelled")).await).await;
    let r = app.post_empty(&format!("/api/jobs/{queued}/cancel")).await;
    assert_eq!(r.status(), 200);
    assert_eq!(env_status("cancelled").await, "failed");
    assert_eq!(site_status().await, "active");

    // A run that changed things and failed: environment and site failed.
    app.clock.advance(time::Duration::seconds(1));
    job_id(app.post_json(&path, body("late")).await).await;
    engine.run_until_idle("w").await.unwrap();
    assert_eq!(env_status("late").await, "failed");
    assert_eq!(site_status().await, "failed");

    // A failed site's environments cannot be cloned from.
    app.clock.advance(time::Duration::seconds(1));
    let r = app.post_json(&path, body("again")).await;
    assert_eq!(r.status(), 409);
}

#[tokio::test]
async fn wordpress_settings_are_validated_and_audited() {
    let (app, _) = app_with(vec![]).await;
    let (_, s) = app.get_json("/_admin/settings").await;
    assert_eq!(
        s["settings"]["wordpress_source"],
        "https://wordpress.org/latest.tar.gz"
    );
    assert!(s["settings"]["wordpress_source_sha256"].is_null());
    assert_eq!(s["secrets"]["dns01_credentials_json"]["set"], false);
    let put = |body: Value| {
        let app = &app;
        async move {
            app.client
                .put(app.url("/_admin/settings/wordpress"))
                .json(&body)
                .send()
                .await
                .unwrap()
        }
    };
    assert_field_error(
        put(json!({"wordpress_source": "ftp://x/y"})).await,
        400,
        "settings_invalid",
        "wordpress_source",
    )
    .await;
    assert_field_error(
        put(json!({"wordpress_source_sha256": "xyz"})).await,
        400,
        "settings_invalid",
        "wordpress_source_sha256",
    )
    .await;
    assert_error(put(json!({"colour": "red"})).await, 400, "bad_request").await;
    let (_, s) = app.get_json("/_admin/settings").await;
    assert_eq!(
        s["settings"]["wordpress_source"], "https://wordpress.org/latest.tar.gz",
        "nothing saved"
    );

    let sha = "AB".repeat(32);
    let r = put(json!({"wordpress_source": "https://mirror.test/wp.tar.gz", "wordpress_source_sha256": sha})).await;
    assert_eq!(r.status(), 200);
    let body: Value = r.json().await.unwrap();
    assert_eq!(
        body["settings"]["wordpress_source_sha256"],
        "ab".repeat(32).as_str()
    );
    // Replacing the group with only a source clears the checksum (a null setting has no row).
    assert_eq!(
        put(json!({"wordpress_source": "dir:/usr/share/wordpress"}))
            .await
            .status(),
        200
    );
    let (_, s) = app.get_json("/_admin/settings").await;
    assert_eq!(
        s["settings"]["wordpress_source"],
        "dir:/usr/share/wordpress"
    );
    assert!(s["settings"]["wordpress_source_sha256"].is_null());
    let (_, audit) = app.get_json("/api/audit-logs?resource_type=settings").await;
    assert_eq!(audit.as_array().unwrap().len(), 2);
    assert_eq!(audit[0]["resource_id"], "wordpress");

    let anonymous = crate::helpers::client();
    let r = anonymous
        .get(app.url("/_admin/settings"))
        .send()
        .await
        .unwrap();
    assert_error(r, 401, "unauthorized").await;
}
