//! The backup duties of the scheduler (jobs.md §9): scheduled `full` backups of production
//! environments, the per-site `backup_cleanup` of backups past their retention, and the removal
//! of expired backups' data keys. Due times derive from existing rows (newest backup, newest
//! cleanup job), so no scheduler state is stored and two runs never enqueue the same work twice:
//! a scheduled backup leaves a `pending` row, a cleanup a `queued` job, and both are what the
//! next run skips on. [`crate::jobs::scheduler`] calls these every tick.

use sqlx::AnyConnection;
use time::{Duration, OffsetDateTime};

use super::{data_key_secret, Backups, CLEANUP_EVERY};
use crate::clock::{format_ts, parse_ts};
use crate::domain::JobType;
use crate::jobs::BackupCleanupPayload;
use crate::services::{JobRequest, ServiceError};
use crate::store::settings::fetch_setting;
use crate::store::StoreError;

/// The one rule for "a job still needs this backup": a `queued` or `running` job (other than
/// `?1`, the cleanup asking) whose payload names the backup `b.id` anywhere — `backup_id`,
/// `pre_backup_id`, `gate_backup_id`, `rollback_backup_id`, `restore_backup_id`, `backup_ids`,
/// and any field added later (backup ids are UUIDs, so a substring match is exact). Such a
/// backup is never selected for deletion. (`LIKE` rather than `instr`: the same on SQLite and
/// PostgreSQL; a UUID holds no `%` or `_`.)
pub const BACKUP_IN_USE: &str = "EXISTS (SELECT 1 FROM jobs j
      WHERE j.status IN ('queued', 'running') AND j.id <> ?1
        AND j.payload_json LIKE '%' || b.id || '%')";

/// What one run of a duty did, for the log line `scheduler run=<name> enqueued=n skipped=m`.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct RunCount {
    pub enqueued: usize,
    pub skipped: usize,
}

/// Whether a production environment gets a scheduled backup now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScheduleDecision {
    Due,
    /// Its newest `full` backup is younger than the interval.
    NotDue,
    /// Due, but a backup of it is `pending`/`running`, or its node is not active.
    Skipped,
}

/// The schedule rule for one active production environment (jobs.md §9).
pub fn schedule_decision(
    node_active: bool,
    backup_in_progress: bool,
    newest_full: Option<OffsetDateTime>,
    interval: Duration,
    now: OffsetDateTime,
) -> ScheduleDecision {
    if newest_full.is_some_and(|t| now - t < interval) {
        ScheduleDecision::NotDue
    } else if backup_in_progress || !node_active {
        ScheduleDecision::Skipped
    } else {
        ScheduleDecision::Due
    }
}

/// `backup_schedule_hours` as an interval; `None` when scheduled backups are off (0).
pub async fn schedule_interval(conn: &mut AnyConnection) -> Result<Option<Duration>, StoreError> {
    let setting = fetch_setting(conn, "backup_schedule_hours").await?;
    let hours = super::schedule_view::schedule_hours(setting.as_deref());
    Ok((hours > 0).then(|| Duration::hours(hours)))
}

/// The expired backups of `site_id` a cleanup may delete now: `completed`/`failed`, past
/// `retention_until` (never one whose retention is in the future), not named by a queued or
/// running job other than `exclude_job`, and reachable from the production environment's node
/// (S3, or local on that node). Oldest retention first.
pub async fn expired_backups(
    conn: &mut AnyConnection,
    site_id: &str,
    now: &str,
    exclude_job: &str,
) -> Result<Vec<String>, StoreError> {
    let sql = format!(
        "SELECT b.id FROM backups b
           JOIN environments e ON e.id = b.environment_id
           JOIN environments p ON p.site_id = e.site_id AND p.environment_type = 'production'
          WHERE e.site_id = ?2 AND b.status IN ('completed', 'failed')
            AND b.retention_until <= ?3
            AND (b.storage_type = 's3' OR e.node_id = p.node_id)
            AND NOT {BACKUP_IN_USE}
          ORDER BY b.retention_until, b.id"
    );
    Ok(crate::store::query_scalar(&sql)
        .bind(exclude_job)
        .bind(site_id)
        .bind(now)
        .fetch_all(conn)
        .await?)
}

/// Sites with at least one backup past its retention in `completed`/`failed`.
async fn sites_with_expired_backups(
    conn: &mut AnyConnection,
    now: &str,
) -> Result<Vec<String>, StoreError> {
    Ok(crate::store::query_scalar(
        "SELECT DISTINCT e.site_id FROM backups b JOIN environments e ON e.id = b.environment_id
          WHERE b.status IN ('completed', 'failed') AND b.retention_until <= ?
          ORDER BY e.site_id",
    )
    .bind(now)
    .fetch_all(conn)
    .await?)
}

/// The production environment's node of `site_id` when it is active and the site has no
/// `queued`/`running` `backup_cleanup` and none created after `since`; else `None` (skip).
async fn cleanup_node(
    conn: &mut AnyConnection,
    site_id: &str,
    since: &str,
) -> Result<Option<String>, StoreError> {
    Ok(crate::store::query_scalar(
        "SELECT p.node_id FROM environments p JOIN nodes n ON n.id = p.node_id
          WHERE p.site_id = ?1 AND p.environment_type = 'production' AND n.status = 'active'
            AND NOT EXISTS (SELECT 1 FROM jobs j
                 WHERE j.job_type = 'backup_cleanup' AND j.site_id = ?1
                   AND (j.status IN ('queued', 'running') OR j.created_at > ?2))",
    )
    .bind(site_id)
    .bind(since)
    .fetch_optional(conn)
    .await?)
}

impl Backups {
    /// A pooled connection for the runs' reads (writes go through `mutations`).
    async fn read_conn(&self) -> Result<sqlx::pool::PoolConnection<sqlx::Any>, StoreError> {
        Ok(self.store.pool().acquire().await?)
    }

    /// One run of the backup schedule: a `full` backup of every due production environment,
    /// through [`Backups::create`] (no actor, so no audit row).
    pub async fn run_schedule(&self) -> Result<RunCount, ServiceError> {
        let now_text = self.mutations.now();
        let now = parse_ts(&now_text).expect("the clock's timestamps parse");
        let mut conn = self.read_conn().await?;
        let Some(interval) = schedule_interval(&mut conn).await? else {
            return Ok(RunCount::default());
        };
        let rows: Vec<(
            String,
            crate::store::Flag,
            crate::store::Flag,
            Option<String>,
        )> = crate::store::query_as(
            "SELECT e.id, n.status = 'active',
                    EXISTS (SELECT 1 FROM backups b WHERE b.environment_id = e.id
                              AND b.status IN ('pending', 'running')),
                    (SELECT MAX(b.created_at) FROM backups b WHERE b.environment_id = e.id
                              AND b.backup_scope = 'full')
               FROM environments e JOIN nodes n ON n.id = e.node_id
              WHERE e.environment_type = 'production' AND e.status = 'active'
              ORDER BY e.created_at, e.id",
        )
        .fetch_all(&mut *conn)
        .await
        .map_err(StoreError::from)?;
        drop(conn);
        let mut count = RunCount::default();
        for (env_id, crate::store::Flag(node_active), crate::store::Flag(busy), newest) in rows {
            let newest = newest.as_deref().and_then(parse_ts);
            match schedule_decision(node_active, busy, newest, interval, now) {
                ScheduleDecision::NotDue => {}
                ScheduleDecision::Skipped => count.skipped += 1,
                ScheduleDecision::Due => match self.create(None, &env_id, "full").await {
                    Ok(_) => count.enqueued += 1,
                    // The environment or its node changed since the look: the next run sees it.
                    Err(ServiceError::NotFound(_) | ServiceError::NodeNotActive(_)) => {
                        count.skipped += 1
                    }
                    Err(e) => return Err(e),
                },
            }
        }
        Ok(count)
    }

    /// One run of the cleanup: per site with expired backups whose last cleanup is older than
    /// [`CLEANUP_EVERY`] (or absent) and none queued or running, one `backup_cleanup` on the
    /// production environment's node, site-scoped, naming the backups it may delete. The checks
    /// and the enqueue of a site share one write transaction.
    pub async fn run_cleanup(&self) -> Result<RunCount, ServiceError> {
        let sites = {
            let mut conn = self.read_conn().await?;
            sites_with_expired_backups(&mut conn, &self.mutations.now()).await?
        };
        let mut count = RunCount::default();
        for site_id in sites {
            let mut m = self.mutations.begin().await?;
            let now = parse_ts(&m.now).expect("the clock's timestamps parse");
            let since = format_ts(now - CLEANUP_EVERY);
            let node = cleanup_node(&mut m.tx, &site_id, &since).await?;
            let backup_ids = expired_backups(&mut m.tx, &site_id, &m.now, "").await?;
            let Some(node_id) = node.filter(|_| !backup_ids.is_empty()) else {
                m.tx.rollback().await.map_err(StoreError::from)?;
                count.skipped += 1;
                continue;
            };
            let n = backup_ids.len();
            let job = JobRequest {
                job_type: JobType::BackupCleanup,
                site_id: Some(&site_id),
                environment_id: None,
                node_id: &node_id,
                payload: BackupCleanupPayload {
                    backup_ids,
                    ..Default::default()
                },
            };
            let job_id = self.mutations.accept(m, job, None).await?;
            tracing::info!(site = %site_id, backups = n, job = %job_id, "backup cleanup enqueued");
            count.enqueued += 1;
        }
        Ok(count)
    }

    /// Removes the data keys of expired backups from the secrets store (crypto-shredding
    /// whatever of their artifacts might survive elsewhere). Runs after every cleanup check, so
    /// a key goes within one tick of its backup's expiry; returns how many went.
    pub async fn remove_expired_keys(&self) -> Result<usize, ServiceError> {
        let ids = self.secrets.children("backup")?;
        if ids.is_empty() {
            return Ok(0);
        }
        let sql = format!(
            "SELECT id FROM backups WHERE status = 'expired' AND id IN ({})",
            vec!["?"; ids.len()].join(", ")
        );
        let mut q = crate::store::query_scalar(&sql);
        for id in &ids {
            q = q.bind(id);
        }
        let expired: Vec<String> = q
            .fetch_all(self.store.pool())
            .await
            .map_err(StoreError::from)?;
        for id in &expired {
            self.secrets.delete(&data_key_secret(id))?;
            tracing::info!(backup = %id, "data key of an expired backup removed");
        }
        Ok(expired.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn a_backup_is_due_after_the_interval_unless_one_is_in_progress() {
        use ScheduleDecision::*;
        let now = datetime!(2026-12-02 12:00 UTC);
        let day = Duration::hours(24);
        let fresh = Some(now - Duration::hours(23));
        let old = Some(now - Duration::hours(24));
        assert_eq!(schedule_decision(true, false, None, day, now), Due);
        assert_eq!(schedule_decision(true, false, old, day, now), Due);
        assert_eq!(schedule_decision(true, false, fresh, day, now), NotDue);
        assert_eq!(schedule_decision(true, true, old, day, now), Skipped);
        assert_eq!(schedule_decision(false, false, None, day, now), Skipped);
        assert_eq!(schedule_decision(false, true, fresh, day, now), NotDue);
    }
}
