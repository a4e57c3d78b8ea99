//! The dashboard: server-rendered pages (askama) with htmx and live fragments over SSE.
//!
//! Pages read through the same store queries as the API and act through the same services
//! (the [`crate::auth`] service for login and logout), so validation and error codes match.
//! Forms carry a per-session CSRF token; the login form, which has no session yet, a
//! double-submit cookie token.

mod assets;
mod audit;
pub mod backups;
pub mod cache;
pub mod delete;
pub mod deploys;
pub mod domains;
pub mod drift;
pub mod drills;
mod errors;
mod form_errors;
pub mod forms;
pub mod imports;
pub mod jobs;
mod live;
mod login;
pub mod magic;
pub mod nodes;
mod overview;
pub mod promote;
pub mod restore;
pub mod safe_updates;
pub mod settings;
pub mod sites;
pub mod views;

use askama::Template;
use axum::response::{Html, IntoResponse, Response};
use axum::Router;

use crate::http::error::ApiError;
use crate::state::AppState;

/// Renders a template into a response; a template error is an internal error.
pub fn render(t: &impl Template) -> Response {
    match t.render() {
        Ok(html) => Html(html).into_response(),
        Err(e) => ApiError::internal(e).into_response(),
    }
}

/// Dashboard routes (pages, fragments and assets): each area's router, merged.
pub fn router() -> Router<AppState> {
    let areas = [
        overview::router(),
        jobs::router(),
        nodes::router(),
        sites::router(),
        backups::router(),
        deploys::router(),
        cache::router(),
        domains::router(),
        drift::router(),
        magic::router(),
        imports::router(),
        promote::router(),
        restore::router(),
        delete::router(),
        drills::router(),
        safe_updates::router(),
        settings::router(),
        audit::router(),
        login::router(),
        live::router(),
        assets::router(),
    ];
    areas
        .into_iter()
        .fold(Router::new(), Router::merge)
        .layer(axum::middleware::from_fn(errors::html_errors))
}
