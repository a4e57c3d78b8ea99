//! The promotion endpoint (api.md Environments, `POST /api/environments/{id}/promote`): a
//! non-production environment's code and unprotected data made its site's production,
//! behind the drift and the backup gate (no override). The rules live in the deploy service
//! ([`crate::deploys::promote`]); this module only maps HTTP to it.

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
    OpenApiRouter::new().routes(routes!(promote))
}

/// Promote body.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PromoteRequest {
    /// The site's production environment (UUID).
    #[schema(format = "uuid")]
    pub target_environment_id: String,
}

/// Promotes a non-production environment into its site's production environment: its code
/// as a new release and its database without the preset's protected tables (URLs rewritten
/// to production's), health-checked and rolled back from the gate backup when unhealthy.
/// Refused unless the environment's last drift check is clean, of its preset and at most 30
/// minutes old, and production has a completed full backup from the last 60 minutes; there is
/// no override.
#[utoipa::path(post, path = "/environments/{id}/promote", tag = "deploys",
    params(crate::http::schema::IdPath),
    request_body = PromoteRequest,
    responses((status = 202, body = JobAccepted),
        (status = 400, description = "`bad_request` naming `target_environment_id`: not a UUID, not this site's production environment, or the environment is production itself", body = ErrorBody),
        (status = 401, body = ErrorBody),
        (status = 404, description = "`not_found`: the environment or the target environment", body = ErrorBody),
        (status = 409, description = "`conflict`: different nodes, or an environment or its site has failed; `node_not_active`; `drift_gate_failed`: no clean drift check of the preset from the last 30 min; `backup_gate_failed`: no completed full backup of production from the last 60 min", body = ErrorBody)))]
pub async fn promote(
    State(state): State<AppState>,
    session: CurrentSession,
    PathId(id): PathId,
    AppJson(body): AppJson<PromoteRequest>,
) -> Result<(StatusCode, Json<JobAccepted>), ApiError> {
    let job_id = state
        .deploys
        .promote(&Actor::from(&session), &id, &body.target_environment_id)
        .await?;
    Ok((StatusCode::ACCEPTED, Json(JobAccepted { job_id })))
}
