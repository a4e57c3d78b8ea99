//! Magic login and reset endpoints (api.md §3): `POST /api/environments/{id}/magic-login` (a
//! synchronous node query, one of the three exceptions of api.md §1) and
//! `POST /api/sites/{id}/reset` / `POST /api/environments/{id}/reset` (synchronous, control-plane
//! state only). The rules live in [`crate::magic`]; this module only maps HTTP to them.

use axum::extract::State;
use axum::Json;
use serde::Serialize;
use serde_json::json;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::error::{ApiError, ErrorBody, ErrorCode};
use super::extract::PathId;
use crate::domain::SiteStatus;
use crate::http::session::CurrentSession;
use crate::magic::reset::{ResetError, Resets};
use crate::magic::{MagicLink, MagicLogin, MagicLoginError};
use crate::state::AppState;

/// This area's routes (relative to `/api`), each registered with its OpenAPI entry.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(magic_login))
        .routes(routes!(reset_site))
        .routes(routes!(reset_environment))
}

/// A one-time WordPress login link.
#[derive(Debug, Serialize, ToSchema)]
pub struct MagicLoginResponse {
    /// `<canonical URL>/wp-login.php?pressluft_magic_login=<token>`: logs in as the site's
    /// first administrator, once.
    #[schema(format = "uri")]
    pub login_url: String,
    /// When the link stops working (creation + 60 s).
    #[schema(format = "date-time")]
    pub expires_at: String,
}

/// `{"success", "status"}` of a reset.
#[derive(Debug, Serialize, ToSchema)]
pub struct ResourceResetResponse {
    pub success: bool,
    /// The resource's status after the reset: `active`.
    #[schema(value_type = crate::domain::SiteStatus)]
    pub status: SiteStatus,
}

/// A one-time login link into the environment's WordPress admin (valid 60 s), made on its node
/// as the environment's user within 10 s. Every request is audited (`magic_login`).
#[utoipa::path(post, path = "/environments/{id}/magic-login", tag = "sites",
    params(crate::http::schema::IdPath),
    responses((status = 200, body = MagicLoginResponse), crate::http::error::IdErrors,
        (status = 409, description = "`environment_not_active`: the environment is not active", body = ErrorBody),
        (status = 502, description = "`node_unreachable`: SSH failed or took over 10 s; `wp_cli_error`: WordPress could not make a login link (no administrator, a broken site)", body = ErrorBody)))]
pub async fn magic_login(
    State(state): State<AppState>,
    session: CurrentSession,
    PathId(id): PathId,
) -> Result<Json<MagicLoginResponse>, ApiError> {
    let link = make_link(&state, &session, &id).await?;
    Ok(Json(MagicLoginResponse {
        login_url: link.login_url,
        expires_at: link.expires_at,
    }))
}

/// The login link for the API and the dashboard's "Open WordPress admin" button.
pub async fn make_link(
    state: &AppState,
    session: &CurrentSession,
    environment_id: &str,
) -> Result<MagicLink, ApiError> {
    MagicLogin {
        store: &state.store,
        secrets: &state.secrets,
        config: &state.config,
        clock: &state.clock,
    }
    .link(&session.user.user_id, environment_id)
    .await
    .map_err(magic_login_error)
}

/// The API error of a failed magic login.
pub fn magic_login_error(e: MagicLoginError) -> ApiError {
    match e {
        MagicLoginError::NotFound => ApiError::not_found("environment"),
        MagicLoginError::NotActive(_) => {
            ApiError::new(ErrorCode::EnvironmentNotActive, e.to_string())
        }
        MagicLoginError::Unreachable => ApiError::new(ErrorCode::NodeUnreachable, e.to_string()),
        MagicLoginError::Helper(_) => ApiError::new(ErrorCode::WpCliError, e.to_string()),
        MagicLoginError::Store(e) => e.into(),
    }
}

/// Resets a failed site to `active` (no change on the node). Refused while a job of the site is
/// queued or running, or unless its production environment is active with a current release.
#[utoipa::path(post, path = "/sites/{id}/reset", tag = "sites",
    params(crate::http::schema::IdPath),
    responses((status = 200, body = ResourceResetResponse), crate::http::error::IdErrors,
        (status = 409, description = "`resource_not_failed`: the site is not failed; `reset_validation_failed`: `details.reason` is `jobs_in_progress`, `no_production_environment`, `production_not_active` or `no_current_release`", body = ErrorBody)))]
pub async fn reset_site(
    State(state): State<AppState>,
    session: CurrentSession,
    PathId(id): PathId,
) -> Result<Json<ResourceResetResponse>, ApiError> {
    let status = resets(&state)
        .reset_site(&session.user.user_id, &id)
        .await
        .map_err(reset_error)?;
    Ok(Json(ResourceResetResponse {
        success: true,
        status,
    }))
}

/// Resets a failed environment to `active` (no change on the node). Refused while a job of its
/// site is queued or running, unless its current release is one of its own, or while its node
/// is not active.
#[utoipa::path(post, path = "/environments/{id}/reset", tag = "sites",
    params(crate::http::schema::IdPath),
    responses((status = 200, body = ResourceResetResponse), crate::http::error::IdErrors,
        (status = 409, description = "`resource_not_failed`: the environment is not failed; `reset_validation_failed`: `details.reason` is `jobs_in_progress`, `no_current_release` or `node_not_active`", body = ErrorBody)))]
pub async fn reset_environment(
    State(state): State<AppState>,
    session: CurrentSession,
    PathId(id): PathId,
) -> Result<Json<ResourceResetResponse>, ApiError> {
    let status = resets(&state)
        .reset_environment(&session.user.user_id, &id)
        .await
        .map_err(reset_error)?;
    Ok(Json(ResourceResetResponse {
        success: true,
        status,
    }))
}

/// The reset service over the application's store and clock.
pub fn resets(state: &AppState) -> Resets {
    Resets::new(state.store.clone(), state.clock.clone())
}

/// The API error of a refused reset.
pub fn reset_error(e: ResetError) -> ApiError {
    match e {
        ResetError::NotFound(what) => ApiError::not_found(what),
        ResetError::NotFailed { .. } => ApiError::new(ErrorCode::ResourceNotFailed, e.to_string()),
        ResetError::Invalid { reason, message } => {
            ApiError::new(ErrorCode::ResetValidationFailed, message)
                .with_details(json!({ "reason": reason }))
        }
        ResetError::Store(e) => e.into(),
    }
}
