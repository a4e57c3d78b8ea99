//! Dashboard pages answer errors with an HTML page, not the API's JSON: an unknown id is a
//! `404` page, a server error a `500` page, with the error's code and message (never its cause,
//! which only the log gets). Handlers keep returning [`ApiError`](crate::http::error::ApiError);
//! this layer turns its JSON into the page on the way out.

use askama::Template;
use axum::body::Body;
use axum::extract::Request;
use axum::http::header::{CONTENT_LENGTH, CONTENT_TYPE};
use axum::middleware::Next;
use axum::response::{Html, IntoResponse, Response};

#[derive(Template)]
#[template(path = "error.html")]
struct ErrorPage {
    status: u16,
    title: String,
    code: String,
    message: String,
    version: &'static str,
}

/// The largest error body read back (error bodies are a few hundred bytes).
const MAX_ERROR_BODY: usize = 64 * 1024;

/// Replaces a JSON error response of a dashboard route with the HTML error page.
/// `/ui/…` (live streams and fragments for htmx and EventSource, not pages) keeps the JSON
/// error shape.
pub async fn html_errors(req: Request, next: Next) -> Response {
    let fragment = req.uri().path().starts_with("/ui/");
    let response = next.run(req).await;
    if fragment {
        return response;
    }
    let status = response.status();
    let is_json = response
        .headers()
        .get(CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"application/json"));
    if !(status.is_client_error() || status.is_server_error()) || !is_json {
        return response;
    }
    let (mut parts, body) = response.into_parts();
    let bytes = axum::body::to_bytes(body, MAX_ERROR_BODY)
        .await
        .unwrap_or_default();
    let error: serde_json::Value = serde_json::from_slice(&bytes).unwrap_or_default();
    let page = ErrorPage {
        status: status.as_u16(),
        title: status.canonical_reason().unwrap_or("Error").to_string(),
        code: error["code"]
            .as_str()
            .unwrap_or("internal_error")
            .to_string(),
        message: error["message"]
            .as_str()
            .unwrap_or("Something went wrong.")
            .to_string(),
        version: env!("CARGO_PKG_VERSION"),
    };
    let html = match page.render() {
        Ok(html) => html,
        Err(_) => format!("<!doctype html><title>{status}</title><h1>{status}</h1>"),
    };
    parts.headers.remove(CONTENT_LENGTH);
    parts.headers.remove(CONTENT_TYPE);
    let mut page = Html(html).into_response();
    *page.status_mut() = status;
    for (name, value) in parts.headers.iter() {
        page.headers_mut().insert(name.clone(), value.clone());
    }
    let (page_parts, page_body) = page.into_parts();
    Response::from_parts(page_parts, Body::new(page_body))
}
