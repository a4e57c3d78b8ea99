//! The one API error type and its mapping to HTTP (api.md §1, §8).
//!
//! Every failure a client sees is `{code, message, details?}` with a code from the registry
//! below. Server-side failures (5xx) keep their cause for the log only; the client gets
//! `internal_error` and a fixed sentence.

use std::error::Error as StdError;

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Serialize;
use serde_json::{json, Value};
use utoipa::ToSchema;

use crate::auth::AuthError;
use crate::store::StoreError;

/// The API error-code registry (append-only).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    BadRequest,
    PayloadTooLarge,
    Unauthorized,
    NotFound,
    Conflict,
    EnvironmentNotActive,
    NodeUnreachable,
    WpCliError,
    JobNotCancellable,
    ResourceNotFailed,
    ResetValidationFailed,
    DriftGateFailed,
    BackupGateFailed,
    NodeNotActive,
    LoginThrottled,
    CsrfFailed,
    SettingsInvalid,
    InternalError,
    TooManyStreams,
}

impl ErrorCode {
    pub fn status(self) -> StatusCode {
        use ErrorCode::*;
        match self {
            BadRequest | SettingsInvalid => StatusCode::BAD_REQUEST,
            PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            Unauthorized => StatusCode::UNAUTHORIZED,
            CsrfFailed => StatusCode::FORBIDDEN,
            NotFound => StatusCode::NOT_FOUND,
            Conflict
            | EnvironmentNotActive
            | JobNotCancellable
            | ResourceNotFailed
            | ResetValidationFailed
            | DriftGateFailed
            | BackupGateFailed
            | NodeNotActive => StatusCode::CONFLICT,
            LoginThrottled | TooManyStreams => StatusCode::TOO_MANY_REQUESTS,
            NodeUnreachable | WpCliError => StatusCode::BAD_GATEWAY,
            InternalError => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    pub fn as_str(self) -> &'static str {
        use ErrorCode::*;
        match self {
            BadRequest => "bad_request",
            PayloadTooLarge => "payload_too_large",
            Unauthorized => "unauthorized",
            NotFound => "not_found",
            Conflict => "conflict",
            EnvironmentNotActive => "environment_not_active",
            NodeUnreachable => "node_unreachable",
            WpCliError => "wp_cli_error",
            JobNotCancellable => "job_not_cancellable",
            ResourceNotFailed => "resource_not_failed",
            ResetValidationFailed => "reset_validation_failed",
            DriftGateFailed => "drift_gate_failed",
            BackupGateFailed => "backup_gate_failed",
            NodeNotActive => "node_not_active",
            LoginThrottled => "login_throttled",
            CsrfFailed => "csrf_failed",
            SettingsInvalid => "settings_invalid",
            InternalError => "internal_error",
            TooManyStreams => "too_many_streams",
        }
    }
}

/// The error body every failing endpoint returns.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorBody {
    /// Stable machine-readable code from the registry.
    pub code: ErrorCode,
    /// Human-readable sentence; never raw infrastructure output.
    pub message: String,
    /// Optional structured details, e.g. `{"fields": {"slug": "already in use"}}`.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub details: Option<Value>,
}

/// The errors of an authenticated request naming a resource by id, as the OpenAPI document
/// lists them (`responses((status = 200, …), IdErrors)`): malformed id, no session, no such row.
#[derive(utoipa::IntoResponses)]
#[allow(dead_code)]
pub enum IdErrors {
    #[response(status = 400)]
    BadRequest(ErrorBody),
    #[response(status = 401)]
    Unauthorized(ErrorBody),
    #[response(status = 404)]
    NotFound(ErrorBody),
}

/// An error on its way to becoming an HTTP response.
#[derive(Debug)]
pub struct ApiError {
    pub code: ErrorCode,
    pub message: String,
    pub details: Option<Value>,
    /// Cause of a 5xx, for the log only.
    source: Option<Box<dyn StdError + Send + Sync>>,
}

impl ApiError {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
            details: None,
            source: None,
        }
    }

    pub fn with_details(mut self, details: Value) -> Self {
        self.details = Some(details);
        self
    }

    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::BadRequest, message)
    }

    /// A 400 naming one invalid field in the message and in `details.fields`.
    pub fn field(field: &str, problem: impl Into<String>) -> Self {
        let problem = problem.into();
        Self::bad_request(format!("{field}: {problem}"))
            .with_details(json!({ "fields": { field: problem } }))
    }

    pub fn not_found(what: &str) -> Self {
        Self::new(ErrorCode::NotFound, format!("{what} not found"))
    }

    pub fn unauthorized() -> Self {
        Self::new(ErrorCode::Unauthorized, "authentication required")
    }

    pub fn payload_too_large() -> Self {
        Self::new(ErrorCode::PayloadTooLarge, "request body exceeds 1 MiB")
    }

    pub fn csrf(reason: &str) -> Self {
        Self::new(
            ErrorCode::CsrfFailed,
            format!("request refused by CSRF protection: {reason}"),
        )
    }

    /// A 500 whose cause is logged, never sent.
    pub fn internal(source: impl StdError + Send + Sync + 'static) -> Self {
        Self {
            code: ErrorCode::InternalError,
            message: "internal error; see the server log".into(),
            details: None,
            source: Some(Box::new(source)),
        }
    }
}

/// A row read by id, or `404 not_found` naming what is missing: `store.get_x(id).await?
/// .or_not_found("x")?`.
pub trait OrNotFound<T> {
    fn or_not_found(self, what: &str) -> Result<T, ApiError>;
}

impl<T> OrNotFound<T> for Option<T> {
    fn or_not_found(self, what: &str) -> Result<T, ApiError> {
        self.ok_or_else(|| ApiError::not_found(what))
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound { what, .. } => ApiError::not_found(what),
            other => ApiError::internal(other),
        }
    }
}

impl From<AuthError> for ApiError {
    fn from(e: AuthError) -> Self {
        match e {
            AuthError::InvalidCredentials => {
                ApiError::new(ErrorCode::Unauthorized, "invalid e-mail or password")
            }
            AuthError::Throttled { .. } => ApiError::new(
                ErrorCode::LoginThrottled,
                "too many failed logins; try again in 15 minutes",
            ),
            AuthError::Busy => ApiError::new(
                ErrorCode::LoginThrottled,
                "too many logins at once; try again in a moment",
            ),
            AuthError::Invalid { field, message } => ApiError::field(field, message),
            AuthError::EmailTaken(_) => ApiError::new(ErrorCode::Conflict, e.to_string()),
            AuthError::UnknownEmail(_) => ApiError::not_found("user"),
            other => ApiError::internal(other),
        }
    }
}

/// Renders an error chain as `outer: inner: innermost` for the log.
pub fn error_chain(e: &(dyn StdError + 'static)) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(inner) = cur {
        s.push_str(": ");
        s.push_str(&inner.to_string());
        cur = inner.source();
    }
    s
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.code.status();
        if let Some(source) = &self.source {
            tracing::error!(code = self.code.as_str(), error = %error_chain(source.as_ref()), "request failed");
        }
        let body = ErrorBody {
            code: self.code,
            message: self.message,
            details: self.details,
        };
        let mut response = (status, Json(body)).into_response();
        response.extensions_mut().insert(self.code);
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_serialize_as_their_registered_names() {
        for code in [
            ErrorCode::BadRequest,
            ErrorCode::PayloadTooLarge,
            ErrorCode::LoginThrottled,
            ErrorCode::CsrfFailed,
            ErrorCode::InternalError,
            ErrorCode::NodeNotActive,
            ErrorCode::TooManyStreams,
        ] {
            assert_eq!(serde_json::to_value(code).unwrap(), json!(code.as_str()));
        }
    }

    #[test]
    fn statuses_follow_the_registry() {
        assert_eq!(ErrorCode::PayloadTooLarge.status(), 413);
        assert_eq!(ErrorCode::LoginThrottled.status(), 429);
        assert_eq!(ErrorCode::TooManyStreams.status(), 429);
        assert_eq!(ErrorCode::CsrfFailed.status(), 403);
        assert_eq!(ErrorCode::NodeUnreachable.status(), 502);
        assert_eq!(ErrorCode::JobNotCancellable.status(), 409);
    }

    #[test]
    fn a_missing_row_is_a_404_and_a_lost_update_a_500() {
        let e = ApiError::from(StoreError::not_found("site", Some("s1")));
        assert_eq!(e.code, ErrorCode::NotFound);
        assert_eq!(e.message, "site not found");
        let e = ApiError::from(StoreError::LostUpdate {
            what: "site",
            id: "s1".into(),
        });
        assert_eq!(e.code, ErrorCode::InternalError);
    }

    #[test]
    fn internal_errors_hide_their_cause() {
        let e = ApiError::internal(std::io::Error::other("disk on fire at /secret/path"));
        assert_eq!(e.code, ErrorCode::InternalError);
        assert!(!e.message.contains("secret"));
    }

    #[test]
    fn field_errors_name_the_field_twice() {
        let e = ApiError::field("slug", "already in use");
        assert_eq!(e.message, "slug: already in use");
        assert_eq!(
            e.details.unwrap(),
            json!({"fields": {"slug": "already in use"}})
        );
    }
}
