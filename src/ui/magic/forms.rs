//! The buttons (POST forms with the CSRF token): Open WordPress admin answers a page that
//! forwards to the one-time login link at once (`<meta http-equiv="refresh">`: the dashboard's
//! CSP has `form-action 'self'`, which forbids answering a form with a redirect to another
//! origin; the form targets a new tab); Reset goes back to the page it came from. A refusal is
//! the dashboard's error page with the API's code and message.

use askama::Template;
use axum::extract::State;
use axum::response::{IntoResponse, Redirect, Response};

use crate::api::magic::{make_link, reset_error, resets};
use crate::http::error::ApiError;
use crate::http::extract::PathId;
use crate::http::session::UiSession;
use crate::state::AppState;
use crate::ui::forms::{CsrfForm, NoFields};
use crate::ui::render;

/// The page that forwards to a login link.
#[derive(Template)]
#[template(path = "magic_login_open.html")]
struct OpenPage {
    login_url: String,
    expires_at: String,
    version: &'static str,
}

/// `POST /environments/{id}/magic-login` (dashboard form): the page forwarding to the link.
pub async fn magic_login(
    State(state): State<AppState>,
    UiSession(session): UiSession,
    PathId(id): PathId,
    _: CsrfForm<NoFields>,
) -> Result<Response, ApiError> {
    let link = make_link(&state, &session, &id).await?;
    let mut response = render(&OpenPage {
        login_url: link.login_url,
        expires_at: link.expires_at,
        version: env!("CARGO_PKG_VERSION"),
    });
    // The link is a credential for 60 s: never cached (the security headers' referrer policy,
    // `same-origin`, keeps it from being sent on).
    response.headers_mut().insert(
        axum::http::header::CACHE_CONTROL,
        axum::http::HeaderValue::from_static("no-store"),
    );
    Ok(response)
}

/// `POST /environments/{id}/reset` (dashboard form).
pub async fn reset_environment(
    State(state): State<AppState>,
    UiSession(session): UiSession,
    PathId(id): PathId,
    _: CsrfForm<NoFields>,
) -> Result<Response, ApiError> {
    resets(&state)
        .reset_environment(&session.user.user_id, &id)
        .await
        .map_err(reset_error)?;
    Ok(Redirect::to(&format!("/environments/{id}")).into_response())
}

/// `POST /sites/{id}/reset` (dashboard form).
pub async fn reset_site(
    State(state): State<AppState>,
    UiSession(session): UiSession,
    PathId(id): PathId,
    _: CsrfForm<NoFields>,
) -> Result<Response, ApiError> {
    resets(&state)
        .reset_site(&session.user.user_id, &id)
        .await
        .map_err(reset_error)?;
    Ok(Redirect::to(&format!("/sites/{id}")).into_response())
}
