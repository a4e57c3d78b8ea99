//! The Audit page: who asked for what, and how it ended.

use askama::Template;
use axum::extract::State;
use axum::response::Response;

use super::render;
use super::views::Layout;
use crate::http::error::ApiError;
use crate::http::extract::AppQuery;
use crate::http::query::{AuditQuery, RESOURCE_TYPES};
use crate::http::session::UiSession;
use crate::state::AppState;
use crate::store::audit::AuditRecord;

/// This page's routes.
pub fn router() -> axum::Router<AppState> {
    axum::Router::new().route("/audit", axum::routing::get(page))
}

#[derive(Template)]
#[template(path = "audit.html")]
struct AuditPage {
    layout: Layout,
    rows: Vec<AuditRecord>,
    resource_types: Vec<&'static str>,
    resource_type: String,
    resource_id: String,
    error: Option<String>,
}

/// `GET /audit`.
pub async fn page(
    State(state): State<AppState>,
    UiSession(session): UiSession,
    query: Result<AppQuery<AuditQuery>, ApiError>,
) -> Result<Response, ApiError> {
    let mut page = AuditPage {
        layout: Layout::new("Audit", "audit", &session),
        rows: Vec::new(),
        resource_types: RESOURCE_TYPES.to_vec(),
        resource_type: String::new(),
        resource_id: String::new(),
        error: None,
    };
    match query.and_then(|AppQuery(q)| q.validate()) {
        Ok((t, id, limit)) => {
            page.resource_type = t.clone().unwrap_or_default();
            page.resource_id = id.clone().unwrap_or_default();
            page.rows = state
                .store
                .list_audit(t.as_deref(), id.as_deref(), limit)
                .await?;
        }
        Err(e) => page.error = Some(e.message),
    }
    Ok(render(&page))
}
