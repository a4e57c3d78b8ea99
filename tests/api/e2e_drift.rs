//! Drift checks for real on this machine (issue 14 item 2), one step of `e2e_sites.rs`'s flow
//! on the browser-created site: WooCommerce's HPOS order table (`<prefix>wc_orders`, its real
//! column layout) is created in production with a row, then a fresh `commerce-protect` staging
//! environment is cloned (its baseline includes the order). A drift check is `clean` with no
//! differences; an order row and a post added in production make it `drifted` naming
//! `<prefix>wc_orders` and `<prefix>posts` with their row counts before → after; a file added
//! to production's uploads lists `wp-content/uploads`. The dashboard panel runs a check and
//! shows the differences (tests/browser/drift.mjs). The HPOS table stays in production for the
//! promotion step after this one; the staging environment is deleted through the product.

use serde_json::Value;

use crate::helpers::{post_job, run, succeeded, TestApp};

fn sql(query: &str) -> String {
    run("mysql", &["--batch", "--skip-column-names", "-e", query])
        .trim()
        .to_string()
}

/// The table prefix in production's `wp-config.php`.
fn table_prefix(env_root: &str) -> String {
    let config = std::fs::read_to_string(format!("{env_root}/shared/wp-config.php")).unwrap();
    let line = config
        .lines()
        .find(|l| l.trim_start().starts_with("$table_prefix"))
        .expect("a table prefix line");
    line.split('\'')
        .nth(1)
        .expect("a quoted prefix")
        .to_string()
}

/// WooCommerce's HPOS `wc_orders` table (WooCommerce 8.2+ column layout). The import step
/// before this one may have left a reduced `wc_orders` (4 columns) in production: its rows are
/// kept and the missing columns and indexes added, so the table has the real layout either way.
fn create_hpos_orders(db: &str, prefix: &str) {
    let table = format!("`{db}`.`{prefix}wc_orders`");
    sql(&format!(
        "CREATE TABLE IF NOT EXISTS {table} (id bigint(20) unsigned NOT NULL, PRIMARY KEY (id))
         DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_520_ci"
    ));
    let columns = [
        ("status", "varchar(20) NULL"),
        ("currency", "varchar(10) NULL"),
        ("type", "varchar(20) NULL"),
        ("tax_amount", "decimal(26,8) NULL"),
        ("total_amount", "decimal(26,8) NULL"),
        ("customer_id", "bigint(20) unsigned NULL"),
        ("billing_email", "varchar(320) NULL"),
        ("date_created_gmt", "datetime NULL"),
        ("date_updated_gmt", "datetime NULL"),
        ("parent_order_id", "bigint(20) unsigned NULL"),
        ("payment_method", "varchar(100) NULL"),
        ("payment_method_title", "text NULL"),
        ("transaction_id", "varchar(100) NULL"),
        ("ip_address", "varchar(100) NULL"),
        ("user_agent", "text NULL"),
        ("customer_note", "text NULL"),
    ];
    let mut alter: Vec<String> = columns
        .iter()
        .map(|(c, t)| format!("ADD COLUMN IF NOT EXISTS {c} {t}"))
        .collect();
    for (name, cols) in [
        ("status", "status"),
        ("date_created", "date_created_gmt"),
        (
            "customer_id_billing_email",
            "customer_id, billing_email(171)",
        ),
        ("billing_email", "billing_email(191)"),
        ("type_status_date", "type, status, date_created_gmt"),
        ("parent_order_id", "parent_order_id"),
        ("date_updated", "date_updated_gmt"),
    ] {
        alter.push(format!("ADD INDEX IF NOT EXISTS {name} ({cols})"));
    }
    sql(&format!("ALTER TABLE {table} {}", alter.join(", ")));
}

fn add_order(db: &str, prefix: &str, id: u32) {
    sql(&format!(
        "INSERT INTO `{db}`.`{prefix}wc_orders` (id, status, currency, type, tax_amount,
           total_amount, customer_id, billing_email, date_created_gmt, date_updated_gmt,
           parent_order_id, payment_method, payment_method_title, transaction_id, ip_address,
           user_agent, customer_note)
         VALUES ({id}, 'wc-processing', 'EUR', 'shop_order', 3.99, 24.99, 0,
           'buyer{id}@example.test', UTC_TIMESTAMP(), UTC_TIMESTAMP(), 0, 'bacs',
           'Direct bank transfer', '', '127.0.0.1', 'e2e', '')"
    ));
}

fn count(db: &str, table: &str) -> u64 {
    sql(&format!("SELECT COUNT(*) FROM `{db}`.`{table}`"))
        .parse()
        .unwrap()
}

/// Runs a drift check of `env` through the API; returns (environment, drift check).
async fn check(app: &TestApp, env: &str) -> (Value, Value) {
    let job = post_job(
        app,
        &format!("/api/environments/{env}/drift-check"),
        serde_json::json!({}),
    )
    .await;
    let done = succeeded(app, &job).await;
    assert_eq!(done["job_type"], "drift_check");
    let (_, e) = app.get_json(&format!("/api/environments/{env}")).await;
    let id = e["last_drift_check_id"].as_str().expect("a drift check id");
    let (status, c) = app.get_json(&format!("/api/drift-checks/{id}")).await;
    assert_eq!(status, 200, "{c}");
    (e, c)
}

/// The difference named `name`.
fn difference<'a>(check: &'a Value, name: &str) -> &'a Value {
    check["differences"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["name"] == name)
        .unwrap_or_else(|| panic!("{name} is not among the differences: {check}"))
}

pub async fn drift(app: &TestApp, site_id: &str) {
    let (_, envs) = app
        .get_json(&format!("/api/sites/{site_id}/environments"))
        .await;
    let prod = envs
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["environment_type"] == "production")
        .expect("a production environment")
        .clone();
    let prod_id = prod["id"].as_str().unwrap();
    let env_root = format!("/var/www/sites/{site_id}/{prod_id}");
    let db = format!("wp_{}", &prod_id[..8]);
    let prefix = table_prefix(&env_root);
    let orders = format!("{prefix}wc_orders");
    let posts = format!("{prefix}posts");

    // (1) An HPOS order exists in production before the clone.
    create_hpos_orders(&db, &prefix);
    add_order(&db, &prefix, 9001);
    let orders_before = count(&db, &orders);
    let posts_before = count(&db, &posts);

    // (2) A fresh commerce-protect staging environment: its baseline holds the order.
    let body = serde_json::json!({"name": "Drift", "slug": "drift",
        "environment_type": "staging", "promotion_preset": "commerce-protect"});
    let create = post_job(app, &format!("/api/sites/{site_id}/environments"), body).await;
    let created = succeeded(app, &create).await;
    let env = created["environment_id"].as_str().unwrap().to_string();
    let (_, e) = app.get_json(&format!("/api/environments/{env}")).await;
    assert_eq!(e["drift_status"], "unknown", "{e}");
    assert_eq!(e["promotion_preset"], "commerce-protect");
    let (baseline,): (String,) = pressluft::store::query_as(
        "SELECT db_checksums_json FROM drift_checks WHERE environment_id = ? AND is_baseline = 1",
    )
    .bind(&env)
    .fetch_one(app.store.pool())
    .await
    .unwrap();
    let baseline: Value = serde_json::from_str(&baseline).unwrap();
    assert_eq!(baseline[&orders]["rows"], orders_before, "{baseline}");

    // Production being checked is not: 409.
    let r = app
        .post_json(
            &format!("/api/environments/{prod_id}/drift-check"),
            serde_json::json!({}),
        )
        .await;
    crate::helpers::assert_error(r, 409, "conflict").await;

    // (3) Production unchanged: clean, nothing differs.
    let (e, c) = check(app, &env).await;
    assert_eq!(e["drift_status"], "clean", "{c}");
    assert_eq!(c["status"], "clean");
    assert_eq!(c["promotion_preset"], "commerce-protect");
    assert_eq!(c["differences"], serde_json::json!([]), "{c}");
    assert_eq!(e["drift_checked_at"], c["checked_at"]);

    // (4) An order and a post added in production: drifted, both named with their rows.
    add_order(&db, &prefix, 9002);
    sql(&format!(
        "INSERT INTO `{db}`.`{posts}` (post_author, post_date, post_date_gmt, post_content,
           post_title, post_excerpt, post_status, post_name, to_ping, pinged, post_modified,
           post_modified_gmt, post_content_filtered, post_type)
         VALUES (1, NOW(), UTC_TIMESTAMP(), 'Written in production after the clone.',
           'PL-E2E-DRIFT live post', '', 'publish', 'pl-e2e-drift-live-post', '', '', NOW(),
           UTC_TIMESTAMP(), '', 'post')"
    ));
    let (e, c) = check(app, &env).await;
    assert_eq!(e["drift_status"], "drifted", "{c}");
    assert_eq!(c["status"], "drifted");
    let o = difference(&c, &orders);
    assert_eq!(o["kind"], "table");
    assert_eq!(o["baseline"]["rows"], orders_before);
    assert_eq!(o["current"]["rows"], orders_before + 1);
    let p = difference(&c, &posts);
    assert_eq!(p["baseline"]["rows"], posts_before);
    assert_eq!(p["current"]["rows"], posts_before + 1);
    assert_ne!(p["baseline"]["checksum"], p["current"]["checksum"]);
    for d in c["differences"].as_array().unwrap() {
        assert_eq!(d["kind"], "table", "uploads unchanged so far: {d}");
        assert!(
            [
                orders.as_str(),
                posts.as_str(),
                &format!("{prefix}postmeta")
            ]
            .contains(&d["name"].as_str().unwrap()),
            "only what changed differs: {c}"
        );
    }

    // (5) A file added to production's uploads: the path is listed.
    let upload = format!("{env_root}/shared/uploads/pl-e2e-drift.txt");
    std::fs::write(&upload, b"added in production after the clone").unwrap();
    let owner = format!("pl_{}", &prod_id[..8]);
    run("chown", &[&format!("{owner}:{owner}"), &upload]);
    let (_, c) = check(app, &env).await;
    let u = difference(&c, "wp-content/uploads");
    assert_eq!(u["kind"], "path");
    assert!(u["baseline"].as_str().unwrap().starts_with("sha256:"));
    assert_ne!(u["baseline"], u["current"]);
    difference(&c, &orders);
    difference(&c, &posts);

    // (6) The dashboard: run a check, see the differences.
    let names = format!("{orders},{posts},wp-content/uploads");
    crate::e2e::browser_script(
        app,
        "drift.mjs",
        &[
            ("PRESSLUFT_ENVIRONMENT_ID", &env),
            ("PRESSLUFT_DRIFT_NAMES", &names),
        ],
    )
    .await;

    // A drifted environment stays drifted; it is replaced, not fixed: delete it.
    let r = app
        .client
        .delete(app.url(&format!("/api/environments/{env}")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202);
    succeeded(app, &crate::helpers::job_id(r).await).await;
    let (_, e) = app.get_json(&format!("/api/environments/{env}")).await;
    assert_eq!(e["status"], "deleted", "{e}");
}
