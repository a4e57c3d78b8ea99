//! `GET /api/audit-logs`.

use axum::extract::State;
use axum::Json;

use super::error::{ApiError, ErrorBody};
use super::extract::AppQuery;
use crate::http::session::CurrentSession;
use crate::state::AppState;
use crate::store::audit::AuditRecord;

pub use crate::http::query::{AuditQuery, RESOURCE_TYPES};

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
