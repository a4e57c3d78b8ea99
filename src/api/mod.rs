//! The JSON API under `/api` (api.md): handlers validate input, call the services and the store,
//! and answer in the documented shapes. Errors leave through [`error::ApiError`] only.

pub mod admin_settings;
pub mod audit;
mod auth;
pub mod error;
mod events;
pub mod extract;
pub mod jobs;
mod metrics;
pub mod nodes;
pub mod openapi;
pub mod schema;
mod service_errors;
pub mod sites;

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
        .route("/jobs/{id}/cancel", post(jobs::cancel_job))
        .route("/jobs/{id}/output", get(jobs::job_output))
        .route("/jobs/{id}/events", get(events::job_events))
        .route("/nodes", get(nodes::list_nodes).post(nodes::register_node))
        .route("/nodes/ssh-public-key", get(nodes::ssh_public_key))
        .route("/nodes/{id}", get(nodes::get_node))
        .route("/nodes/{id}/provision", post(nodes::provision_node))
        .route("/sites", get(sites::list_sites).post(sites::create_site))
        .route("/sites/{id}", get(sites::get_site))
        .route(
            "/sites/{id}/environments",
            get(sites::list_environments).post(sites::create_environment),
        )
        .route("/environments/{id}", get(sites::get_environment))
        .route("/environments/{id}/releases", get(sites::list_releases))
        .route("/audit-logs", get(audit::list_audit_logs))
        .route("/metrics", get(metrics::get_metrics))
        .route("/events", get(events::events))
        .route("/openapi.yaml", get(openapi::serve_yaml))
}
