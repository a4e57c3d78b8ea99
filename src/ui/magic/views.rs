//! The controls fragment of the site and environment pages: Open WordPress admin (environment,
//! enabled while it is active), Reset (when the site or environment has failed) and the
//! queued or running jobs with their Cancel buttons.

use askama::Template;
use axum::extract::State;
use axum::response::Response;

use crate::domain::{JobStatus, SiteStatus};
use crate::http::error::{ApiError, OrNotFound};
use crate::http::extract::PathId;
use crate::http::session::UiSession;
use crate::state::AppState;
use crate::store::{JobFilter, Store, StoreError};
use crate::ui::render;
use crate::ui::views::JobRow;

/// How many queued/running jobs the controls list (the site allows one running job; the rest
/// wait).
const ACTIVE_JOBS: i64 = 20;

#[derive(Template)]
#[template(path = "partials/magic_controls.html")]
pub struct Controls {
    pub csrf_token: String,
    /// `site` or `environment`.
    pub what: &'static str,
    /// The environment whose admin the button opens (environment page only).
    pub environment_id: Option<String>,
    /// Whether the environment is active (the button works only then).
    pub can_open_admin: bool,
    /// The Reset form's action when the resource has failed.
    pub reset_action: Option<String>,
    pub status: String,
    /// Queued and running jobs, each with a Cancel button.
    pub jobs: Vec<JobRow>,
}

/// `GET /ui/environments/{id}/controls`.
pub async fn environment_controls(
    State(state): State<AppState>,
    UiSession(session): UiSession,
    PathId(id): PathId,
) -> Result<Response, ApiError> {
    let env = state
        .store
        .get_environment(&id)
        .await?
        .or_not_found("environment")?;
    let filter = |status| JobFilter {
        status: Some(status),
        environment_id: Some(env.id.clone()),
        limit: ACTIVE_JOBS,
        ..Default::default()
    };
    Ok(render(&Controls {
        csrf_token: session.csrf_token(),
        what: "environment",
        environment_id: Some(env.id.clone()),
        can_open_admin: env.status == SiteStatus::Active,
        reset_action: (env.status == SiteStatus::Failed)
            .then(|| format!("/environments/{}/reset", env.id)),
        status: env.status.to_string(),
        jobs: active_jobs(&state.store, filter).await?,
    }))
}

/// `GET /ui/sites/{id}/controls`.
pub async fn site_controls(
    State(state): State<AppState>,
    UiSession(session): UiSession,
    PathId(id): PathId,
) -> Result<Response, ApiError> {
    let site = state.store.get_site(&id).await?.or_not_found("site")?;
    let filter = |status| JobFilter {
        status: Some(status),
        site_id: Some(site.id.clone()),
        limit: ACTIVE_JOBS,
        ..Default::default()
    };
    Ok(render(&Controls {
        csrf_token: session.csrf_token(),
        what: "site",
        environment_id: None,
        can_open_admin: false,
        reset_action: (site.status == SiteStatus::Failed)
            .then(|| format!("/sites/{}/reset", site.id)),
        status: site.status.to_string(),
        jobs: active_jobs(&state.store, filter).await?,
    }))
}

/// Running jobs first, then queued ones (each newest first).
async fn active_jobs(
    store: &Store,
    filter: impl Fn(JobStatus) -> JobFilter,
) -> Result<Vec<JobRow>, StoreError> {
    let mut rows = Vec::new();
    for status in [JobStatus::Running, JobStatus::Queued] {
        rows.extend(
            store
                .list_jobs(&filter(status))
                .await?
                .iter()
                .map(JobRow::from),
        );
    }
    Ok(rows)
}
