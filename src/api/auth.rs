//! `POST /api/login` and `POST /api/logout`.

use axum::extract::State;
use axum::http::header::SET_COOKIE;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::error::{ApiError, ErrorBody};
use super::extract::AppJson;
use crate::domain::Email;
use crate::http::cookies;
use crate::http::session::{cookies_secure, remote_ip, CurrentSession, Peer};
use crate::state::AppState;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// This resource's routes (relative to `/api`), each registered with its OpenAPI entry.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(login))
        .routes(routes!(logout))
}

/// Credentials.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LoginRequest {
    #[schema(schema_with = crate::http::schema::login_email)]
    pub email: String,
    #[schema(schema_with = crate::http::schema::password)]
    pub password: String,
}

/// `{"success": true}`.
#[derive(Debug, Serialize, ToSchema)]
pub struct SuccessResponse {
    pub success: bool,
}

/// Logs in and sets the `session_token` cookie (HttpOnly, SameSite=Strict, 24 h).
#[utoipa::path(
    post, path = "/login", tag = "auth",
    request_body = LoginRequest,
    responses(
        (status = 200, description = "Logged in; `Set-Cookie: session_token=…`", body = SuccessResponse),
        (status = 400, description = "Invalid body", body = ErrorBody),
        (status = 401, description = "Unknown e-mail, wrong password or inactive user", body = ErrorBody),
        (status = 429, description = "`login_throttled`: too many failed attempts for this e-mail and address, this address or this e-mail, or too many logins at once", body = ErrorBody),
    ),
    security(())
)]
pub async fn login(
    State(state): State<AppState>,
    peer: Peer,
    headers: HeaderMap,
    AppJson(body): AppJson<LoginRequest>,
) -> Result<Response, ApiError> {
    let email = Email::parse(&body.email).map_err(|m| ApiError::field("email", m))?;
    if body.password.is_empty() {
        return Err(ApiError::field("password", "is required"));
    }
    let ip = remote_ip(&headers, &peer, &state.config);
    let session = state.auth.login(&email, &body.password, &ip).await?;
    let secure = cookies_secure(&headers, &peer, &state).await?;
    let cookie = cookies::session(&session.token, secure);
    Ok(success_setting(cookie))
}

/// Revokes the current session and clears the cookie.
#[utoipa::path(
    post, path = "/logout", tag = "auth",
    responses(
        (status = 200, description = "Session revoked; cookie cleared (`Max-Age=0`)", body = SuccessResponse),
        (status = 401, description = "No valid session", body = ErrorBody),
    )
)]
pub async fn logout(
    State(state): State<AppState>,
    peer: Peer,
    headers: HeaderMap,
    session: CurrentSession,
) -> Result<Response, ApiError> {
    state.auth.logout(&session.user).await?;
    let secure = cookies_secure(&headers, &peer, &state).await?;
    let cookie = cookies::clear(cookies::SESSION_COOKIE, "/", secure);
    Ok(success_setting(cookie))
}

/// `{"success": true}` with a `Set-Cookie` header.
fn success_setting(cookie: axum::http::HeaderValue) -> Response {
    let body = Json(SuccessResponse { success: true });
    ([(SET_COOKIE, cookie)], body).into_response()
}
