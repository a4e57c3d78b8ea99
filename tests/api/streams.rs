//! Live streams (SSE) are limited per session and overall, and end with their session
//! (issue 9, item 11).

use std::time::Duration;

use futures_util::StreamExt;
use serde_json::json;

use crate::helpers::{assert_error, spawn_app, TestApp, ADMIN_EMAIL, ADMIN_PASSWORD};
use pressluft::http::streams::{MAX_STREAMS, MAX_STREAMS_PER_SESSION};

/// A session made directly in the store (no password check), and its raw token.
async fn session(app: &TestApp) -> String {
    let token = pressluft::auth::token::random_token();
    let (user_id,): (String,) = pressluft::store::query_as("SELECT id FROM users LIMIT 1")
        .fetch_one(app.store.pool())
        .await
        .unwrap();
    let expires = pressluft::clock::format_ts(
        pressluft::clock::Clock::now(&app.clock) + time::Duration::hours(24),
    );
    app.store
        .insert_session(
            &uuid::Uuid::new_v4().to_string(),
            &user_id,
            &pressluft::auth::token::hash_token(&token),
            &expires,
            &app.now(),
        )
        .await
        .unwrap();
    token
}

async fn open(app: &TestApp, c: &reqwest::Client, path: &str, token: &str) -> reqwest::Response {
    c.get(app.url(path))
        .header("cookie", format!("session_token={token}"))
        .send()
        .await
        .unwrap()
}

/// A fresh app with one session that opened the stream at `path`.
async fn one_open_stream(path: &str) -> (TestApp, reqwest::Response) {
    let app = spawn_app().await;
    let token = session(&app).await;
    let r = open(&app, &reqwest::Client::new(), path, &token).await;
    (app, r)
}

/// Waits until the server has ended the stream (end of body), at most `limit`.
async fn ends_within(r: reqwest::Response, limit: Duration) -> Result<(), String> {
    let mut body = r.bytes_stream();
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        match tokio::time::timeout_at(deadline, body.next()).await {
            Err(_) => return Err(format!("stream still open after {limit:?}")),
            Ok(None) => return Ok(()),
            Ok(Some(Err(e))) => return Err(format!("stream broke instead of ending: {e}")),
            Ok(Some(Ok(_))) => {}
        }
    }
}

#[tokio::test]
async fn one_session_may_hold_eight_streams() {
    let app = spawn_app().await;
    let token = session(&app).await;
    let c = reqwest::Client::new();
    let paths = [
        "/api/events",
        "/ui/events?view=overview",
        "/ui/events?view=sites",
    ];
    let mut held = Vec::new();
    for i in 0..MAX_STREAMS_PER_SESSION {
        let r = open(&app, &c, paths[i % paths.len()], &token).await;
        assert_eq!(r.status(), 200, "stream {}", i + 1);
        held.push(r);
    }
    for path in paths {
        let r = open(&app, &c, path, &token).await;
        assert_error(r, 429, "too_many_streams").await;
    }
    // Another session is not affected.
    let other = session(&app).await;
    let r = open(&app, &c, "/api/events", &other).await;
    assert_eq!(r.status(), 200);
    assert_eq!(app.state.streams.open(), MAX_STREAMS_PER_SESSION + 1);
}

#[tokio::test]
async fn a_closed_stream_frees_its_place_at_once() {
    let app = spawn_app().await;
    let token = session(&app).await;
    let c = reqwest::Client::new();
    let mut held = Vec::new();
    for _ in 0..MAX_STREAMS_PER_SESSION {
        held.push(open(&app, &c, "/ui/events?view=overview", &token).await);
    }
    // The browser moves to another page: the old page's stream is closed.
    drop(held.pop());
    let deadline = tokio::time::Instant::now() + Duration::from_secs(3);
    while app.state.streams.open() == MAX_STREAMS_PER_SESSION {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the server did not notice the closed stream"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let r = open(&app, &c, "/ui/events?view=sites", &token).await;
    assert_eq!(r.status(), 200, "the new page gets its stream");
}

#[tokio::test]
async fn the_server_holds_at_most_256_streams() {
    let app = spawn_app().await;
    let c = reqwest::Client::new();
    let mut held = Vec::new();
    for _ in 0..MAX_STREAMS / MAX_STREAMS_PER_SESSION {
        let token = session(&app).await;
        for _ in 0..MAX_STREAMS_PER_SESSION {
            let r = open(&app, &c, "/api/events", &token).await;
            assert_eq!(r.status(), 200, "stream {}", held.len() + 1);
            held.push(r);
        }
    }
    assert_eq!(app.state.streams.open(), MAX_STREAMS);
    let fresh = session(&app).await;
    let r = open(&app, &c, "/api/events", &fresh).await;
    assert_error(r, 429, "too_many_streams").await;
}

#[tokio::test]
async fn logout_ends_the_sessions_open_streams() {
    let app = spawn_app().await;
    let c = reqwest::Client::new();
    let r = c
        .post(app.url("/api/login"))
        .json(&json!({"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD}))
        .send()
        .await
        .unwrap();
    let cookie = r.headers()["set-cookie"].to_str().unwrap().to_string();
    let token = cookie["session_token=".len()..]
        .split(';')
        .next()
        .unwrap()
        .to_string();
    let api = open(&app, &c, "/api/events", &token).await;
    let ui = open(&app, &c, "/ui/events?view=overview", &token).await;
    assert_eq!(api.status(), 200);
    assert_eq!(ui.status(), 200);

    let r = app.logout_token(&token).await;
    assert_eq!(r.status(), 200);
    ends_within(api, Duration::from_secs(3)).await.unwrap();
    ends_within(ui, Duration::from_secs(3)).await.unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(app.state.streams.open(), 0, "their places are free again");
}

#[tokio::test]
async fn a_password_change_by_another_process_ends_the_streams() {
    let (app, r) = one_open_stream("/api/events").await;
    assert_eq!(r.status(), 200);
    // Another Auth on the same database, as `pressluft admin set-password` in its own process.
    let cli = pressluft::auth::Auth::new(app.store.clone(), std::sync::Arc::new(app.clock.clone()));
    cli.set_password(ADMIN_EMAIL, "a completely new password")
        .await
        .unwrap();
    ends_within(r, Duration::from_secs(5)).await.unwrap();
}

#[tokio::test]
async fn streams_end_when_their_session_expires() {
    let (app, r) = one_open_stream("/ui/events?view=sites").await;
    assert_eq!(r.status(), 200);
    app.clock.advance(time::Duration::hours(24));
    ends_within(r, Duration::from_secs(5)).await.unwrap();
}
