//! The Nodes area of the dashboard: views (data shaped for templates), pages (GET) and forms
//! (POST), and the routes that serve them.

pub mod forms;
pub mod pages;
pub mod views;

use axum::routing::{get, post};
use axum::Router;

use crate::state::AppState;

/// The Nodes routes.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/nodes", get(pages::list).post(forms::register))
        .route("/nodes/{id}", get(pages::detail))
        .route("/nodes/{id}/provision", post(forms::provision))
}
