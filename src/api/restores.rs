//! The restore endpoint (api.md Environments, `POST /api/environments/{id}/restore`): a
//! completed backup of the same site restored into the environment (`env_restore`). The rules
//! live in the deploy service ([`crate::deploys::Deploys::restore`]); this module only maps
//! HTTP to it.

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use serde::Deserialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::error::{ApiError, ErrorBody};
use super::extract::{AppJson, PathId};
use super::nodes::JobAccepted;
use crate::http::session::CurrentSession;
use crate::sites::Actor;
use crate::state::AppState;

/// This resource's routes (relative to `/api`), each registered with its OpenAPI entry.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(restore))
}

/// Restore body.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RestoreRequest {
    /// A completed backup of any environment of the same site.
    #[schema(min_length = 1)]
    pub backup_id: String,
}

/// Restores a completed backup of the same site into the environment: the backup is verified
/// first (nothing changes on a checksum mismatch), a full pre-restore backup is taken, the
/// backup's files become a new release, its database and uploads replace the environment's
/// (URLs rewritten when the backup's canonical URL differs), then the release is health-checked
/// (rolled back automatically when unhealthy).
#[utoipa::path(post, path = "/environments/{id}/restore", tag = "deploys",
    params(crate::http::schema::IdPath),
    request_body = RestoreRequest,
    responses((status = 202, body = JobAccepted),
        (status = 400, description = "`bad_request` naming `backup_id` (missing, or a backup of another site)", body = ErrorBody),
        (status = 401, body = ErrorBody),
        (status = 404, description = "`not_found`: the environment or the backup", body = ErrorBody),
        (status = 409, description = "`conflict`: the backup is not completed, or the environment or site has failed; `node_not_active`: the environment's node is not active", body = ErrorBody)))]
pub async fn restore(
    State(state): State<AppState>,
    session: CurrentSession,
    PathId(id): PathId,
    AppJson(body): AppJson<RestoreRequest>,
) -> Result<(StatusCode, Json<JobAccepted>), ApiError> {
    let job_id = state
        .deploys
        .restore(&Actor::from(&session), &id, &body.backup_id)
        .await?;
    Ok((StatusCode::ACCEPTED, Json(JobAccepted { job_id })))
}
