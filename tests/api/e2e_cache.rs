//! The cache controls for real on this machine (called from `e2e_sites.rs` while the site and
//! its staging environment exist), through the API: production's FastCGI page cache off → no
//! `X-FastCGI-Cache` header and its server block without the cache; on → the second anonymous
//! request is a `HIT`. With Redis on, page loads create keys under each environment's prefix;
//! a purge of production removes its keys and its cache files only (staging's survive). Redis
//! off → the drop-in `shared/object-cache.php` is gone, production's keys are deleted, the site
//! still serves 200 and makes no new keys; Redis on → the drop-in is back and keys come back.
//! Last, the dashboard's browser test toggles the page cache off and on and purges. Both
//! flags end on, as they started.

use std::path::Path;
use std::time::Duration;

use serde_json::{json, Value};

use crate::helpers::{host, run, succeeded, visitor, TestApp};

const REDIS_ADMIN: &str = "/usr/local/lib/pressluft/redis-admin";
const FASTCGI_DIR: &str = "/var/cache/nginx/fastcgi";

/// The Redis keys under an environment's prefix.
fn redis_keys(env_id: &str) -> Vec<String> {
    run(
        REDIS_ADMIN,
        &["--scan", "--pattern", &format!("pressluft_{env_id}:*")],
    )
    .lines()
    .filter(|l| !l.is_empty())
    .map(str::to_string)
    .collect()
}

/// The FastCGI cache files whose stored key is for `host` (exactly).
fn cache_files(host: &str) -> usize {
    let mut n = 0;
    let mut stack = vec![std::path::PathBuf::from(FASTCGI_DIR)];
    while let Some(dir) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for e in entries.flatten() {
            let path = e.path();
            if path.is_dir() {
                stack.push(path);
            } else if let Ok(bytes) = std::fs::read(&path) {
                let head = String::from_utf8_lossy(&bytes[..bytes.len().min(4096)]).into_owned();
                let key = head
                    .split("\nKEY: ")
                    .nth(1)
                    .and_then(|k| k.lines().next())
                    .unwrap_or("");
                if pressluft::node_helper::switch::key_host_matches(key, host) {
                    n += 1;
                }
            }
        }
    }
    n
}

/// `PATCH /api/environments/{id}/cache` with `body`, run to success.
async fn toggle(app: &TestApp, env_id: &str, body: Value) -> Value {
    let r = app
        .client
        .patch(app.url(&format!("/api/environments/{env_id}/cache")))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202, "{body}");
    let job_id = crate::helpers::job_id(r).await;
    succeeded(app, &job_id).await
}

async fn purge(app: &TestApp, env_id: &str) -> Value {
    let job_id = crate::helpers::post_job(
        app,
        &format!("/api/environments/{env_id}/cache/purge"),
        json!(null),
    )
    .await;
    succeeded(app, &job_id).await
}

/// [`two_loads`] of fresh URLs until `settled` holds (at most 5 s): an Nginx reload is
/// graceful, so the old workers may answer a moment after the job that reloaded it ended.
async fn two_loads_settled(
    web: &reqwest::Client,
    url: &str,
    settled: impl Fn(&(Option<String>, Option<String>)) -> bool,
) -> (Option<String>, Option<String>) {
    let mut seen = two_loads(web, url).await;
    for _ in 0..20 {
        if settled(&seen) {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(250)).await;
        seen = two_loads(web, url).await;
    }
    seen
}

/// Two anonymous GETs of a fresh URL: their `X-FastCGI-Cache` headers (status 200 asserted).
async fn two_loads(web: &reqwest::Client, url: &str) -> (Option<String>, Option<String>) {
    let url = format!(
        "{url}/?pl-cache={}",
        &uuid::Uuid::new_v4().simple().to_string()[..8]
    );
    let mut seen = Vec::new();
    for _ in 0..2 {
        let r = web.get(&url).send().await.unwrap();
        assert_eq!(r.status(), 200, "{url}");
        seen.push(
            r.headers()
                .get("x-fastcgi-cache")
                .map(|v| v.to_str().unwrap().to_string()),
        );
        r.text().await.unwrap();
    }
    (seen[0].clone(), seen[1].clone())
}

async fn flags(app: &TestApp, env_id: &str) -> (bool, bool) {
    let (_, e) = app.get_json(&format!("/api/environments/{env_id}")).await;
    (
        e["fastcgi_cache_enabled"].as_bool().unwrap(),
        e["redis_cache_enabled"].as_bool().unwrap(),
    )
}

pub async fn cache_controls(app: &TestApp, site_id: &str, prod_id: &str, staging_id: &str) {
    let (_, prod) = app.get_json(&format!("/api/environments/{prod_id}")).await;
    let (_, staging) = app
        .get_json(&format!("/api/environments/{staging_id}"))
        .await;
    let prod_url = prod["preview_url"].as_str().unwrap().to_string();
    let staging_url = staging["preview_url"].as_str().unwrap().to_string();
    let (prod_host, staging_host) = (host(&prod_url), host(&staging_url));
    let web = visitor(&[prod_host, staging_host]);
    let block = format!("/etc/nginx/sites-enabled/pressluft-env-{prod_id}.conf");
    let drop_in = format!("/var/www/sites/{site_id}/{prod_id}/shared/object-cache.php");
    assert_eq!(flags(app, prod_id).await, (true, true));

    // FastCGI off: no header, no cache directives in the block.
    toggle(app, prod_id, json!({"fastcgi_cache_enabled": false})).await;
    assert_eq!(flags(app, prod_id).await, (false, true));
    let conf = std::fs::read_to_string(&block).unwrap();
    assert!(!conf.contains("fastcgi_cache WORDPRESS"), "{conf}");
    assert_eq!(
        two_loads_settled(&web, &prod_url, |s| *s == (None, None)).await,
        (None, None),
        "no X-FastCGI-Cache header with the page cache off"
    );
    assert_eq!(cache_files(prod_host), 0, "the toggle purged the cache");

    // FastCGI on: the second anonymous request is a HIT.
    toggle(app, prod_id, json!({"fastcgi_cache_enabled": true})).await;
    let conf = std::fs::read_to_string(&block).unwrap();
    assert!(conf.contains("fastcgi_cache WORDPRESS"), "{conf}");
    let (first, second) = two_loads_settled(&web, &prod_url, |s| s.0.is_some()).await;
    assert_eq!(first.as_deref(), Some("MISS"));
    assert_eq!(second.as_deref(), Some("HIT"));

    // Redis on (both environments): page loads create keys under each prefix.
    two_loads(&web, &staging_url).await;
    let prod_keys = redis_keys(prod_id);
    let staging_keys = redis_keys(staging_id);
    assert!(!prod_keys.is_empty(), "production has object-cache keys");
    assert!(!staging_keys.is_empty(), "staging has object-cache keys");
    assert!(cache_files(prod_host) > 0 && cache_files(staging_host) > 0);

    // Purge production: only its keys and its cache files go.
    let job = purge(app, prod_id).await;
    let output = app
        .text(&format!("/api/jobs/{}/output", job["id"].as_str().unwrap()))
        .await;
    assert!(output.contains("purged"), "{output}");
    assert_eq!(redis_keys(prod_id), Vec::<String>::new());
    assert_eq!(cache_files(prod_host), 0, "production's cache files purged");
    let survived = redis_keys(staging_id);
    assert!(
        staging_keys.iter().all(|k| survived.contains(k)),
        "staging's keys survive: {} of {}",
        survived.len(),
        staging_keys.len()
    );
    assert!(
        cache_files(staging_host) > 0,
        "staging's cache files survive"
    );

    // Redis off: the drop-in is gone, the keys deleted, the site serves without them.
    two_loads(&web, &prod_url).await;
    assert!(!redis_keys(prod_id).is_empty());
    toggle(app, prod_id, json!({"redis_cache_enabled": false})).await;
    assert_eq!(flags(app, prod_id).await, (true, false));
    assert!(!Path::new(&drop_in).exists(), "{drop_in} removed");
    assert_eq!(redis_keys(prod_id), Vec::<String>::new());
    for _ in 0..2 {
        let r = web
            .get(format!("{prod_url}/wp-login.php"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        two_loads(&web, &prod_url).await;
    }
    assert_eq!(
        redis_keys(prod_id),
        Vec::<String>::new(),
        "WordPress uses its built-in cache"
    );

    // Redis on: the drop-in is back, the keys start empty and come back with page loads.
    toggle(app, prod_id, json!({"redis_cache_enabled": true})).await;
    assert!(Path::new(&drop_in).is_file(), "{drop_in} back");
    two_loads(&web, &prod_url).await;
    let start = std::time::Instant::now();
    while redis_keys(prod_id).is_empty() && start.elapsed() < Duration::from_secs(10) {
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(!redis_keys(prod_id).is_empty(), "keys come back");

    // The dashboard: page cache off and on, then a purge, in a real browser.
    crate::e2e::browser_script(app, "cache.mjs", &[("PRESSLUFT_ENVIRONMENT_ID", prod_id)]).await;
    assert_eq!(flags(app, prod_id).await, (true, true));
    assert!(std::fs::read_to_string(&block)
        .unwrap()
        .contains("fastcgi_cache WORDPRESS"));
    let (_, second) = two_loads_settled(&web, &prod_url, |s| s.1.as_deref() == Some("HIT")).await;
    assert_eq!(second.as_deref(), Some("HIT"));
    assert_eq!(flags(app, staging_id).await, (true, true));
}
