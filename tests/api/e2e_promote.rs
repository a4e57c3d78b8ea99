//! Guarded promotion (`env_promote`) for real on this machine (issue 14; called by the site
//! flow of `e2e_sites.rs` on the live site, production `prod_id`). Every environment it clones
//! it deletes again through the product at the end; production stays active and serving.
//!
//! 1. **Drift refused.** Clone A (content-protect); in A a theme and an option change; a post
//!    is written in production after the clone → drift check `drifted` (wp_posts) → promote
//!    refused `drift_gate_failed`.
//! 2. **Backup gate, then a passing promotion from the dashboard.** Clone B (production
//!    unchanged since); in B a new theme (activated), an option holding B's URL and a post.
//!    Production's full backups are aged past 60 min → clean drift check → promote refused
//!    `backup_gate_failed`. The browser (tests/browser/promote.mjs) sees A blocked (reason,
//!    Promote disabled), then on B runs the drift check, creates the production backup, ticks
//!    the acknowledgement and promotes: succeeded. Production then serves B's theme with its
//!    own URL, has B's option rewritten to production's URL, still every post it had (count),
//!    and not B's post; the release notes say `promoted from B`.
//! 3. **Drift after the request.** A's gate faked clean (a row): the job re-runs the
//!    comparison on the node and fails `DRIFT_DETECTED`, production unchanged and active.
//! 4. **commerce-protect.** HPOS `wp_wc_orders` rows and a customer user in production, then
//!    clone C (commerce-protect); C deletes the orders and the customer and changes an option →
//!    promote → production has C's option, and its orders, users and usermeta are untouched.
//! 5. **Rollback.** A fresh full backup (the gate backup), then a post written in production,
//!    then clone D whose activated theme fatals (HTTP 500) and an option → promote → health
//!    fails → rolled back: the previous release serves again (200), the post written after the
//!    gate backup is still there (protected tables are not restored), D's option is gone (the
//!    replaced tables came back from the gate backup).

use std::path::Path;
use std::time::Duration;

use serde_json::{json, Value};

use crate::helpers::{
    assert_error, gate_ended, job_id, post_job, run, succeeded, visitor, wait_for_job, TestApp,
};

fn sql(query: &str) -> String {
    run("mysql", &["--batch", "--skip-column-names", "-e", query])
        .trim()
        .to_string()
}

fn db(env_id: &str) -> String {
    format!("wp_{}", &env_id[..8])
}

fn user(env_id: &str) -> String {
    format!("pl_{}", &env_id[..8])
}

async fn environment(app: &TestApp, id: &str) -> Value {
    app.get_json(&format!("/api/environments/{id}")).await.1
}

/// A new environment cloned from production with `preset`; its id once the clone succeeded.
async fn clone(app: &TestApp, site_id: &str, slug: &str, preset: &str) -> String {
    let body = json!({"name": format!("Promo {slug}"), "slug": slug,
        "environment_type": "staging", "promotion_preset": preset});
    let job = post_job(app, &format!("/api/sites/{site_id}/environments"), body).await;
    let done = succeeded(app, &job).await;
    done["environment_id"].as_str().unwrap().to_string()
}

/// Runs a drift check of `env_id` through the API; its status.
async fn drift(app: &TestApp, env_id: &str) -> Value {
    let job = post_job(
        app,
        &format!("/api/environments/{env_id}/drift-check"),
        json!({}),
    )
    .await;
    succeeded(app, &job).await;
    let env = environment(app, env_id).await;
    let check = env["last_drift_check_id"].as_str().expect("a drift check");
    app.get_json(&format!("/api/drift-checks/{check}")).await.1
}

async fn promote(app: &TestApp, source: &str, target: &str) -> reqwest::Response {
    app.post_json(
        &format!("/api/environments/{source}/promote"),
        json!({"target_environment_id": target}),
    )
    .await
}

/// A full backup of `env_id`, completed.
async fn full_backup(app: &TestApp, env_id: &str) -> String {
    // The test's clock stands still: a second later, so this backup is the newest by
    // `completed_at` (the gate backup is the newest fresh one).
    app.clock.advance(time::Duration::seconds(1));
    let created = app
        .state
        .backups
        .create(None, env_id, "full")
        .await
        .unwrap();
    succeeded(app, &created.job_id).await;
    created.backup_id
}

/// Every completed full backup of `env_id` made to look two hours old.
async fn age_full_backups(app: &TestApp, env_id: &str) {
    let old = pressluft::clock::format_ts(
        pressluft::clock::Clock::now(&app.clock) - time::Duration::hours(2),
    );
    app.exec(
        "UPDATE backups SET completed_at = ? WHERE environment_id = ? AND backup_scope = 'full'
           AND status = 'completed'",
        &[&old, env_id],
    )
    .await;
}

/// A theme `name` in the environment's current release (its user's, the web group's), made
/// active; `fatal`: its functions.php calls an undefined function (HTTP 500).
fn install_theme(site_id: &str, env_id: &str, name: &str, marker: &str, fatal: bool) {
    let current = format!("/var/www/sites/{site_id}/{env_id}/current");
    let theme = Path::new(&current).join("wp-content/themes").join(name);
    std::fs::create_dir_all(&theme).unwrap();
    std::fs::write(
        theme.join("style.css"),
        format!("/*\nTheme Name: {name}\nVersion: 1.0\n*/\n/* {marker} */\n"),
    )
    .unwrap();
    std::fs::write(
        theme.join("index.php"),
        format!("<?php\necho '<html><body>{marker} home=' . home_url('/') . '</body></html>';\n"),
    )
    .unwrap();
    if fatal {
        std::fs::write(
            theme.join("functions.php"),
            "<?php\npl_promote_this_function_does_not_exist();\n",
        )
        .unwrap();
    }
    let theme = theme.to_str().unwrap();
    run(
        "chown",
        &["-R", &format!("{}:www-data", user(env_id)), theme],
    );
    run("chmod", &["-R", "u=rwX,g=rX,o=", theme]);
    let options = format!("{}.wp_options", db(env_id));
    sql(&format!(
        "UPDATE {options} SET option_value = '{name}' WHERE option_name IN ('template', 'stylesheet')"
    ));
}

fn option(env_id: &str, name: &str) -> String {
    sql(&format!(
        "SELECT option_value FROM {}.wp_options WHERE option_name = '{name}'",
        db(env_id)
    ))
}

fn set_option(env_id: &str, name: &str, value: &str) {
    sql(&format!(
        "INSERT INTO {}.wp_options (option_name, option_value, autoload) VALUES ('{name}', '{value}', 'no')
         ON DUPLICATE KEY UPDATE option_value = VALUES(option_value)",
        db(env_id)
    ));
}

fn insert_post(env_id: &str, title: &str) {
    sql(&format!(
        "INSERT INTO {}.wp_posts (post_author, post_date, post_date_gmt, post_content, post_title,
           post_excerpt, post_status, post_name, to_ping, pinged, post_modified, post_modified_gmt,
           post_content_filtered, post_type)
         VALUES (1, NOW(), UTC_TIMESTAMP(), 'e2e body', '{title}', '', 'publish', '{title}', '', '',
           NOW(), UTC_TIMESTAMP(), '', 'post')",
        db(env_id)
    ));
}

fn count(env_id: &str, table: &str, filter: &str) -> String {
    sql(&format!(
        "SELECT COUNT(*) FROM {}.{table} {filter}",
        db(env_id)
    ))
}

fn checksum(env_id: &str, table: &str) -> String {
    sql(&format!("CHECKSUM TABLE {}.{table}", db(env_id)))
}

/// The front page of `url` (through 127.0.0.1).
async fn front(url: &str) -> (u16, String) {
    let host = url.split("://").nth(1).unwrap().split('/').next().unwrap();
    let r = visitor(&[host])
        .get(format!("{}/", url.trim_end_matches('/')))
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.text().await.unwrap_or_default())
}

/// The promotion job `job` ran through its gate: healthy (`None`) or rolled back.
async fn promoted(app: &TestApp, job: &str) -> Option<Value> {
    gate_ended(app, job).await.1
}

async fn delete_environment(app: &TestApp, id: &str) {
    let r = app
        .client
        .delete(app.url(&format!("/api/environments/{id}")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202, "DELETE environment {id}");
    let job = job_id(r).await;
    succeeded(app, &job).await;
}

pub async fn promotion(app: &TestApp, site_id: &str, prod_id: &str) {
    let prod = environment(app, prod_id).await;
    let prod_url = prod["preview_url"]
        .as_str()
        .unwrap()
        .trim_end_matches('/')
        .to_string();
    let prod_root = format!("/var/www/sites/{site_id}/{prod_id}");
    let tag = &uuid::Uuid::new_v4().simple().to_string()[..8];

    // (1) Drift: A changes a theme and an option; production gets a post after the clone.
    let a = clone(app, site_id, &format!("pa{tag}"), "content-protect").await;
    install_theme(site_id, &a, "pl-promote-a", "PL-PROMOTE-A", false);
    set_option(&a, "pl_e2e_promote_a", "from A");
    insert_post(prod_id, &format!("pl-e2e-promote-after-clone-{tag}"));
    let check = drift(app, &a).await;
    assert_eq!(check["status"], "drifted", "{check}");
    let names: Vec<&str> = check["differences"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["name"].as_str().unwrap())
        .collect();
    assert!(names.contains(&"wp_posts"), "{check}");
    let body = assert_error(promote(app, &a, prod_id).await, 409, "drift_gate_failed").await;
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("Production has changed"),
        "{body}"
    );

    // (2) B: production unchanged since its clone; the backup gate refuses first.
    let b = clone(app, site_id, &format!("pb{tag}"), "content-protect").await;
    let b_env = environment(app, &b).await;
    let b_url = b_env["preview_url"]
        .as_str()
        .unwrap()
        .trim_end_matches('/')
        .to_string();
    install_theme(site_id, &b, "pl-promote-b", "PL-PROMOTE-B", false);
    set_option(&b, "pl_e2e_promote_b", &format!("{b_url}/promoted-page"));
    insert_post(&b, &format!("pl-e2e-staging-only-{tag}"));
    let posts_before = count(prod_id, "wp_posts", "");
    let release_before = environment(app, prod_id).await["current_release_id"].clone();
    age_full_backups(app, prod_id).await;
    let check = drift(app, &b).await;
    assert_eq!(check["status"], "clean", "{check}");
    let body = assert_error(promote(app, &b, prod_id).await, 409, "backup_gate_failed").await;
    assert!(body["message"].as_str().unwrap().contains("min"), "{body}");
    assert_eq!(
        environment(app, prod_id).await["current_release_id"],
        release_before
    );

    // The dashboard: A blocked; B promoted (drift check, production backup, acknowledgement).
    crate::e2e::browser_script(
        app,
        "promote.mjs",
        &[("PRESSLUFT_BLOCKED_ENV", &a), ("PRESSLUFT_PASSING_ENV", &b)],
    )
    .await;
    let (promote_job,): (String,) = pressluft::store::query_as(
        "SELECT id FROM jobs WHERE job_type = 'env_promote' AND environment_id = ?
         ORDER BY created_at DESC LIMIT 1",
    )
    .bind(prod_id)
    .fetch_one(app.store.pool())
    .await
    .unwrap();
    assert!(promoted(app, &promote_job).await.is_none(), "healthy");
    let prod_now = environment(app, prod_id).await;
    assert_eq!(prod_now["status"], "active", "{prod_now}");
    let (status, page) = front(&prod_url).await;
    assert_eq!(status, 200, "{page}");
    assert!(page.contains("PL-PROMOTE-B"), "B's theme serves: {page}");
    assert!(
        page.contains(&format!("home={prod_url}/")),
        "production's URL: {page}"
    );
    assert_eq!(
        option(prod_id, "pl_e2e_promote_b"),
        format!("{prod_url}/promoted-page")
    );
    assert_eq!(option(prod_id, "home"), prod_url);
    assert_eq!(option(prod_id, "siteurl"), prod_url);
    assert_eq!(
        count(prod_id, "wp_posts", ""),
        posts_before,
        "every post kept"
    );
    assert_eq!(
        count(
            prod_id,
            "wp_posts",
            &format!("WHERE post_title = 'pl-e2e-staging-only-{tag}'")
        ),
        "0",
        "staging's post stays in staging"
    );
    let (_, releases) = app
        .get_json(&format!("/api/environments/{prod_id}/releases"))
        .await;
    let notes = releases[0]["notes"].as_str().unwrap_or_default();
    assert!(
        notes.contains(&format!("promoted from Promo pb{tag}")),
        "{releases}"
    );
    let (result,): (String,) = pressluft::store::query_as(
        "SELECT result FROM audit_logs WHERE job_id = ? AND action = 'env_promote'",
    )
    .bind(&promote_job)
    .fetch_one(app.store.pool())
    .await
    .unwrap();
    assert_eq!(result, "succeeded");

    // (3) A's gate faked clean: the node's re-check refuses, nothing changes.
    let fake = uuid::Uuid::new_v4().to_string();
    let now = app.now();
    app.exec(
        "INSERT INTO drift_checks (id, environment_id, promotion_preset, status, is_baseline,
           checked_at) VALUES (?, ?, 'content-protect', 'clean', 0, ?)",
        &[&fake, &a, &now],
    )
    .await;
    app.exec(
        "UPDATE environments SET last_drift_check_id = ?, drift_status = 'clean' WHERE id = ?",
        &[&fake, &a],
    )
    .await;
    let release_b = environment(app, prod_id).await["current_release_id"].clone();
    let r = promote(app, &a, prod_id).await;
    assert_eq!(r.status(), 202);
    let job = job_id(r).await;
    let done = wait_for_job(app, &job, Duration::from_secs(10 * 60)).await;
    assert_eq!(done["status"], "failed", "{done}");
    assert_eq!(done["error_code"], "DRIFT_DETECTED", "{done}");
    assert!(
        done["error_message"].as_str().unwrap().contains("wp_posts"),
        "{done}"
    );
    let prod_now = environment(app, prod_id).await;
    assert_eq!(prod_now["status"], "active", "{prod_now}");
    assert_eq!(prod_now["current_release_id"], release_b);
    assert!(
        option(prod_id, "pl_e2e_promote_a").is_empty(),
        "A's option never arrived"
    );

    // (4) commerce-protect: orders (HPOS) and a customer in production before the clone.
    let pdb = db(prod_id);
    sql(&format!(
        "CREATE TABLE IF NOT EXISTS {pdb}.wp_wc_orders (id BIGINT UNSIGNED NOT NULL,
           status VARCHAR(20) NULL, currency VARCHAR(10) NULL, type VARCHAR(20) NULL,
           total_amount DECIMAL(26,8) NULL, customer_id BIGINT UNSIGNED NULL,
           billing_email VARCHAR(320) NULL, date_created_gmt DATETIME NULL, PRIMARY KEY (id))"
    ));
    sql(&format!(
        "INSERT INTO {pdb}.wp_wc_orders (id, status, currency, type, total_amount, customer_id,
           billing_email, date_created_gmt)
         VALUES (990001, 'wc-completed', 'EUR', 'shop_order', 19.90, 0, 'a@example.test', UTC_TIMESTAMP()),
                (990002, 'wc-processing', 'EUR', 'shop_order', 5.00, 0, 'b@example.test', UTC_TIMESTAMP())
         ON DUPLICATE KEY UPDATE status = VALUES(status)"
    ));
    let customer = format!("pl-e2e-customer-{tag}");
    sql(&format!(
        "INSERT INTO {pdb}.wp_users (user_login, user_pass, user_nicename, user_email, user_url,
           user_registered, user_activation_key, user_status, display_name)
         VALUES ('{customer}', 'x', '{customer}', '{customer}@example.test', '', NOW(), '', 0, '{customer}')"
    ));
    sql(&format!(
        "INSERT INTO {pdb}.wp_usermeta (user_id, meta_key, meta_value)
         SELECT ID, 'wp_capabilities', 'a:1:{{s:8:\"customer\";b:1;}}' FROM {pdb}.wp_users
         WHERE user_login = '{customer}'"
    ));
    let c = clone(app, site_id, &format!("pc{tag}"), "commerce-protect").await;
    let cdb = db(&c);
    sql(&format!(
        "DELETE FROM {cdb}.wp_wc_orders; DELETE FROM {cdb}.wp_usermeta WHERE user_id IN
           (SELECT ID FROM {cdb}.wp_users WHERE user_login = '{customer}');
         DELETE FROM {cdb}.wp_users WHERE user_login = '{customer}'"
    ));
    set_option(&c, "pl_e2e_promote_c", "from C");
    let protected: Vec<(String, String)> = ["wp_wc_orders", "wp_users", "wp_usermeta", "wp_posts"]
        .iter()
        .map(|t| (t.to_string(), checksum(prod_id, t)))
        .collect();
    let check = drift(app, &c).await;
    assert_eq!(check["status"], "clean", "{check}");
    full_backup(app, prod_id).await;
    let r = promote(app, &c, prod_id).await;
    assert_eq!(r.status(), 202);
    let job = job_id(r).await;
    assert!(promoted(app, &job).await.is_none(), "healthy");
    assert_eq!(option(prod_id, "pl_e2e_promote_c"), "from C");
    for (table, sum) in &protected {
        assert_eq!(&checksum(prod_id, table), sum, "{table} untouched");
    }
    assert_eq!(
        count(prod_id, "wp_wc_orders", "WHERE id IN (990001, 990002)"),
        "2"
    );
    assert_eq!(
        count(
            prod_id,
            "wp_users",
            &format!("WHERE user_login = '{customer}'")
        ),
        "1"
    );

    // (5) Rollback: gate backup, then a post in production, then D whose theme fatals.
    let gate_backup = full_backup(app, prod_id).await;
    let late_post = format!("pl-e2e-after-gate-backup-{tag}");
    insert_post(prod_id, &late_post);
    let d = clone(app, site_id, &format!("pd{tag}"), "content-protect").await;
    install_theme(site_id, &d, "pl-promote-fatal", "PL-PROMOTE-FATAL", true);
    set_option(&d, "pl_e2e_promote_d", "from D");
    let release_c = environment(app, prod_id).await["current_release_id"].clone();
    let current_link = std::fs::read_link(format!("{prod_root}/current")).unwrap();
    let check = drift(app, &d).await;
    assert_eq!(check["status"], "clean", "{check}");
    let r = promote(app, &d, prod_id).await;
    assert_eq!(r.status(), 202);
    let job = job_id(r).await;
    let payload = app.job(&job).await;
    let rollback = promoted(app, &job).await.expect("rolled back");
    assert_eq!(rollback["status"], "succeeded", "{rollback}");
    let (p,): (String,) = pressluft::store::query_as("SELECT payload_json FROM jobs WHERE id = ?")
        .bind(rollback["id"].as_str().unwrap())
        .fetch_one(app.store.pool())
        .await
        .unwrap();
    let p: Value = serde_json::from_str(&p).unwrap();
    assert_eq!(
        p["restore_backup_id"],
        gate_backup.as_str(),
        "{p} {payload}"
    );
    assert!(
        p["restore_skip_tables"]
            .as_array()
            .unwrap()
            .contains(&json!("posts")),
        "{p}"
    );
    let prod_now = environment(app, prod_id).await;
    assert_eq!(prod_now["status"], "active", "{prod_now}");
    assert_eq!(prod_now["current_release_id"], release_c);
    assert_eq!(
        std::fs::read_link(format!("{prod_root}/current")).unwrap(),
        current_link
    );
    let (status, page) = front(&prod_url).await;
    assert_eq!(status, 200, "the previous release serves: {page}");
    assert_eq!(
        count(
            prod_id,
            "wp_posts",
            &format!("WHERE post_title = '{late_post}'")
        ),
        "1",
        "a post written after the gate backup survives"
    );
    assert!(
        option(prod_id, "pl_e2e_promote_d").is_empty(),
        "the replaced options came back from the gate backup"
    );
    assert_eq!(option(prod_id, "pl_e2e_promote_c"), "from C");
    let (result,): (String,) = pressluft::store::query_as(
        "SELECT result FROM audit_logs WHERE job_id = ? AND action = 'env_promote'",
    )
    .bind(&job)
    .fetch_one(app.store.pool())
    .await
    .unwrap();
    assert_eq!(result, "failed");

    // The environments this step made go again, through the product.
    for env in [&a, &b, &c, &d] {
        delete_environment(app, env).await;
    }
    let (status, _) = front(&prod_url).await;
    assert_eq!(status, 200, "production still serves");
}
