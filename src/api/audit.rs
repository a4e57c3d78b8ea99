//! `GET /api/audit-logs`.

use axum::extract::State;
use axum::Json;

use super::error::{ApiError, ErrorBody};
use super::extract::AppQuery;
use crate::http::session::CurrentSession;
use crate::state::AppState;
use crate::store::audit::AuditRecord;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub use crate::http::query::{AuditQuery, RESOURCE_TYPES};

/// This resource's routes (relative to `/api`), each registered with its OpenAPI entry.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(list_audit_logs))
}

/// Audit rows, newest first.
#[utoipa::path(get, path = "/audit-logs", tag = "audit", params(AuditQuery),
    responses((status = 200, body = [AuditRecord]), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody)))]
pub async fn list_audit_logs(
    State(state): State<AppState>,
    _s: CurrentSession,
    AppQuery(q): AppQuery<AuditQuery>,
) -> Result<Json<Vec<AuditRecord>>, ApiError> {
    let (t, id, limit) = q.validate()?;
    Ok(Json(
        state
            .store
            .list_audit(t.as_deref(), id.as_deref(), limit)
            .await?,
    ))
}
