//! After login the dashboard follows `next` only to a same-origin path (issue 9, item 6): every
//! open-redirect form goes to `/sites`, and a `next` with a newline still gets an answer.

use crate::helpers::{
    client, get_with, hidden_field, spawn_app, submit_login_form, TestApp, ADMIN_EMAIL,
    ADMIN_PASSWORD,
};

/// `GET /login` with the raw (already encoded) query, then the form posted with `next` as the
/// raw encoded value (so control characters travel exactly as an attacker's link carries them).
async fn login_with_raw_next(app: &TestApp, raw_next: &str) -> (String, reqwest::Response) {
    let c = client();
    let page = get_with(&c, app.url(&format!("/login?next={raw_next}"))).await;
    assert_eq!(page.status(), 200, "login page for next={raw_next}");
    let html = page.text().await.unwrap();
    let token = hidden_field(&html, "csrf_token");
    let next_in_page = hidden_field(&html, "next");
    let body = format!(
        "email={}&password={}&csrf_token={}&next={raw_next}",
        form_urlencoded::byte_serialize(ADMIN_EMAIL.as_bytes()).collect::<String>(),
        form_urlencoded::byte_serialize(ADMIN_PASSWORD.as_bytes()).collect::<String>(),
        token,
    );
    let r = c
        .post(app.url("/login"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(body)
        .send()
        .await
        .unwrap_or_else(|e| panic!("next={raw_next}: the server dropped the request: {e}"));
    (next_in_page, r)
}

#[tokio::test]
async fn foreign_or_malformed_next_goes_to_the_sites_page() {
    let app = spawn_app().await;
    for raw in [
        "%2F%09%2Fevil.example", // "/\t/evil.example": browsers drop the tab
        "/%09/evil.example",
        "//evil.example",
        "%2F%2Fevil.example",
        "/%5Cevil.example", // "/\evil.example": browsers read \ as /
        "%2F%5C%2Fevil.example",
        "https://evil.example/",
        "https%3A%2F%2Fevil.example%2F",
        "javascript:alert(1)",
        "evil.example",
        "/%0A/evil.example",           // newline
        "/x%0D%0ASet-Cookie:%20a%3Db", // header injection attempt
        "/%00",                        // NUL
        "/caf%C3%A9",                  // non-ASCII cannot be a header value
    ] {
        let (in_page, r) = login_with_raw_next(&app, raw).await;
        assert_eq!(in_page, "/sites", "form's next for {raw}");
        assert_eq!(r.status(), 303, "logged in for next={raw}");
        assert_eq!(r.headers()["location"], "/sites", "next={raw}");
    }
}

#[tokio::test]
async fn a_local_path_is_followed_and_no_next_goes_to_sites() {
    let app = spawn_app().await;
    let (in_page, r) = login_with_raw_next(&app, "%2Fjobs%3Fstatus%3Dfailed").await;
    assert_eq!(in_page, "/jobs?status=failed");
    assert_eq!(r.status(), 303);
    assert_eq!(r.headers()["location"], "/jobs?status=failed");

    let c = client();
    let r = submit_login_form(&app, &c, "/login", ADMIN_PASSWORD, None).await;
    assert_eq!(r.status(), 303);
    assert_eq!(r.headers()["location"], "/sites");
}
