//! Magic login for real on this machine (called from `e2e_sites.rs` while the site exists, its
//! object cache on): `POST /api/environments/{id}/magic-login` runs the PHP bridge on the node
//! as the environment's user and answers a link on the environment's canonical URL; headless
//! Chromium opening it lands in wp-admin as an administrator; the same link a second time shows
//! the login page with an error; eight visitors opening one link at once log exactly one in; a
//! link older than 60 s logs nobody in; the dashboard's "Open
//! WordPress admin" button lands in wp-admin too. The token is stored only as its SHA-256 (in
//! Redis here: not in the options table), never in an audit row or a log of the control plane.

use std::time::{Duration, Instant};

use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::e2e_sites::bridge;
use crate::helpers::{host, visitor, TestApp};

/// Asks for a login link; returns `(login_url, token)`.
async fn link(app: &TestApp, env_id: &str, canonical: &str) -> (String, String) {
    let r = app
        .post_empty(&format!("/api/environments/{env_id}/magic-login"))
        .await;
    let status = r.status();
    let body: Value = r.json().await.unwrap();
    assert_eq!(status, 200, "{body}");
    let url = body["login_url"].as_str().unwrap().to_string();
    let prefix = format!("{canonical}/wp-login.php?pressluft_magic_login=");
    let token = url
        .strip_prefix(&prefix)
        .unwrap_or_else(|| panic!("{url} does not start with {prefix}"))
        .to_string();
    assert_eq!(token.len(), 64);
    assert!(token.bytes().all(|b| b.is_ascii_hexdigit()));
    // expires_at is the node's creation time + 60 s.
    let expires = pressluft::clock::parse_ts(body["expires_at"].as_str().unwrap()).unwrap();
    let in_secs = (expires - time::OffsetDateTime::now_utc()).whole_seconds();
    assert!((50..=61).contains(&in_secs), "expires in {in_secs} s");
    (url, token)
}

/// Opening `url` without a session: true when it logged in (a redirect to wp-admin with an auth
/// cookie), false when it showed the login page with the magic-login error.
async fn logs_in(url: &str, preview_host: &str) -> bool {
    let r = visitor(&[preview_host]).get(url).send().await.unwrap();
    let status = r.status().as_u16();
    let cookies: Vec<String> = r
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap_or("").to_string())
        .collect();
    let location = r
        .headers()
        .get("location")
        .map(|v| v.to_str().unwrap().to_string());
    let body = r.text().await.unwrap();
    if status == 302 {
        assert!(location.unwrap_or_default().ends_with("/wp-admin/"));
        assert!(cookies
            .iter()
            .any(|c| c.starts_with("wordpress_logged_in_")));
        return true;
    }
    assert_eq!(status, 200, "{body}");
    assert!(
        body.contains("invalid, has expired or was already used"),
        "{body}"
    );
    assert!(!cookies
        .iter()
        .any(|c| c.starts_with("wordpress_logged_in_")));
    false
}

pub async fn magic_login(app: &TestApp, site_id: &str, env_id: &str) {
    let (_, env) = app.get_json(&format!("/api/environments/{env_id}")).await;
    assert_eq!(env["site_id"], site_id);
    assert_eq!(env["status"], "active");
    assert_eq!(
        env["redis_cache_enabled"], true,
        "the flow runs with the object cache on"
    );
    let canonical = env["preview_url"]
        .as_str()
        .unwrap()
        .trim_end_matches('/')
        .to_string();
    let preview_host = host(&canonical).to_string();

    // Two links: one for the browser, one to try after 60 s (the wait overlaps the browser).
    let started = Instant::now();
    let (first, first_token) = link(app, env_id, &canonical).await;
    let (late, late_token) = link(app, env_id, &canonical).await;
    let late_made = Instant::now();
    assert_ne!(first_token, late_token);

    // Only the hash is stored, and with Redis on not in the options table.
    let hash = hex::encode(Sha256::digest(first_token.as_bytes()));
    let env_user = format!("pl_{}", &env_id[..8]);
    let wp_root = format!("/var/www/sites/{site_id}/{env_id}/current");
    let option = format!(r#"{{"name": "_transient_pressluft_ml_{hash}"}}"#);
    let stored = bridge(&env_user, &wp_root, &["option-get", &option]);
    assert_eq!(stored["value"], Value::Null, "{stored}");

    crate::e2e::browser_script(
        app,
        "magic-login.mjs",
        &[
            ("PRESSLUFT_ENVIRONMENT_ID", env_id),
            ("PRESSLUFT_LOGIN_URL", &first),
        ],
    )
    .await;
    eprintln!(
        "magic login: browser checks done after {:?}",
        started.elapsed()
    );
    // Used once by the browser: refused now too.
    assert!(!logs_in(&first, &preview_host).await);

    // One link opened by eight visitors at the same moment logs exactly one in: the token's
    // delete in Redis decides, not what each request read before.
    let (racing, _) = link(app, env_id, &canonical).await;
    let tries = (0..8).map(|_| logs_in(&racing, &preview_host));
    let won = futures_util::future::join_all(tries)
        .await
        .into_iter()
        .filter(|logged_in| *logged_in)
        .count();
    assert_eq!(won, 1, "one of eight simultaneous visitors logged in");

    // Every request was audited; the tokens are nowhere in the control plane's rows or logs.
    let (audit,): (i64,) = pressluft::store::query_as(
        "SELECT COUNT(*) FROM audit_logs WHERE action = 'magic_login' AND resource_id = ?
           AND result = 'succeeded'",
    )
    .bind(env_id)
    .fetch_one(app.store.pool())
    .await
    .unwrap();
    assert!(audit >= 3, "{audit} succeeded magic_login rows");
    let rows: Vec<(String,)> = pressluft::store::query_as(
        "SELECT action || resource_id || result || COALESCE(job_id, '') FROM audit_logs",
    )
    .fetch_all(app.store.pool())
    .await
    .unwrap();
    for token in [&first_token, &late_token] {
        assert!(!rows.iter().any(|(r,)| r.contains(token.as_str())));
        for log in walk(&app.state.config.log_dir) {
            let text = std::fs::read_to_string(&log).unwrap_or_default();
            assert!(
                !text.contains(token.as_str()),
                "{} holds a token",
                log.display()
            );
        }
    }

    // The second link, 61 s after it was made: expired.
    let wait = Duration::from_secs(61).saturating_sub(late_made.elapsed());
    eprintln!("magic login: waiting {wait:?} for the second link to expire");
    tokio::time::sleep(wait).await;
    assert!(!logs_in(&late, &preview_host).await);

    // A fresh link still works (without a browser: the redirect and the auth cookie).
    let (fresh, _) = link(app, env_id, &canonical).await;
    assert!(logs_in(&fresh, &preview_host).await);
    assert!(!logs_in(&fresh, &preview_host).await);
}

/// Every file under `dir` (none when it does not exist).
fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    if let Ok(entries) = std::fs::read_dir(dir) {
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() {
                out.extend(walk(&p));
            } else {
                out.push(p);
            }
        }
    }
    out
}
