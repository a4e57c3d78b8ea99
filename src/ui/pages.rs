//! Full dashboard pages: overview, jobs list, job detail.

use askama::Template;
use axum::extract::State;
use axum::response::{Html, IntoResponse, Response};

use super::views::{metric_cards, JobRow, Layout, MetricCard};
use crate::domain::{JobStatus, JobType};
use crate::http::error::ApiError;
use crate::http::extract::{AppQuery, PathId};
use crate::http::job_status::JobStatusResponse;
use crate::http::session::UiSession;
use crate::state::AppState;
use crate::store::JobFilter;

/// Jobs shown on the overview.
pub const RECENT_JOBS: i64 = 10;
/// Jobs per page on the jobs page.
pub const JOBS_PAGE: i64 = 50;

/// Renders a template into a response; a template error is an internal error.
pub fn render(t: &impl Template) -> Response {
    match t.render() {
        Ok(html) => Html(html).into_response(),
        Err(e) => ApiError::internal(e).into_response(),
    }
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
    let jobs = state
        .store
        .list_jobs(&JobFilter {
            limit: RECENT_JOBS,
            ..Default::default()
        })
        .await?;
    Ok(render(&OverviewPage {
        layout: Layout::new("Overview", "overview", &session),
        cards: metric_cards(&metrics),
        jobs: jobs.iter().map(JobRow::from).collect(),
        empty_message: EMPTY_JOBS,
    }))
}

/// What an empty jobs table says.
pub const EMPTY_JOBS: &str =
    "No jobs yet. Every change Pressluft makes to a server — provisioning a node, creating a site, \
     a backup — runs as a job and shows up here, live.";

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

/// The job panel fragment (details and the Cancel button), also sent live.
#[derive(Template)]
#[template(path = "partials/job_panel.html")]
pub struct JobPanel {
    pub row: JobRow,
    pub job: JobStatusResponse,
    pub csrf_token: String,
    pub cancellable: bool,
    pub error_summary: String,
}

impl JobPanel {
    pub fn new(record: &crate::store::JobRecord, csrf_token: String) -> Self {
        let job = JobStatusResponse::from(record);
        let error_summary: String = job
            .error_message
            .as_deref()
            .unwrap_or("")
            .lines()
            .rev()
            .find(|l| !l.trim().is_empty())
            .unwrap_or("")
            .chars()
            .take(300)
            .collect();
        JobPanel {
            row: JobRow::from(record),
            cancellable: matches!(job.status, JobStatus::Queued | JobStatus::Running),
            job,
            csrf_token,
            error_summary,
        }
    }
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
    let record = state
        .store
        .get_job(id)
        .await?
        .ok_or_else(|| ApiError::not_found("job"))?;
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

/// `POST /jobs/{id}/cancel` (dashboard form).
pub async fn cancel_job(
    State(state): State<AppState>,
    UiSession(session): UiSession,
    PathId(id): PathId,
    headers: axum::http::HeaderMap,
    body: axum::body::Bytes,
) -> Result<Response, ApiError> {
    super::check_form_csrf(&session, &headers, &body)?;
    use crate::jobs::CancelOutcome;
    let notice = match state.engine.cancel(&id, &session.user.user_id).await? {
        CancelOutcome::NotFound => return Err(ApiError::not_found("job")),
        CancelOutcome::NotCancellable(status) => Some(format!(
            "This job can no longer be cancelled: it is already {status}."
        )),
        CancelOutcome::Status(_) => None,
    };
    if notice.is_some() {
        return job_page(&state, &session, &id, notice).await;
    }
    Ok(axum::response::Redirect::to(&format!("/jobs/{id}")).into_response())
}
