//! Custom domains: the `domains` table (data-model.md, domains-and-tls.md §3). The domain
//! service inserts a row `pending` with its `domain_add` job; the job moves it to `active` (and
//! makes it the environment's primary when it has none) or `failed`; `DELETE` marks it
//! `disabled` with its `domain_remove` job, whose success deletes the row (the only rows the
//! model deletes) and moves the primary to the oldest remaining active domain.
//!
//! Every change sets `updated_at`, so the live resource feed sees it (domains have no
//! `state_version`; the feed reports 1).

use sqlx::{AnyConnection, FromRow};

use super::{row_by_id, Store, StoreError};
use crate::domain::{JobStatus, JobType, TlsStatus};

/// A `domains` row.
#[derive(Debug, Clone, FromRow)]
pub struct DomainRecord {
    pub id: String,
    pub environment_id: String,
    /// Lower-case FQDN, globally unique.
    pub hostname: String,
    pub tls_status: TlsStatus,
    /// `letsencrypt`.
    pub tls_issuer: String,
    pub created_at: String,
    pub updated_at: String,
}

fetch_by_id!(fetch_domain, DomainRecord, "domains");

impl Store {
    /// An environment's domains, oldest first.
    pub async fn list_domains(
        &self,
        environment_id: &str,
    ) -> Result<Vec<DomainRecord>, StoreError> {
        self.rows_where(
            "domains",
            "environment_id",
            environment_id,
            "created_at, id",
        )
        .await
    }

    pub async fn get_domain(&self, id: &str) -> Result<Option<DomainRecord>, StoreError> {
        row_by_id(&self.pool, "domains", id).await
    }
}

/// The environment's domains, oldest first (inside a transaction).
pub async fn environment_domains(
    conn: &mut AnyConnection,
    environment_id: &str,
) -> Result<Vec<DomainRecord>, StoreError> {
    Ok(crate::store::query_as(
        "SELECT * FROM domains WHERE environment_id = ? ORDER BY created_at, id",
    )
    .bind(environment_id)
    .fetch_all(conn)
    .await?)
}

/// The domain with this host name, on any environment.
pub async fn domain_by_hostname(
    conn: &mut AnyConnection,
    hostname: &str,
) -> Result<Option<DomainRecord>, StoreError> {
    Ok(
        crate::store::query_as("SELECT * FROM domains WHERE hostname = ?")
            .bind(hostname)
            .fetch_optional(conn)
            .await?,
    )
}

/// Inserts a `pending` domain.
pub async fn insert_domain(
    conn: &mut AnyConnection,
    id: &str,
    environment_id: &str,
    hostname: &str,
    now: &str,
) -> Result<(), StoreError> {
    crate::store::query(
        "INSERT INTO domains (id, environment_id, hostname, tls_status, tls_issuer, created_at, updated_at)
         VALUES (?, ?, ?, 'pending', 'letsencrypt', ?, ?)",
    )
    .bind(id)
    .bind(environment_id)
    .bind(hostname)
    .bind(now)
    .bind(now)
    .execute(conn)
    .await?;
    Ok(())
}

/// Sets a domain's `tls_status` (no row: nothing happens, the domain is gone).
pub async fn set_tls_status(
    conn: &mut AnyConnection,
    id: &str,
    to: TlsStatus,
    now: &str,
) -> Result<(), StoreError> {
    crate::store::query("UPDATE domains SET tls_status = ?, updated_at = ? WHERE id = ?")
        .bind(to)
        .bind(now)
        .bind(id)
        .execute(conn)
        .await?;
    Ok(())
}

/// Deletes a domain row (after `domain_remove`), clearing it as its environment's primary.
pub async fn delete_domain(
    conn: &mut AnyConnection,
    id: &str,
    now: &str,
) -> Result<(), StoreError> {
    crate::store::query(
        "UPDATE environments SET primary_domain_id = NULL, updated_at = ? WHERE primary_domain_id = ?",
    )
    .bind(now)
    .bind(id)
    .execute(&mut *conn)
    .await?;
    crate::store::query("DELETE FROM domains WHERE id = ?")
        .bind(id)
        .execute(conn)
        .await?;
    Ok(())
}

/// Deletes every domain row of an environment (its deletion removed them from the node), the
/// primary first, so their host names are free again.
pub async fn delete_environment_domains(
    conn: &mut AnyConnection,
    environment_id: &str,
) -> Result<(), StoreError> {
    crate::store::query("UPDATE environments SET primary_domain_id = NULL WHERE id = ?")
        .bind(environment_id)
        .execute(&mut *conn)
        .await?;
    crate::store::query("DELETE FROM domains WHERE environment_id = ?")
        .bind(environment_id)
        .execute(conn)
        .await?;
    Ok(())
}

/// Sets (or clears) an environment's primary domain. Not a status change: `state_version`
/// stays; `updated_at` moves so the live feed shows the environment again.
pub async fn set_primary_domain(
    conn: &mut AnyConnection,
    environment_id: &str,
    domain_id: Option<&str>,
    now: &str,
) -> Result<(), StoreError> {
    crate::store::query(
        "UPDATE environments SET primary_domain_id = ?, updated_at = ? WHERE id = ?",
    )
    .bind(domain_id)
    .bind(now)
    .bind(environment_id)
    .execute(conn)
    .await?;
    Ok(())
}

/// Whether a job of `job_type` for this domain (payload `domain_id`) is queued or running.
/// The payload is compact JSON written by serde (no spaces), the id a UUID: a `LIKE` on it is
/// exact and portable (no JSON functions).
pub async fn domain_job_open(
    conn: &mut AnyConnection,
    job_type: JobType,
    domain_id: &str,
) -> Result<bool, StoreError> {
    let row: Option<(i64,)> = crate::store::query_as(
        "SELECT 1 FROM jobs WHERE job_type = ? AND status IN (?, ?)
           AND payload_json LIKE ? LIMIT 1",
    )
    .bind(job_type)
    .bind(JobStatus::Queued)
    .bind(JobStatus::Running)
    .bind(format!("%\"domain_id\":\"{domain_id}\"%"))
    .fetch_optional(conn)
    .await?;
    Ok(row.is_some())
}
