//! The buttons (POST forms with the CSRF token): Open WordPress admin answers `303` to the
//! one-time login link (the form targets a new tab); Reset goes back to the page it came
//! from. A refusal is the dashboard's error page with the API's code and message.

use axum::extract::State;
use axum::response::{IntoResponse, Redirect, Response};

use crate::api::magic::{make_link, reset_error, resets};
use crate::http::error::ApiError;
use crate::http::extract::PathId;
use crate::http::session::UiSession;
use crate::state::AppState;
use crate::ui::forms::{CsrfForm, NoFields};

/// `POST /environments/{id}/magic-login` (dashboard form): `303` to the login link.
pub async fn magic_login(
    State(state): State<AppState>,
    UiSession(session): UiSession,
    PathId(id): PathId,
    _: CsrfForm<NoFields>,
) -> Result<Response, ApiError> {
    let link = make_link(&state, &session, &id).await?;
    let mut response = Redirect::to(&link.login_url).into_response();
    // The link is a credential for 60 s: never cached, never sent on as a referrer.
    let headers = response.headers_mut();
    headers.insert(
        axum::http::header::CACHE_CONTROL,
        axum::http::HeaderValue::from_static("no-store"),
    );
    headers.insert(
        axum::http::header::REFERRER_POLICY,
        axum::http::HeaderValue::from_static("no-referrer"),
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
