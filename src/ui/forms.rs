//! What every dashboard form shares: the CSRF check (per-session token in the `csrf_token`
//! field or the `X-CSRF-Token` header htmx sends), reading the urlencoded body, and the state a
//! form page is shown in ([`FormState`]).

use std::collections::HashMap;

use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::de::DeserializeOwned;
use serde::Deserialize;

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

/// A dashboard form's fields, read after its CSRF token was checked (see [`check_form_csrf`])
/// against the session that `UiSession`, extracted before it, left in the request.
pub struct CsrfForm<T>(pub T);

/// The fields of a form that is only a button.
#[derive(Debug, Deserialize)]
pub struct NoFields {}

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for CsrfForm<T> {
    type Rejection = Response;

    async fn from_request(req: Request, state: &S) -> Result<Self, Response> {
        let session = req.extensions().get::<CurrentSession>().cloned();
        let headers = req.headers().clone();
        let body = Bytes::from_request(req, state)
            .await
            .map_err(IntoResponse::into_response)?;
        let session = session.ok_or_else(|| ApiError::unauthorized().into_response())?;
        check_form_csrf(&session, &headers, &body).map_err(IntoResponse::into_response)?;
        serde_urlencoded::from_bytes(&body)
            .map(CsrfForm)
            .map_err(|_| ApiError::bad_request("the form could not be read").into_response())
    }
}

/// How a form page is shown: its HTTP status, field errors, and a sentence for the whole form.
/// `FormState::default()` is a form shown for the first time; a refused form is shown again
/// with the values sent and one of the others.
#[derive(Debug, Default)]
pub struct FormState {
    pub status: StatusCode,
    pub errors: HashMap<String, String>,
    pub notice: Option<String>,
}

impl FormState {
    /// `400` naming one field.
    pub fn field(field: &str, message: impl Into<String>) -> Self {
        FormState {
            status: StatusCode::BAD_REQUEST,
            errors: HashMap::from([(field.to_string(), message.into())]),
            notice: None,
        }
    }

    /// A refusal of the whole form.
    pub fn notice(status: StatusCode, message: impl Into<String>) -> Self {
        FormState {
            status,
            errors: HashMap::new(),
            notice: Some(message.into()),
        }
    }
}

impl From<(StatusCode, HashMap<String, String>, Option<String>)> for FormState {
    fn from(
        (status, errors, notice): (StatusCode, HashMap<String, String>, Option<String>),
    ) -> Self {
        FormState {
            status,
            errors,
            notice,
        }
    }
}
