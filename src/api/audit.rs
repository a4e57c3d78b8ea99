//! `GET /api/audit-logs`.

use axum::extract::State;
use axum::Json;
use serde::Deserialize;
use utoipa::IntoParams;

use super::error::{ApiError, ErrorBody};
use super::extract::AppQuery;
use crate::http::session::CurrentSession;
use crate::state::AppState;
use crate::store::audit::AuditRecord;

/// Resource types audit rows name.
pub const RESOURCE_TYPES: [&str; 7] = [
    "site",
    "environment",
    "node",
    "backup",
    "domain",
    "job",
    "settings",
];

/// Filters of the audit log.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct AuditQuery {
    #[param(schema_with = crate::api::schema::query_audit_resource_type)]
    pub resource_type: Option<String>,
    /// The resource's id (or the settings group); empty = not set.
    pub resource_id: Option<String>,
    #[param(schema_with = crate::api::schema::query_limit)]
    pub limit: Option<String>,
}

impl AuditQuery {
    pub fn validate(self) -> Result<(Option<String>, Option<String>, i64), ApiError> {
        let resource_type = self.resource_type.filter(|s| !s.is_empty());
        if let Some(t) = &resource_type {
            if !RESOURCE_TYPES.contains(&t.as_str()) {
                return Err(ApiError::field(
                    "resource_type",
                    format!("must be one of: {}", RESOURCE_TYPES.join(", ")),
                ));
            }
        }
        let limit = match self.limit.filter(|s| !s.is_empty()) {
            None => 100,
            Some(s) => super::jobs::parse_limit(&s)
                .ok_or_else(|| ApiError::field("limit", "must be an integer from 1 to 500"))?,
        };
        Ok((
            resource_type,
            self.resource_id.filter(|s| !s.is_empty()),
            limit,
        ))
    }
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

#[cfg(test)]
mod tests {
    /// The filter's values are the documented enum's.
    #[test]
    fn resource_types_are_the_enum_values() {
        assert_eq!(
            super::RESOURCE_TYPES.as_slice(),
            crate::domain::AuditResourceType::VALUES
        );
    }
}
