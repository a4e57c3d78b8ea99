//! `GET /api/metrics`: point-in-time counts from the database.

use axum::extract::State;
use axum::Json;

use super::error::{ApiError, ErrorBody};
use crate::http::session::CurrentSession;
use crate::state::AppState;
use crate::store::Metrics;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// This resource's routes (relative to `/api`), each registered with its OpenAPI entry.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(get_metrics))
}

/// Running and queued jobs, active nodes and all sites, counted now.
#[utoipa::path(
    get, path = "/metrics", tag = "jobs",
    responses(
        (status = 200, body = Metrics),
        (status = 401, body = ErrorBody),
    )
)]
pub async fn get_metrics(
    State(state): State<AppState>,
    _session: CurrentSession,
) -> Result<Json<Metrics>, ApiError> {
    Ok(Json(state.store.metrics().await?))
}
