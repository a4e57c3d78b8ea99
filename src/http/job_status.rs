//! The job as the API and the dashboard show it (`JobStatusResponse`): one shape for the JSON
//! body, the live events and the job page.

use serde::Serialize;
use utoipa::ToSchema;

use crate::domain::{JobStatus, JobType};
use crate::store::JobRecord;

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
            job_type: j.job_type,
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
