//! Cross-cutting request handling: request ids and the request log, body size limit, CSRF
//! checks for state-changing requests, and security headers.

use std::time::Instant;

use axum::extract::Request;
use axum::http::header::{CONTENT_LENGTH, CONTENT_TYPE, HOST, ORIGIN, TRANSFER_ENCODING};
use axum::http::{HeaderValue, Method};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use axum::extract::{ConnectInfo, State};

use crate::http::error::{ApiError, ErrorCode};
use crate::http::session::{over_tls, Peer, Via};
use crate::state::AppState;

/// `Strict-Transport-Security` for TLS requests.
pub const HSTS: &str = "max-age=31536000";
use crate::http::extract::MAX_BODY_BYTES;

/// Gives each request an id (`x-request-id`) and logs one line when it completes: method, path,
/// status, latency and id. Never headers, query strings, cookies or bodies. Rejections also get
/// `request rejected code=… path=…`.
pub async fn request_log(req: Request, next: Next) -> Response {
    let started = Instant::now();
    let request_id = uuid::Uuid::new_v4().simple().to_string()[..12].to_string();
    let method = req.method().clone();
    let path = req.uri().path().to_string();
    let mut response = next.run(req).await;
    let status = response.status().as_u16();
    let latency_ms = started.elapsed().as_secs_f64() * 1000.0;
    if let Some(code) = response.extensions().get::<ErrorCode>() {
        if status < 500 {
            tracing::info!(code = code.as_str(), %path, "request rejected");
        }
    }
    tracing::info!(
        method = %method,
        path = %path,
        status,
        latency_ms = format!("{latency_ms:.1}"),
        request_id = %request_id,
        "request"
    );
    if let Ok(v) = HeaderValue::from_str(&request_id) {
        response.headers_mut().insert("x-request-id", v);
    }
    response
}

/// Refuses bodies whose declared length is over 1 MiB before anything reads them (streamed
/// bodies are cut at the same size by the extractors).
pub async fn body_limit(req: Request, next: Next) -> Response {
    let declared = req
        .headers()
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    // The dashboard's archive upload (`POST /sites/{id}/import`) streams to disk with its own
    // limit (crate::ui::imports).
    let limit = if is_import_upload(req.uri().path()) {
        crate::ui::imports::UPLOAD_MAX_BYTES as u64 + 64 * 1024
    } else {
        MAX_BODY_BYTES as u64
    };
    if declared.is_some_and(|n| n > limit) {
        return ApiError::payload_too_large().into_response();
    }
    next.run(req).await
}

/// Whether `path` is the dashboard's archive upload, `/sites/<id>/import`.
fn is_import_upload(path: &str) -> bool {
    path.strip_prefix("/sites/")
        .and_then(|rest| rest.strip_suffix("/import"))
        .is_some_and(|id| !id.is_empty() && !id.contains('/'))
}

/// CSRF rules for state-changing requests (api.md §2): a present `Origin` must name this host;
/// under `/api` and `/_admin` a body must be JSON. Dashboard forms are additionally checked for
/// their per-session token by their handlers.
pub async fn csrf(req: Request, next: Next) -> Response {
    if matches!(*req.method(), Method::GET | Method::HEAD | Method::OPTIONS) {
        return next.run(req).await;
    }
    if let Err(reason) = check_origin(&req) {
        return ApiError::csrf(reason).into_response();
    }
    let path = req.uri().path();
    let is_api = path == "/api" || path.starts_with("/api/") || path.starts_with("/_admin/");
    if is_api && has_body(&req) && !is_json(&req) {
        return ApiError::csrf("request bodies must be application/json").into_response();
    }
    next.run(req).await
}

fn check_origin(req: &Request) -> Result<(), &'static str> {
    let Some(origin) = req.headers().get(ORIGIN) else {
        return Ok(());
    };
    let origin = origin.to_str().map_err(|_| "unreadable Origin header")?;
    let host = req
        .headers()
        .get(HOST)
        .and_then(|h| h.to_str().ok())
        .ok_or("Origin present but no Host header")?;
    let origin_host = origin
        .strip_prefix("http://")
        .or_else(|| origin.strip_prefix("https://"))
        .ok_or("cross-origin request")?;
    if origin_host.eq_ignore_ascii_case(host) {
        Ok(())
    } else {
        Err("cross-origin request")
    }
}

fn has_body(req: &Request) -> bool {
    let declared = req
        .headers()
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    declared.is_some_and(|n| n > 0) || req.headers().contains_key(TRANSFER_ENCODING)
}

fn is_json(req: &Request) -> bool {
    req.headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(|v| v.split(';').next().unwrap_or("").trim())
        .is_some_and(|v| v.eq_ignore_ascii_case("application/json"))
}

/// Headers every response carries: no framing, no sniffing, same-origin referrers, and a
/// content security policy that allows only our own embedded assets. Responses to requests that
/// came over TLS (through a trusted proxy saying `https`: nginx's control-plane block) also carry
/// HSTS, one year, without `includeSubDomains` (the sslip.io name's subdomains are plain-HTTP
/// previews) and never on plain HTTP, where browsers ignore it anyway (issue 15).
pub async fn security_headers(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let peer = Peer(req.extensions().get::<ConnectInfo<Via>>().map(|c| c.0));
    let tls = over_tls(req.headers(), &peer, &state.config);
    let mut response = next.run(req).await;
    let h = response.headers_mut();
    if tls {
        h.insert("strict-transport-security", HeaderValue::from_static(HSTS));
    }
    h.insert("x-frame-options", HeaderValue::from_static("DENY"));
    h.insert(
        "x-content-type-options",
        HeaderValue::from_static("nosniff"),
    );
    h.insert("referrer-policy", HeaderValue::from_static("same-origin"));
    h.insert(
        "content-security-policy",
        HeaderValue::from_static(
            "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; \
             connect-src 'self'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'",
        ),
    );
    response
}
