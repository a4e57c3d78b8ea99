//! Restore drills (issue 14): the `restore_drills` table, one row per drill of a site, and the
//! site's `drill_schedule`. The drill service inserts a row `running` with its job; the
//! `restore_drill` kind finishes it `passed` or `failed` (with the reason, the duration and
//! the node's step timings). Every change bumps `state_version` and `updated_at`.

use sqlx::{AnyConnection, FromRow};

use super::{updated_one, Store, StoreError};
use crate::domain::{DrillSchedule, DrillStatus};

/// A `restore_drills` row.
#[derive(Debug, Clone, FromRow)]
pub struct DrillRecord {
    pub id: String,
    pub site_id: String,
    /// The temporary environment the backup was restored into.
    pub environment_id: String,
    pub backup_id: String,
    pub job_id: String,
    pub status: DrillStatus,
    pub reason: Option<String>,
    pub started_at: String,
    pub finished_at: Option<String>,
    pub duration_ms: Option<i64>,
    /// What each step took on the node (`{"create_ms": …, "restore_ms": …, …}`).
    pub timings_json: Option<String>,
    pub state_version: i64,
    pub updated_at: String,
}

/// A drill to insert (`running`).
#[derive(Debug, Clone)]
pub struct NewDrill<'a> {
    pub id: &'a str,
    pub site_id: &'a str,
    pub environment_id: &'a str,
    pub backup_id: &'a str,
    pub job_id: &'a str,
}

pub async fn insert_drill(
    conn: &mut AnyConnection,
    d: &NewDrill<'_>,
    now: &str,
) -> Result<(), StoreError> {
    crate::store::query(
        "INSERT INTO restore_drills (id, site_id, environment_id, backup_id, job_id, status,
           started_at, updated_at)
         VALUES (?, ?, ?, ?, ?, 'running', ?, ?)",
    )
    .bind(d.id)
    .bind(d.site_id)
    .bind(d.environment_id)
    .bind(d.backup_id)
    .bind(d.job_id)
    .bind(now)
    .bind(now)
    .execute(conn)
    .await?;
    Ok(())
}

fetch_by_id!(fetch_drill, DrillRecord, "restore_drills");

/// Records the timings the node reported (a running drill only).
pub async fn set_drill_timings(
    conn: &mut AnyConnection,
    id: &str,
    timings_json: &str,
    now: &str,
) -> Result<(), StoreError> {
    crate::store::query(
        "UPDATE restore_drills SET timings_json = ?, state_version = state_version + 1,
           updated_at = ? WHERE id = ? AND status = 'running'",
    )
    .bind(timings_json)
    .bind(now)
    .bind(id)
    .execute(conn)
    .await?;
    Ok(())
}

/// Finishes a running drill (`passed` or `failed`); a drill already finished stays as it is
/// (`false`).
pub async fn finish_drill(
    conn: &mut AnyConnection,
    id: &str,
    status: DrillStatus,
    reason: Option<&str>,
    duration_ms: i64,
    now: &str,
) -> Result<bool, StoreError> {
    let update = crate::store::query(
        "UPDATE restore_drills SET status = ?, reason = ?, finished_at = ?, duration_ms = ?,
           state_version = state_version + 1, updated_at = ?
         WHERE id = ? AND status = 'running'",
    )
    .bind(status)
    .bind(reason)
    .bind(now)
    .bind(duration_ms.max(0))
    .bind(now)
    .bind(id);
    updated_one(&mut *conn, update).await
}

/// Whether the site has a `restore_drill` job queued or running.
pub async fn drill_in_progress(
    conn: &mut AnyConnection,
    site_id: &str,
) -> Result<bool, StoreError> {
    let row: Option<(i64,)> = crate::store::query_as(
        "SELECT 1 FROM jobs WHERE site_id = ? AND job_type = 'restore_drill'
           AND status IN ('queued', 'running') LIMIT 1",
    )
    .bind(site_id)
    .fetch_optional(conn)
    .await?;
    Ok(row.is_some())
}

/// The newest drill of a site (any status), by start.
pub async fn latest_drill(
    conn: &mut AnyConnection,
    site_id: &str,
) -> Result<Option<DrillRecord>, StoreError> {
    Ok(crate::store::query_as(
        "SELECT * FROM restore_drills WHERE site_id = ? ORDER BY started_at DESC, id DESC LIMIT 1",
    )
    .bind(site_id)
    .fetch_optional(conn)
    .await?)
}

/// The id of the newest completed `full` backup of the site's production environment (a
/// drill restores the database and the files), or `None`.
pub async fn latest_production_backup(
    conn: &mut AnyConnection,
    site_id: &str,
) -> Result<Option<String>, StoreError> {
    let row: Option<(String,)> = crate::store::query_as(
        "SELECT b.id FROM backups b
           JOIN sites s ON s.primary_environment_id = b.environment_id
          WHERE s.id = ? AND b.status = 'completed' AND b.backup_scope = 'full'
          ORDER BY b.completed_at DESC, b.created_at DESC, b.id DESC LIMIT 1",
    )
    .bind(site_id)
    .fetch_optional(conn)
    .await?;
    Ok(row.map(|(id,)| id))
}

/// A site's drill schedule.
pub async fn drill_schedule(
    conn: &mut AnyConnection,
    site_id: &str,
) -> Result<Option<DrillSchedule>, StoreError> {
    let row: Option<(DrillSchedule,)> =
        crate::store::query_as("SELECT drill_schedule FROM sites WHERE id = ?")
            .bind(site_id)
            .fetch_optional(conn)
            .await?;
    Ok(row.map(|(s,)| s))
}

/// Sets a site's drill schedule (bumps its `state_version`).
pub async fn set_drill_schedule(
    conn: &mut AnyConnection,
    site_id: &str,
    schedule: DrillSchedule,
    now: &str,
) -> Result<(), StoreError> {
    let update = crate::store::query(
        "UPDATE sites SET drill_schedule = ?, state_version = state_version + 1, updated_at = ?
          WHERE id = ?",
    )
    .bind(schedule)
    .bind(now)
    .bind(site_id);
    if updated_one(&mut *conn, update).await? {
        Ok(())
    } else {
        Err(StoreError::not_found("site", Some(site_id)))
    }
}

/// A site on a drill schedule, for the scheduler: its id, schedule and the start of its
/// newest drill.
#[derive(Debug, Clone, FromRow)]
pub struct ScheduledSite {
    pub site_id: String,
    pub drill_schedule: DrillSchedule,
    pub last_started_at: Option<String>,
}

impl Store {
    /// A site's drills, newest first.
    pub async fn list_drills(&self, site_id: &str) -> Result<Vec<DrillRecord>, StoreError> {
        let order = "started_at DESC, id DESC";
        self.rows_where("restore_drills", "site_id", site_id, order)
            .await
    }

    pub async fn get_drill(&self, id: &str) -> Result<Option<DrillRecord>, StoreError> {
        super::row_by_id(&self.pool, "restore_drills", id).await
    }

    /// The newest drill of each site (the sites list and the overview show it).
    pub async fn latest_drills(&self) -> Result<Vec<DrillRecord>, StoreError> {
        Ok(crate::store::query_as(
            "SELECT d.* FROM restore_drills d
              WHERE d.id = (SELECT d2.id FROM restore_drills d2 WHERE d2.site_id = d.site_id
                             ORDER BY d2.started_at DESC, d2.id DESC LIMIT 1)",
        )
        .fetch_all(&self.pool)
        .await?)
    }

    /// Active sites whose drill schedule is not `off`.
    pub async fn scheduled_drill_sites(&self) -> Result<Vec<ScheduledSite>, StoreError> {
        Ok(crate::store::query_as(
            "SELECT s.id AS site_id, s.drill_schedule,
                    (SELECT MAX(d.started_at) FROM restore_drills d WHERE d.site_id = s.id)
                      AS last_started_at
               FROM sites s
              WHERE s.drill_schedule <> 'off' AND s.status = 'active'
              ORDER BY s.id",
        )
        .fetch_all(&self.pool)
        .await?)
    }
}
