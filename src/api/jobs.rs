//! `GET /api/jobs` and `GET /api/jobs/{id}`.

use axum::extract::State;
use axum::Json;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::error::{ApiError, ErrorBody};
use super::extract::{parse_uuid, AppQuery, PathId};
use crate::domain::{JobStatus, JobType};
use crate::http::session::CurrentSession;
use crate::state::AppState;
use crate::store::{JobFilter, JobRecord, Store};

/// A job as clients see it (payload and output are not part of it).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct JobStatusResponse {
    #[schema(format = "uuid")]
    pub id: String,
    pub job_type: JobType,
    pub status: JobStatus,
    /// Null for global jobs such as `node_provision`.
    #[schema(format = "uuid")]
    pub site_id: Option<String>,
    #[schema(format = "uuid")]
    pub environment_id: Option<String>,
    #[schema(format = "uuid")]
    pub node_id: String,
    pub attempt_count: i64,
    pub max_attempts: i64,
    /// Not claimable before this time (retry backoff); null = now.
    #[schema(format = "date-time")]
    pub run_after: Option<String>,
    #[schema(format = "date-time")]
    pub locked_at: Option<String>,
    /// `<hostname>:<pid>/<worker index>` of the worker running it.
    pub locked_by: Option<String>,
    #[schema(format = "date-time")]
    pub started_at: Option<String>,
    #[schema(format = "date-time")]
    pub finished_at: Option<String>,
    pub error_code: Option<String>,
    pub error_message: Option<String>,
    /// The job this one follows up (health check → gated job, rollback → health check).
    #[schema(format = "uuid")]
    pub parent_job_id: Option<String>,
    /// Set while a cancel of a running job is pending.
    #[schema(format = "date-time")]
    pub cancel_requested_at: Option<String>,
    #[schema(format = "date-time")]
    pub created_at: String,
    #[schema(format = "date-time")]
    pub updated_at: String,
}

impl From<&JobRecord> for JobStatusResponse {
    fn from(j: &JobRecord) -> Self {
        JobStatusResponse {
            id: j.id.clone(),
            // The database CHECK constraints admit only registered values.
            job_type: j
                .job_type
                .parse()
                .expect("job_type constrained by the schema"),
            status: j.status,
            site_id: j.site_id.clone(),
            environment_id: j.environment_id.clone(),
            node_id: j.node_id.clone(),
            attempt_count: j.attempt_count,
            max_attempts: j.max_attempts,
            run_after: j.run_after.clone(),
            locked_at: j.locked_at.clone(),
            locked_by: j.locked_by.clone(),
            started_at: j.started_at.clone(),
            finished_at: j.finished_at.clone(),
            error_code: j.error_code.clone(),
            error_message: j.error_message.clone(),
            parent_job_id: j.parent_job_id.clone(),
            cancel_requested_at: j.cancel_requested_at.clone(),
            created_at: j.created_at.clone(),
            updated_at: j.updated_at.clone(),
        }
    }
}

/// Filters and paging of `GET /api/jobs`. Lists are newest first; to get the next page pass
/// the last job's id as `before`.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct JobsQuery {
    #[param(schema_with = crate::api::schema::query_job_status)]
    pub status: Option<String>,
    #[param(schema_with = crate::api::schema::query_job_type)]
    pub job_type: Option<String>,
    #[param(schema_with = crate::api::schema::query_uuid)]
    pub site_id: Option<String>,
    #[param(schema_with = crate::api::schema::query_uuid)]
    pub environment_id: Option<String>,
    #[param(schema_with = crate::api::schema::query_uuid)]
    pub node_id: Option<String>,
    #[param(schema_with = crate::api::schema::query_uuid)]
    pub parent_job_id: Option<String>,
    #[param(schema_with = crate::api::schema::query_limit)]
    pub limit: Option<String>,
    /// Only jobs older than the job with this id (cursor of the next page); an id no job has
    /// is `404 not_found` naming `before`.
    #[param(schema_with = crate::api::schema::query_uuid)]
    pub before: Option<String>,
}

/// Default and maximum page size.
pub const DEFAULT_LIMIT: i64 = 100;
pub const MAX_LIMIT: i64 = 500;

impl JobsQuery {
    /// Validates every parameter, naming the first bad one.
    pub async fn into_filter(self, store: &Store) -> Result<JobFilter, ApiError> {
        fn id(name: &str, v: Option<String>) -> Result<Option<String>, ApiError> {
            v.filter(|s| !s.is_empty())
                .map(|s| parse_uuid(&s).ok_or_else(|| ApiError::field(name, "must be a UUID")))
                .transpose()
        }
        let nonempty = |v: Option<String>| v.filter(|s| !s.is_empty());
        let status = nonempty(self.status)
            .map(|s| {
                s.parse::<JobStatus>()
                    .map_err(|e| ApiError::field("status", e.to_string()))
            })
            .transpose()?;
        let job_type = nonempty(self.job_type)
            .map(|s| {
                s.parse::<JobType>()
                    .map_err(|e| ApiError::field("job_type", e.to_string()))
            })
            .transpose()?;
        let limit = match nonempty(self.limit) {
            None => DEFAULT_LIMIT,
            Some(s) => parse_limit(&s)
                .ok_or_else(|| ApiError::field("limit", "must be an integer from 1 to 500"))?,
        };
        let before = match id("before", self.before)? {
            None => None,
            Some(job_id) => Some(store.job_position(&job_id).await?.ok_or_else(|| {
                ApiError::new(
                    super::error::ErrorCode::NotFound,
                    "before: no job has this id",
                )
                .with_details(serde_json::json!({ "fields": { "before": "no job has this id" } }))
            })?),
        };
        Ok(JobFilter {
            status,
            job_type,
            site_id: id("site_id", self.site_id)?,
            environment_id: id("environment_id", self.environment_id)?,
            node_id: id("node_id", self.node_id)?,
            parent_job_id: id("parent_job_id", self.parent_job_id)?,
            before,
            limit,
        })
    }
}

/// A page size as `api::schema::LIMIT_OR_EMPTY` states it: plain decimal digits without a
/// leading zero or sign, 1 to 500.
pub fn parse_limit(s: &str) -> Option<i64> {
    if s.is_empty() || s.len() > 3 || s.starts_with('0') || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse::<i64>()
        .ok()
        .filter(|n| (1..=MAX_LIMIT).contains(n))
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
    params(crate::api::schema::IdPath),
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
    let job = state
        .store
        .get_job(&id)
        .await?
        .ok_or_else(|| ApiError::not_found("job"))?;
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
    params(crate::api::schema::IdPath),
    responses(
        (status = 200, body = JobControlResponse),
        (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody),
        (status = 404, body = ErrorBody),
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
    params(crate::api::schema::IdPath),
    responses(
        (status = 200, description = "Output as plain text", content_type = "text/plain", body = String),
        (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody),
        (status = 404, body = ErrorBody),
    )
)]
pub async fn job_output(
    State(state): State<AppState>,
    _session: CurrentSession,
    PathId(id): PathId,
) -> Result<axum::response::Response, ApiError> {
    use axum::response::IntoResponse;
    let job = state
        .store
        .get_job(&id)
        .await?
        .ok_or_else(|| ApiError::not_found("job"))?;
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
