//! Drift check endpoints (api.md Environments, "Nodes, audit, drift checks"): requesting a
//! drift check of a non-production environment and reading a recorded check with what differs
//! from the environment's clone-time baseline. The rules live in the deploy service
//! ([`crate::deploys::drift`]); this module maps HTTP to it.

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::error::{ApiError, ErrorBody};
use super::extract::PathId;
use super::nodes::JobAccepted;
use crate::deploys::drift::DriftCheckView;
use crate::domain::drift::Difference;
use crate::domain::{DriftStatus, PromotionPreset};
use crate::http::session::CurrentSession;
use crate::sites::Actor;
use crate::state::AppState;

/// This resource's routes (relative to `/api`), each registered with its OpenAPI entry.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(request_drift_check))
        .routes(routes!(get_drift_check))
}

/// A drift check: production's protected tables and paths (for the environment's preset)
/// compared with the environment's clone-time baseline. Immutable.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct DriftCheck {
    #[schema(format = "uuid")]
    pub id: String,
    /// The non-production environment the check belongs to.
    #[schema(format = "uuid")]
    pub environment_id: String,
    #[schema(value_type = PromotionPreset)]
    pub promotion_preset: String,
    /// `clean` (nothing differs) or `drifted`; a baseline is `clean`.
    #[schema(value_type = DriftStatus)]
    pub status: DriftStatus,
    #[schema(format = "date-time")]
    pub checked_at: String,
    /// The clone-time snapshot itself (its differences are empty).
    pub is_baseline: bool,
    /// Every protected table and path that differs from the baseline: a table by row count or
    /// checksum, or present on one side only (`null` on the other); a path by listing digest.
    pub differences: Vec<Difference>,
}

impl From<DriftCheckView> for DriftCheck {
    fn from(v: DriftCheckView) -> Self {
        DriftCheck {
            id: v.record.id,
            environment_id: v.record.environment_id,
            promotion_preset: v.record.promotion_preset,
            status: v.record.status,
            checked_at: v.record.checked_at,
            is_baseline: v.record.is_baseline,
            differences: v.differences,
        }
    }
}

/// Checks whether production's protected data (the environment's preset's tables and paths)
/// changed since the environment was cloned. The result lands in the environment's
/// `drift_status`, `drift_checked_at` and `last_drift_check_id` (see `GET
/// /api/drift-checks/{id}`).
#[utoipa::path(post, path = "/environments/{id}/drift-check", tag = "drift",
    params(crate::http::schema::IdPath),
    responses((status = 202, body = JobAccepted), (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 409, description = "`conflict`: the environment is production, has no drift baseline, or it or its site has failed; `node_not_active`: the environment's node is not active", body = ErrorBody)))]
pub async fn request_drift_check(
    State(state): State<AppState>,
    session: CurrentSession,
    PathId(id): PathId,
) -> Result<(StatusCode, Json<JobAccepted>), ApiError> {
    let job_id = state
        .deploys
        .drift_check(&Actor::from(&session), &id)
        .await?;
    Ok((StatusCode::ACCEPTED, Json(JobAccepted { job_id })))
}

/// One drift check with its differences from the environment's baseline.
#[utoipa::path(get, path = "/drift-checks/{id}", tag = "drift",
    params(crate::http::schema::IdPath),
    responses((status = 200, body = DriftCheck), crate::http::error::IdErrors))]
pub async fn get_drift_check(
    State(state): State<AppState>,
    _s: CurrentSession,
    PathId(id): PathId,
) -> Result<Json<DriftCheck>, ApiError> {
    Ok(Json(state.deploys.get_drift_check(&id).await?.into()))
}
