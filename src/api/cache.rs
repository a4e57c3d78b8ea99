//! Cache endpoints (api.md Environments): turning an environment's FastCGI page cache and
//! Redis object cache on or off (`env_cache_toggle`) and purging both (`cache_purge`). The
//! rules live in the deploy service ([`crate::deploys::cache`]); this module maps HTTP to it.

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use serde::Deserialize;
use serde_json::json;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::error::{ApiError, ErrorBody};
use super::extract::{AppJson, PathId};
use super::nodes::JobAccepted;
use crate::deploys::cache::{CacheFlags, NO_FLAG};
use crate::http::session::CurrentSession;
use crate::sites::Actor;
use crate::state::AppState;

/// This resource's routes (relative to `/api`), each registered with its OpenAPI entry.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(set_cache))
        .routes(routes!(purge_cache))
}

/// Cache toggle body: at least one of the two flags.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CacheRequest {
    /// The FastCGI page cache in the environment's server blocks.
    #[schema(nullable = false)]
    pub fastcgi_cache_enabled: Option<bool>,
    /// The Redis object-cache drop-in (`object-cache.php`).
    #[schema(nullable = false)]
    pub redis_cache_enabled: Option<bool>,
}

/// Turns the environment's page cache and/or object cache on or off. The flags are written
/// at once (the intent, shown by `GET /api/environments/{id}`); the job rewrites the server
/// blocks, adds or removes the drop-in and purges the environment's caches.
#[utoipa::path(patch, path = "/environments/{id}/cache", tag = "cache",
    params(crate::http::schema::IdPath),
    request_body = CacheRequest,
    responses((status = 202, body = JobAccepted),
        (status = 400, description = "`bad_request`: no flag given (naming both fields), a flag that is not a boolean, or an unknown field", body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 409, description = "`conflict`: the environment or site has failed; `node_not_active`: the environment's node is not active", body = ErrorBody)))]
pub async fn set_cache(
    State(state): State<AppState>,
    session: CurrentSession,
    PathId(id): PathId,
    AppJson(body): AppJson<CacheRequest>,
) -> Result<(StatusCode, Json<JobAccepted>), ApiError> {
    let flags = CacheFlags {
        fastcgi_cache_enabled: body.fastcgi_cache_enabled,
        redis_cache_enabled: body.redis_cache_enabled,
    };
    if flags.is_empty() {
        return Err(
            ApiError::bad_request(NO_FLAG).with_details(json!({"fields": {
                "fastcgi_cache_enabled": "one of the two is required",
                "redis_cache_enabled": "one of the two is required",
            }})),
        );
    }
    let job_id = state
        .deploys
        .set_cache(&Actor::from(&session), &id, flags)
        .await?;
    Ok((StatusCode::ACCEPTED, Json(JobAccepted { job_id })))
}

/// Purges the environment's FastCGI cache entries (its hosts only) and Redis keys (its prefix
/// only).
#[utoipa::path(post, path = "/environments/{id}/cache/purge", tag = "cache",
    params(crate::http::schema::IdPath),
    responses((status = 202, body = JobAccepted), (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 409, description = "`conflict`: the environment or site has failed; `node_not_active`: the environment's node is not active", body = ErrorBody)))]
pub async fn purge_cache(
    State(state): State<AppState>,
    session: CurrentSession,
    PathId(id): PathId,
) -> Result<(StatusCode, Json<JobAccepted>), ApiError> {
    let job_id = state
        .deploys
        .purge_cache(&Actor::from(&session), &id)
        .await?;
    Ok((StatusCode::ACCEPTED, Json(JobAccepted { job_id })))
}
