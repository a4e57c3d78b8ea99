//! Safe-update endpoints (issue 16; beyond the spec): `POST /api/sites/{id}/safe-updates` runs
//! one (`safe_update`), `GET` on the same path lists a site's runs, `GET
//! /api/safe-updates/{id}` reads one with its pages, `GET /api/safe-updates/{id}/images/{file}`
//! serves its screenshots and diff images, `POST …/approve` applies a held run's updates to
//! production (`env_update` with the exact versions) and `POST …/dismiss` closes it. The
//! site's settings (`safe_updates_*`) are fields of `PATCH /api/sites/{id}`
//! ([`super::drills::update_site`]). The rules live in the service
//! ([`crate::safe_updates::SafeUpdates`]); this module maps HTTP to it.

use axum::extract::{Path, State};
use axum::http::header::{CACHE_CONTROL, CONTENT_TYPE};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::Json;
use serde::Serialize;
use serde_json::Value;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::error::{ApiError, ErrorBody};
use super::extract::{parse_uuid, PathId};
use crate::http::session::CurrentSession;
use crate::safe_updates::decide::{FoundUpdate, PageVerdict};
use crate::sites::Actor;
use crate::state::AppState;
use crate::store::safe_updates::SafeUpdateRunRecord;

/// This resource's routes (relative to `/api`), each registered with its OpenAPI entry.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_runs, start_run))
        .routes(routes!(get_run))
        .routes(routes!(get_image))
        .routes(routes!(approve_run))
        .routes(routes!(dismiss_run))
}

/// A region of a page (CSS pixels from the top left): a mask the comparison ignores, or the
/// box around the changed pixels.
#[derive(Debug, Clone, Serialize, serde::Deserialize, ToSchema)]
pub struct Region {
    #[schema(minimum = 0, maximum = 10000)]
    pub x: u32,
    #[schema(minimum = 0, maximum = 10000)]
    pub y: u32,
    #[schema(minimum = 1, maximum = 10000)]
    pub width: u32,
    #[schema(minimum = 1, maximum = 10000)]
    pub height: u32,
}

/// One update a run found and tried.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct SafeUpdateItem {
    /// `core`, `plugin` or `theme`.
    pub kind: String,
    /// As `update-check` names it (plugin file `dir/file.php`, theme directory, core).
    pub id: String,
    pub from: String,
    pub to: String,
}

/// The URLs of a page's images (`null`: not taken).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct SafeUpdateImages {
    pub before: Option<String>,
    pub after: Option<String>,
    pub diff: Option<String>,
}

/// One check page's verdict.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct SafeUpdatePage {
    pub path: String,
    pub status_before: Option<u16>,
    pub status_after: Option<u16>,
    /// Percent of the page's pixels that changed (masks excluded).
    pub changed_percent: Option<f64>,
    pub passed: bool,
    /// Why the page did not pass (e.g. `header changed 12.3 % > 0.50 %`, `HTTP 500 after the
    /// update`, `console error: …`).
    pub reasons: Vec<String>,
    /// Console errors after the update that were not there before.
    pub console_errors: Vec<String>,
    /// The box around the changed pixels.
    pub changed_box: Option<Region>,
    pub images: SafeUpdateImages,
}

/// One safe-update run of a site.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct SafeUpdateRun {
    #[schema(format = "uuid")]
    pub id: String,
    #[schema(format = "uuid")]
    pub site_id: String,
    /// The `safe_update` job.
    #[schema(format = "uuid")]
    pub job_id: String,
    #[schema(value_type = crate::domain::SafeUpdateTrigger)]
    pub trigger: crate::domain::SafeUpdateTrigger,
    #[schema(value_type = crate::domain::SafeUpdateOutcome)]
    pub outcome: crate::domain::SafeUpdateOutcome,
    pub updates: Vec<SafeUpdateItem>,
    pub pages: Vec<SafeUpdatePage>,
    /// PHP fatal errors in the temporary environment's log after the update.
    pub fatals: Vec<String>,
    /// Why the run was held or failed, in short.
    pub reason: Option<String>,
    /// The temporary environment (deleted when the run's job ends; `null` when nothing was
    /// offered).
    #[schema(format = "uuid")]
    pub temp_environment_id: Option<String>,
    /// Production's `env_update` (applied automatically or approved).
    #[schema(format = "uuid")]
    pub apply_job_id: Option<String>,
    /// The user who approved or dismissed a held run.
    #[schema(format = "uuid")]
    pub decided_by: Option<String>,
    #[schema(format = "date-time")]
    pub decided_at: Option<String>,
    #[schema(format = "date-time")]
    pub created_at: String,
    #[schema(format = "date-time")]
    pub finished_at: Option<String>,
}

impl From<SafeUpdateRunRecord> for SafeUpdateRun {
    fn from(r: SafeUpdateRunRecord) -> Self {
        let updates: Vec<FoundUpdate> = serde_json::from_str(&r.updates_json).unwrap_or_default();
        let pages: Vec<PageVerdict> = serde_json::from_str(&r.pages_json).unwrap_or_default();
        let url = |f: Option<String>| f.map(|f| format!("/api/safe-updates/{}/images/{f}", r.id));
        SafeUpdateRun {
            updates: updates
                .into_iter()
                .map(|u| SafeUpdateItem {
                    kind: u.kind,
                    id: u.id,
                    from: u.from,
                    to: u.to,
                })
                .collect(),
            pages: pages
                .into_iter()
                .map(|p| SafeUpdatePage {
                    path: p.path,
                    status_before: p.status_before,
                    status_after: p.status_after,
                    changed_percent: p.changed_percent,
                    passed: p.passed,
                    reasons: p.reasons,
                    console_errors: p.console_errors,
                    changed_box: p.changed_box.and_then(|b| serde_json::from_value(b).ok()),
                    images: SafeUpdateImages {
                        before: url(p.images.before),
                        after: url(p.images.after),
                        diff: url(p.images.diff),
                    },
                })
                .collect(),
            fatals: serde_json::from_str(&r.fatals_json).unwrap_or_default(),
            id: r.id,
            site_id: r.site_id,
            job_id: r.job_id,
            trigger: r.run_trigger,
            outcome: r.outcome,
            reason: r.reason,
            temp_environment_id: r.temp_environment_id,
            apply_job_id: r.apply_job_id,
            decided_by: r.decided_by,
            decided_at: r.decided_at,
            created_at: r.created_at,
            finished_at: r.finished_at,
        }
    }
}

/// `{"items": [run, …]}`.
#[derive(Debug, Serialize, ToSchema)]
pub struct SafeUpdateRunList {
    pub items: Vec<SafeUpdateRun>,
}

/// An accepted run: its job and its record.
#[derive(Debug, Serialize, ToSchema)]
pub struct SafeUpdateAccepted {
    #[schema(format = "uuid")]
    pub job_id: String,
    #[schema(format = "uuid")]
    pub run_id: String,
}

/// A site's safe-update runs, newest first.
#[utoipa::path(get, path = "/sites/{id}/safe-updates", tag = "safe-updates",
    params(crate::http::schema::IdPath),
    responses((status = 200, body = SafeUpdateRunList), crate::http::error::IdErrors))]
pub async fn list_runs(
    State(state): State<AppState>,
    _s: CurrentSession,
    PathId(id): PathId,
) -> Result<Json<SafeUpdateRunList>, ApiError> {
    let runs = state.safe_updates.list(&id).await?;
    Ok(Json(SafeUpdateRunList {
        items: runs.into_iter().map(SafeUpdateRun::from).collect(),
    }))
}

/// Runs a safe update: production's available updates tried on a temporary clone, the check
/// pages screenshotted before and after and compared; applied to production when every page
/// passes, otherwise held for review (`safe_update`).
#[utoipa::path(post, path = "/sites/{id}/safe-updates", tag = "safe-updates",
    params(crate::http::schema::IdPath),
    responses((status = 202, body = SafeUpdateAccepted), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 404, body = ErrorBody),
        (status = 409, description = "`conflict`: a run queued, running or held, production not active, the site failed or deleted; `node_not_active`: production's node is not active", body = ErrorBody)))]
pub async fn start_run(
    State(state): State<AppState>,
    session: CurrentSession,
    PathId(id): PathId,
) -> Result<(StatusCode, Json<SafeUpdateAccepted>), ApiError> {
    let started = state
        .safe_updates
        .start(Some(&Actor::from(&session)), &id)
        .await?;
    Ok((
        StatusCode::ACCEPTED,
        Json(SafeUpdateAccepted {
            job_id: started.job_id,
            run_id: started.run_id,
        }),
    ))
}

/// One safe-update run with its pages, reasons and image URLs.
#[utoipa::path(get, path = "/safe-updates/{id}", tag = "safe-updates",
    params(crate::http::schema::IdPath),
    responses((status = 200, body = SafeUpdateRun), crate::http::error::IdErrors))]
pub async fn get_run(
    State(state): State<AppState>,
    _s: CurrentSession,
    PathId(id): PathId,
) -> Result<Json<SafeUpdateRun>, ApiError> {
    Ok(Json(state.safe_updates.get(&id).await?.into()))
}

/// The path of a run's image.
#[derive(Debug, utoipa::IntoParams)]
#[into_params(parameter_in = Path)]
#[allow(dead_code)]
pub struct ImagePath {
    /// The run's id (UUID).
    #[param(
        pattern = "^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$"
    )]
    id: String,
    /// `<page index>-before.png`, `-after.png` or `-diff.png`.
    #[param(pattern = "^[0-9]{1,2}-(before|after|diff)\\.png$")]
    file: String,
}

/// A run's screenshot (`before`, `after`) or diff image of one check page, as PNG.
#[utoipa::path(get, path = "/safe-updates/{id}/images/{file}", tag = "safe-updates",
    params(ImagePath),
    responses((status = 200, content_type = "image/png", description = "The image", body = Vec<u8>),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 404, description = "No such run, image name or image", body = ErrorBody)))]
pub async fn get_image(
    State(state): State<AppState>,
    _s: CurrentSession,
    Path((id, file)): Path<(String, String)>,
) -> Result<impl IntoResponse, ApiError> {
    let id = parse_uuid(&id).ok_or_else(|| ApiError::field("id", "must be a UUID"))?;
    let bytes = state
        .safe_updates
        .image(&id, &file)
        .await?
        .ok_or_else(|| ApiError::not_found("image"))?;
    Ok((
        [
            (CONTENT_TYPE, "image/png"),
            (CACHE_CONTROL, "private, max-age=3600"),
        ],
        bytes,
    ))
}

/// Approves a held run: its updates applied to production through the normal update job with
/// exactly the versions tried (pre-update backup, health gate, rollback).
#[utoipa::path(post, path = "/safe-updates/{id}/approve", tag = "safe-updates",
    params(crate::http::schema::IdPath),
    responses((status = 202, body = super::nodes::JobAccepted), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 404, body = ErrorBody),
        (status = 409, description = "`conflict`: the run is not held, or production cannot be updated (deleted, failed); `node_not_active`", body = ErrorBody)))]
pub async fn approve_run(
    State(state): State<AppState>,
    session: CurrentSession,
    PathId(id): PathId,
) -> Result<(StatusCode, Json<super::nodes::JobAccepted>), ApiError> {
    let job_id = state
        .safe_updates
        .approve(&Actor::from(&session), &id)
        .await?;
    Ok((
        StatusCode::ACCEPTED,
        Json(super::nodes::JobAccepted { job_id }),
    ))
}

/// Dismisses a held run: nothing is applied; the run stays in the history.
#[utoipa::path(post, path = "/safe-updates/{id}/dismiss", tag = "safe-updates",
    params(crate::http::schema::IdPath),
    responses((status = 200, body = SafeUpdateRun), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 404, body = ErrorBody),
        (status = 409, description = "`conflict`: the run is not held", body = ErrorBody)))]
pub async fn dismiss_run(
    State(state): State<AppState>,
    session: CurrentSession,
    PathId(id): PathId,
) -> Result<Json<SafeUpdateRun>, ApiError> {
    let run = state
        .safe_updates
        .dismiss(&Actor::from(&session), &id)
        .await?;
    Ok(Json(run.into()))
}

/// A mask list as stored (`{path: [region, …]}`), for the site's JSON.
pub fn masks_of(json: &str) -> std::collections::BTreeMap<String, Vec<Region>> {
    serde_json::from_str::<Value>(json)
        .ok()
        .and_then(|v| serde_json::from_value(v).ok())
        .unwrap_or_default()
}
