//! The overview page: the metric cards and the most recent jobs.

use askama::Template;
use axum::extract::State;
use axum::response::Response;
use axum::routing::get;
use axum::Router;

use super::jobs::views::{recent_jobs, EMPTY_JOBS};
use super::render;
use super::views::{metric_cards, JobRow, Layout, MetricCard};
use crate::http::error::ApiError;
use crate::http::session::UiSession;
use crate::state::AppState;

/// The overview route.
pub fn router() -> Router<AppState> {
    Router::new().route("/", get(overview))
}

#[derive(Template)]
#[template(path = "overview.html")]
struct OverviewPage {
    layout: Layout,
    cards: Vec<MetricCard>,
    jobs: Vec<JobRow>,
    empty_message: &'static str,
}

/// `GET /`.
pub async fn overview(
    State(state): State<AppState>,
    UiSession(session): UiSession,
) -> Result<Response, ApiError> {
    let metrics = state.store.metrics().await?;
    let jobs = recent_jobs(&state.store).await?;
    Ok(render(&OverviewPage {
        layout: Layout::new("Overview", "overview", &session),
        cards: metric_cards(&metrics),
        jobs: jobs.iter().map(JobRow::from).collect(),
        empty_message: EMPTY_JOBS,
    }))
}
