//! When an environment's next scheduled backup and its site's next backup cleanup are due, as
//! the dashboard shows them. One function ([`schedule`]) holds the scheduler's rules (jobs.md §9)
//! so the page and the scheduler cannot disagree: a `full` backup of an `active` production
//! environment is due `backup_schedule_hours` after its newest `full` backup of any status (now
//! when there is none; never when the setting is 0), and a site's cleanup check runs
//! [`CLEANUP_EVERY`] after its newest `backup_cleanup` job (soon after start-up when there is
//! none).

use time::{Duration, OffsetDateTime};

use super::{CLEANUP_EVERY, DEFAULT_SCHEDULE_HOURS};
use crate::clock::parse_ts;
use crate::domain::{BackupScope, JobType, SiteStatus};
use crate::store::environments::EnvironmentRecord;
use crate::store::{JobFilter, Store, StoreError};

/// What [`schedule`] needs to know.
#[derive(Debug, Clone, Default)]
pub struct ScheduleInputs<'a> {
    /// `backup_schedule_hours` (0 = off).
    pub schedule_hours: i64,
    /// Whether the environment gets scheduled backups (an `active` production environment).
    pub scheduled: bool,
    /// `created_at` of the environment's newest `full` backup, any status.
    pub newest_full_backup: Option<&'a str>,
    /// `created_at` of the site's newest `backup_cleanup` job.
    pub last_cleanup: Option<&'a str>,
}

/// The environment's backup schedule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Schedule {
    /// `backup_schedule_hours`; 0 = off.
    pub schedule_hours: i64,
    /// When the next scheduled `full` backup is due; `None` when none will be (off, or not an
    /// active production environment). A time in the past means "at the next scheduler tick".
    pub next_backup: Option<OffsetDateTime>,
    /// The site's newest `backup_cleanup` job's creation time.
    pub last_cleanup: Option<OffsetDateTime>,
    /// When the site's next cleanup check runs; `None` = at the first check after start-up.
    pub next_cleanup: Option<OffsetDateTime>,
}

/// See the module doc. `now` stands in for a due time that is already past.
pub fn schedule(inputs: &ScheduleInputs<'_>, now: OffsetDateTime) -> Schedule {
    let next_backup = (inputs.scheduled && inputs.schedule_hours > 0).then(|| {
        inputs
            .newest_full_backup
            .and_then(parse_ts)
            .map(|t| t + Duration::hours(inputs.schedule_hours))
            .map_or(now, |due| due.max(now))
    });
    let last_cleanup = inputs.last_cleanup.and_then(parse_ts);
    Schedule {
        schedule_hours: inputs.schedule_hours,
        next_backup,
        last_cleanup,
        next_cleanup: last_cleanup.map(|t| (t + CLEANUP_EVERY).max(now)),
    }
}

/// `backup_schedule_hours` as stored (a bad value counts as the default, as for the scheduler).
pub fn schedule_hours(setting: Option<&str>) -> i64 {
    setting
        .and_then(|h| h.trim().parse::<i64>().ok())
        .filter(|h| *h >= 0)
        .unwrap_or(DEFAULT_SCHEDULE_HOURS)
}

/// [`schedule`] of `env`, read from the store.
pub async fn load(
    store: &Store,
    env: &EnvironmentRecord,
    now: OffsetDateTime,
) -> Result<Schedule, StoreError> {
    let hours = schedule_hours(store.get_setting("backup_schedule_hours").await?.as_deref());
    let backups = store.list_backups(&env.id).await?;
    let newest_full = backups
        .iter()
        .find(|b| b.backup_scope == BackupScope::Full)
        .map(|b| b.created_at.as_str());
    let cleanups = store
        .list_jobs(&JobFilter {
            job_type: Some(JobType::BackupCleanup),
            site_id: Some(env.site_id.clone()),
            limit: 1,
            ..Default::default()
        })
        .await?;
    let inputs = ScheduleInputs {
        schedule_hours: hours,
        scheduled: env.environment_type == "production" && env.status == SiteStatus::Active,
        newest_full_backup: newest_full,
        last_cleanup: cleanups.first().map(|j| j.created_at.as_str()),
    };
    Ok(schedule(&inputs, now))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> OffsetDateTime {
        parse_ts(s).unwrap()
    }

    #[test]
    fn next_backup_follows_the_newest_full_backup() {
        let now = at("2026-12-02T12:00:00Z");
        let mut i = ScheduleInputs {
            schedule_hours: 24,
            scheduled: true,
            newest_full_backup: Some("2026-12-02T06:00:00Z"),
            last_cleanup: None,
        };
        assert_eq!(
            schedule(&i, now).next_backup,
            Some(at("2026-12-03T06:00:00Z"))
        );
        // Overdue or none yet: now.
        i.newest_full_backup = Some("2026-11-01T00:00:00Z");
        assert_eq!(schedule(&i, now).next_backup, Some(now));
        i.newest_full_backup = None;
        assert_eq!(schedule(&i, now).next_backup, Some(now));
        // Off, or not an active production environment: never.
        i.schedule_hours = 0;
        assert_eq!(schedule(&i, now).next_backup, None);
        i.schedule_hours = 24;
        i.scheduled = false;
        assert_eq!(schedule(&i, now).next_backup, None);
    }

    #[test]
    fn next_cleanup_is_six_hours_after_the_last() {
        let now = at("2026-12-02T12:00:00Z");
        let mut i = ScheduleInputs {
            last_cleanup: Some("2026-12-02T10:00:00Z"),
            ..Default::default()
        };
        let s = schedule(&i, now);
        assert_eq!(s.last_cleanup, Some(at("2026-12-02T10:00:00Z")));
        assert_eq!(s.next_cleanup, Some(at("2026-12-02T16:00:00Z")));
        i.last_cleanup = None;
        assert_eq!(schedule(&i, now).next_cleanup, None);
    }

    #[test]
    fn schedule_hours_default_and_off() {
        assert_eq!(schedule_hours(None), DEFAULT_SCHEDULE_HOURS);
        assert_eq!(schedule_hours(Some("0")), 0);
        assert_eq!(schedule_hours(Some("12")), 12);
        assert_eq!(schedule_hours(Some("-3")), DEFAULT_SCHEDULE_HOURS);
    }
}
