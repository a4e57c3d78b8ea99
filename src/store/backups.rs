//! Backups: the `backups` table, one row per backup of an environment (backups-restore-promotion.md
//! §1, state-machines.md, Backup). The backup service inserts a row `pending`; `backup_create`
//! moves it `running → completed | failed`; `backup_verify` records `verified_at` and
//! `verify_status`; `backup_cleanup` moves expired ones to `expired` (rows are kept).
//!
//! Every status change is guarded by the states it may leave from and bumps `state_version` and
//! `updated_at`, so the live resource feed sees it.

use sqlx::{AnyConnection, FromRow};

use super::{row_by_id, updated_one, Store, StoreError};
use crate::domain::{BackupScope, BackupStatus, BackupStorageType, VerifyStatus};

/// A `backups` row.
#[derive(Debug, Clone, FromRow)]
pub struct BackupRecord {
    pub id: String,
    pub environment_id: String,
    pub backup_scope: BackupScope,
    pub status: BackupStatus,
    pub storage_type: BackupStorageType,
    pub storage_path: String,
    pub retention_until: String,
    /// `sha256:<hex>` of the stored manifest; set exactly when `completed` (or `expired` after).
    pub checksum: Option<String>,
    pub size_bytes: Option<i64>,
    pub created_at: String,
    pub completed_at: Option<String>,
    pub verified_at: Option<String>,
    pub verify_status: Option<VerifyStatus>,
    /// Why the backup failed, or why its cleanup failed (a registered job error code).
    pub error_code: Option<String>,
    pub state_version: i64,
    pub updated_at: String,
}

/// A backup to insert (`pending`).
#[derive(Debug, Clone)]
pub struct NewBackup<'a> {
    pub id: &'a str,
    pub environment_id: &'a str,
    pub scope: BackupScope,
    pub storage_type: BackupStorageType,
    pub storage_path: &'a str,
    pub retention_until: &'a str,
}

impl Store {
    /// An environment's backups, newest first.
    pub async fn list_backups(
        &self,
        environment_id: &str,
    ) -> Result<Vec<BackupRecord>, StoreError> {
        let order = "created_at DESC, id DESC";
        self.rows_where("backups", "environment_id", environment_id, order)
            .await
    }

    pub async fn get_backup(&self, id: &str) -> Result<Option<BackupRecord>, StoreError> {
        row_by_id(&self.pool, "backups", id).await
    }
}

/// The backup `id`, inside a transaction.
pub async fn fetch_backup(
    conn: &mut AnyConnection,
    id: &str,
) -> Result<Option<BackupRecord>, StoreError> {
    row_by_id(conn, "backups", id).await
}

/// Inserts a `pending` backup.
pub async fn insert_backup(
    conn: &mut AnyConnection,
    b: &NewBackup<'_>,
    now: &str,
) -> Result<(), StoreError> {
    crate::store::query(
        "INSERT INTO backups (id, environment_id, backup_scope, status, storage_type,
             storage_path, retention_until, created_at, updated_at)
         VALUES (?, ?, ?, 'pending', ?, ?, ?, ?, ?)",
    )
    .bind(b.id)
    .bind(b.environment_id)
    .bind(b.scope)
    .bind(b.storage_type)
    .bind(b.storage_path)
    .bind(b.retention_until)
    .bind(now)
    .bind(now)
    .execute(conn)
    .await?;
    Ok(())
}

/// Moves the backup to `to` if it is in one of `from` (true), else changes nothing (false).
/// `error_code` is set with `failed` and kept otherwise.
pub async fn set_backup_status(
    conn: &mut AnyConnection,
    id: &str,
    from: &[BackupStatus],
    to: BackupStatus,
    error_code: Option<&str>,
    now: &str,
) -> Result<bool, StoreError> {
    let placeholders = vec!["?"; from.len()].join(", ");
    let sql = format!(
        "UPDATE backups SET status = ?, error_code = COALESCE(?, error_code),
             state_version = state_version + 1, updated_at = ?
         WHERE id = ? AND status IN ({placeholders})"
    );
    let mut update = crate::store::query(&sql)
        .bind(to)
        .bind(error_code)
        .bind(now)
        .bind(id);
    for s in from {
        update = update.bind(*s);
    }
    updated_one(conn, update).await
}

/// Completes a `running` backup with its checksum and stored size (never `completed` without a
/// checksum: the column is set in the same statement). False when it was not `running`.
pub async fn complete_backup(
    conn: &mut AnyConnection,
    id: &str,
    checksum: &str,
    size_bytes: i64,
    now: &str,
) -> Result<bool, StoreError> {
    let update = crate::store::query(
        "UPDATE backups SET status = 'completed', checksum = ?, size_bytes = ?,
             completed_at = ?, error_code = NULL,
             state_version = state_version + 1, updated_at = ?
         WHERE id = ? AND status = 'running' AND ? LIKE 'sha256:%'",
    )
    .bind(checksum)
    .bind(size_bytes)
    .bind(now)
    .bind(now)
    .bind(id)
    .bind(checksum);
    updated_one(conn, update).await
}

/// Records what a Verify found.
pub async fn record_verify(
    conn: &mut AnyConnection,
    id: &str,
    status: VerifyStatus,
    now: &str,
) -> Result<bool, StoreError> {
    let update = crate::store::query(
        "UPDATE backups SET verified_at = ?, verify_status = ?,
             state_version = state_version + 1, updated_at = ?
         WHERE id = ?",
    )
    .bind(now)
    .bind(status)
    .bind(now)
    .bind(id);
    updated_one(conn, update).await
}

/// The target's newest `completed` `full` backup (fresh or not).
pub async fn newest_full_backup(
    conn: &mut AnyConnection,
    environment_id: &str,
) -> Result<Option<BackupRecord>, StoreError> {
    Ok(crate::store::query_as(
        "SELECT * FROM backups WHERE environment_id = ? AND backup_scope = 'full'
           AND status = 'completed' AND completed_at IS NOT NULL
         ORDER BY completed_at DESC, id DESC LIMIT 1",
    )
    .bind(environment_id)
    .fetch_optional(conn)
    .await?)
}
