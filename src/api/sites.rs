//! Site and environment endpoints (api.md Sites, Environments): list and read, create a site
//! (`site_create`), add an environment (`env_create`), list an environment's releases, and
//! delete an environment or a site (`env_delete`, `site_delete`; issue 13): lists leave
//! deleted rows out unless `?include_deleted=true`, a read by id still answers.

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::error::{ApiError, ErrorBody};
use super::extract::{AppJson, AppQuery, PathId};
use super::nodes::JobAccepted;
use crate::http::error::OrNotFound;
use crate::http::session::CurrentSession;
use crate::sites::{Actor, EnvironmentInput, SiteInput};
use crate::state::AppState;
use crate::store::environments::EnvironmentRecord;
use crate::store::releases::ReleaseRecord;
use crate::store::sites::SiteRecord;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// This resource's routes (relative to `/api`), each registered with its OpenAPI entry.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_sites, create_site))
        .routes(routes!(get_site, delete_site, super::drills::update_site))
        .routes(routes!(list_environments, create_environment))
        .routes(routes!(get_environment, delete_environment))
        .routes(routes!(list_releases))
}

/// A WordPress site.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Site {
    #[schema(format = "uuid")]
    pub id: String,
    pub name: String,
    pub slug: String,
    #[schema(value_type = crate::domain::SiteStatus)]
    pub status: crate::domain::SiteStatus,
    /// The production environment.
    #[schema(format = "uuid")]
    pub primary_environment_id: Option<String>,
    #[schema(format = "date-time")]
    pub created_at: String,
    #[schema(format = "date-time")]
    pub updated_at: String,
    pub state_version: i64,
    /// When the site was deleted (status `deleted`).
    #[schema(format = "date-time")]
    pub deleted_at: Option<String>,
    /// How often a restore drill runs by itself (`PATCH /api/sites/{id}` sets it).
    #[schema(value_type = crate::domain::DrillSchedule)]
    pub drill_schedule: crate::domain::DrillSchedule,
    /// How often a safe-update run starts by itself (issue 16; `PATCH` sets the
    /// `safe_updates_*` fields).
    #[schema(value_type = crate::domain::SafeUpdateSchedule)]
    pub safe_updates_schedule: crate::domain::SafeUpdateSchedule,
    /// `HH:MM-HH:MM` (UTC) scheduled runs start in; `null`: any time.
    pub safe_updates_window: Option<String>,
    /// The check pages (empty: the home page plus the main menu's paths).
    pub safe_updates_paths: Vec<String>,
    /// The most a page may change (percent of its pixels) and still pass.
    pub safe_updates_threshold: f64,
    /// Regions the comparison ignores, per page.
    pub safe_updates_masks: std::collections::BTreeMap<String, Vec<super::safe_updates::Region>>,
}

impl From<SiteRecord> for Site {
    fn from(s: SiteRecord) -> Self {
        Site {
            id: s.id,
            name: s.name,
            slug: s.slug,
            status: s.status,
            primary_environment_id: s.primary_environment_id,
            created_at: s.created_at,
            updated_at: s.updated_at,
            state_version: s.state_version,
            deleted_at: s.deleted_at,
            drill_schedule: s.drill_schedule,
            safe_updates_schedule: s.safe_updates_schedule,
            safe_updates_window: s.safe_updates_window,
            safe_updates_paths: serde_json::from_str(&s.safe_updates_paths).unwrap_or_default(),
            safe_updates_threshold: s.safe_updates_threshold,
            safe_updates_masks: super::safe_updates::masks_of(&s.safe_updates_masks),
        }
    }
}

/// One deployable copy of a site on one node.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Environment {
    #[schema(format = "uuid")]
    pub id: String,
    #[schema(format = "uuid")]
    pub site_id: String,
    pub name: String,
    pub slug: String,
    #[schema(value_type = crate::domain::EnvironmentType)]
    pub environment_type: String,
    #[schema(value_type = crate::domain::SiteStatus)]
    pub status: crate::domain::SiteStatus,
    #[schema(format = "uuid")]
    pub node_id: String,
    /// The environment this one was copied from (staging/clone).
    #[schema(format = "uuid")]
    pub source_environment_id: Option<String>,
    #[schema(value_type = crate::domain::PromotionPreset)]
    pub promotion_preset: String,
    /// Generated at creation, immutable.
    pub preview_url: String,
    #[schema(format = "uuid")]
    pub primary_domain_id: Option<String>,
    #[schema(format = "uuid")]
    pub current_release_id: Option<String>,
    #[schema(value_type = crate::domain::DriftStatus)]
    pub drift_status: crate::domain::DriftStatus,
    #[schema(format = "date-time")]
    pub drift_checked_at: Option<String>,
    #[schema(format = "uuid")]
    pub last_drift_check_id: Option<String>,
    pub fastcgi_cache_enabled: bool,
    pub redis_cache_enabled: bool,
    #[schema(format = "date-time")]
    pub created_at: String,
    #[schema(format = "date-time")]
    pub updated_at: String,
    pub state_version: i64,
    /// When the environment was deleted (status `deleted`).
    #[schema(format = "date-time")]
    pub deleted_at: Option<String>,
}

impl From<EnvironmentRecord> for Environment {
    fn from(e: EnvironmentRecord) -> Self {
        Environment {
            id: e.id,
            site_id: e.site_id,
            name: e.name,
            slug: e.slug,
            environment_type: e.environment_type,
            status: e.status,
            node_id: e.node_id,
            source_environment_id: e.source_environment_id,
            promotion_preset: e.promotion_preset,
            preview_url: e.preview_url,
            primary_domain_id: e.primary_domain_id,
            current_release_id: e.current_release_id,
            drift_status: e.drift_status,
            drift_checked_at: e.drift_checked_at,
            last_drift_check_id: e.last_drift_check_id,
            fastcgi_cache_enabled: e.fastcgi_cache_enabled,
            redis_cache_enabled: e.redis_cache_enabled,
            created_at: e.created_at,
            updated_at: e.updated_at,
            state_version: e.state_version,
            deleted_at: e.deleted_at,
        }
    }
}

/// An immutable release directory on the environment's node.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Release {
    #[schema(format = "uuid")]
    pub id: String,
    #[schema(format = "uuid")]
    pub environment_id: String,
    #[schema(value_type = crate::domain::ReleaseSourceType)]
    pub source_type: String,
    pub source_ref: String,
    /// Absolute release directory on the node.
    pub path: String,
    #[schema(value_type = crate::domain::HealthStatus)]
    pub health_status: crate::domain::HealthStatus,
    pub notes: Option<String>,
    /// The job that built it.
    #[schema(format = "uuid")]
    pub job_id: Option<String>,
    #[schema(format = "date-time")]
    pub created_at: String,
    /// Moves with every change of `health_status` or `notes`.
    pub state_version: i64,
    #[schema(format = "date-time")]
    pub updated_at: String,
}

impl From<ReleaseRecord> for Release {
    fn from(r: ReleaseRecord) -> Self {
        Release {
            id: r.id,
            environment_id: r.environment_id,
            source_type: r.source_type,
            source_ref: crate::sites::redact_url_password(&r.source_ref),
            path: r.path,
            health_status: r.health_status,
            notes: r.notes,
            job_id: r.job_id,
            created_at: r.created_at,
            state_version: r.state_version,
            updated_at: r.updated_at,
        }
    }
}

/// Create-site body.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateSiteRequest {
    /// Also the WordPress site title.
    #[schema(schema_with = crate::http::schema::name)]
    pub name: String,
    #[schema(schema_with = crate::http::schema::slug)]
    pub slug: String,
    /// The node to place the site on (issue 17); it must exist (else `400 bad_request` naming it)
    /// and be `active` with a public IP (else `409 node_not_active`). Absent, null or empty:
    /// the placement rule picks (the local node if eligible, else the oldest eligible node).
    #[serde(default)]
    #[schema(schema_with = crate::http::schema::node_id)]
    pub node_id: Option<String>,
}

/// Create-environment body.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateEnvironmentRequest {
    #[schema(schema_with = crate::http::schema::name)]
    pub name: String,
    #[schema(schema_with = crate::http::schema::slug)]
    pub slug: String,
    /// `staging` or `clone`; `production` is refused with `409 conflict` (a site has exactly one).
    #[schema(value_type = crate::domain::EnvironmentType)]
    pub environment_type: String,
    #[serde(default)]
    #[schema(schema_with = crate::http::schema::source_environment_id)]
    pub source_environment_id: Option<String>,
    #[schema(value_type = crate::domain::PromotionPreset)]
    pub promotion_preset: String,
}

/// The signed-in admin as the site service's actor (API and dashboard alike).
impl From<&CurrentSession> for Actor {
    fn from(session: &CurrentSession) -> Self {
        Actor {
            user_id: session.user.user_id.clone(),
            email: session.user.email.clone(),
        }
    }
}

/// `?include_deleted=true` of the site and environment lists.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    /// `true`: deleted rows too (default `false`).
    #[param(value_type = Option<bool>)]
    pub include_deleted: Option<String>,
}

impl ListQuery {
    fn include_deleted(&self) -> Result<bool, ApiError> {
        match self.include_deleted.as_deref() {
            None | Some("false") => Ok(false),
            Some("true") => Ok(true),
            Some(_) => Err(ApiError::field("include_deleted", "must be true or false")),
        }
    }
}

/// All sites not deleted (`?include_deleted=true`: all sites), newest first.
#[utoipa::path(get, path = "/sites", tag = "sites", params(ListQuery),
    responses((status = 200, body = [Site]), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody)))]
pub async fn list_sites(
    State(state): State<AppState>,
    _s: CurrentSession,
    AppQuery(q): AppQuery<ListQuery>,
) -> Result<Json<Vec<Site>>, ApiError> {
    let sites = state.store.list_sites(q.include_deleted()?).await?;
    Ok(Json(sites.into_iter().map(|s| s.site.into()).collect()))
}

/// Creates a site with its production environment and starts `site_create`.
#[utoipa::path(post, path = "/sites", tag = "sites",
    request_body = CreateSiteRequest,
    responses((status = 202, body = JobAccepted), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 409, description = "`conflict`: slug taken; `node_not_active`: no active node with a public IP, or the chosen `node_id` is not one", body = ErrorBody)))]
pub async fn create_site(
    State(state): State<AppState>,
    session: CurrentSession,
    AppJson(body): AppJson<CreateSiteRequest>,
) -> Result<(StatusCode, Json<JobAccepted>), ApiError> {
    let input = SiteInput {
        name: body.name,
        slug: body.slug,
        node_id: body.node_id,
    };
    let created = state
        .sites
        .create_site(&Actor::from(&session), input)
        .await?;
    Ok((
        StatusCode::ACCEPTED,
        Json(JobAccepted {
            job_id: created.job_id,
        }),
    ))
}

/// One site.
#[utoipa::path(get, path = "/sites/{id}", tag = "sites",
    params(crate::http::schema::IdPath),
    responses((status = 200, body = Site), crate::http::error::IdErrors))]
pub async fn get_site(
    State(state): State<AppState>,
    _s: CurrentSession,
    PathId(id): PathId,
) -> Result<Json<Site>, ApiError> {
    let site = state.store.get_site(&id).await?.or_not_found("site")?;
    Ok(Json(site.into()))
}

/// A site's environments not deleted (`?include_deleted=true`: all), production first.
#[utoipa::path(get, path = "/sites/{id}/environments", tag = "sites",
    params(crate::http::schema::IdPath, ListQuery),
    responses((status = 200, body = [Environment]), crate::http::error::IdErrors))]
pub async fn list_environments(
    State(state): State<AppState>,
    _s: CurrentSession,
    PathId(id): PathId,
    AppQuery(q): AppQuery<ListQuery>,
) -> Result<Json<Vec<Environment>>, ApiError> {
    let include_deleted = q.include_deleted()?;
    if state.store.get_site(&id).await?.is_none() {
        return Err(ApiError::not_found("site"));
    }
    let envs = state.store.list_environments(&id).await?;
    Ok(Json(
        envs.into_iter()
            .filter(|e| include_deleted || e.status != crate::domain::SiteStatus::Deleted)
            .map(Environment::from)
            .collect(),
    ))
}

/// Adds a staging or clone environment copied from another environment of the site and
/// starts `env_create`.
#[utoipa::path(post, path = "/sites/{id}/environments", tag = "sites",
    params(crate::http::schema::IdPath),
    request_body = CreateEnvironmentRequest,
    responses((status = 202, body = JobAccepted), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 404, body = ErrorBody),
        (status = 409, description = "`conflict`: slug taken, production requested, or source not active; `node_not_active`: the source's node is not active", body = ErrorBody)))]
pub async fn create_environment(
    State(state): State<AppState>,
    session: CurrentSession,
    PathId(id): PathId,
    AppJson(body): AppJson<CreateEnvironmentRequest>,
) -> Result<(StatusCode, Json<JobAccepted>), ApiError> {
    let input = EnvironmentInput {
        name: body.name,
        slug: body.slug,
        environment_type: body.environment_type,
        source_environment_id: body.source_environment_id,
        promotion_preset: Some(body.promotion_preset),
    };
    let created = state
        .sites
        .create_environment(&Actor::from(&session), &id, input)
        .await?;
    Ok((
        StatusCode::ACCEPTED,
        Json(JobAccepted {
            job_id: created.job_id,
        }),
    ))
}

/// One environment.
#[utoipa::path(get, path = "/environments/{id}", tag = "sites",
    params(crate::http::schema::IdPath),
    responses((status = 200, body = Environment), crate::http::error::IdErrors))]
pub async fn get_environment(
    State(state): State<AppState>,
    _s: CurrentSession,
    PathId(id): PathId,
) -> Result<Json<Environment>, ApiError> {
    let env = state
        .store
        .get_environment(&id)
        .await?
        .or_not_found("environment")?;
    Ok(Json(env.into()))
}

/// An environment's releases, newest first.
#[utoipa::path(get, path = "/environments/{id}/releases", tag = "sites",
    params(crate::http::schema::IdPath),
    responses((status = 200, body = [Release]), crate::http::error::IdErrors))]
pub async fn list_releases(
    State(state): State<AppState>,
    _s: CurrentSession,
    PathId(id): PathId,
) -> Result<Json<Vec<Release>>, ApiError> {
    if state.store.get_environment(&id).await?.is_none() {
        return Err(ApiError::not_found("environment"));
    }
    let releases = state.store.list_releases(&id).await?;
    Ok(Json(releases.into_iter().map(Release::from).collect()))
}

/// Deletes the site with every environment it has (`site_delete`): a final full backup of each
/// environment with a release first (kept until its retention ends), then everything of theirs
/// on the node. The site and its environments are `deleting` from now on and `deleted` after
/// the job (kept as history; the slug is free again).
#[utoipa::path(delete, path = "/sites/{id}", tag = "sites",
    params(crate::http::schema::IdPath),
    responses((status = 202, body = JobAccepted), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 404, body = ErrorBody),
        (status = 409, description = "`conflict`: the site is deleting or deleted, or an environment of it is being deleted; `node_not_active`: its node is not active", body = ErrorBody)))]
pub async fn delete_site(
    State(state): State<AppState>,
    session: CurrentSession,
    PathId(id): PathId,
) -> Result<(StatusCode, Json<JobAccepted>), ApiError> {
    let job_id = state
        .deletions
        .delete_site(&Actor::from(&session), &id)
        .await?;
    Ok((StatusCode::ACCEPTED, Json(JobAccepted { job_id })))
}

/// Deletes a staging or clone environment (`env_delete`): a final full backup first (kept
/// until its retention ends), then everything of it on the node. The production environment
/// goes only with its site.
#[utoipa::path(delete, path = "/environments/{id}", tag = "sites",
    params(crate::http::schema::IdPath),
    responses((status = 202, body = JobAccepted), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 404, body = ErrorBody),
        (status = 409, description = "`conflict`: production (delete the site), or the environment or its site is deleting or deleted; `node_not_active`: its node is not active", body = ErrorBody)))]
pub async fn delete_environment(
    State(state): State<AppState>,
    session: CurrentSession,
    PathId(id): PathId,
) -> Result<(StatusCode, Json<JobAccepted>), ApiError> {
    let job_id = state
        .deletions
        .delete_environment(&Actor::from(&session), &id)
        .await?;
    Ok((StatusCode::ACCEPTED, Json(JobAccepted { job_id })))
}
