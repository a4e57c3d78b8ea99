//! Deploy endpoints (api.md Environments): deploying code (`env_deploy`), applying WordPress
//! updates (`env_update`) and listing the available ones (a node query), a manual rollback to a
//! kept healthy release (`release_rollback`), and a site's deploy key. The rules live in the
//! deploy service ([`crate::deploys::Deploys`]); this module only maps HTTP to it.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::error::{ApiError, ErrorBody, ErrorCode};
use super::extract::{parse_uuid, AppJson, PathId};
use super::nodes::JobAccepted;
use crate::deploys::updates::{available_updates, UpdatesError};
use crate::deploys::DeployInput;
use crate::http::session::CurrentSession;
use crate::node_helper::spec::AvailableUpdates;
use crate::sites::Actor;
use crate::state::AppState;

/// This resource's routes (relative to `/api`), each registered with its OpenAPI entry.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(deploy))
        .routes(routes!(list_updates, apply_updates))
        .routes(routes!(rollback))
        .routes(routes!(deploy_key))
}

/// Deploy body.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DeployRequest {
    #[schema(value_type = crate::domain::ReleaseSourceType)]
    pub source_type: String,
    /// `git`: `https://host/path.git#<branch|tag|sha>` (credentials allowed in the URL; they
    /// are kept only in the secrets store), `ssh://git@host/path.git#<ref>` or
    /// `git@host:path.git#<ref>` (cloned with the site's deploy key). `upload`: an
    /// `https://` URL of a `.zip`/`.tar.gz` archive (api.md `source_ref` formats).
    pub source_ref: String,
}

/// Apply-updates body.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateRequest {
    #[schema(value_type = crate::domain::UpdateScope)]
    pub scope: String,
}

/// A site's deploy key: add it as a read-only deploy key of the Git repository.
#[derive(Debug, Serialize, ToSchema)]
pub struct DeployKey {
    /// OpenSSH public key (`ssh-ed25519 …`).
    pub public_key: String,
}

/// The path of a release of an environment.
#[derive(Debug, utoipa::IntoParams)]
#[into_params(parameter_in = Path)]
#[allow(dead_code)]
pub struct ReleasePath {
    /// The environment's id (UUID).
    #[param(
        pattern = "^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$"
    )]
    id: String,
    /// The release's id (UUID).
    #[param(
        pattern = "^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$"
    )]
    release_id: String,
}

/// Deploys code to the environment: a new release built on the node, made live, then
/// health-checked (rolled back automatically when unhealthy).
#[utoipa::path(post, path = "/environments/{id}/deploy", tag = "deploys",
    params(crate::http::schema::IdPath),
    request_body = DeployRequest,
    responses((status = 202, body = JobAccepted), (status = 400, description = "`bad_request` naming `source_type` or `source_ref`", body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 409, description = "`conflict`: the environment or site has failed; `node_not_active`: the environment's node is not active", body = ErrorBody)))]
pub async fn deploy(
    State(state): State<AppState>,
    session: CurrentSession,
    PathId(id): PathId,
    AppJson(body): AppJson<DeployRequest>,
) -> Result<(StatusCode, Json<JobAccepted>), ApiError> {
    // An unknown environment is 404 whatever the body says (the service checks the source
    // first, so that nothing is looked up for a bad one).
    if state.store.get_environment(&id).await?.is_none() {
        return Err(ApiError::not_found("environment"));
    }
    let input = DeployInput {
        source_type: body.source_type,
        source_ref: body.source_ref,
    };
    let job_id = state
        .deploys
        .deploy(&Actor::from(&session), &id, input)
        .await?;
    Ok((StatusCode::ACCEPTED, Json(JobAccepted { job_id })))
}

/// The WordPress core, plugin and theme updates available to the environment, asked of its
/// node (at most 10 s).
#[utoipa::path(get, path = "/environments/{id}/updates", tag = "deploys",
    params(crate::http::schema::IdPath),
    responses((status = 200, body = AvailableUpdates), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 404, body = ErrorBody),
        (status = 409, description = "`environment_not_active`: the environment is not active", body = ErrorBody),
        (status = 502, description = "`node_unreachable`: SSH failed or took over 10 s; `wp_cli_error`: WordPress could not list its updates", body = ErrorBody)))]
pub async fn list_updates(
    State(state): State<AppState>,
    _s: CurrentSession,
    PathId(id): PathId,
) -> Result<Json<AvailableUpdates>, ApiError> {
    let updates = available_updates(&state.store, &state.secrets, &state.config, &id)
        .await
        .map_err(updates_error)?;
    Ok(Json(updates))
}

/// The API error of a failed updates query (also the dashboard fragment's one line).
pub fn updates_error(e: UpdatesError) -> ApiError {
    match e {
        UpdatesError::NotFound => ApiError::not_found("environment"),
        UpdatesError::NotActive(_) => ApiError::new(ErrorCode::EnvironmentNotActive, e.to_string()),
        UpdatesError::Unreachable => ApiError::new(ErrorCode::NodeUnreachable, e.to_string()),
        UpdatesError::Helper(_) => ApiError::new(ErrorCode::WpCliError, e.to_string()),
        UpdatesError::Store(e) => e.into(),
    }
}

/// Applies WordPress updates: a full pre-update backup, then the updates as a new release,
/// health-checked like a deploy.
#[utoipa::path(post, path = "/environments/{id}/updates", tag = "deploys",
    params(crate::http::schema::IdPath),
    request_body = UpdateRequest,
    responses((status = 202, body = JobAccepted), (status = 400, description = "`bad_request` naming `scope`", body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 409, description = "`conflict`: the environment or site has failed; `node_not_active`: the environment's node is not active", body = ErrorBody)))]
pub async fn apply_updates(
    State(state): State<AppState>,
    session: CurrentSession,
    PathId(id): PathId,
    AppJson(body): AppJson<UpdateRequest>,
) -> Result<(StatusCode, Json<JobAccepted>), ApiError> {
    let job_id = state
        .deploys
        .update(&Actor::from(&session), &id, &body.scope)
        .await?;
    Ok((StatusCode::ACCEPTED, Json(JobAccepted { job_id })))
}

/// Rolls the environment back to one of its kept healthy releases (code only, no database
/// restore), health-checked like a deploy.
#[utoipa::path(post, path = "/environments/{id}/releases/{release_id}/rollback", tag = "deploys",
    params(ReleasePath),
    responses((status = 202, body = JobAccepted), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 404, body = ErrorBody),
        (status = 409, description = "`conflict`: the release is the current one, not healthy, or no longer kept; the environment or site has failed; `node_not_active`", body = ErrorBody)))]
pub async fn rollback(
    State(state): State<AppState>,
    session: CurrentSession,
    Path((id, release_id)): Path<(String, String)>,
) -> Result<(StatusCode, Json<JobAccepted>), ApiError> {
    let id = parse_uuid(&id).ok_or_else(|| ApiError::field("id", "must be a UUID"))?;
    let release_id =
        parse_uuid(&release_id).ok_or_else(|| ApiError::field("release_id", "must be a UUID"))?;
    let job_id = state
        .deploys
        .rollback(&Actor::from(&session), &id, &release_id)
        .await?;
    Ok((StatusCode::ACCEPTED, Json(JobAccepted { job_id })))
}

/// The site's deploy key (created on first use): add its public half to the Git repository
/// as a read-only deploy key to deploy from an `ssh://` or `git@` source.
#[utoipa::path(get, path = "/sites/{id}/deploy-key", tag = "deploys",
    params(crate::http::schema::IdPath),
    responses((status = 200, body = DeployKey), crate::http::error::IdErrors))]
pub async fn deploy_key(
    State(state): State<AppState>,
    _s: CurrentSession,
    PathId(id): PathId,
) -> Result<Json<DeployKey>, ApiError> {
    let public_key = state.deploys.deploy_key(&id).await?;
    Ok(Json(DeployKey { public_key }))
}
