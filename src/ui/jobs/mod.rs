//! The Jobs area of the dashboard: views (data shaped for templates), pages (GET) and the cancel
//! form (POST), and the routes that serve them.

pub mod forms;
pub mod pages;
pub mod views;

use axum::routing::{get, post};
use axum::Router;

use crate::state::AppState;

/// The Jobs routes.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/jobs", get(pages::jobs))
        .route("/jobs/{id}", get(pages::job_detail))
        .route("/jobs/{id}/cancel", post(forms::cancel_job))
}
