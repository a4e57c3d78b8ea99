//! The Jobs pages (GET): the filtered, paged jobs list and the job page with its output.

use askama::Template;
use axum::extract::State;
use axum::response::Response;

use super::views::{JobPanel, EMPTY_JOBS, JOBS_PAGE};
use crate::domain::{JobStatus, JobType};
use crate::http::error::ApiError;
use crate::http::error::OrNotFound;
use crate::http::extract::{AppQuery, PathId};
use crate::http::job_status::JobStatusResponse;
use crate::http::session::UiSession;
use crate::state::AppState;
use crate::ui::render;
use crate::ui::views::{JobRow, Layout};

#[derive(Template)]
#[template(path = "jobs.html")]
struct JobsPage {
    layout: Layout,
    jobs: Vec<JobRow>,
    empty_message: &'static str,
    error: Option<String>,
    status: String,
    job_type: String,
    site_id: String,
    statuses: Vec<&'static str>,
    job_types: Vec<&'static str>,
    sites: Vec<(String, String)>,
    /// Query string of the live stream for this view.
    live_query: String,
    /// `before` cursor of the next page, if there may be one.
    next_before: Option<String>,
    /// Query string (filters only) for links to other pages.
    filter_query: String,
    paged: bool,
}

/// The jobs page's query: the API's filters (same validation).
pub type JobsPageQuery = crate::http::query::JobsQuery;

/// `GET /jobs`.
pub async fn jobs(
    State(state): State<AppState>,
    UiSession(session): UiSession,
    query: Result<AppQuery<JobsPageQuery>, ApiError>,
) -> Result<Response, ApiError> {
    let query = query.map(|AppQuery(q)| q);
    let (status, job_type, site_id, paged) = match &query {
        Ok(q) => (
            q.status.clone().unwrap_or_default(),
            q.job_type.clone().unwrap_or_default(),
            q.site_id.clone().unwrap_or_default(),
            q.before.is_some(),
        ),
        Err(_) => Default::default(),
    };
    let filter_query = serde_urlencoded::to_string([
        ("status", status.as_str()),
        ("job_type", job_type.as_str()),
        ("site_id", site_id.as_str()),
    ])
    .unwrap_or_default();
    let mut error = None;
    let mut live_query = format!("view=jobs&{filter_query}");
    let filter = match query {
        Ok(mut q) => {
            q.limit = Some(JOBS_PAGE.to_string());
            if let Some(before) = &q.before {
                live_query.push_str(&format!("&before={}", urlencode(before)));
            }
            q.into_filter(&state.store).await
        }
        Err(e) => Err(e),
    };
    let rows = match filter {
        Ok(f) => state.store.list_jobs(&f).await?,
        Err(e) => {
            error = Some(e.message);
            Vec::new()
        }
    };
    let next_before = (rows.len() as i64 == JOBS_PAGE).then(|| rows[rows.len() - 1].id.clone());
    Ok(render(&JobsPage {
        layout: Layout::new("Jobs", "jobs", &session),
        jobs: rows.iter().map(JobRow::from).collect(),
        empty_message: if status.is_empty() && job_type.is_empty() && site_id.is_empty() {
            EMPTY_JOBS
        } else {
            "No job matches these filters."
        },
        error,
        status,
        job_type,
        site_id,
        statuses: JobStatus::ALL.iter().map(|s| s.as_str()).collect(),
        job_types: JobType::ALL.iter().map(|t| t.as_str()).collect(),
        sites: state.store.site_options().await?,
        live_query,
        next_before,
        filter_query,
        paged,
    }))
}

fn urlencode(s: &str) -> String {
    form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

#[derive(Template)]
#[template(path = "job.html")]
struct JobPage {
    layout: Layout,
    row: JobRow,
    job: JobStatusResponse,
    csrf_token: String,
    cancellable: bool,
    error_summary: String,
    output: Vec<String>,
    output_lines: usize,
    notice: Option<String>,
}

/// `GET /jobs/{id}`.
pub async fn job_detail(
    State(state): State<AppState>,
    UiSession(session): UiSession,
    PathId(id): PathId,
) -> Result<Response, ApiError> {
    job_page(&state, &session, &id, None).await
}

/// Renders the job page, with an optional notice (e.g. a refused cancel).
pub async fn job_page(
    state: &AppState,
    session: &crate::http::session::CurrentSession,
    id: &str,
    notice: Option<String>,
) -> Result<Response, ApiError> {
    let record = state.store.get_job(id).await?.or_not_found("job")?;
    let panel = JobPanel::new(&record, session.csrf_token());
    let text = crate::jobs::output::read_job_output(&state.config.log_dir, &record).await;
    let output: Vec<String> = text.lines().map(str::to_string).collect();
    Ok(render(&JobPage {
        layout: Layout::new(&format!("Job {}", panel.row.short_id), "jobs", session),
        output_lines: output.len(),
        output,
        row: panel.row,
        job: panel.job,
        csrf_token: panel.csrf_token,
        cancellable: panel.cancellable,
        error_summary: panel.error_summary,
        notice,
    }))
}
