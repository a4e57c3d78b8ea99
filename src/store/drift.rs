//! Drift checks: the `drift_checks` table, the baseline checksums an environment's later
//! checks compare against.

use sqlx::SqliteConnection;

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
    conn: &mut SqliteConnection,
    d: &NewDriftCheck<'_>,
    now: &str,
) -> Result<(), StoreError> {
    sqlx::query(
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
    .bind(d.is_baseline)
    .bind(now)
    .execute(conn)
    .await?;
    Ok(())
}
