//! Restore drill endpoints (issue 14, item 4; beyond the spec): `POST /api/sites/{id}/drills`
//! runs a drill (`restore_drill`), `GET /api/sites/{id}/drills` lists a site's drills and
//! `PATCH /api/sites/{id}` sets its `drill_schedule`. The rules live in the drill service
//! ([`crate::drills::Drills`]); this module maps HTTP to it.

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::error::{ApiError, ErrorBody};
use super::extract::{AppJson, PathId};
use super::nodes::JobAccepted;
use super::sites::Site;
use crate::http::error::OrNotFound;
use crate::http::session::CurrentSession;
use crate::safe_updates::service::SiteSettingsChange;
use crate::sites::Actor;
use crate::state::AppState;
use crate::store::drills::DrillRecord;

/// This resource's routes (relative to `/api`), each registered with its OpenAPI entry. The
/// `PATCH /api/sites/{id}` handler ([`update_site`]) is registered with the site routes.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(list_drills, run_drill))
}

/// One restore drill of a site.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Drill {
    #[schema(format = "uuid")]
    pub id: String,
    #[schema(format = "uuid")]
    pub site_id: String,
    /// The production backup restored.
    #[schema(format = "uuid")]
    pub backup_id: String,
    /// The temporary environment (deleted when the drill's job ends).
    #[schema(format = "uuid")]
    pub environment_id: String,
    /// The `restore_drill` job.
    #[schema(format = "uuid")]
    pub job_id: String,
    #[schema(value_type = crate::domain::DrillStatus)]
    pub status: crate::domain::DrillStatus,
    /// Why a failed drill failed (e.g. `health check failed: http …`, `backup checksum
    /// mismatch …`).
    pub reason: Option<String>,
    #[schema(format = "date-time")]
    pub started_at: String,
    #[schema(format = "date-time")]
    pub finished_at: Option<String>,
    /// How long the drill took on the node (create, restore, checks, removal), in
    /// milliseconds; without a node report, from the request to the end of the job.
    pub duration_ms: Option<i64>,
}

impl From<DrillRecord> for Drill {
    fn from(d: DrillRecord) -> Self {
        Drill {
            id: d.id,
            site_id: d.site_id,
            backup_id: d.backup_id,
            environment_id: d.environment_id,
            job_id: d.job_id,
            status: d.status,
            reason: d.reason,
            started_at: d.started_at,
            finished_at: d.finished_at,
            duration_ms: d.duration_ms,
        }
    }
}

/// A site's restore drills, newest first.
#[utoipa::path(get, path = "/sites/{id}/drills", tag = "drills",
    params(crate::http::schema::IdPath),
    responses((status = 200, body = [Drill]), crate::http::error::IdErrors))]
pub async fn list_drills(
    State(state): State<AppState>,
    _s: CurrentSession,
    PathId(id): PathId,
) -> Result<Json<Vec<Drill>>, ApiError> {
    let drills = state.drills.list(&id).await?;
    Ok(Json(drills.into_iter().map(Drill::from).collect()))
}

/// Runs a restore drill: the site's latest completed full production backup restored into a
/// temporary environment, health-checked there, the temporary environment removed again
/// (`restore_drill`; a drill that does not pass fails its job with `DRILL_FAILED`).
#[utoipa::path(post, path = "/sites/{id}/drills", tag = "drills",
    params(crate::http::schema::IdPath),
    responses((status = 202, body = JobAccepted), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 404, body = ErrorBody),
        (status = 409, description = "`conflict`: no completed full backup of production, a drill already queued or running, the site failed or deleted; `node_not_active`: production's node is not active", body = ErrorBody)))]
pub async fn run_drill(
    State(state): State<AppState>,
    session: CurrentSession,
    PathId(id): PathId,
) -> Result<(StatusCode, Json<JobAccepted>), ApiError> {
    let started = state
        .drills
        .start(Some(&Actor::from(&session)), &id)
        .await?;
    Ok((
        StatusCode::ACCEPTED,
        Json(JobAccepted {
            job_id: started.job_id,
        }),
    ))
}

/// `Some(None)` for an explicit `null`, `Some(Some(v))` for a value, `None` (the field's
/// default) when absent.
fn double_option<'de, D, T>(d: D) -> Result<Option<Option<T>>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(d).map(Some)
}

/// Site settings body: at least one field; each field left out stays as it is.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateSiteRequest {
    /// How often a restore drill runs by itself: `off`, `weekly` (7 days after the last
    /// drill) or `monthly` (30 days).
    #[serde(default)]
    #[schema(value_type = Option<crate::domain::DrillSchedule>)]
    pub drill_schedule: Option<String>,
    /// How often a safe-update run starts by itself (issue 16): `off`, `daily` or `weekly`,
    /// inside `safe_updates_window`.
    #[serde(default)]
    #[schema(value_type = Option<crate::domain::SafeUpdateSchedule>)]
    pub safe_updates_schedule: Option<String>,
    /// `HH:MM-HH:MM` (24-hour, UTC; may wrap past midnight) scheduled runs start in; `null`:
    /// any time.
    #[serde(default, deserialize_with = "double_option")]
    #[schema(value_type = Option<String>, nullable, pattern = "^[0-2][0-9]:[0-5][0-9]-[0-2][0-9]:[0-5][0-9]$")]
    pub safe_updates_window: Option<Option<String>>,
    /// The check pages: at most 10 paths of the site (each starting with `/`, at most 200
    /// characters, no `//` start, `\\`, `..`, `#`, spaces or control characters); empty: the
    /// home page plus the main menu's paths.
    #[serde(default)]
    #[schema(value_type = Option<Vec<String>>, max_items = 10)]
    pub safe_updates_paths: Option<serde_json::Value>,
    /// The most a page may change (percent of its pixels, 0–100) and still pass; default 0.5.
    #[serde(default)]
    #[schema(value_type = Option<f64>, minimum = 0, maximum = 100)]
    pub safe_updates_threshold: Option<serde_json::Value>,
    /// Regions the comparison ignores, per page (`/` or a listed path): at most 20 per page,
    /// `x`, `y`, `width`, `height` whole numbers from 0 to 10000 (width and height at least 1).
    #[serde(default)]
    #[schema(value_type = Option<std::collections::BTreeMap<String, Vec<super::safe_updates::Region>>>)]
    pub safe_updates_masks: Option<serde_json::Value>,
}

/// Changes a site's settings (its restore drill schedule and safe-update settings); answers
/// the site.
#[utoipa::path(patch, path = "/sites/{id}", tag = "sites",
    params(crate::http::schema::IdPath),
    request_body = UpdateSiteRequest,
    responses((status = 200, body = Site),
        (status = 400, description = "`bad_request`: a field that is not valid (naming it), no field at all, a malformed body or an unknown field", body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 409, description = "`conflict`: the site is being deleted or deleted", body = ErrorBody)))]
pub async fn update_site(
    State(state): State<AppState>,
    session: CurrentSession,
    PathId(id): PathId,
    AppJson(body): AppJson<UpdateSiteRequest>,
) -> Result<Json<Site>, ApiError> {
    // An unknown site is 404 whatever the body says.
    if state.store.get_site(&id).await?.is_none() {
        return Err(ApiError::not_found("site"));
    }
    let change = SiteSettingsChange {
        drill_schedule: body.drill_schedule,
        schedule: body.safe_updates_schedule,
        window: body.safe_updates_window,
        paths: body.safe_updates_paths,
        threshold: body.safe_updates_threshold,
        masks: body.safe_updates_masks,
    };
    if change.drill_schedule.is_none()
        && change.schedule.is_none()
        && change.window.is_none()
        && change.paths.is_none()
        && change.threshold.is_none()
        && change.masks.is_none()
    {
        return Err(ApiError::bad_request(
            "at least one setting is required (e.g. drill_schedule, safe_updates_schedule)",
        ));
    }
    state
        .safe_updates
        .update_site(&Actor::from(&session), &id, &change)
        .await?;
    let site = state.store.get_site(&id).await?.or_not_found("site")?;
    Ok(Json(site.into()))
}
