//! What every dashboard form shares: the CSRF check (per-session token in the `csrf_token`
//! field or the `X-CSRF-Token` header htmx sends) and reading the urlencoded body.

use crate::auth::token::tokens_equal;
use crate::http::error::ApiError;
use crate::http::session::CurrentSession;

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
