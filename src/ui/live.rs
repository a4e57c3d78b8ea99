//! `GET /ui/events`: the dashboard's live stream. Each job change re-renders the fragments the
//! page shows (metrics cards, job rows for its filters, a job's status badge), sent as named
//! SSE events that htmx swaps in place.

use std::convert::Infallible;
use std::time::Duration;

use askama::Template;
use axum::extract::State;
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures_util::{stream, Stream, StreamExt};
use serde::Deserialize;
use tokio::sync::broadcast;

use super::pages::{EMPTY_JOBS, JOBS_PAGE, RECENT_JOBS};
use super::views::{metric_cards, JobRow, MetricCard};
use crate::api::error::ApiError;
use crate::api::extract::{parse_uuid, AppQuery};
use crate::api::jobs::JobsQuery;
use crate::events::Event;
use crate::http::session::UiSession;
use crate::state::AppState;
use crate::store::JobFilter;

/// Changes arriving within this window are rendered once.
const DEBOUNCE: Duration = Duration::from_millis(150);

#[derive(Template)]
#[template(path = "partials/metrics.html")]
struct MetricsFragment {
    cards: Vec<MetricCard>,
}

#[derive(Template)]
#[template(path = "partials/job_rows.html")]
struct JobRowsFragment {
    jobs: Vec<JobRow>,
    empty_message: &'static str,
}

/// Which page is listening.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LiveQuery {
    view: String,
    id: Option<String>,
    status: Option<String>,
    job_type: Option<String>,
    site_id: Option<String>,
    before: Option<String>,
}

enum View {
    Overview,
    Jobs(JobFilter),
    Job(String),
}

/// `GET /ui/events?view=overview|jobs|job&…`.
pub async fn events(
    State(state): State<AppState>,
    UiSession(_session): UiSession,
    AppQuery(q): AppQuery<LiveQuery>,
) -> Result<Response, ApiError> {
    let view = match q.view.as_str() {
        "overview" => View::Overview,
        "jobs" => {
            let mut filter = JobsQuery {
                status: q.status,
                job_type: q.job_type,
                site_id: q.site_id,
                before: q.before,
                ..Default::default()
            }
            .into_filter(&state.store)
            .await?;
            filter.limit = JOBS_PAGE;
            View::Jobs(filter)
        }
        "job" => View::Job(
            q.id.as_deref()
                .and_then(parse_uuid)
                .ok_or_else(|| ApiError::field("id", "must be a UUID"))?,
        ),
        _ => {
            return Err(ApiError::field(
                "view",
                "must be one of: overview, jobs, job",
            ))
        }
    };
    let rx = state.events.subscribe();
    let mut shutdown = state.shutdown.clone();
    let updates = stream::unfold((rx, state, view), |(mut rx, state, view)| async move {
        loop {
            match rx.recv().await {
                Ok(Event::Job(job)) => {
                    if let View::Job(id) = &view {
                        if job.id != *id {
                            continue;
                        }
                    }
                }
                Err(broadcast::error::RecvError::Lagged(_)) => {}
                Err(broadcast::error::RecvError::Closed) => return None,
            }
            // Let a burst of changes settle, then render once.
            tokio::time::sleep(DEBOUNCE).await;
            while let Ok(_) | Err(broadcast::error::TryRecvError::Lagged(_)) = rx.try_recv() {}
            match render(&state, &view).await {
                Ok(events) => return Some((events, (rx, state, view))),
                Err(e) => tracing::warn!(error = %e, "live fragment rendering failed"),
            }
        }
    })
    .flat_map(stream::iter)
    .map(Ok::<_, Infallible>)
    .take_until(async move {
        let _ = shutdown.wait_for(|stop| *stop).await;
    });
    Ok(sse(updates))
}

fn sse(s: impl Stream<Item = Result<SseEvent, Infallible>> + Send + 'static) -> Response {
    Sse::new(s)
        .keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
        .into_response()
}

async fn render(
    state: &AppState,
    view: &View,
) -> Result<Vec<SseEvent>, Box<dyn std::error::Error + Send + Sync>> {
    let mut out = Vec::new();
    match view {
        View::Overview => {
            let metrics = state.store.metrics().await?;
            out.push(fragment(
                "metrics",
                &MetricsFragment {
                    cards: metric_cards(&metrics),
                },
            )?);
            let jobs = state
                .store
                .list_jobs(&JobFilter {
                    limit: RECENT_JOBS,
                    ..Default::default()
                })
                .await?;
            out.push(fragment("jobs", &rows(&jobs, EMPTY_JOBS))?);
        }
        View::Jobs(filter) => {
            let jobs = state.store.list_jobs(filter).await?;
            out.push(fragment("jobs", &rows(&jobs, EMPTY_JOBS))?);
        }
        View::Job(id) => {
            if let Some(job) = state.store.get_job(id).await? {
                let row = JobRow::from(&job);
                let badge = format!(
                    "<span class=\"badge status-{0}\">{0}{1}</span>",
                    row.status,
                    if row.stopping { " · stopping" } else { "" }
                );
                out.push(SseEvent::default().event("job-status").data(badge));
            }
        }
    }
    Ok(out)
}

fn rows(jobs: &[crate::store::JobRecord], empty_message: &'static str) -> JobRowsFragment {
    JobRowsFragment {
        jobs: jobs.iter().map(JobRow::from).collect(),
        empty_message,
    }
}

fn fragment(name: &str, t: &impl Template) -> Result<SseEvent, askama::Error> {
    Ok(SseEvent::default().event(name).data(t.render()?))
}
