//! Safe updates (issue 16): the `safe_update_runs` table, one row per run of a site, and the
//! site's safe-update settings (`sites.safe_updates_*`). The service inserts a run `running`
//! with its job; the `safe_update` kind records its temporary environment, then finishes it
//! (`no_updates`, `applied`, `held` or `failed`, with the updates, the pages' verdicts and the
//! PHP fatals); a person moves a `held` run to `approved` or `dismissed`. Every change bumps
//! `state_version` and `updated_at`.

use sqlx::{AnyConnection, FromRow};

use super::{updated_one, Store, StoreError};
use crate::domain::{SafeUpdateOutcome, SafeUpdateSchedule, SafeUpdateTrigger};

/// A `safe_update_runs` row.
#[derive(Debug, Clone, FromRow)]
pub struct SafeUpdateRunRecord {
    pub id: String,
    pub site_id: String,
    pub job_id: String,
    pub run_trigger: SafeUpdateTrigger,
    pub outcome: SafeUpdateOutcome,
    /// JSON array of `{kind, id, from, to}`.
    pub updates_json: String,
    /// JSON array of the pages' verdicts.
    pub pages_json: String,
    /// JSON array of PHP fatal error lines.
    pub fatals_json: String,
    pub reason: Option<String>,
    pub temp_environment_id: Option<String>,
    pub apply_job_id: Option<String>,
    pub apply_backup_id: Option<String>,
    pub decided_by: Option<String>,
    pub decided_at: Option<String>,
    pub created_at: String,
    pub finished_at: Option<String>,
    pub state_version: i64,
    pub updated_at: String,
}

/// A run to insert (`running`).
#[derive(Debug, Clone)]
pub struct NewRun<'a> {
    pub id: &'a str,
    pub site_id: &'a str,
    pub job_id: &'a str,
    pub trigger: SafeUpdateTrigger,
    pub apply_backup_id: &'a str,
}

pub async fn insert_run(
    conn: &mut AnyConnection,
    r: &NewRun<'_>,
    now: &str,
) -> Result<(), StoreError> {
    crate::store::query(
        "INSERT INTO safe_update_runs (id, site_id, job_id, run_trigger, outcome,
           apply_backup_id, created_at, updated_at)
         VALUES (?, ?, ?, ?, 'running', ?, ?, ?)",
    )
    .bind(r.id)
    .bind(r.site_id)
    .bind(r.job_id)
    .bind(r.trigger)
    .bind(r.apply_backup_id)
    .bind(now)
    .bind(now)
    .execute(conn)
    .await?;
    Ok(())
}

fetch_by_id!(fetch_run, SafeUpdateRunRecord, "safe_update_runs");

/// Forgets the run's temporary environment (a run that never created it on the node).
pub async fn clear_temp_environment(conn: &mut AnyConnection, id: &str) -> Result<(), StoreError> {
    crate::store::query("UPDATE safe_update_runs SET temp_environment_id = NULL WHERE id = ?")
        .bind(id)
        .execute(conn)
        .await?;
    Ok(())
}

/// Records the temporary environment of a running run.
pub async fn set_temp_environment(
    conn: &mut AnyConnection,
    id: &str,
    environment_id: &str,
    now: &str,
) -> Result<(), StoreError> {
    crate::store::query(
        "UPDATE safe_update_runs SET temp_environment_id = ?, state_version = state_version + 1,
           updated_at = ? WHERE id = ? AND outcome = 'running'",
    )
    .bind(environment_id)
    .bind(now)
    .bind(id)
    .execute(conn)
    .await?;
    Ok(())
}

/// What a finished run found.
#[derive(Debug, Clone, Default)]
pub struct RunFindings {
    pub updates_json: String,
    pub pages_json: String,
    pub fatals_json: String,
    pub reason: Option<String>,
    pub apply_job_id: Option<String>,
}

/// Finishes a running run; a run already finished stays as it is (`false`).
pub async fn finish_run(
    conn: &mut AnyConnection,
    id: &str,
    outcome: SafeUpdateOutcome,
    f: &RunFindings,
    now: &str,
) -> Result<bool, StoreError> {
    let json_or = |s: &str| {
        if s.is_empty() {
            "[]".to_string()
        } else {
            s.to_string()
        }
    };
    let update = crate::store::query(
        "UPDATE safe_update_runs SET outcome = ?, updates_json = ?, pages_json = ?,
           fatals_json = ?, reason = ?, apply_job_id = ?, finished_at = ?,
           state_version = state_version + 1, updated_at = ?
         WHERE id = ? AND outcome = 'running'",
    )
    .bind(outcome)
    .bind(json_or(&f.updates_json))
    .bind(json_or(&f.pages_json))
    .bind(json_or(&f.fatals_json))
    .bind(f.reason.clone())
    .bind(f.apply_job_id.clone())
    .bind(now)
    .bind(now)
    .bind(id);
    updated_one(&mut *conn, update).await
}

/// A person's decision on a `held` run (`approved` with the production update's job, or
/// `dismissed`); `false` when the run is not held (any more).
pub async fn decide_run(
    conn: &mut AnyConnection,
    id: &str,
    outcome: SafeUpdateOutcome,
    user_id: &str,
    apply_job_id: Option<&str>,
    now: &str,
) -> Result<bool, StoreError> {
    let update = crate::store::query(
        "UPDATE safe_update_runs SET outcome = ?, decided_by = ?, decided_at = ?,
           apply_job_id = COALESCE(?, apply_job_id), state_version = state_version + 1,
           updated_at = ?
         WHERE id = ? AND outcome = 'held'",
    )
    .bind(outcome)
    .bind(user_id.to_string())
    .bind(now.to_string())
    .bind(apply_job_id.map(str::to_string))
    .bind(now.to_string())
    .bind(id.to_string());
    updated_one(&mut *conn, update).await
}

/// Whether the site has a `safe_update` job queued or running.
pub async fn run_in_progress(conn: &mut AnyConnection, site_id: &str) -> Result<bool, StoreError> {
    let row: Option<(i64,)> = crate::store::query_as(
        "SELECT 1 FROM jobs WHERE site_id = ? AND job_type = 'safe_update'
           AND status IN ('queued', 'running') LIMIT 1",
    )
    .bind(site_id)
    .fetch_optional(conn)
    .await?;
    Ok(row.is_some())
}

/// Whether the site has a run waiting for a person (`held`).
pub async fn run_held(conn: &mut AnyConnection, site_id: &str) -> Result<bool, StoreError> {
    let row: Option<(i64,)> = crate::store::query_as(
        "SELECT 1 FROM safe_update_runs WHERE site_id = ? AND outcome = 'held' LIMIT 1",
    )
    .bind(site_id)
    .fetch_optional(conn)
    .await?;
    Ok(row.is_some())
}

/// A site's safe-update settings, validated by the service (JSON as text).
#[derive(Debug, Clone, PartialEq)]
pub struct SafeUpdateSettings {
    pub schedule: SafeUpdateSchedule,
    pub window: Option<String>,
    pub paths_json: String,
    pub threshold: f64,
    pub masks_json: String,
}

/// Sets a site's safe-update settings (bumps its `state_version`).
pub async fn set_settings(
    conn: &mut AnyConnection,
    site_id: &str,
    s: &SafeUpdateSettings,
    now: &str,
) -> Result<(), StoreError> {
    let update = crate::store::query(
        "UPDATE sites SET safe_updates_schedule = ?, safe_updates_window = ?,
           safe_updates_paths = ?, safe_updates_threshold = ?, safe_updates_masks = ?,
           state_version = state_version + 1, updated_at = ?
          WHERE id = ?",
    )
    .bind(s.schedule)
    .bind(s.window.clone())
    .bind(s.paths_json.clone())
    .bind(s.threshold)
    .bind(s.masks_json.clone())
    .bind(now.to_string())
    .bind(site_id.to_string());
    if updated_one(&mut *conn, update).await? {
        Ok(())
    } else {
        Err(StoreError::not_found("site", Some(site_id)))
    }
}

/// A site on a safe-update schedule, for the scheduler.
#[derive(Debug, Clone, FromRow)]
pub struct ScheduledSite {
    pub site_id: String,
    pub safe_updates_schedule: SafeUpdateSchedule,
    pub safe_updates_window: Option<String>,
    /// When its newest run was created.
    pub last_created_at: Option<String>,
}

/// A finished run past the retention, for the pruning.
#[derive(Debug, Clone, FromRow)]
pub struct ExpiredRun {
    pub id: String,
    pub outcome: SafeUpdateOutcome,
    pub apply_backup_id: Option<String>,
}

impl Store {
    /// A site's runs, newest first.
    pub async fn list_safe_update_runs(
        &self,
        site_id: &str,
    ) -> Result<Vec<SafeUpdateRunRecord>, StoreError> {
        let order = "created_at DESC, id DESC";
        self.rows_where("safe_update_runs", "site_id", site_id, order)
            .await
    }

    pub async fn get_safe_update_run(
        &self,
        id: &str,
    ) -> Result<Option<SafeUpdateRunRecord>, StoreError> {
        super::row_by_id(&self.pool, "safe_update_runs", id).await
    }

    /// Every `held` run of a site not deleted (the overview's "pending review"), oldest first.
    pub async fn held_safe_update_runs(&self) -> Result<Vec<SafeUpdateRunRecord>, StoreError> {
        Ok(crate::store::query_as(
            "SELECT r.* FROM safe_update_runs r JOIN sites s ON s.id = r.site_id
              WHERE r.outcome = 'held' AND s.status <> 'deleted'
              ORDER BY r.created_at, r.id",
        )
        .fetch_all(&self.pool)
        .await?)
    }

    /// Active sites whose safe-update schedule is not `off`.
    pub async fn scheduled_safe_update_sites(&self) -> Result<Vec<ScheduledSite>, StoreError> {
        Ok(crate::store::query_as(
            "SELECT s.id AS site_id, s.safe_updates_schedule, s.safe_updates_window,
                    (SELECT MAX(r.created_at) FROM safe_update_runs r WHERE r.site_id = s.id)
                      AS last_created_at
               FROM sites s
              WHERE s.safe_updates_schedule <> 'off' AND s.status = 'active'
              ORDER BY s.id",
        )
        .fetch_all(&self.pool)
        .await?)
    }

    /// Finished runs created before `before` (not `held`: a run waiting for a person stays).
    pub async fn expired_safe_update_runs(
        &self,
        before: &str,
    ) -> Result<Vec<ExpiredRun>, StoreError> {
        Ok(crate::store::query_as(
            "SELECT id, outcome, apply_backup_id FROM safe_update_runs
              WHERE created_at < ? AND outcome NOT IN ('running', 'held')
              ORDER BY created_at, id",
        )
        .bind(before)
        .fetch_all(&self.pool)
        .await?)
    }

    /// Deletes a finished run's row.
    pub async fn delete_safe_update_run(&self, id: &str) -> Result<(), StoreError> {
        crate::store::query(
            "DELETE FROM safe_update_runs WHERE id = ? AND outcome NOT IN ('running', 'held')",
        )
        .bind(id)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// `(run id, apply_backup_id)` of finished runs that did not apply automatically but still
    /// name the backup prepared for it.
    pub async fn unused_apply_backups(&self) -> Result<Vec<(String, String)>, StoreError> {
        Ok(crate::store::query_as(
            "SELECT id, apply_backup_id FROM safe_update_runs
              WHERE apply_backup_id IS NOT NULL AND outcome NOT IN ('running', 'applied')",
        )
        .fetch_all(&self.pool)
        .await?)
    }

    /// Forgets a run's prepared backup id.
    pub async fn clear_apply_backup(&self, id: &str) -> Result<(), StoreError> {
        crate::store::query("UPDATE safe_update_runs SET apply_backup_id = NULL WHERE id = ?")
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Whether a backup row with `id` exists.
    pub async fn backup_exists(&self, id: &str) -> Result<bool, StoreError> {
        let row: Option<(i64,)> = crate::store::query_as("SELECT 1 FROM backups WHERE id = ?")
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.is_some())
    }
}
