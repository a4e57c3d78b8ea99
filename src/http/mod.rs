//! The HTTP layer shared by the JSON API and the dashboard: the error type and extractors both
//! answer with, sessions, cookies, stream limits, the shared list filters and wire shapes, and
//! the cross-cutting middleware (request log, body limit, CSRF, security headers, the
//! plain-HTTP banner) wrapped around
//! the routes `startup` assembles. It imports neither `api` nor `ui`.

pub mod cookies;
pub mod error;
pub mod extract;
pub mod job_status;
mod middleware;
pub mod plain_http;
pub mod query;
pub mod schema;
mod service_errors;
pub mod session;
pub mod streams;

use axum::extract::{DefaultBodyLimit, State};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::json;

use crate::state::AppState;
use error::ApiError;
use extract::MAX_BODY_BYTES;

/// The whole application router: `routes` (the API and the dashboard) plus `/healthz`, the
/// fallback and the middleware.
pub fn router(state: AppState, routes: Router<AppState>) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .merge(routes)
        .fallback(not_found)
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(axum::middleware::from_fn(middleware::csrf))
        .layer(axum::middleware::from_fn(middleware::body_limit))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            plain_http::banner,
        ))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            middleware::security_headers,
        ))
        .layer(axum::middleware::from_fn(middleware::request_log))
        .with_state(state)
}

/// `GET /healthz`: 200 when the database answers (no authentication).
async fn healthz(State(state): State<AppState>) -> Result<Response, ApiError> {
    state.store.ping().await?;
    Ok(Json(json!({"status": "ok"})).into_response())
}

async fn not_found() -> ApiError {
    ApiError::not_found("route")
}
