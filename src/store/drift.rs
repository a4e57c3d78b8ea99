//! Drift checks: the `drift_checks` table, the baseline checksums an environment's later
//! checks compare against.

use sqlx::AnyConnection;

use super::StoreError;
use crate::domain::DriftStatus;

/// A drift check row to insert.
#[derive(Debug, Clone)]
pub struct NewDriftCheck<'a> {
    pub id: &'a str,
    pub environment_id: &'a str,
    pub promotion_preset: &'a str,
    pub status: DriftStatus,
    pub db_checksums_json: &'a str,
    pub file_checksums_json: &'a str,
    pub is_baseline: bool,
}

pub async fn insert_drift_check(
    conn: &mut AnyConnection,
    d: &NewDriftCheck<'_>,
    now: &str,
) -> Result<(), StoreError> {
    crate::store::query(
        "INSERT INTO drift_checks (id, environment_id, promotion_preset, status,
           db_checksums_json, file_checksums_json, is_baseline, checked_at)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
    )
    .bind(d.id)
    .bind(d.environment_id)
    .bind(d.promotion_preset)
    .bind(d.status)
    .bind(d.db_checksums_json)
    .bind(d.file_checksums_json)
    .bind(crate::store::flag(d.is_baseline))
    .bind(now)
    .execute(conn)
    .await?;
    Ok(())
}

/// A `drift_checks` row.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct DriftCheckRecord {
    pub id: String,
    pub environment_id: String,
    pub promotion_preset: String,
    pub status: DriftStatus,
    pub db_checksums_json: Option<String>,
    pub file_checksums_json: Option<String>,
    #[sqlx(try_from = "crate::store::Flag")]
    pub is_baseline: bool,
    pub checked_at: String,
}

impl DriftCheckRecord {
    /// The checksums the row holds.
    pub fn checksums(
        &self,
    ) -> Result<crate::domain::drift::Checksums, crate::domain::drift::ChecksumsError> {
        crate::domain::drift::Checksums::from_row_json(
            self.db_checksums_json.as_deref(),
            self.file_checksums_json.as_deref(),
        )
    }
}

fetch_by_id!(fetch_drift_check, DriftCheckRecord, "drift_checks");

impl super::Store {
    pub async fn get_drift_check(&self, id: &str) -> Result<Option<DriftCheckRecord>, StoreError> {
        fetch_drift_check(&mut *self.pool.acquire().await?, id).await
    }
}

/// The clone-time baseline of an environment (the newest, should there be several).
pub async fn fetch_baseline(
    conn: &mut AnyConnection,
    environment_id: &str,
) -> Result<Option<DriftCheckRecord>, StoreError> {
    Ok(crate::store::query_as(
        "SELECT * FROM drift_checks WHERE environment_id = ? AND is_baseline = 1
         ORDER BY checked_at DESC, id DESC LIMIT 1",
    )
    .bind(environment_id)
    .fetch_optional(conn)
    .await?)
}

/// Records a drift check's outcome on its environment: `drift_status`, `drift_checked_at`,
/// `last_drift_check_id` (state-machines.md, drift status). Not a lifecycle change:
/// `state_version` stays.
pub async fn set_environment_drift(
    conn: &mut AnyConnection,
    environment_id: &str,
    status: DriftStatus,
    check_id: &str,
    now: &str,
) -> Result<(), StoreError> {
    crate::store::query(
        "UPDATE environments SET drift_status = ?, drift_checked_at = ?, last_drift_check_id = ?,
           updated_at = ?
         WHERE id = ?",
    )
    .bind(status)
    .bind(now)
    .bind(check_id)
    .bind(now)
    .bind(environment_id)
    .execute(conn)
    .await?;
    Ok(())
}

/// The figures of a drift check the drift gate reads.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct DriftCheckSummary {
    pub id: String,
    pub promotion_preset: String,
    pub status: DriftStatus,
    pub checked_at: String,
    #[sqlx(try_from = "super::Flag")]
    pub is_baseline: bool,
}

/// The drift check `id`'s summary.
pub async fn drift_check_summary(
    conn: &mut AnyConnection,
    id: &str,
) -> Result<Option<DriftCheckSummary>, StoreError> {
    Ok(crate::store::query_as(
        "SELECT id, promotion_preset, status, checked_at, is_baseline FROM drift_checks WHERE id = ?",
    )
    .bind(id)
    .fetch_optional(conn)
    .await?)
}
