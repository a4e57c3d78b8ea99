//! `GET /backups/{id}/artifacts/{name}`: a completed backup's artifact, decrypted but still
//! zstd-compressed, streamed from its node by the backup service (`backups::download`) as an
//! attachment. Refusals and a node that cannot serve it are error pages.

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::header::{CACHE_CONTROL, CONTENT_DISPOSITION, CONTENT_TYPE};
use axum::http::HeaderValue;
use axum::response::{IntoResponse, Response};

use crate::backups::download::DownloadError;
use crate::http::error::{ApiError, ErrorCode};
use crate::http::extract::parse_uuid;
use crate::http::session::UiSession;
use crate::sites::Actor;
use crate::state::AppState;

/// See the module doc.
pub async fn download(
    State(state): State<AppState>,
    UiSession(session): UiSession,
    Path((id, name)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let id = parse_uuid(&id).ok_or_else(|| ApiError::field("id", "must be a UUID"))?;
    let actor = Actor::from(&session);
    let download = state
        .backups
        .download(&actor, &state.config, &id, &name)
        .await
        .map_err(|e| match e {
            DownloadError::Refused(e) => ApiError::from(e),
            DownloadError::Node(message) => ApiError::new(ErrorCode::NodeUnreachable, message),
        })?;
    let disposition = format!("attachment; filename=\"{}\"", download.file_name);
    let mut response = Body::from_stream(download.body).into_response();
    let headers = response.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/zstd"));
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(
        CONTENT_DISPOSITION,
        HeaderValue::from_str(&disposition).map_err(ApiError::internal)?,
    );
    Ok(response)
}
