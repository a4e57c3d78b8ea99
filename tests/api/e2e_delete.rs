//! Deleting for real on this machine (issue 13), the last step of `e2e_sites.rs`'s flow: it
//! replaces the test-only tests/e2e/remove-site.sh there. Through the API: the staging
//! environment first (production keeps serving), then the whole site (production, the clone
//! and the refused "broken" environment); each time nothing of the deleted environments is
//! left on the node — Linux user, PHP-FPM pool, server block, database, database user, Redis
//! ACL user and keys, directory — and each environment with a release has its final full
//! backup `completed`, its artifacts on disk (local storage). Then a new site with the old
//! slug is created (and deleted again, so the node is clean for the steps after this one).
//! Last, the browser-created site is deleted from the dashboard with the slug typed out
//! (tests/browser/delete.mjs).

use std::path::Path;
use std::process::Command;

use serde_json::{json, Value};

use crate::helpers::{get_with, host, run, succeeded, visitor, TestApp};

const REDIS_ADMIN: &str = "/usr/local/lib/pressluft/redis-admin";

fn sql(query: &str) -> String {
    run("mysql", &["--batch", "--skip-column-names", "-e", query])
        .trim()
        .to_string()
}

async fn environments(app: &TestApp, site_id: &str) -> Vec<Value> {
    let (_, envs) = app
        .get_json(&format!(
            "/api/sites/{site_id}/environments?include_deleted=true"
        ))
        .await;
    envs.as_array().unwrap().clone()
}

/// `DELETE path`, accepted; the job, once it succeeded.
async fn delete(app: &TestApp, path: &str) -> Value {
    let r = app.client.delete(app.url(path)).send().await.unwrap();
    assert_eq!(r.status(), 202, "DELETE {path}");
    let job_id = crate::helpers::job_id(r).await;
    succeeded(app, &job_id).await
}

/// Nothing of environment `env` of `site` is left on the node.
pub(crate) fn assert_gone(site: &str, env: &str) {
    let u8 = &env[..8];
    let user = format!("pl_{u8}");
    assert!(
        !Command::new("id")
            .arg(&user)
            .output()
            .unwrap()
            .status
            .success(),
        "user {user} is gone"
    );
    assert!(
        !Command::new("getent")
            .args(["group", &user])
            .output()
            .unwrap()
            .status
            .success(),
        "group {user} is gone"
    );
    for php in std::fs::read_dir("/etc/php").unwrap() {
        let pool = php
            .unwrap()
            .path()
            .join(format!("fpm/pool.d/pressluft-{env}.conf"));
        assert!(!pool.exists(), "{} is gone", pool.display());
    }
    let vhost = format!("/etc/nginx/sites-enabled/pressluft-env-{env}.conf");
    assert!(!Path::new(&vhost).exists(), "{vhost} is gone");
    let db = format!("wp_{u8}");
    assert!(
        !sql("SHOW DATABASES").lines().any(|l| l == db),
        "database {db} is gone"
    );
    assert_eq!(
        sql(&format!(
            "SELECT COUNT(*) FROM mysql.user WHERE user = '{db}'"
        )),
        "0",
        "database user {db} is gone"
    );
    let acl = format!("/etc/redis/acl.d/env-{env}.acl");
    assert!(!Path::new(&acl).exists(), "{acl} is gone");
    let users = run(REDIS_ADMIN, &["acl", "users"]);
    assert!(
        !users
            .lines()
            .any(|u| u.trim() == format!("pressluft_{env}")),
        "Redis ACL user of {env} is gone: {users}"
    );
    let keys = run(
        REDIS_ADMIN,
        &["--scan", "--pattern", &format!("pressluft_{env}:*")],
    );
    assert!(
        keys.trim().is_empty(),
        "Redis keys of {env} are gone: {keys}"
    );
    let dir = format!("/var/www/sites/{site}/{env}");
    assert!(std::fs::symlink_metadata(&dir).is_err(), "{dir} is gone");
}

/// The environment's final backup (its newest full one) is completed with its artifacts kept.
async fn assert_final_backup(app: &TestApp, env: &str) {
    let (status, backups) = app
        .get_json(&format!("/api/environments/{env}/backups"))
        .await;
    assert_eq!(
        status, 200,
        "the backups of a deleted environment stay listed"
    );
    let last = backups
        .as_array()
        .unwrap()
        .iter()
        .find(|b| b["backup_scope"] == "full")
        .unwrap_or_else(|| panic!("a final backup of {env}: {backups}"));
    assert_eq!(last["status"], "completed", "{last}");
    assert!(last["checksum"].as_str().unwrap().starts_with("sha256:"));
    if last["storage_type"] == "local" {
        let path = last["storage_path"].as_str().unwrap();
        let files = std::fs::read_dir(path)
            .unwrap_or_else(|e| panic!("{path}: {e}"))
            .count();
        assert!(files >= 2, "{path} holds the artifacts and the manifest");
    }
}

/// Deletes staging, then the site `site_id`, then a new site with its slug, then (in the
/// browser) `browser_site`.
pub async fn deletes(app: &TestApp, site_id: &str, browser_site: &str) {
    let (_, site) = app.get_json(&format!("/api/sites/{site_id}")).await;
    let slug = site["slug"].as_str().unwrap().to_string();
    let envs = environments(app, site_id).await;
    let id_of = |kind: &str| -> Vec<String> {
        envs.iter()
            .filter(|e| e["environment_type"] == kind)
            .map(|e| e["id"].as_str().unwrap().to_string())
            .collect()
    };
    let prod_id = id_of("production").remove(0);
    let staging_id = id_of("staging").remove(0);
    let prod = envs.iter().find(|e| e["id"] == prod_id.as_str()).unwrap();
    let prod_url = prod["preview_url"].as_str().unwrap().to_string();
    let web = visitor(&[host(&prod_url)]);

    // Production is refused: it goes only with its site.
    let r = app
        .client
        .delete(app.url(&format!("/api/environments/{prod_id}")))
        .send()
        .await
        .unwrap();
    crate::helpers::assert_error(r, 409, "conflict").await;

    // The staging environment; production keeps serving.
    let job = delete(app, &format!("/api/environments/{staging_id}")).await;
    assert_eq!(job["job_type"], "env_delete");
    let (_, staging) = app
        .get_json(&format!("/api/environments/{staging_id}"))
        .await;
    assert_eq!(staging["status"], "deleted", "{staging}");
    assert!(staging["deleted_at"].is_string());
    assert_gone(site_id, &staging_id);
    assert_final_backup(app, &staging_id).await;
    let (_, listed) = app
        .get_json(&format!("/api/sites/{site_id}/environments"))
        .await;
    assert!(
        !listed.to_string().contains(&staging_id),
        "a deleted environment is not listed: {listed}"
    );
    let home = get_with(&web, format!("{prod_url}/")).await;
    assert_eq!(home.status(), 200, "production still serves");

    // The whole site.
    let with_release: Vec<String> = environments(app, site_id)
        .await
        .iter()
        .filter(|e| e["status"] != "deleted" && !e["current_release_id"].is_null())
        .map(|e| e["id"].as_str().unwrap().to_string())
        .collect();
    let job = delete(app, &format!("/api/sites/{site_id}")).await;
    assert_eq!(job["job_type"], "site_delete");
    let (_, site) = app.get_json(&format!("/api/sites/{site_id}")).await;
    assert_eq!(site["status"], "deleted", "{site}");
    for e in environments(app, site_id).await {
        assert_eq!(e["status"], "deleted", "{e}");
        assert_gone(site_id, e["id"].as_str().unwrap());
    }
    for env in &with_release {
        assert_final_backup(app, env).await;
    }
    assert!(
        std::fs::symlink_metadata(format!("/var/www/sites/{site_id}")).is_err(),
        "the site directory is gone"
    );
    let (_, sites) = app.get_json("/api/sites").await;
    assert!(!sites.to_string().contains(site_id), "not listed: {sites}");
    let (_, all) = app.get_json("/api/sites?include_deleted=true").await;
    assert!(
        all.to_string().contains(site_id),
        "listed with deleted: {all}"
    );

    // The slug is free again: a new site with it, then deleted too (the node stays clean for
    // the steps after this one).
    let r = app
        .post_json("/api/sites", json!({"name": "Reborn", "slug": slug}))
        .await;
    assert_eq!(r.status(), 202, "the old slug is free");
    let job = succeeded(app, &crate::helpers::job_id(r).await).await;
    let reborn = job["site_id"].as_str().unwrap().to_string();
    let reborn_env = job["environment_id"].as_str().unwrap().to_string();
    delete(app, &format!("/api/sites/{reborn}")).await;
    assert_gone(&reborn, &reborn_env);
    assert_final_backup(app, &reborn_env).await;

    // The browser-created site, from the dashboard with the slug typed out.
    let (_, bsite) = app.get_json(&format!("/api/sites/{browser_site}")).await;
    let bslug = bsite["slug"].as_str().unwrap().to_string();
    let benvs = environments(app, browser_site).await;
    let bstaging = benvs
        .iter()
        .find(|e| e["environment_type"] == "staging" && e["status"] != "deleted")
        .expect("the browser site has a staging environment");
    let bstaging_id = bstaging["id"].as_str().unwrap().to_string();
    crate::e2e::browser_script(
        app,
        "delete.mjs",
        &[
            ("PRESSLUFT_SITE_ID", browser_site),
            ("PRESSLUFT_SITE_SLUG", &bslug),
            ("PRESSLUFT_ENVIRONMENT_ID", &bstaging_id),
        ],
    )
    .await;
    for e in environments(app, browser_site).await {
        assert_eq!(e["status"], "deleted", "{e}");
        assert_gone(browser_site, e["id"].as_str().unwrap());
    }
    assert!(std::fs::symlink_metadata(format!("/var/www/sites/{browser_site}")).is_err());
}
