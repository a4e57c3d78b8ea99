//! The HTTP surface: composes the JSON API, the dashboard, assets and `/healthz` into one router
//! with the cross-cutting middleware (request log, body limit, CSRF, security headers).

pub mod cookies;
mod middleware;
pub mod session;
pub mod streams;

use axum::extract::{DefaultBodyLimit, State};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::json;

use crate::api;
use crate::api::error::ApiError;
use crate::api::extract::MAX_BODY_BYTES;
use crate::state::AppState;
use crate::ui;

/// The whole application router.
pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .nest("/api", api::router())
        .nest("/_admin", api::admin_settings::router())
        .merge(ui::router())
        .fallback(not_found)
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(axum::middleware::from_fn(middleware::csrf))
        .layer(axum::middleware::from_fn(middleware::body_limit))
        .layer(axum::middleware::from_fn(middleware::security_headers))
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
