//! Jobs as the pages show them: page sizes, empty-table sentences and the job panel (details and
//! the Cancel button), also sent live by `ui::live`.

use askama::Template;

use crate::store::{JobFilter, JobRecord, Store, StoreError};

use crate::domain::JobStatus;
use crate::http::job_status::JobStatusResponse;
use crate::ui::views::JobRow;

/// Jobs shown on the overview.
pub const RECENT_JOBS: i64 = 10;
/// Jobs per page on the jobs page.
pub const JOBS_PAGE: i64 = 50;

/// The most recent jobs (overview).
pub async fn recent_jobs(store: &Store) -> Result<Vec<JobRecord>, StoreError> {
    store
        .list_jobs(&JobFilter {
            limit: RECENT_JOBS,
            ..Default::default()
        })
        .await
}

/// What an empty jobs table says.
pub const EMPTY_JOBS: &str =
    "No jobs yet. Every change Pressluft makes to a server — provisioning a node, creating a site, \
     a backup — runs as a job and shows up here, live.";

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
