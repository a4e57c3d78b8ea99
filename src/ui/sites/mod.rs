//! The Sites area of the dashboard: views (data shaped for templates), pages (GET) and forms
//! (POST), and the routes that serve them.

pub mod forms;
pub mod pages;
pub mod views;

use axum::routing::{get, post};
use axum::Router;

use crate::state::AppState;

/// The Sites routes.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/sites", get(pages::list).post(forms::create_site))
        .route("/sites/new", get(pages::new_site))
        .route("/sites/{id}", get(pages::site_page))
        .route("/sites/{id}/environments", post(forms::create_environment))
        .route("/sites/{id}/environments/new", get(pages::new_environment))
        .route("/environments/{id}", get(pages::environment_page))
}
