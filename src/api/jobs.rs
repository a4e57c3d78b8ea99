//! `GET /api/jobs` and `GET /api/jobs/{id}`.

use axum::extract::State;
use axum::Json;
use serde::Serialize;
use utoipa::ToSchema;

use super::error::{ApiError, ErrorBody};
use super::extract::{AppQuery, PathId};
use crate::domain::JobStatus;
use crate::http::session::CurrentSession;
use crate::state::AppState;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::http::error::OrNotFound;
pub use crate::http::job_status::JobStatusResponse;
pub use crate::http::query::{parse_limit, JobsQuery, DEFAULT_LIMIT, MAX_LIMIT};

/// This resource's routes (relative to `/api`), each registered with its OpenAPI entry.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_jobs))
        .routes(routes!(get_job))
        .routes(routes!(cancel_job))
        .routes(routes!(job_output))
}
/// Lists jobs, newest first.
#[utoipa::path(
    get, path = "/jobs", tag = "jobs",
    params(JobsQuery),
    responses(
        (status = 200, body = [JobStatusResponse]),
        (status = 400, description = "Invalid filter; `details.fields` names it", body = ErrorBody),
        (status = 401, body = ErrorBody),
        (status = 404, description = "`before` names no job", body = ErrorBody),
    )
)]
pub async fn list_jobs(
    State(state): State<AppState>,
    _session: CurrentSession,
    AppQuery(query): AppQuery<JobsQuery>,
) -> Result<Json<Vec<JobStatusResponse>>, ApiError> {
    let filter = query.into_filter(&state.store).await?;
    let jobs = state.store.list_jobs(&filter).await?;
    Ok(Json(jobs.iter().map(JobStatusResponse::from).collect()))
}

/// One job.
#[utoipa::path(
    get, path = "/jobs/{id}", tag = "jobs",
    params(crate::http::schema::IdPath),
    responses(
        (status = 200, body = JobStatusResponse),
        (status = 400, description = "Malformed id", body = ErrorBody),
        (status = 401, body = ErrorBody),
        (status = 404, body = ErrorBody),
    )
)]
pub async fn get_job(
    State(state): State<AppState>,
    _session: CurrentSession,
    PathId(id): PathId,
) -> Result<Json<JobStatusResponse>, ApiError> {
    let job = state.store.get_job(&id).await?.or_not_found("job")?;
    Ok(Json(JobStatusResponse::from(&job)))
}

/// `{"success", "status"}` of job control.
#[derive(Debug, Serialize, ToSchema)]
pub struct JobControlResponse {
    pub success: bool,
    /// The job's status after the request: `cancelled`, or `running` while it is still stopping.
    #[schema(value_type = JobStatus)]
    pub status: JobStatus,
}

/// Cancels a queued job at once, or stops a running one (SIGTERM to its Ansible process group,
/// SIGKILL after 10 s); waits up to 15 s for it to stop. No rollback is attempted.
#[utoipa::path(
    post, path = "/jobs/{id}/cancel", tag = "jobs",
    params(crate::http::schema::IdPath),
    responses(
        (status = 200, body = JobControlResponse),
        crate::http::error::IdErrors,
        (status = 409, description = "`job_not_cancellable`: already finished", body = ErrorBody),
    )
)]
pub async fn cancel_job(
    State(state): State<AppState>,
    session: CurrentSession,
    PathId(id): PathId,
) -> Result<Json<JobControlResponse>, ApiError> {
    use crate::jobs::CancelOutcome;
    match state.engine.cancel(&id, &session.user.user_id).await? {
        CancelOutcome::Status(status) => Ok(Json(JobControlResponse {
            success: true,
            status,
        })),
        CancelOutcome::NotFound => Err(ApiError::not_found("job")),
        CancelOutcome::NotCancellable(status) => Err(ApiError::new(
            super::error::ErrorCode::JobNotCancellable,
            format!("the job is already {status}"),
        )),
    }
}

/// The job's full output log (`text/plain`, streamed; the log is capped at 10 MiB and then ends
/// with a truncation note); the stored tail when the log file is gone.
#[utoipa::path(
    get, path = "/jobs/{id}/output", tag = "jobs",
    params(crate::http::schema::IdPath),
    responses(
        (status = 200, description = "Output as plain text", content_type = "text/plain", body = String),
        crate::http::error::IdErrors,
    )
)]
pub async fn job_output(
    State(state): State<AppState>,
    _session: CurrentSession,
    PathId(id): PathId,
) -> Result<axum::response::Response, ApiError> {
    use axum::response::IntoResponse;
    let job = state.store.get_job(&id).await?.or_not_found("job")?;
    // Streamed from the file (capped at 10 MiB when written), never read whole.
    let chunks = crate::jobs::output::stream_job_output(&state.config.log_dir, &job).await;
    Ok((
        [(
            axum::http::header::CONTENT_TYPE,
            "text/plain; charset=utf-8",
        )],
        axum::body::Body::from_stream(chunks),
    )
        .into_response())
}
