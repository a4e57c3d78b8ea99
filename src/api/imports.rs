//! The site import endpoint (api.md §3, `POST /api/sites/{id}/import`): another WordPress from
//! an archive into the site's production environment. The rules live in the deploy service
//! ([`crate::deploys::Deploys::import`]); this module only maps HTTP to it.

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
use crate::deploys::import::ImportArchive;
use crate::http::session::CurrentSession;
use crate::sites::Actor;
use crate::state::AppState;

/// This resource's routes (relative to `/api`), each registered with its OpenAPI entry.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(import))
}

/// Import body.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ImportRequest {
    /// A `.tar.gz` or `.zip` archive holding `db.sql`, `files/` (the contents of
    /// `wp-content`) and optionally `meta.json` (`{"source_url": "https://old.example"}`):
    /// `https://…`/`http://…` (credentials in the URL are kept only in the secrets store),
    /// `s3://bucket/key` (read with the backup storage's S3 credentials), `file:///abs` or
    /// `/abs` on the node.
    pub archive_url: String,
}

/// Imports another WordPress into the site's production environment: the archive is fetched
/// and validated (`ARCHIVE_INVALID` before any change), a full pre-import backup taken, the
/// files and database replaced (table prefix detected, URLs rewritten to the canonical URL),
/// then health-checked (rolled back automatically when unhealthy).
#[utoipa::path(post, path = "/sites/{id}/import", tag = "deploys",
    params(crate::http::schema::IdPath),
    request_body = ImportRequest,
    responses((status = 202, body = JobAccepted), (status = 400, description = "`validation_failed` naming `archive_url`", body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 409, description = "`conflict`: the production environment or the site has failed; `node_not_active`: its node is not active", body = ErrorBody)))]
pub async fn import(
    State(state): State<AppState>,
    session: CurrentSession,
    PathId(id): PathId,
    AppJson(body): AppJson<ImportRequest>,
) -> Result<(StatusCode, Json<JobAccepted>), ApiError> {
    // An unknown site is 404 whatever the body says.
    if state.store.get_site(&id).await?.is_none() {
        return Err(ApiError::not_found("site"));
    }
    let job_id = state
        .deploys
        .import(
            &Actor::from(&session),
            &id,
            ImportArchive::Url(body.archive_url),
        )
        .await?;
    Ok((StatusCode::ACCEPTED, Json(JobAccepted { job_id })))
}
