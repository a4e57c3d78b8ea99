//! `POST /api/environments/{id}/magic-login` (backups-restore-promotion.md §10) without a
//! WordPress: the refusals (404, 409 `environment_not_active`), the audit row of every request,
//! and the hard 10 s limit: a node whose SSH port accepts connections and never answers gives
//! `502 node_unreachable` in under 11 s. The real login (a token made on the node and consumed
//! by the mu-plugin in a browser) is the end-to-end module `e2e_magic_login`.

use std::net::TcpListener;
use std::time::{Duration, Instant};

use crate::helpers::*;
use crate::reset_api::audit_of;

/// A listener on a free local port that accepts every connection and never writes a byte (an
/// SSH server that hangs after the TCP handshake). Runs until the test process ends.
fn silent_listener() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for stream in listener.incoming().flatten() {
            held.push(stream);
        }
    });
    port
}

#[tokio::test]
async fn a_node_that_never_answers_is_502_node_unreachable_within_11_seconds() {
    let app = spawn_logged_in().await;
    let node = app.insert_node("n1", "active").await;
    let site = app.insert_site("Shop", "shop").await;
    let env = app.insert_environment(&site, &node, "Production").await;
    let port = silent_listener();
    app.exec(
        "UPDATE nodes SET hostname = '127.0.0.1', ssh_port = CAST(? AS BIGINT) WHERE id = ?",
        &[&port.to_string(), &node],
    )
    .await;

    let started = Instant::now();
    let r = app
        .post_empty(&format!("/api/environments/{env}/magic-login"))
        .await;
    let elapsed = started.elapsed();
    let body = assert_error(r, 502, "node_unreachable").await;
    assert!(elapsed < Duration::from_secs(11), "{elapsed:?}");
    assert!(
        elapsed >= Duration::from_secs(9),
        "the limit is 10 s: {elapsed:?}"
    );
    let message = body["message"].as_str().unwrap();
    assert!(
        !message.contains("ssh") && !message.contains("127.0.0.1"),
        "{message}"
    );
    assert_eq!(
        audit_of(&app, &env).await,
        [("magic_login".to_string(), "failed".to_string())]
    );
}

#[tokio::test]
async fn a_refused_connection_is_node_unreachable_at_once() {
    let app = spawn_logged_in().await;
    let node = app.insert_node("n1", "active").await;
    let site = app.insert_site("Shop", "shop").await;
    let env = app.insert_environment(&site, &node, "Production").await;
    // Nothing listens on port 1 of this machine.
    app.exec(
        "UPDATE nodes SET hostname = '127.0.0.1', ssh_port = 1 WHERE id = ?",
        &[&node],
    )
    .await;
    let started = Instant::now();
    let r = app
        .post_empty(&format!("/api/environments/{env}/magic-login"))
        .await;
    assert_error(r, 502, "node_unreachable").await;
    assert!(started.elapsed() < Duration::from_secs(5));
}

#[tokio::test]
async fn an_environment_that_is_not_active_is_409_and_audited_rejected() {
    let app = spawn_logged_in().await;
    let node = app.insert_node("n1", "active").await;
    let site = app.insert_site("Shop", "shop").await;
    let env = app.insert_environment(&site, &node, "Production").await;
    for status in ["failed", "deploying", "restoring"] {
        app.exec(
            "UPDATE environments SET status = ? WHERE id = ?",
            &[status, &env],
        )
        .await;
        let r = app
            .post_empty(&format!("/api/environments/{env}/magic-login"))
            .await;
        let body = assert_error(r, 409, "environment_not_active").await;
        assert!(body["message"].as_str().unwrap().contains(status), "{body}");
    }
    let results: Vec<String> = audit_of(&app, &env)
        .await
        .into_iter()
        .map(|(action, result)| format!("{action}:{result}"))
        .collect();
    assert_eq!(
        results,
        [
            "magic_login:rejected",
            "magic_login:rejected",
            "magic_login:rejected"
        ]
    );
}

#[tokio::test]
async fn unknown_malformed_and_anonymous_requests_are_refused_without_an_audit_row() {
    let app = spawn_logged_in().await;
    let unknown = uuid::Uuid::new_v4();
    let r = app
        .post_empty(&format!("/api/environments/{unknown}/magic-login"))
        .await;
    assert_error(r, 404, "not_found").await;
    let r = app.post_empty("/api/environments/x/magic-login").await;
    assert_error(r, 400, "bad_request").await;
    let anonymous = client()
        .post(app.url(&format!("/api/environments/{unknown}/magic-login")))
        .send()
        .await
        .unwrap();
    assert_error(anonymous, 401, "unauthorized").await;
    assert_eq!(app.count("audit_logs").await, 0);
}

#[tokio::test]
async fn the_dashboard_button_posts_with_the_form_token_and_shows_refusals() {
    let app = spawn_logged_in().await;
    let node = app.insert_node("n1", "active").await;
    let site = app.insert_site("Shop", "shop").await;
    let env = app.insert_environment(&site, &node, "Production").await;
    let fragment = app.text(&format!("/ui/environments/{env}/controls")).await;
    assert!(fragment.contains("Open WordPress admin"), "{fragment}");
    assert!(
        fragment.contains(&format!(
            "action=\"/environments/{env}/magic-login\" target=\"_blank\""
        )),
        "{fragment}"
    );
    assert!(!fragment.contains("open-wp-admin\" disabled"), "{fragment}");

    let c = &app.client;
    // Without the token: refused before anything is asked of the node (no audit row).
    let r = c
        .post(app.url(&format!("/environments/{env}/magic-login")))
        .form(&[("csrf_token", "wrong")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    assert_eq!(app.count("audit_logs").await, 0);

    // A failed environment: the error page names the code.
    app.exec(
        "UPDATE environments SET status = 'failed' WHERE id = ?",
        &[&env],
    )
    .await;
    let forms = CsrfForms::new(&app, c, &fragment);
    let r = forms
        .post(&format!("/environments/{env}/magic-login"), &[])
        .await;
    assert_eq!(r.status(), 409);
    let html = r.text().await.unwrap();
    assert!(html.contains("environment_not_active"), "{html}");
}
