//! Login, sessions, logout, throttling and CSRF over real HTTP.

use serde_json::{json, Value};
use time::Duration;

use crate::helpers::{
    assert_error, assert_field_error, client, spawn_app, spawn_app_with, TestApp, ADMIN_EMAIL,
    ADMIN_PASSWORD,
};

#[tokio::test]
async fn login_sets_a_hardened_session_cookie_and_stores_only_its_hash() {
    let app = spawn_app().await;
    let r = app.login_as(&client(), ADMIN_EMAIL, ADMIN_PASSWORD).await;
    assert_eq!(r.status(), 200);
    let cookie = r
        .headers()
        .get("set-cookie")
        .expect("Set-Cookie")
        .to_str()
        .unwrap()
        .to_string();
    let body: Value = r.json().await.unwrap();
    assert_eq!(body, json!({"success": true}));

    let token = cookie
        .strip_prefix("session_token=")
        .and_then(|c| c.split(';').next())
        .expect("session_token cookie");
    assert_eq!(token.len(), 43, "base64url of 32 bytes");
    for flag in ["HttpOnly", "SameSite=Strict", "Path=/", "Max-Age=86400"] {
        assert!(cookie.split("; ").any(|p| p == flag), "{flag} in {cookie}");
    }
    assert!(
        !cookie.contains("Secure"),
        "plain HTTP without a control-plane domain: {cookie}"
    );

    let stored: Vec<(String,)> =
        pressluft::store::query_as("SELECT session_token FROM auth_sessions")
            .fetch_all(app.store.pool())
            .await
            .unwrap();
    assert_eq!(stored.len(), 1);
    assert_ne!(stored[0].0, token, "raw token never stored");
    assert_eq!(stored[0].0, pressluft::auth::token::hash_token(token));
}

/// The session cookie of an admin login whose request says it came over TLS.
async fn cookie_of_a_login_claiming_tls(app: &TestApp) -> String {
    let r = client()
        .post(app.url("/api/login"))
        .header("x-forwarded-proto", "https")
        .json(&json!({"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD}))
        .send()
        .await
        .unwrap();
    r.headers()["set-cookie"].to_str().unwrap().to_string()
}

#[tokio::test]
async fn secure_flag_when_proxied_over_tls() {
    let app = behind_trusted_proxy().await;
    let cookie = cookie_of_a_login_claiming_tls(&app).await;
    assert!(cookie.ends_with("; Secure"), "{cookie}");

    // Without a configured proxy nobody may claim TLS for the request.
    let app = spawn_app().await;
    let cookie = cookie_of_a_login_claiming_tls(&app).await;
    assert!(!cookie.contains("Secure"), "{cookie}");
}

#[tokio::test]
async fn email_is_case_insensitive() {
    let app = spawn_app().await;
    let r = app
        .login_as(&client(), "  ADMIN@Example.com ", ADMIN_PASSWORD)
        .await;
    assert_eq!(r.status(), 200);
}

#[tokio::test]
async fn wrong_password_and_unknown_email_look_the_same() {
    let app = spawn_app().await;
    let wrong = app
        .login_as(&client(), ADMIN_EMAIL, "not the password")
        .await;
    let wrong = assert_error(wrong, 401, "unauthorized").await;
    let unknown = app
        .login_as(&client(), "nobody@example.com", "whatever pass")
        .await;
    let unknown = assert_error(unknown, 401, "unauthorized").await;
    assert_eq!(wrong, unknown);
}

#[tokio::test]
async fn inactive_users_cannot_log_in() {
    let app = spawn_app().await;
    app.exec("UPDATE users SET is_active = 0", &[]).await;
    let r = app.login_as(&client(), ADMIN_EMAIL, ADMIN_PASSWORD).await;
    assert_error(r, 401, "unauthorized").await;
}

#[tokio::test]
async fn login_validates_its_body() {
    let app = spawn_app().await;
    let r = client()
        .post(app.url("/api/login"))
        .json(&json!({"email": "not-an-email", "password": "x"}))
        .send()
        .await
        .unwrap();
    assert_field_error(r, 400, "bad_request", "email").await;

    let r = client()
        .post(app.url("/api/login"))
        .json(&json!({"email": ADMIN_EMAIL, "password": ""}))
        .send()
        .await
        .unwrap();
    assert_field_error(r, 400, "bad_request", "password").await;
}

/// A client that sends one fixed session cookie (no cookie store).
async fn get_with_token(app: &crate::helpers::TestApp, token: &str) -> u16 {
    reqwest::Client::new()
        .get(app.url("/api/metrics"))
        .header("cookie", format!("session_token={token}"))
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

async fn login_token(app: &crate::helpers::TestApp) -> String {
    let r = app.login_as(&client(), ADMIN_EMAIL, ADMIN_PASSWORD).await;
    let cookie = r.headers()["set-cookie"].to_str().unwrap().to_string();
    cookie["session_token=".len()..]
        .split(';')
        .next()
        .unwrap()
        .to_string()
}

#[tokio::test]
async fn logout_revokes_the_session_and_clears_the_cookie() {
    let app = spawn_app().await;
    let token = login_token(&app).await;
    assert_eq!(get_with_token(&app, &token).await, 200);

    let r = app.logout_token(&token).await;
    assert_eq!(r.status(), 200);
    let cleared = r.headers()["set-cookie"].to_str().unwrap().to_string();
    assert!(
        cleared.contains("session_token=;") && cleared.contains("Max-Age=0"),
        "{cleared}"
    );
    assert_eq!(r.json::<Value>().await.unwrap(), json!({"success": true}));

    assert_eq!(
        get_with_token(&app, &token).await,
        401,
        "old cookie is dead"
    );
    let revoked: (Option<String>,) =
        pressluft::store::query_as("SELECT revoked_at FROM auth_sessions")
            .fetch_one(app.store.pool())
            .await
            .unwrap();
    assert!(revoked.0.is_some());
}

#[tokio::test]
async fn sessions_expire_24_hours_after_login() {
    let app = spawn_app().await;
    let token = login_token(&app).await;
    app.clock
        .advance(Duration::hours(23) + Duration::minutes(59));
    assert_eq!(
        get_with_token(&app, &token).await,
        200,
        "still valid just before 24 h"
    );
    app.clock.advance(Duration::minutes(1));
    assert_eq!(
        get_with_token(&app, &token).await,
        401,
        "absolute expiry, no sliding"
    );
}

#[tokio::test]
async fn garbage_and_unknown_tokens_are_unauthorized() {
    let app = spawn_app().await;
    assert_eq!(get_with_token(&app, "nope").await, 401);
    assert_eq!(
        get_with_token(&app, &pressluft::auth::token::random_token()).await,
        401
    );
}

#[tokio::test]
async fn password_change_revokes_sessions() {
    let app = spawn_app().await;
    let token = login_token(&app).await;
    let auth =
        pressluft::auth::Auth::new(app.store.clone(), std::sync::Arc::new(app.clock.clone()));
    auth.set_password(ADMIN_EMAIL, "a completely new password")
        .await
        .unwrap();
    assert_eq!(get_with_token(&app, &token).await, 401);
    let r = app
        .login_as(&client(), ADMIN_EMAIL, "a completely new password")
        .await;
    assert_eq!(r.status(), 200);
}

/// Routes anyone may call: the health check, logging in, the login page and static assets.
const PUBLIC_ROUTES: [(&str, &str); 5] = [
    ("GET", "/healthz"),
    ("POST", "/api/login"),
    ("GET", "/login"),
    ("POST", "/login"),
    ("GET", "/assets/{*path}"),
];

/// The router sources and the prefix each is mounted at (`src/startup.rs` composes the API,
/// the admin settings and the dashboard; `src/http/mod.rs` adds `/healthz`): every file under
/// `src/api` and `src/ui` that registers a route, so a new area's router cannot be missed.
fn router_sources(root: &std::path::Path) -> Vec<(String, &'static str)> {
    fn walk(dir: &std::path::Path, out: &mut Vec<std::path::PathBuf>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                walk(&path, out);
            } else if path.extension().is_some_and(|e| e == "rs") {
                out.push(path);
            }
        }
    }
    let mut files = Vec::new();
    walk(&root.join("src/api"), &mut files);
    walk(&root.join("src/ui"), &mut files);
    files.push(root.join("src/http/mod.rs"));
    files.sort();
    files
        .into_iter()
        .map(|f| {
            let rel = f.strip_prefix(root).unwrap().to_string_lossy().into_owned();
            let prefix = if rel == "src/api/admin_settings.rs" {
                "/_admin"
            } else if rel.starts_with("src/api/") {
                "/api"
            } else {
                ""
            };
            (rel, prefix)
        })
        .collect()
}

/// `(METHOD, path)` of every `.route(…)` registered in a router's source: the path literal and
/// each method router (`get(…)`, `.post(…)`, …) at the call's top level.
fn routes_in_source(source: &str, prefix: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut rest = source;
    while let Some(at) = rest.find(".route(") {
        let call = &rest[at + ".route(".len()..];
        let (mut depth, mut end) = (1usize, 0usize);
        for (i, c) in call.char_indices() {
            match c {
                '(' => depth += 1,
                ')' => depth -= 1,
                _ => {}
            }
            if depth == 0 {
                end = i;
                break;
            }
        }
        let args = &call[..end];
        let path = args.split('"').nth(1).expect("a path literal");
        let path = if path == "/" && !prefix.is_empty() {
            prefix.to_string()
        } else {
            format!("{prefix}{path}")
        };
        // Method routers at depth 0 of the arguments.
        let mut depth = 0usize;
        let mut ident = String::new();
        for c in args.chars() {
            match c {
                '(' => {
                    if depth == 0 {
                        let m = ident.trim_start_matches('.');
                        if ["get", "post", "put", "patch", "delete"].contains(&m) {
                            out.push((m.to_uppercase(), path.clone()));
                        }
                    }
                    depth += 1;
                    ident.clear();
                }
                ')' => {
                    depth -= 1;
                    ident.clear();
                }
                c if c.is_alphanumeric() || c == '_' || c == '.' => ident.push(c),
                _ => ident.clear(),
            }
        }
        rest = &call[end..];
    }
    out
}

/// `(METHOD, path)` of every operation in the served OpenAPI document (its paths are relative
/// to the `/api` server).
fn operations_in_document(yaml: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut in_paths = false;
    let mut path = String::new();
    for line in yaml.lines() {
        if !line.starts_with(' ') {
            in_paths = line == "paths:";
            continue;
        }
        if !in_paths {
            continue;
        }
        if let Some(p) = line.strip_prefix("  /") {
            path = format!("/api/{}", p.trim_end_matches(':'));
        } else if let Some(m) = line.strip_prefix("    ") {
            let m = m.trim_end_matches(':');
            if ["get", "post", "put", "patch", "delete"].contains(&m) {
                out.push((m.to_uppercase(), path.clone()));
            }
        }
    }
    out
}

#[tokio::test]
async fn every_protected_endpoint_requires_a_session() {
    let app = spawn_app().await;
    // Every route: the served OpenAPI document's operations and every route the routers
    // register, so a new route cannot be forgotten here.
    app.login().await;
    let document = app.get("/api/openapi.yaml").await.text().await.unwrap();
    let mut routes = operations_in_document(&document);
    assert!(routes.len() >= 20, "{routes:?}");
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    // `startup` composes `/api`, `/_admin` and the dashboard; `http::router` adds `/healthz`.
    for (file, mounts) in [("src/startup.rs", (2, 1)), ("src/http/mod.rs", (0, 1))] {
        let source = std::fs::read_to_string(root.join(file)).unwrap();
        let found = (
            source.matches(".nest(").count(),
            source.matches(".merge(").count(),
        );
        assert_eq!(
            found, mounts,
            "{file} mounts another router: add it to router_sources"
        );
    }
    let mut files_with_routes = 0;
    for (file, prefix) in router_sources(root) {
        let source = std::fs::read_to_string(root.join(&file)).unwrap();
        let found = routes_in_source(&source, prefix);
        files_with_routes += usize::from(!found.is_empty());
        routes.extend(found);
    }
    assert!(files_with_routes >= 4, "too few router sources found");
    routes.sort();
    routes.dedup();
    for (method, path) in &routes {
        let in_document =
            operations_in_document(&document).contains(&(method.clone(), path.clone()));
        assert!(
            !path.starts_with("/api/") || in_document || path == "/api/openapi.yaml",
            "{method} {path} is routed but not in the OpenAPI document"
        );
    }

    let c = client();
    let id = uuid::Uuid::new_v4().to_string();
    let mut checked = 0;
    for (method, path) in &routes {
        if PUBLIC_ROUTES.contains(&(method.as_str(), path.as_str())) {
            continue;
        }
        let concrete = path
            .replace("{id}", &id)
            .replace("{release_id}", &id)
            .replace("{*path}", "app.css")
            .replace("{name}", "db.sql.zst")
            .replace("{file}", "0-before.png");
        assert!(!concrete.contains('{'), "unknown parameter in {path}");
        let url = app.url(&concrete);
        let req = match method.as_str() {
            "GET" => c.get(&url),
            "POST" => c.post(&url),
            "PUT" => c.put(&url),
            "PATCH" => c.patch(&url),
            "DELETE" => c.delete(&url),
            other => panic!("{other}"),
        };
        // A body of the right kind, so only the missing session can refuse it.
        let api = concrete.starts_with("/api/") || concrete.starts_with("/_admin/");
        let req = if method == "GET" {
            req
        } else if api {
            req.json(&json!({}))
        } else {
            req.header("content-type", "application/x-www-form-urlencoded")
                .body("csrf_token=x")
        };
        let r = req.send().await.unwrap();
        if api {
            assert_eq!(r.status(), 401, "{method} {path}");
            let body: Value = r.json().await.unwrap();
            assert_eq!(body["code"], "unauthorized", "{method} {path}: {body}");
        } else {
            assert!(
                r.status().is_redirection(),
                "{method} {path}: {} instead of a redirect to the login page",
                r.status()
            );
            let location = r.headers()["location"].to_str().unwrap();
            assert!(
                location.starts_with("/login"),
                "{method} {path} redirects to {location}"
            );
        }
        checked += 1;
    }
    assert!(
        checked >= 35,
        "only {checked} protected routes found: {routes:?}"
    );

    // The public ones answer without a session.
    let r = c.get(app.url("/healthz")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.json::<Value>().await.unwrap(), json!({"status": "ok"}));
    assert_eq!(c.get(app.url("/login")).send().await.unwrap().status(), 200);
    assert_eq!(
        c.get(app.url("/assets/app.css"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
}

#[tokio::test]
async fn the_sixth_failure_is_throttled_until_the_window_passes() {
    let app = spawn_app().await;
    for i in 0..5 {
        let r = app.login_as(&client(), ADMIN_EMAIL, "wrong password").await;
        assert_eq!(r.status(), 401, "failure {}", i + 1);
        app.clock.advance(Duration::seconds(10));
    }
    let r = app.login_as(&client(), ADMIN_EMAIL, "wrong password").await;
    assert_error(r, 429, "login_throttled").await;
    // Even the right password is refused while blocked.
    let r = app.login_as(&client(), ADMIN_EMAIL, ADMIN_PASSWORD).await;
    assert_error(r, 429, "login_throttled").await;

    app.clock.advance(Duration::minutes(14));
    let r = app.login_as(&client(), ADMIN_EMAIL, ADMIN_PASSWORD).await;
    assert_error(r, 429, "login_throttled").await;

    app.clock.advance(Duration::minutes(1));
    let r = app.login_as(&client(), ADMIN_EMAIL, ADMIN_PASSWORD).await;
    assert_eq!(r.status(), 200, "15 minutes after the last failure");
}

#[tokio::test]
async fn throttling_also_applies_per_ip_across_emails() {
    let app = spawn_app().await;
    for i in 0..20 {
        let r = app
            .login_as(&client(), &format!("user{i}@example.com"), "wrong password")
            .await;
        assert_eq!(r.status(), 401, "failure {}", i + 1);
    }
    let r = app.login_as(&client(), ADMIN_EMAIL, ADMIN_PASSWORD).await;
    assert_error(r, 429, "login_throttled").await;
}

/// An app whose trusted proxy is the test client's own address (127.0.0.1), so requests can
/// present any client IP in `X-Forwarded-For`, as the control-plane vhost does.
async fn behind_trusted_proxy() -> TestApp {
    spawn_app_with(
        |c| c.trusted_proxies = vec![pressluft::config::IpBlock::parse("127.0.0.1").unwrap()],
        None,
    )
    .await
}

async fn login_from(app: &TestApp, ip: &str, email: &str, password: &str) -> reqwest::Response {
    client()
        .post(app.url("/api/login"))
        .header("x-forwarded-for", ip)
        .json(&json!({"email": email, "password": password}))
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn a_parallel_burst_of_wrong_logins_gets_five_guesses() {
    let app = spawn_app().await;
    let burst = (0..50).map(|_| {
        let app = &app;
        async move {
            app.login_as(&client(), ADMIN_EMAIL, "wrong password")
                .await
                .status()
                .as_u16()
        }
    });
    let statuses = futures_util::future::join_all(burst).await;
    let wrong = statuses.iter().filter(|s| **s == 401).count();
    let throttled = statuses.iter().filter(|s| **s == 429).count();
    assert_eq!(wrong + throttled, 50, "{statuses:?}");
    assert!(wrong <= 5, "{wrong} guesses got through: {statuses:?}");
    let verified = app.state.auth.verifications();
    assert!(verified <= 5, "{verified} passwords verified");
    assert_eq!(verified as usize, wrong, "each 401 is one verification");
    assert_eq!(app.count("login_attempts").await, wrong as i64);
    // Under load the at-once bound may have refused more of the burst than the failure limit
    // did: top the failures up to the limit one by one (each still a 401), then the block holds.
    let mut wrong = wrong;
    while wrong < 5 {
        let status = app
            .login_as(&client(), ADMIN_EMAIL, "wrong password")
            .await
            .status()
            .as_u16();
        assert_eq!(status, 401, "guess {} after the burst", wrong + 1);
        wrong += 1;
    }
    // The block holds for the right password too.
    let r = app.login_as(&client(), ADMIN_EMAIL, ADMIN_PASSWORD).await;
    assert_error(r, 429, "login_throttled").await;
}

#[tokio::test]
async fn password_checks_run_at_most_four_at_a_time() {
    let app = behind_trusted_proxy().await;
    // Distinct IPs and e-mails: no throttle applies, only the verification bound.
    let burst = (0..40).map(|i| {
        let app = &app;
        async move {
            let ip = format!("198.51.100.{}", i + 1);
            let started = std::time::Instant::now();
            let r = login_from(app, &ip, &format!("u{i}@example.com"), "wrong password").await;
            let status = r.status().as_u16();
            let body: serde_json::Value = r.json().await.unwrap();
            (
                status,
                body["code"].as_str().unwrap_or("").to_string(),
                started.elapsed(),
            )
        }
    });
    let results = futures_util::future::join_all(burst).await;
    let peak = app.state.auth.peak_concurrent_verifications();
    assert!((1..=4).contains(&peak), "peak {peak}");
    let wrong = results.iter().filter(|r| r.0 == 401).count();
    for (status, code, took) in &results {
        match status {
            401 => assert_eq!(code, "unauthorized"),
            429 => {
                assert_eq!(code, "login_throttled");
                assert!(took.as_secs_f64() < 5.0, "refused quickly: {took:?}");
            }
            other => panic!("unexpected status {other}"),
        }
    }
    assert_eq!(app.state.auth.verifications() as usize, wrong);
    assert_eq!(
        app.count("login_attempts").await,
        wrong as i64,
        "attempts refused for load are not recorded as failures"
    );
}

#[tokio::test]
async fn the_admin_logs_in_from_another_ip_while_an_attacker_is_throttled() {
    let app = behind_trusted_proxy().await;
    let attacker = "203.0.113.66";
    for i in 0..5 {
        let r = login_from(&app, attacker, ADMIN_EMAIL, "guess").await;
        assert_eq!(r.status(), 401, "guess {}", i + 1);
    }
    let r = login_from(&app, attacker, ADMIN_EMAIL, "guess").await;
    assert_error(r, 429, "login_throttled").await;
    let r = login_from(&app, attacker, ADMIN_EMAIL, ADMIN_PASSWORD).await;
    assert_error(r, 429, "login_throttled").await;

    // The admin, elsewhere, is not locked out.
    let r = login_from(&app, "198.51.100.7", ADMIN_EMAIL, ADMIN_PASSWORD).await;
    assert_eq!(r.status(), 200, "admin from another IP");

    // The attacker moves on to other accounts: 20 failures from one IP block that IP.
    for i in 0..15 {
        let r = login_from(&app, attacker, &format!("v{i}@example.com"), "guess").await;
        assert_eq!(r.status(), 401, "other account {i}");
    }
    let r = login_from(&app, attacker, "another@example.com", "guess").await;
    assert_error(r, 429, "login_throttled").await;
    let r = login_from(&app, "198.51.100.7", ADMIN_EMAIL, ADMIN_PASSWORD).await;
    assert_eq!(r.status(), 200, "admin still fine");
}

/// Arranges `n` failed logins for `email` spread over distinct IPs (as a botnet would leave
/// them), `at` the current clock.
async fn distributed_failures(app: &TestApp, email: &str, n: usize) {
    let now = app.now();
    for i in 0..n {
        let (id, ip) = (
            uuid::Uuid::new_v4().to_string(),
            format!("192.0.2.{}", i % 200 + 1),
        );
        app.exec(
            "INSERT INTO login_attempts (id, email, remote_ip, succeeded, created_at)
             VALUES (?, ?, ?, 0, ?)",
            &[&id, email, &ip, &now],
        )
        .await;
    }
}

#[tokio::test]
async fn distributed_guessing_hits_a_per_email_ceiling_that_spares_known_ips() {
    let app = behind_trusted_proxy().await;
    let home = "198.51.100.20";
    let r = login_from(&app, home, ADMIN_EMAIL, ADMIN_PASSWORD).await;
    assert_eq!(r.status(), 200);
    app.clock.advance(Duration::minutes(1));

    distributed_failures(&app, ADMIN_EMAIL, 99).await;
    app.clock.advance(Duration::seconds(1));
    let r = login_from(&app, "203.0.113.200", ADMIN_EMAIL, "guess").await;
    assert_eq!(
        r.status(),
        401,
        "the 100th failure still gets a verification"
    );
    let r = login_from(&app, "203.0.113.201", ADMIN_EMAIL, "guess").await;
    assert_error(r, 429, "login_throttled").await;
    let r = login_from(&app, "203.0.113.202", ADMIN_EMAIL, ADMIN_PASSWORD).await;
    assert_error(r, 429, "login_throttled").await;

    // Where the admin logged in before, the ceiling does not apply.
    let r = login_from(&app, home, ADMIN_EMAIL, ADMIN_PASSWORD).await;
    assert_eq!(r.status(), 200, "known IP");
    // Other accounts are unaffected.
    let r = login_from(&app, "203.0.113.203", "other@example.com", "guess").await;
    assert_eq!(r.status(), 401);
}

#[tokio::test]
async fn forwarded_for_is_ignored_unless_the_peer_is_a_trusted_proxy() {
    // No proxy configured, and one configured that is not the peer: both throttle the real IP.
    for proxies in [vec![], vec!["10.0.0.0/8"]] {
        let app = spawn_app_with(
            |c| {
                c.trusted_proxies = proxies
                    .iter()
                    .map(|p| pressluft::config::IpBlock::parse(p).unwrap())
                    .collect()
            },
            None,
        )
        .await;
        for i in 0..5 {
            let spoofed = format!("203.0.113.{}", i + 1);
            let r = login_from(&app, &spoofed, ADMIN_EMAIL, "guess").await;
            assert_eq!(r.status(), 401, "guess {}", i + 1);
        }
        let r = login_from(&app, "198.51.100.99", ADMIN_EMAIL, ADMIN_PASSWORD).await;
        assert_error(r, 429, "login_throttled").await;
        let ips: Vec<(String,)> =
            pressluft::store::query_as("SELECT DISTINCT remote_ip FROM login_attempts")
                .fetch_all(app.store.pool())
                .await
                .unwrap();
        assert_eq!(ips, vec![("127.0.0.1".to_string(),)], "{proxies:?}");
    }
}

#[tokio::test]
async fn behind_a_trusted_proxy_the_last_untrusted_hop_is_the_client() {
    let app = behind_trusted_proxy().await;
    // A client-sent value before the proxy's own entry cannot choose the IP.
    let r = login_from(&app, "198.51.100.1, 203.0.113.50", ADMIN_EMAIL, "guess").await;
    assert_eq!(r.status(), 401);
    let (ip,): (String,) = pressluft::store::query_as("SELECT remote_ip FROM login_attempts")
        .fetch_one(app.store.pool())
        .await
        .unwrap();
    assert_eq!(ip, "203.0.113.50");
}

#[tokio::test]
async fn cross_origin_and_non_json_posts_are_refused() {
    let app = spawn_app().await;
    let body = json!({"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD});
    let login_from = |origin: &str| {
        let request = client().post(app.url("/api/login"));
        request.header("origin", origin).json(&body).send()
    };
    let r = login_from("http://evil.example").await.unwrap();
    assert_error(r, 403, "csrf_failed").await;

    let r = client()
        .post(app.url("/api/login"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!("email={ADMIN_EMAIL}&password=x"))
        .send()
        .await
        .unwrap();
    assert_error(r, 403, "csrf_failed").await;

    let r = login_from(&app.base).await.unwrap();
    assert_eq!(r.status(), 200, "same origin passes");

    // A cross-origin logout with a valid session is refused too.
    app.login().await;
    let r = app
        .client
        .post(app.url("/api/logout"))
        .header("origin", "https://evil.example")
        .send()
        .await
        .unwrap();
    assert_error(r, 403, "csrf_failed").await;
    let (status, _) = app.get_json("/api/metrics").await;
    assert_eq!(status, 200, "session survived the refused logout");
}
