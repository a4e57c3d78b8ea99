//! The audit trail (api.md §6): one row per mutating action, result updated when its job ends.

use serde::Serialize;
use sqlx::{AnyConnection, FromRow};
use utoipa::ToSchema;

use super::{Store, StoreError};

/// An `audit_logs` row with the acting user's e-mail.
#[derive(Debug, Clone, FromRow, Serialize, ToSchema)]
pub struct AuditRecord {
    #[schema(format = "uuid")]
    pub id: String,
    #[schema(format = "uuid")]
    pub user_id: String,
    /// E-mail of `user_id`.
    pub user_email: String,
    /// The job type for async actions, or `magic_login`, `job_cancel`, `site_reset`,
    /// `environment_reset`, `settings_update`.
    pub action: String,
    #[schema(value_type = crate::domain::AuditResourceType)]
    pub resource_type: String,
    pub resource_id: String,
    #[schema(value_type = crate::domain::AuditResult)]
    pub result: String,
    #[schema(format = "uuid")]
    pub job_id: Option<String>,
    #[schema(format = "date-time")]
    pub created_at: String,
}

/// An audit row to insert.
#[derive(Debug, Clone)]
pub struct NewAudit<'a> {
    pub id: &'a str,
    pub user_id: &'a str,
    pub action: &'a str,
    pub resource_type: &'a str,
    pub resource_id: &'a str,
    pub result: &'a str,
    pub job_id: Option<&'a str>,
}

pub async fn insert_audit(
    conn: &mut AnyConnection,
    a: &NewAudit<'_>,
    now: &str,
) -> Result<(), StoreError> {
    crate::store::query(
        "INSERT INTO audit_logs (id, user_id, action, resource_type, resource_id, result, job_id, created_at)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
    )
    .bind(a.id)
    .bind(a.user_id)
    .bind(a.action)
    .bind(a.resource_type)
    .bind(a.resource_id)
    .bind(a.result)
    .bind(a.job_id)
    .bind(now)
    .execute(conn)
    .await?;
    Ok(())
}

/// Sets the result of the `accepted` audit row of a job; returns how many rows changed.
pub async fn finish_audit_for_job(
    conn: &mut AnyConnection,
    job_id: &str,
    result: &str,
) -> Result<u64, StoreError> {
    let r = crate::store::query(
        "UPDATE audit_logs SET result = ? WHERE job_id = ? AND result = 'accepted'",
    )
    .bind(result)
    .bind(job_id)
    .execute(conn)
    .await?;
    Ok(r.rows_affected())
}

impl Store {
    pub async fn list_audit(
        &self,
        resource_type: Option<&str>,
        resource_id: Option<&str>,
        limit: i64,
    ) -> Result<Vec<AuditRecord>, StoreError> {
        Ok(crate::store::query_as(
            "SELECT a.*, u.email AS user_email FROM audit_logs a JOIN users u ON u.id = a.user_id
             WHERE (? IS NULL OR a.resource_type = ?) AND (? IS NULL OR a.resource_id = ?)
             ORDER BY a.created_at DESC, a.id DESC LIMIT ?",
        )
        .bind(resource_type)
        .bind(resource_type)
        .bind(resource_id)
        .bind(resource_id)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?)
    }
}
