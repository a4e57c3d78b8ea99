//! The dashboard: server-rendered pages (askama) with htmx and live fragments over SSE.
//!
//! Pages read through the same store queries as the API and act through the same services
//! (the [`crate::auth`] service for login and logout), so validation and error codes match.
//! Forms carry a per-session CSRF token; the login form, which has no session yet, a
//! double-submit cookie token.

mod assets;
mod audit;
mod errors;
mod form_errors;
mod live;
mod login;
mod nodes;
mod pages;
mod settings;
mod sites;
mod views;

use axum::routing::{get, post};
use axum::Router;

use crate::api::error::ApiError;
use crate::auth::token::tokens_equal;
use crate::http::session::CurrentSession;
use crate::state::AppState;

/// Checks a dashboard form's CSRF token (`csrf_token` field, or the `X-CSRF-Token` header that
/// htmx sends) against the session's.
pub fn check_form_csrf(
    session: &CurrentSession,
    headers: &axum::http::HeaderMap,
    body: &[u8],
) -> Result<(), ApiError> {
    let sent = headers
        .get("x-csrf-token")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
        .or_else(|| {
            form_urlencoded::parse(body)
                .find(|(k, _)| k == "csrf_token")
                .map(|(_, v)| v.into_owned())
        })
        .unwrap_or_default();
    if tokens_equal(&sent, &session.csrf_token()) {
        Ok(())
    } else {
        Err(ApiError::csrf("missing or wrong form token"))
    }
}

/// Reads a dashboard form after checking its CSRF token (see [`check_form_csrf`]).
pub fn read_form<T: serde::de::DeserializeOwned>(
    session: &CurrentSession,
    headers: &axum::http::HeaderMap,
    body: &[u8],
) -> Result<T, ApiError> {
    check_form_csrf(session, headers, body)?;
    serde_urlencoded::from_bytes(body)
        .map_err(|_| ApiError::bad_request("the form could not be read"))
}

/// Dashboard routes (pages, fragments and assets).
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/", get(pages::overview))
        .route("/jobs", get(pages::jobs))
        .route("/jobs/{id}", get(pages::job_detail))
        .route("/jobs/{id}/cancel", post(pages::cancel_job))
        .route("/nodes", get(nodes::list).post(nodes::register))
        .route("/nodes/{id}", get(nodes::detail))
        .route("/nodes/{id}/provision", post(nodes::provision))
        .route("/sites", get(sites::list).post(sites::create_site))
        .route("/sites/new", get(sites::new_site))
        .route("/sites/{id}", get(sites::site_page))
        .route("/sites/{id}/environments", post(sites::create_environment))
        .route("/sites/{id}/environments/new", get(sites::new_environment))
        .route("/environments/{id}", get(sites::environment_page))
        .route("/settings", get(settings::show))
        .route("/settings/wordpress", post(settings::save_wordpress))
        .route("/audit", get(audit::page))
        .route("/login", get(login::form).post(login::submit))
        .route("/logout", post(login::logout))
        .route("/ui/events", get(live::events))
        .route("/assets/{*path}", get(assets::serve))
        .layer(axum::middleware::from_fn(errors::html_errors))
}
