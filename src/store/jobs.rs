//! Reading jobs: filtered pages for the API and dashboard, single rows, and the change feed.
//!
//! Writing jobs (enqueue, claim, completion) belongs to the job engine and arrives with it.

use sqlx::FromRow;

use super::{Store, StoreError};
use crate::domain::{JobStatus, JobType};

/// A `jobs` row plus the display names of what it targets.
#[derive(Debug, Clone, FromRow)]
pub struct JobRecord {
    pub id: String,
    pub job_type: JobType,
    pub status: JobStatus,
    pub site_id: Option<String>,
    pub environment_id: Option<String>,
    pub node_id: String,
    pub payload_json: String,
    pub attempt_count: i64,
    pub max_attempts: i64,
    pub run_after: Option<String>,
    pub locked_at: Option<String>,
    pub locked_by: Option<String>,
    pub started_at: Option<String>,
    pub finished_at: Option<String>,
    pub error_code: Option<String>,
    pub error_message: Option<String>,
    pub heartbeat_at: Option<String>,
    pub cancel_requested_at: Option<String>,
    pub parent_job_id: Option<String>,
    pub output_tail: Option<String>,
    pub created_at: String,
    pub updated_at: String,
    /// `sites.name` of `site_id`.
    pub site_name: Option<String>,
    /// `environments.name` of `environment_id`.
    pub environment_name: Option<String>,
    /// `nodes.name` of `node_id`.
    pub node_name: Option<String>,
}

/// Filters of a job listing; every field optional. Lists are newest first.
#[derive(Debug, Clone, Default)]
pub struct JobFilter {
    pub status: Option<JobStatus>,
    pub job_type: Option<JobType>,
    pub site_id: Option<String>,
    pub environment_id: Option<String>,
    pub node_id: Option<String>,
    pub parent_job_id: Option<String>,
    /// Only jobs older than this one (the cursor of the next page).
    pub before: Option<(String, String)>,
    pub limit: i64,
}

pub(super) const SELECT_JOB: &str =
    "SELECT j.*, s.name AS site_name, e.name AS environment_name, n.name AS node_name
     FROM jobs j
     LEFT JOIN sites s ON s.id = j.site_id
     LEFT JOIN environments e ON e.id = j.environment_id
     LEFT JOIN nodes n ON n.id = j.node_id";

/// A job with its display names, on the pool or inside a transaction.
pub(super) async fn job_by_id<'c>(
    executor: impl sqlx::Executor<'c, Database = sqlx::Any>,
    id: &str,
) -> Result<Option<JobRecord>, StoreError> {
    Ok(
        crate::store::query_as(&format!("{SELECT_JOB} WHERE j.id = ?"))
            .bind(id)
            .fetch_optional(executor)
            .await?,
    )
}

/// The payload of the newest successful `job_type` job of `node_id` (the one that finished last;
/// ties of the timestamps, as under a still test clock, go to the row inserted last).
pub async fn latest_succeeded_payload(
    conn: &mut sqlx::AnyConnection,
    node_id: &str,
    job_type: JobType,
) -> Result<Option<String>, StoreError> {
    let row: Option<(String,)> = crate::store::query_as(
        "SELECT payload_json FROM jobs
          WHERE node_id = ? AND job_type = ? AND status = 'succeeded'
          ORDER BY finished_at DESC, created_at DESC, rowid DESC LIMIT 1",
    )
    .bind(node_id)
    .bind(job_type.as_str())
    .fetch_optional(conn)
    .await?;
    Ok(row.map(|(p,)| p))
}

impl Store {
    pub async fn list_jobs(&self, filter: &JobFilter) -> Result<Vec<JobRecord>, StoreError> {
        let mut sql = format!("{SELECT_JOB} WHERE 1 = 1");
        let mut binds: Vec<String> = Vec::new();
        if let Some(s) = filter.status {
            sql.push_str(" AND j.status = ?");
            binds.push(s.as_str().to_string());
        }
        if let Some(t) = filter.job_type {
            sql.push_str(" AND j.job_type = ?");
            binds.push(t.as_str().to_string());
        }
        for (column, value) in [
            ("j.site_id", &filter.site_id),
            ("j.environment_id", &filter.environment_id),
            ("j.node_id", &filter.node_id),
            ("j.parent_job_id", &filter.parent_job_id),
        ] {
            if let Some(v) = value {
                sql.push_str(&format!(" AND {column} = ?"));
                binds.push(v.clone());
            }
        }
        if let Some((created_at, id)) = &filter.before {
            sql.push_str(" AND (j.created_at < ? OR (j.created_at = ? AND j.id < ?))");
            binds.extend([created_at.clone(), created_at.clone(), id.clone()]);
        }
        sql.push_str(" ORDER BY j.created_at DESC, j.id DESC LIMIT ?");
        let mut q = crate::store::query_as(&sql);
        for b in binds {
            q = q.bind(b);
        }
        Ok(q.bind(filter.limit).fetch_all(&self.pool).await?)
    }

    pub async fn get_job(&self, id: &str) -> Result<Option<JobRecord>, StoreError> {
        job_by_id(&self.pool, id).await
    }

    /// The environment's newest job of one of `types`: by creation time, then insertion order
    /// (two jobs created in the same millisecond, or under a test clock, still have an order).
    pub async fn latest_environment_job(
        &self,
        environment_id: &str,
        types: &[JobType],
    ) -> Result<Option<JobRecord>, StoreError> {
        let list = vec!["?"; types.len()].join(", ");
        let sql = format!(
            "{SELECT_JOB} WHERE j.environment_id = ? AND j.job_type IN ({list})
             ORDER BY j.created_at DESC, j.rowid DESC LIMIT 1"
        );
        let mut q = crate::store::query_as(&sql).bind(environment_id);
        for t in types {
            q = q.bind(t.as_str());
        }
        Ok(q.fetch_optional(&self.pool).await?)
    }

    /// `(created_at, id)` of a job, the position a page cursor refers to.
    pub async fn job_position(&self, id: &str) -> Result<Option<(String, String)>, StoreError> {
        Ok(
            crate::store::query_as("SELECT created_at, id FROM jobs WHERE id = ?")
                .bind(id)
                .fetch_optional(&self.pool)
                .await?,
        )
    }

    /// Jobs whose `updated_at` is at or after `since`, oldest change first (the change feed).
    pub async fn jobs_changed_since(
        &self,
        since: &str,
        limit: i64,
    ) -> Result<Vec<JobRecord>, StoreError> {
        self.changed_since(SELECT_JOB, since, limit).await
    }

    /// The newest `updated_at` of any job, where the change feed starts.
    pub async fn latest_job_change(&self) -> Result<Option<String>, StoreError> {
        self.latest_change("jobs").await
    }
}

impl Store {
    /// The newest `domain_add` or `domain_remove` job of a custom domain (payload `domain_id`;
    /// compact JSON written by serde, the id a UUID, so the `LIKE` is exact).
    pub async fn latest_domain_job(
        &self,
        domain_id: &str,
    ) -> Result<Option<JobRecord>, StoreError> {
        Ok(crate::store::query_as(&format!(
            "{SELECT_JOB} WHERE j.job_type IN ('domain_add', 'domain_remove')
               AND j.payload_json LIKE ? ORDER BY j.created_at DESC, j.rowid DESC LIMIT 1"
        ))
        .bind(format!("%\"domain_id\":\"{domain_id}\"%"))
        .fetch_optional(&self.pool)
        .await?)
    }
}

/// How many of the site's jobs are `queued` or `running`.
pub async fn site_jobs_in_flight(
    conn: &mut sqlx::AnyConnection,
    site_id: &str,
) -> Result<i64, StoreError> {
    let (n,): (i64,) = crate::store::query_as(
        "SELECT COUNT(*) FROM jobs WHERE site_id = ? AND status IN ('queued', 'running')",
    )
    .bind(site_id)
    .fetch_one(conn)
    .await?;
    Ok(n)
}
