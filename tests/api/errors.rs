//! Bad input gets a clear error in the `{code, message, details?}` shape.

use serde_json::json;

use crate::helpers::{assert_error, assert_field_error, spawn_app, spawn_logged_in};

#[tokio::test]
async fn malformed_json_is_a_400() {
    let app = spawn_app().await;
    let r = app
        .client
        .post(app.url("/api/login"))
        .header("content-type", "application/json")
        .body("{\"email\": ")
        .send()
        .await
        .unwrap();
    let body = assert_error(r, 400, "bad_request").await;
    assert!(
        body["message"].as_str().unwrap().contains("malformed JSON"),
        "{body}"
    );
}

#[tokio::test]
async fn wrong_types_and_unknown_fields_name_the_field() {
    let app = spawn_app().await;
    let r = app
        .post_json("/api/login", json!({"email": 42, "password": "x"}))
        .await;
    let body = assert_field_error(r, 400, "bad_request", "email").await;
    assert!(
        body["message"].as_str().unwrap().starts_with("email:"),
        "{body}"
    );

    let r = app
        .post_json(
            "/api/login",
            json!({"email": "a@b.c", "password": "x", "remember_me": true}),
        )
        .await;
    assert_field_error(r, 400, "bad_request", "remember_me").await;

    let r = app.post_json("/api/login", json!({"email": "a@b.c"})).await;
    assert_field_error(r, 400, "bad_request", "password").await;
}

#[tokio::test]
async fn bodies_over_one_mib_are_413() {
    let app = spawn_app().await;
    let big = format!(
        "{{\"email\": \"a@b.c\", \"password\": \"{}\"}}",
        "x".repeat(1024 * 1024 + 10)
    );
    let r = app
        .client
        .post(app.url("/api/login"))
        .header("content-type", "application/json")
        .body(big.clone())
        .send()
        .await
        .unwrap();
    assert_error(r, 413, "payload_too_large").await;

    // Also when the length is not declared up front (chunked).
    let stream = futures_util::stream::iter(vec![Ok::<_, std::io::Error>(big.into_bytes())]);
    let r = app
        .client
        .post(app.url("/api/login"))
        .header("content-type", "application/json")
        .body(reqwest::Body::wrap_stream(stream))
        .send()
        .await
        .unwrap();
    assert_error(r, 413, "payload_too_large").await;
}

#[tokio::test]
async fn malformed_ids_are_400_and_unknown_ids_404() {
    let app = spawn_logged_in().await;
    let r = app.get("/api/jobs/not-a-uuid").await;
    assert_field_error(r, 400, "bad_request", "id").await;
    let r = app
        .get(&format!("/api/jobs/{}", uuid::Uuid::new_v4()))
        .await;
    assert_error(r, 404, "not_found").await;
}

#[tokio::test]
async fn unknown_routes_are_404_in_the_error_shape() {
    let app = spawn_logged_in().await;
    let r = app.get("/api/nothing-here").await;
    assert_error(r, 404, "not_found").await;
}

#[tokio::test]
async fn every_response_carries_a_request_id_and_security_headers() {
    let app = spawn_app().await;
    let r = app.get("/healthz").await;
    assert_eq!(r.headers()["x-request-id"].len(), 12);
    assert_eq!(r.headers()["x-frame-options"], "DENY");
    assert_eq!(r.headers()["x-content-type-options"], "nosniff");
    assert!(r.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .contains("default-src 'self'"));
}
