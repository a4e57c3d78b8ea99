//! The dashboard: server-rendered pages (askama) with htmx and live fragments over SSE.
//!
//! Pages read through the same store queries as the API and act through the same services
//! (the [`crate::auth`] service for login and logout), so validation and error codes match.
//! Forms carry a per-session CSRF token; the login form, which has no session yet, a
//! double-submit cookie token.

mod assets;
mod live;
mod login;
mod pages;
mod views;

use axum::routing::{get, post};
use axum::Router;

use crate::state::AppState;

/// Dashboard routes (pages, fragments and assets).
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/", get(pages::overview))
        .route("/jobs", get(pages::jobs))
        .route("/jobs/{id}", get(pages::job_detail))
        .route("/login", get(login::form).post(login::submit))
        .route("/logout", post(login::logout))
        .route("/ui/events", get(live::events))
        .route("/assets/{*path}", get(assets::serve))
}
