//! The deploys API (api.md Environments): deploy, apply updates, list the available updates
//! (a node query), roll back to a release, a site's deploy key; validation naming its field,
//! 404s and 409s, and that a source's credentials never reach a job row, the audit or a
//! response.

use serde_json::{json, Value};

use crate::helpers::*;

const TOKEN: &str = "ghp_s3cr3tT0kenValue";

/// A logged-in app with an active node and a production environment on it.
pub async fn app_with_environment() -> (TestApp, String, String, String) {
    let app = spawn_logged_in().await;
    let node = app.insert_node("n1", "active").await;
    let site = app.insert_site("Shop", "shop").await;
    let env = app.insert_environment(&site, &node, "Production").await;
    (app, node, site, env)
}

/// Inserts a release of `env` created `minutes` after now, with `health` (and a source ref).
pub async fn insert_release(
    app: &TestApp,
    env: &str,
    name: &str,
    health: &str,
    minutes: i64,
) -> String {
    let id = uuid::Uuid::new_v4().to_string();
    let at = pressluft::clock::format_ts(
        pressluft::clock::Clock::now(&app.clock) + time::Duration::minutes(minutes),
    );
    app.exec(
        "INSERT INTO releases (id, environment_id, source_type, source_ref, path, health_status,
             created_at, updated_at)
         VALUES (?, ?, 'git', 'https://git.example.test/acme/site.git#main', ?, ?, ?, ?)",
        &[
            &id,
            env,
            &format!("/var/www/sites/x/y/releases/{name}"),
            health,
            &at,
            &at,
        ],
    )
    .await;
    id
}

/// The job row's payload.
pub async fn payload(app: &TestApp, job_id: &str) -> Value {
    let (p,): (String,) = pressluft::store::query_as("SELECT payload_json FROM jobs WHERE id = ?")
        .bind(job_id)
        .fetch_one(app.store.pool())
        .await
        .unwrap();
    serde_json::from_str(&p).unwrap()
}

/// Everything the database holds as text in jobs and the audit.
async fn jobs_and_audit(app: &TestApp) -> String {
    let rows: Vec<(String,)> = pressluft::store::query_as(
        "SELECT payload_json || COALESCE(error_message, '') || COALESCE(output_tail, '') FROM jobs
         UNION ALL SELECT id || user_id || action || resource_id || result FROM audit_logs",
    )
    .fetch_all(app.store.pool())
    .await
    .unwrap();
    rows.into_iter()
        .map(|(r,)| r)
        .collect::<Vec<_>>()
        .join("\n")
}

#[tokio::test]
async fn a_deploy_is_accepted_with_the_source_redacted_everywhere() {
    let (app, _node, _site, env) = app_with_environment().await;
    let path = format!("/api/environments/{env}/deploy");
    let source = format!("https://deploy:{TOKEN}@git.example.test/acme/site.git#v1.2.0");
    let r = app
        .post_json(&path, json!({"source_type": "git", "source_ref": source}))
        .await;
    assert_eq!(r.status(), 202);
    let text = r.text().await.unwrap();
    assert!(!text.contains(TOKEN));
    let job_id = serde_json::from_str::<Value>(&text).unwrap()["job_id"]
        .as_str()
        .unwrap()
        .to_string();
    let job = app.job(&job_id).await;
    assert_eq!(job["job_type"], "env_deploy");
    assert_eq!(job["environment_id"], env.as_str());
    assert!(!job.to_string().contains(TOKEN), "{job}");
    let p = payload(&app, &job_id).await;
    assert_eq!(p["source_type"], "git");
    assert_eq!(
        p["source_ref"],
        "https://***@git.example.test/acme/site.git#v1.2.0"
    );
    assert!(p["source_ref_secret"].is_string(), "{p}");
    assert!(!jobs_and_audit(&app).await.contains(TOKEN));
    let (_, audit) = app.get_json("/api/audit-logs").await;
    assert!(!audit.to_string().contains(TOKEN));
    assert!(audit.to_string().contains("env_deploy"), "{audit}");

    // A plain source has no secret.
    let id = post_job(
        &app,
        &path,
        json!({"source_type": "upload", "source_ref": "https://downloads.example.test/site.tar.gz"}),
    )
    .await;
    let p = payload(&app, &id).await;
    assert_eq!(p["source_type"], "upload");
    assert!(p["source_ref_secret"].is_null(), "{p}");
}

#[tokio::test]
async fn bad_deploys_and_updates_name_their_field() {
    let (app, _node, _site, env) = app_with_environment().await;
    let path = format!("/api/environments/{env}/deploy");
    let r = app
        .post_json(
            &path,
            json!({"source_type": "svn", "source_ref": "https://x.test/a.git"}),
        )
        .await;
    assert_field_error(r, 400, "bad_request", "source_type").await;
    for (kind, bad) in [
        ("git", ""),
        ("git", "https://x.test/a b.git"),
        ("git", "-oProxyCommand=x"),
        ("git", "ftp://x.test/a.git"),
        ("git", "https://x.test/a.git#../../etc"),
        ("git", "https://x.test/a.git#-x"),
        ("upload", "https://x.test/site.exe"),
        ("upload", "ftp://x.test/site.zip"),
        ("upload", "relative/site.zip"),
    ] {
        let r = app
            .post_json(&path, json!({"source_type": kind, "source_ref": bad}))
            .await;
        assert_field_error(r, 400, "bad_request", "source_ref").await;
    }
    let r = app.post_json(&path, json!({"source_type": "git"})).await;
    assert_field_error(r, 400, "bad_request", "source_ref").await;
    let r = app
        .post_json(
            &format!("/api/environments/{env}/updates"),
            json!({"scope": "everything"}),
        )
        .await;
    assert_field_error(r, 400, "bad_request", "scope").await;
    assert_eq!(app.count("jobs").await, 0);
    assert_eq!(app.count("backups").await, 0);
}

#[tokio::test]
async fn an_update_is_accepted_with_its_pre_update_backup() {
    let (app, _node, _site, env) = app_with_environment().await;
    let id = post_job(
        &app,
        &format!("/api/environments/{env}/updates"),
        json!({"scope": "plugins"}),
    )
    .await;
    let job = app.job(&id).await;
    assert_eq!(job["job_type"], "env_update");
    let p = payload(&app, &id).await;
    assert_eq!(p["scope"], "plugins");
    let backup = p["pre_backup_id"].as_str().unwrap();
    let (status, b) = app.get_json(&format!("/api/backups/{backup}")).await;
    assert_eq!(status, 200);
    assert_eq!(
        (b["status"].as_str(), b["backup_scope"].as_str()),
        (Some("pending"), Some("full"))
    );
}

#[tokio::test]
async fn unknown_ids_are_404() {
    let (app, _node, _site, env) = app_with_environment().await;
    let none = uuid::Uuid::new_v4().to_string();
    let deploy = json!({"source_type": "git", "source_ref": "https://x.test/a.git"});
    let r = app
        .post_json(&format!("/api/environments/{none}/deploy"), deploy)
        .await;
    assert_error(r, 404, "not_found").await;
    let r = app
        .post_json(
            &format!("/api/environments/{none}/updates"),
            json!({"scope": "all"}),
        )
        .await;
    assert_error(r, 404, "not_found").await;
    let r = app.get(&format!("/api/environments/{none}/updates")).await;
    assert_error(r, 404, "not_found").await;
    let r = app
        .post_empty(&format!("/api/environments/{env}/releases/{none}/rollback"))
        .await;
    assert_error(r, 404, "not_found").await;
    let r = app
        .post_empty(&format!("/api/environments/{env}/releases/nope/rollback"))
        .await;
    assert_field_error(r, 400, "bad_request", "release_id").await;
    let r = app.get(&format!("/api/sites/{none}/deploy-key")).await;
    assert_error(r, 404, "not_found").await;
    // A release of another environment is not this one's.
    let site2 = app.insert_site("Blog", "blog").await;
    let node = app.insert_node("n2", "active").await;
    let env2 = app.insert_environment(&site2, &node, "Production").await;
    let other = insert_release(&app, &env2, "r1", "healthy", 0).await;
    let r = app
        .post_empty(&format!(
            "/api/environments/{env}/releases/{other}/rollback"
        ))
        .await;
    assert_error(r, 404, "not_found").await;
}

#[tokio::test]
async fn failed_environments_and_inactive_nodes_are_409() {
    let (app, node, _site, env) = app_with_environment().await;
    let deploy = json!({"source_type": "git", "source_ref": "https://x.test/a.git"});
    let path = format!("/api/environments/{env}/deploy");
    app.exec(
        "UPDATE nodes SET status = 'unreachable' WHERE id = ?",
        &[&node],
    )
    .await;
    assert_error(
        app.post_json(&path, deploy.clone()).await,
        409,
        "node_not_active",
    )
    .await;
    let r = app
        .post_json(
            &format!("/api/environments/{env}/updates"),
            json!({"scope": "all"}),
        )
        .await;
    assert_error(r, 409, "node_not_active").await;
    app.exec("UPDATE nodes SET status = 'active' WHERE id = ?", &[&node])
        .await;
    app.exec(
        "UPDATE environments SET status = 'failed' WHERE id = ?",
        &[&env],
    )
    .await;
    assert_error(app.post_json(&path, deploy).await, 409, "conflict").await;
    let r = app.get(&format!("/api/environments/{env}/updates")).await;
    assert_error(r, 409, "environment_not_active").await;
    assert_eq!(app.count("jobs").await, 0);
}

#[tokio::test]
async fn rollbacks_go_only_to_kept_healthy_non_current_releases() {
    let (app, _node, _site, env) = app_with_environment().await;
    // Seven releases, oldest first; the newest five are kept.
    let mut ids = Vec::new();
    for i in 0..7 {
        let health = if i == 5 { "unhealthy" } else { "healthy" };
        ids.push(insert_release(&app, &env, &format!("r{i}"), health, i).await);
    }
    app.exec(
        "UPDATE environments SET current_release_id = ? WHERE id = ?",
        &[&ids[6], &env],
    )
    .await;
    let path = |r: &str| format!("/api/environments/{env}/releases/{r}/rollback");
    let current = assert_error(app.post_empty(&path(&ids[6])).await, 409, "conflict").await;
    assert!(current["message"].as_str().unwrap().contains("current"));
    let unhealthy = assert_error(app.post_empty(&path(&ids[5])).await, 409, "conflict").await;
    assert!(unhealthy["message"].as_str().unwrap().contains("healthy"));
    let pruned = assert_error(app.post_empty(&path(&ids[0])).await, 409, "conflict").await;
    assert!(pruned["message"].as_str().unwrap().contains("kept"));

    let id = post_job(&app, &path(&ids[4]), Value::Null).await;
    let job = app.job(&id).await;
    assert_eq!(job["job_type"], "release_rollback");
    let p = payload(&app, &id).await;
    assert_eq!(p["target_release_id"], ids[4].as_str());
    assert_eq!(p["failed_release_id"], ids[6].as_str());
    assert!(p["restore_backup_id"].is_null(), "{p}");

    // The releases list: newest first, with the live pair, the ref redacted.
    app.exec(
        "UPDATE releases SET source_ref = ? WHERE id = ?",
        &[
            &format!("https://u:{TOKEN}@git.example.test/a.git"),
            &ids[6],
        ],
    )
    .await;
    let (status, list) = app
        .get_json(&format!("/api/environments/{env}/releases"))
        .await;
    assert_eq!(status, 200);
    assert_eq!(list[0]["id"], ids[6].as_str());
    assert_eq!(list[0]["state_version"], 1);
    assert!(list[0]["updated_at"].is_string());
    assert!(!list.to_string().contains(TOKEN), "{list}");
}

#[tokio::test]
async fn the_deploy_key_is_stable_per_site() {
    let (app, _node, site, _env) = app_with_environment().await;
    let site2 = app.insert_site("Blog", "blog").await;
    let key = |s: String| {
        let app = &app;
        async move {
            let (status, body) = app.get_json(&format!("/api/sites/{s}/deploy-key")).await;
            assert_eq!(status, 200);
            let keys: Vec<&String> = body.as_object().unwrap().keys().collect();
            assert_eq!(keys, ["public_key"]);
            body["public_key"].as_str().unwrap().to_string()
        }
    };
    let first = key(site.clone()).await;
    assert!(first.starts_with("ssh-ed25519 "), "{first}");
    assert_eq!(key(site.clone()).await, first);
    assert_ne!(key(site2).await, first);
}

#[tokio::test]
async fn the_updates_query_is_502_when_the_node_cannot_be_reached() {
    let (app, node, _site, env) = app_with_environment().await;
    // Nothing listens on port 1 of this machine.
    app.exec(
        "UPDATE nodes SET hostname = '127.0.0.1', ssh_port = 1 WHERE id = ?",
        &[&node],
    )
    .await;
    let started = std::time::Instant::now();
    let r = app.get(&format!("/api/environments/{env}/updates")).await;
    let body = assert_error(r, 502, "node_unreachable").await;
    assert!(started.elapsed() < std::time::Duration::from_secs(12));
    let message = body["message"].as_str().unwrap();
    assert!(
        !message.contains("ssh:") && !message.contains("refused"),
        "{message}"
    );
}
