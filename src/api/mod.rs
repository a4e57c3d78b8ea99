//! The JSON API under `/api` (api.md): handlers validate input, call the services and the store,
//! and answer in the documented shapes. Errors leave through [`error::ApiError`] only.

mod auth;
pub mod error;
mod events;
pub mod extract;
pub mod jobs;
mod metrics;
pub mod openapi;

use axum::routing::{get, post};
use axum::Router;

use crate::state::AppState;

pub use jobs::JobStatusResponse;

/// Routes relative to `/api`.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/login", post(auth::login))
        .route("/logout", post(auth::logout))
        .route("/jobs", get(jobs::list_jobs))
        .route("/jobs/{id}", get(jobs::get_job))
        .route("/metrics", get(metrics::get_metrics))
        .route("/events", get(events::events))
        .route("/openapi.yaml", get(openapi::serve_yaml))
}
