//! Backups as the environment page shows them: one row per backup (scope, live status, size,
//! checksum, storage warning, retention, verification) and the schedule line, shaped for the
//! templates and sent live by `ui::live` as the `backups` fragment.

use askama::Template;
use time::OffsetDateTime;

use crate::backups::schedule_view::{self, Schedule};
use crate::clock::parse_ts;
use crate::domain::{BackupStatus, BackupStorageType};
use crate::node_helper::backup::{DB_ARTIFACT, FILES_ARTIFACT};
use crate::store::backups::BackupRecord;
use crate::store::environments::EnvironmentRecord;
use crate::store::{Store, StoreError};
use crate::ui::views::{short_ts, short_ts_str};

/// One backup in the table.
pub struct BackupRow {
    pub id: String,
    pub short_id: String,
    pub scope: String,
    pub status: String,
    pub created: String,
    pub completed: String,
    pub size: String,
    /// `sha256:` and the first 12 hex digits; the full checksum on hover.
    pub checksum_short: String,
    pub checksum: String,
    pub off_site: bool,
    pub expires: String,
    pub verify_status: String,
    pub verified: String,
    pub error_code: String,
    pub can_verify: bool,
    /// Artifacts offered for download (completed backups only).
    pub downloads: Vec<&'static str>,
}

impl BackupRow {
    pub fn new(b: &BackupRecord, now: OffsetDateTime) -> Self {
        let completed = b.status == BackupStatus::Completed;
        let checksum = b.checksum.clone().unwrap_or_default();
        let mut downloads = Vec::new();
        if completed {
            if b.backup_scope.has_db() {
                downloads.push(DB_ARTIFACT);
            }
            if b.backup_scope.has_files() {
                downloads.push(FILES_ARTIFACT);
            }
        }
        BackupRow {
            id: b.id.clone(),
            short_id: b.id.chars().take(8).collect(),
            scope: b.backup_scope.to_string(),
            status: b.status.to_string(),
            created: short_ts_str(&b.created_at),
            completed: short_ts(b.completed_at.as_deref()),
            size: b.size_bytes.map(human_size).unwrap_or_else(|| "—".into()),
            checksum_short: checksum.chars().take(7 + 12).collect(),
            checksum,
            off_site: b.storage_type == BackupStorageType::S3,
            expires: expires_in(&b.retention_until, b.status, now),
            verify_status: b.verify_status.map(|v| v.to_string()).unwrap_or_default(),
            verified: b
                .verified_at
                .as_deref()
                .map(short_ts_str)
                .unwrap_or_default(),
            error_code: b.error_code.clone().unwrap_or_default(),
            can_verify: completed,
            downloads,
        }
    }
}

/// `1536` → `1.5 KiB`.
pub fn human_size(bytes: i64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut value = bytes.max(0) as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

/// "expires in N days" (whole days, rounded down), "expires today", "expired".
pub fn expires_in(retention_until: &str, status: BackupStatus, now: OffsetDateTime) -> String {
    if status == BackupStatus::Expired {
        return "expired".into();
    }
    let Some(until) = parse_ts(retention_until) else {
        return String::new();
    };
    let days = (until - now).whole_days();
    match days {
        _ if until <= now => "retention ended; removed at the next cleanup".into(),
        0 => "expires today".into(),
        1 => "expires in 1 day".into(),
        n => format!("expires in {n} days"),
    }
}

/// The schedule line as shown.
pub struct ScheduleRow {
    pub interval: String,
    pub next_backup: String,
    pub last_cleanup: String,
    pub next_cleanup: String,
}

impl ScheduleRow {
    pub fn new(s: &Schedule, now: OffsetDateTime) -> Self {
        let when = |t: OffsetDateTime| {
            if t <= now {
                "now (next scheduler run)".to_string()
            } else {
                short_ts_str(&crate::clock::format_ts(t))
            }
        };
        ScheduleRow {
            interval: match s.schedule_hours {
                0 => "off".into(),
                1 => "full backup every hour".into(),
                h => format!("full backup every {h} hours"),
            },
            next_backup: match s.next_backup {
                Some(t) => when(t),
                None if s.schedule_hours == 0 => "— (scheduled backups are off)".into(),
                None => "— (production environments only)".into(),
            },
            last_cleanup: s
                .last_cleanup
                .map(|t| short_ts_str(&crate::clock::format_ts(t)))
                .unwrap_or_else(|| "never".into()),
            next_cleanup: s
                .next_cleanup
                .map(when)
                .unwrap_or_else(|| "at the first check after start-up".into()),
        }
    }
}

/// The environment page's live Backups panel.
#[derive(Template)]
#[template(path = "partials/backups_panel.html")]
pub struct BackupsPanel {
    pub csrf_token: String,
    pub backups: Vec<BackupRow>,
    pub schedule: ScheduleRow,
}

impl BackupsPanel {
    pub async fn load(
        store: &Store,
        env: &EnvironmentRecord,
        csrf_token: String,
        now: OffsetDateTime,
    ) -> Result<Self, StoreError> {
        let schedule = schedule_view::load(store, env, now).await?;
        Ok(BackupsPanel {
            csrf_token,
            backups: store
                .list_backups(&env.id)
                .await?
                .iter()
                .map(|b| BackupRow::new(b, now))
                .collect(),
            schedule: ScheduleRow::new(&schedule, now),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_are_human() {
        assert_eq!(human_size(0), "0 B");
        assert_eq!(human_size(1023), "1023 B");
        assert_eq!(human_size(1536), "1.5 KiB");
        assert_eq!(human_size(5 * 1024 * 1024), "5.0 MiB");
    }

    #[test]
    fn retention_reads_as_days() {
        let now = parse_ts("2026-12-02T12:00:00Z").unwrap();
        let c = BackupStatus::Completed;
        assert_eq!(
            expires_in("2027-01-01T12:00:00.000Z", c, now),
            "expires in 30 days"
        );
        assert_eq!(
            expires_in("2026-12-03T13:00:00Z", c, now),
            "expires in 1 day"
        );
        assert_eq!(expires_in("2026-12-02T18:00:00Z", c, now), "expires today");
        assert!(expires_in("2026-12-01T00:00:00Z", c, now).starts_with("retention ended"));
        assert_eq!(
            expires_in("2026-12-01T00:00:00Z", BackupStatus::Expired, now),
            "expired"
        );
    }
}
