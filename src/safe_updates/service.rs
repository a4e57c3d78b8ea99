//! The safe-update service: accepts a run (`POST /api/sites/{id}/safe-updates`, and the
//! scheduler's daily or weekly runs in the site's window), a person's decision on a held run
//! (approve: production's `env_update` with the exact versions tried; dismiss), the site's
//! safe-update settings (`PATCH /api/sites/{id}`), the run images, and the retention pruning.
//!
//! A run is accepted in ONE transaction: its record (`running`) and its `safe_update` job
//! (holding the site), plus the audit row. It is refused (409 `conflict`) for a site being
//! deleted, deleted or failed, without an active production environment, with a run queued or
//! running, or with a held run waiting for a person; 409 `node_not_active` when production's
//! node is not active. The temporary environment is created by the job itself
//! (src/jobs/safe_update.rs), only when there is something to try.

use std::io::Read;
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};

use serde_json::{json, Value};
use time::Duration;
use uuid::Uuid;

use super::decide::FoundUpdate;
use super::validate;
use crate::backups::schedule::RunCount;
use crate::backups::Backups;
use crate::clock::{format_ts, parse_ts, SharedClock};
use crate::domain::{
    DrillSchedule, JobType, NodeStatus, SafeUpdateOutcome, SafeUpdateSchedule, SafeUpdateTrigger,
    SiteStatus, UpdateScope,
};
use crate::jobs::{Engine, EnvUpdatePayload, SafeUpdatePayload};
use crate::secrets::Secrets;
use crate::services::{AuditEntry, JobRequest, Mutations, ServiceError};
use crate::sites::{deletion_refusal, Actor};
use crate::store::drills::set_drill_schedule;
use crate::store::environments::{fetch_environment, EnvironmentRecord};
use crate::store::nodes::fetch_node;
use crate::store::safe_updates::{
    decide_run, fetch_run, insert_run, run_held, run_in_progress, set_settings, NewRun,
    SafeUpdateRunRecord, SafeUpdateSettings,
};
use crate::store::sites::fetch_site;
use crate::store::{Store, StoreError};

/// The audit action of a change of a site's settings (`PATCH /api/sites/{id}`).
pub const SITE_UPDATE: &str = crate::drills::SITE_UPDATE;
/// The audit actions of a person's decision on a held run.
pub const APPROVE: &str = "safe_update_approve";
pub const DISMISS: &str = "safe_update_dismiss";
/// The setting: days a finished run (and its images) is kept.
pub const RETENTION_SETTING: &str = "safe_updates_retention_days";
pub const DEFAULT_RETENTION_DAYS: i64 = 30;
/// The largest image served.
const MAX_IMAGE: u64 = 32 * 1024 * 1024;

/// What an accepted run returns.
#[derive(Debug, Clone)]
pub struct RunStarted {
    pub run_id: String,
    pub job_id: String,
}

/// A `PATCH /api/sites/{id}` body as the service takes it (`None`: unchanged; `window:
/// Some(None)`: cleared).
#[derive(Debug, Clone, Default)]
pub struct SiteSettingsChange {
    pub drill_schedule: Option<String>,
    pub schedule: Option<String>,
    pub window: Option<Option<String>>,
    pub paths: Option<Value>,
    pub threshold: Option<Value>,
    pub masks: Option<Value>,
}

/// Where the run's images live: `<data_dir>/safe-updates/<run id>/`.
pub fn run_dir(data_dir: &Path, run_id: &str) -> PathBuf {
    data_dir.join("safe-updates").join(run_id)
}

/// Whether `file` is a run image's name: `<page index>-(before|after|diff).png`, the index
/// one or two digits.
pub fn is_image_name(file: &str) -> bool {
    let Some((index, rest)) = file.split_once('-') else {
        return false;
    };
    (1..=2).contains(&index.len())
        && index.bytes().all(|b| b.is_ascii_digit())
        && ["before.png", "after.png", "diff.png"].contains(&rest)
}

/// The `env_update` payload applying exactly `updates` (their offered versions) to an
/// environment, with its pre-update backup.
pub fn apply_payload(pre_backup_id: &str, updates: &[FoundUpdate]) -> Value {
    let mut v = serde_json::to_value(EnvUpdatePayload {
        scope: UpdateScope::All,
        pre_backup_id: pre_backup_id.to_string(),
        ..Default::default()
    })
    .expect("payload structs serialize");
    v["versions"] = updates
        .iter()
        .map(|u| json!({"kind": u.kind, "id": u.id, "version": u.to}))
        .collect();
    v
}

/// The start of the window occurrence `now` lies in (`None`: now is outside the window).
pub fn window_start(window: (u32, u32), now: time::OffsetDateTime) -> Option<time::OffsetDateTime> {
    let minute = u32::from(now.hour()) * 60 + u32::from(now.minute());
    if !validate::in_window(window, minute) {
        return None;
    }
    let midnight = now.replace_time(time::Time::MIDNIGHT);
    let start = midnight + Duration::minutes(i64::from(window.0));
    Some(if start > now {
        start - Duration::days(1)
    } else {
        start
    })
}

/// Whether a site on `schedule` with `window` whose newest run was created at `last` is due
/// at `now`: daily once per window occurrence (without a window: 24 h after the last run),
/// weekly once in seven days.
pub fn due(
    schedule: SafeUpdateSchedule,
    window: Option<(u32, u32)>,
    last: Option<time::OffsetDateTime>,
    now: time::OffsetDateTime,
) -> bool {
    let days = match schedule {
        SafeUpdateSchedule::Off => return false,
        SafeUpdateSchedule::Daily => 1,
        SafeUpdateSchedule::Weekly => 7,
    };
    match window {
        None => last.is_none_or(|t| now - t >= Duration::days(days)),
        Some(w) => match window_start(w, now) {
            None => false,
            Some(start) => last.is_none_or(|t| t < start - Duration::days(days - 1)),
        },
    }
}

/// The safe-update service.
#[derive(Clone)]
pub struct SafeUpdates {
    store: Store,
    mutations: Mutations,
    secrets: Secrets,
    clock: SharedClock,
    backups: Backups,
    data_dir: PathBuf,
}

impl SafeUpdates {
    pub fn new(
        store: Store,
        engine: Engine,
        secrets: Secrets,
        clock: SharedClock,
        backups: Backups,
        data_dir: PathBuf,
    ) -> Self {
        Self {
            mutations: Mutations::new(store.clone(), engine, clock.clone()),
            store,
            secrets,
            clock,
            backups,
            data_dir,
        }
    }

    /// A site's runs, newest first; `NotFound` for an unknown site.
    pub async fn list(&self, site_id: &str) -> Result<Vec<SafeUpdateRunRecord>, ServiceError> {
        if self.store.get_site(site_id).await?.is_none() {
            return Err(ServiceError::NotFound("site"));
        }
        Ok(self.store.list_safe_update_runs(site_id).await?)
    }

    pub async fn get(&self, run_id: &str) -> Result<SafeUpdateRunRecord, ServiceError> {
        self.store
            .get_safe_update_run(run_id)
            .await?
            .ok_or(ServiceError::NotFound("safe-update run"))
    }

    /// `POST /api/sites/{id}/safe-updates` (`actor`), or a scheduled run (`None`: no audit
    /// row, and a refusal leaves no trace).
    pub async fn start(
        &self,
        actor: Option<&Actor>,
        site_id: &str,
    ) -> Result<RunStarted, ServiceError> {
        let mut m = self.mutations.begin().await?;
        let site = fetch_site(&mut m.tx, site_id)
            .await?
            .ok_or(ServiceError::NotFound("site"))?;
        let audit = actor.map(|a| a.audit(JobType::SafeUpdate, ("site", site_id)));
        let production = match &site.primary_environment_id {
            Some(id) => fetch_environment(&mut m.tx, id).await?,
            None => None,
        };
        let refusal = if let Some(e) = deletion_refusal("site", site.status) {
            Some(e)
        } else if site.status == SiteStatus::Failed {
            Some(ServiceError::Conflict(
                "the site has failed; reset it first".into(),
            ))
        } else if !production
            .as_ref()
            .is_some_and(|p| p.status == SiteStatus::Active)
        {
            Some(ServiceError::Conflict(
                "the site's production environment is not active".into(),
            ))
        } else if run_in_progress(&mut m.tx, &site.id).await? {
            Some(ServiceError::Conflict(
                "a safe-update run of this site is already queued or running".into(),
            ))
        } else if run_held(&mut m.tx, &site.id).await? {
            Some(ServiceError::Conflict(
                "a held safe-update run of this site waits for review: approve or dismiss it first"
                    .into(),
            ))
        } else {
            None
        };
        let refuse = |m, e| async move {
            match audit {
                Some(audit) => self.mutations.refuse(m, audit, e).await,
                None => e,
            }
        };
        if let Some(e) = refusal {
            return Err(refuse(m, e).await);
        }
        let Some(production) = production else {
            let e = ServiceError::Conflict("the site has no production environment".into());
            return Err(refuse(m, e).await);
        };
        let node = fetch_node(&mut m.tx, &production.node_id)
            .await?
            .filter(|n| n.status == NodeStatus::Active && n.public_ip.is_some());
        let Some(node) = node else {
            let e = ServiceError::NodeNotActive(
                "the production environment's node is not active".into(),
            );
            return Err(refuse(m, e).await);
        };
        let run_id = Uuid::new_v4().to_string();
        let job_id = Uuid::new_v4().to_string();
        let apply_backup_id = Uuid::new_v4().to_string();
        let trigger = if actor.is_some() {
            SafeUpdateTrigger::Manual
        } else {
            SafeUpdateTrigger::Schedule
        };
        insert_run(
            &mut m.tx,
            &NewRun {
                id: &run_id,
                site_id: &site.id,
                job_id: &job_id,
                trigger,
                apply_backup_id: &apply_backup_id,
            },
            &m.now,
        )
        .await?;
        let job = JobRequest {
            job_type: JobType::SafeUpdate,
            site_id: Some(&site.id),
            environment_id: Some(&production.id),
            node_id: &node.id,
            payload: SafeUpdatePayload {
                run_id: run_id.clone(),
                apply_backup_id,
                ..Default::default()
            },
        };
        let job_id = self.mutations.accept_as(m, job_id, job, audit).await?;
        tracing::info!(site = %site.id, run = %run_id, job = %job_id, %trigger, "safe-update run accepted");
        Ok(RunStarted { run_id, job_id })
    }

    /// `POST /api/safe-updates/{id}/approve`: a held run's updates applied to production
    /// through the normal update job (pre-update backup, health gate, rollback) with exactly
    /// the versions tried. 409 `conflict` for a run that is not held, or a production that
    /// cannot be updated now.
    pub async fn approve(&self, actor: &Actor, run_id: &str) -> Result<String, ServiceError> {
        let mut m = self.mutations.begin().await?;
        let run = fetch_run(&mut m.tx, run_id)
            .await?
            .ok_or(ServiceError::NotFound("safe-update run"))?;
        // Audited on the run's site (audit rows name sites, environments, nodes, …).
        let site_id = run.site_id.clone();
        let audit = AuditEntry {
            user_id: &actor.user_id,
            action: APPROVE,
            resource_type: "site",
            resource_id: &site_id,
        };
        if run.outcome != SafeUpdateOutcome::Held {
            let e = ServiceError::Conflict(format!(
                "the run is {}: only a held run can be approved",
                run.outcome
            ));
            return Err(self.mutations.refuse(m, audit, e).await);
        }
        let production = self.production(&mut m.tx, &run.site_id).await?;
        let production = match production {
            Ok(p) => p,
            Err(e) => return Err(self.mutations.refuse(m, audit, e).await),
        };
        let updates: Vec<FoundUpdate> = serde_json::from_str(&run.updates_json).unwrap_or_default();
        if updates.is_empty() {
            let e = ServiceError::Conflict("the run found no updates to apply".into());
            return Err(self.mutations.refuse(m, audit, e).await);
        }
        let pre_backup_id = self
            .backups
            .add_pending(&mut m, &production, crate::domain::BackupScope::Full)
            .await?;
        let job_id = Uuid::new_v4().to_string();
        decide_run(
            &mut m.tx,
            &run.id,
            SafeUpdateOutcome::Approved,
            &actor.user_id,
            Some(&job_id),
            &m.now,
        )
        .await?;
        let job = JobRequest {
            job_type: JobType::EnvUpdate,
            site_id: Some(&production.site_id),
            environment_id: Some(&production.id),
            node_id: &production.node_id,
            payload: apply_payload(&pre_backup_id, &updates),
        };
        let job_id = self
            .mutations
            .accept_as(m, job_id, job, Some(audit))
            .await?;
        tracing::info!(run = %run.id, environment = %production.id, job = %job_id, "held safe-update run approved");
        Ok(job_id)
    }

    /// `POST /api/safe-updates/{id}/dismiss`: a held run is closed without applying anything.
    pub async fn dismiss(
        &self,
        actor: &Actor,
        run_id: &str,
    ) -> Result<SafeUpdateRunRecord, ServiceError> {
        let mut m = self.mutations.begin().await?;
        let run = fetch_run(&mut m.tx, run_id)
            .await?
            .ok_or(ServiceError::NotFound("safe-update run"))?;
        // Audited on the run's site (audit rows name sites, environments, nodes, …).
        let site_id = run.site_id.clone();
        let audit = AuditEntry {
            user_id: &actor.user_id,
            action: DISMISS,
            resource_type: "site",
            resource_id: &site_id,
        };
        if run.outcome != SafeUpdateOutcome::Held {
            let e = ServiceError::Conflict(format!(
                "the run is {}: only a held run can be dismissed",
                run.outcome
            ));
            return Err(self.mutations.refuse(m, audit, e).await);
        }
        decide_run(
            &mut m.tx,
            &run.id,
            SafeUpdateOutcome::Dismissed,
            &actor.user_id,
            None,
            &m.now,
        )
        .await?;
        self.mutations.complete(m, audit).await?;
        tracing::info!(run = %run.id, "held safe-update run dismissed");
        self.get(run_id).await
    }

    /// The site's production environment if an update can be enqueued on it now.
    async fn production(
        &self,
        conn: &mut sqlx::AnyConnection,
        site_id: &str,
    ) -> Result<Result<EnvironmentRecord, ServiceError>, StoreError> {
        let Some(site) = fetch_site(conn, site_id).await? else {
            return Ok(Err(ServiceError::NotFound("site")));
        };
        if let Some(e) = deletion_refusal("site", site.status) {
            return Ok(Err(e));
        }
        let env = match &site.primary_environment_id {
            Some(id) => fetch_environment(conn, id).await?,
            None => None,
        };
        let Some(env) = env else {
            return Ok(Err(ServiceError::Conflict(
                "the site has no production environment".into(),
            )));
        };
        if let Some(e) = deletion_refusal("environment", env.status) {
            return Ok(Err(e));
        }
        if env.status == SiteStatus::Failed || site.status == SiteStatus::Failed {
            return Ok(Err(ServiceError::Conflict(
                "production has failed; reset it first".into(),
            )));
        }
        let node = fetch_node(conn, &env.node_id).await?;
        if !node.is_some_and(|n| n.status == NodeStatus::Active) {
            return Ok(Err(ServiceError::NodeNotActive(
                "the production environment's node is not active".into(),
            )));
        }
        Ok(Ok(env))
    }

    /// `PATCH /api/sites/{id}`: the drill schedule and the safe-update settings, validated
    /// (naming the field), stored together and audited once as `site_update`; refused for a
    /// site being deleted or deleted.
    pub async fn update_site(
        &self,
        actor: &Actor,
        site_id: &str,
        change: &SiteSettingsChange,
    ) -> Result<(), ServiceError> {
        let drill: Option<DrillSchedule> = match &change.drill_schedule {
            None => None,
            Some(s) => Some(s.parse().map_err(|_| {
                ServiceError::invalid("drill_schedule", "must be one of: off, weekly, monthly")
            })?),
        };
        let schedule: Option<SafeUpdateSchedule> = match &change.schedule {
            None => None,
            Some(s) => Some(s.parse().map_err(|_| {
                ServiceError::invalid(
                    "safe_updates_schedule",
                    "must be one of: off, daily, weekly",
                )
            })?),
        };
        let window = match &change.window {
            Some(Some(w)) => {
                validate::parse_window(w)
                    .map_err(|m| ServiceError::invalid("safe_updates_window", m))?;
                Some(Some(w.clone()))
            }
            other => other.clone(),
        };
        let paths = change.paths.as_ref().map(validate::paths).transpose()?;
        let threshold = change
            .threshold
            .as_ref()
            .map(validate::threshold)
            .transpose()?;
        let mut m = self.mutations.begin().await?;
        let site = fetch_site(&mut m.tx, site_id)
            .await?
            .ok_or(ServiceError::NotFound("site"))?;
        let effective_paths = match &paths {
            Some(p) => p.clone(),
            None => serde_json::from_str(&site.safe_updates_paths).unwrap_or_default(),
        };
        let masks = match &change.masks {
            Some(v) => validate::masks(v, &effective_paths)?,
            // Masks of pages no longer listed go with them.
            None => {
                let current: Value =
                    serde_json::from_str(&site.safe_updates_masks).unwrap_or(json!({}));
                let mut kept = serde_json::Map::new();
                for (path, list) in current.as_object().into_iter().flatten() {
                    if path == "/" || effective_paths.iter().any(|p| p == path) {
                        kept.insert(path.clone(), list.clone());
                    }
                }
                Value::Object(kept)
            }
        };
        let audit = AuditEntry {
            user_id: &actor.user_id,
            action: SITE_UPDATE,
            resource_type: "site",
            resource_id: site_id,
        };
        if let Some(e) = deletion_refusal("site", site.status) {
            return Err(self.mutations.refuse(m, audit, e).await);
        }
        if let Some(d) = drill {
            set_drill_schedule(&mut m.tx, &site.id, d, &m.now).await?;
        }
        let settings = SafeUpdateSettings {
            schedule: schedule.unwrap_or(site.safe_updates_schedule),
            window: window.unwrap_or(site.safe_updates_window.clone()),
            paths_json: serde_json::to_string(&effective_paths).expect("strings serialize"),
            threshold: threshold.unwrap_or(site.safe_updates_threshold),
            masks_json: masks.to_string(),
        };
        set_settings(&mut m.tx, &site.id, &settings, &m.now).await?;
        self.mutations.complete(m, audit).await?;
        tracing::info!(site = %site.id, safe_updates_schedule = %settings.schedule, "site settings changed");
        Ok(())
    }

    /// The scheduler's duty: every active site on a daily or weekly schedule that is due
    /// ([`due`]) gets a run; a site whose run cannot start now (a run running or held, another
    /// job, node not active) is skipped and tried again next tick. Also forgets the prepared
    /// data keys of finished runs that did not apply automatically.
    pub async fn run_schedule(&self) -> Result<RunCount, ServiceError> {
        let now = self.clock.now();
        let mut count = RunCount::default();
        for site in self.store.scheduled_safe_update_sites().await? {
            let window = site
                .safe_updates_window
                .as_deref()
                .and_then(|w| validate::parse_window(w).ok());
            let last = site.last_created_at.as_deref().and_then(parse_ts);
            if !due(site.safe_updates_schedule, window, last, now) {
                continue;
            }
            match self.start(None, &site.site_id).await {
                Ok(_) => count.enqueued += 1,
                Err(ServiceError::Conflict(_) | ServiceError::NodeNotActive(_)) => {
                    count.skipped += 1
                }
                Err(e) => return Err(e),
            }
        }
        self.forget_unused_keys().await?;
        Ok(count)
    }

    /// The data keys prepared for an automatic apply that did not happen.
    async fn forget_unused_keys(&self) -> Result<(), ServiceError> {
        for (run_id, backup_id) in self.store.unused_apply_backups().await? {
            if !self.store.backup_exists(&backup_id).await? {
                self.secrets
                    .delete(&crate::backups::data_key_secret(&backup_id))?;
            }
            self.store.clear_apply_backup(&run_id).await?;
        }
        Ok(())
    }

    /// Retention: finished runs older than `safe_updates_retention_days` (default 30; held
    /// runs stay until decided) are deleted with their image directory. Answers how many.
    pub async fn prune(&self) -> Result<usize, ServiceError> {
        let days = self
            .store
            .get_setting(RETENTION_SETTING)
            .await?
            .and_then(|d| d.parse::<i64>().ok())
            .filter(|d| *d >= 1)
            .unwrap_or(DEFAULT_RETENTION_DAYS);
        let before = format_ts(self.clock.now() - Duration::days(days));
        let expired = self.store.expired_safe_update_runs(&before).await?;
        for run in &expired {
            let dir = run_dir(&self.data_dir, &run.id);
            // remove_dir_all does not follow symbolic links inside the tree.
            match std::fs::remove_dir_all(&dir) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => {
                    tracing::error!(run = %run.id, error = %e, "removing a safe-update run's images failed");
                    continue;
                }
            }
            self.store.delete_safe_update_run(&run.id).await?;
            tracing::info!(run = %run.id, outcome = %run.outcome, "safe-update run pruned");
        }
        Ok(expired.len())
    }

    /// The image `file` of run `run_id`, read from the run's own directory without following
    /// links (`None`: no such run, name or file).
    pub async fn image(&self, run_id: &str, file: &str) -> Result<Option<Vec<u8>>, ServiceError> {
        if !is_image_name(file) || self.store.get_safe_update_run(run_id).await?.is_none() {
            return Ok(None);
        }
        let data_dir = self.data_dir.clone();
        let (run_id, file) = (run_id.to_string(), file.to_string());
        let read = tokio::task::spawn_blocking(move || read_image(&data_dir, &run_id, &file))
            .await
            .map_err(|e| {
                ServiceError::Store(StoreError::Integrity(format!("image read task: {e}")))
            })?;
        Ok(read)
    }

    /// The run directory the job's screenshots go to (created by the shots command).
    pub fn run_dir(&self, run_id: &str) -> PathBuf {
        run_dir(&self.data_dir, run_id)
    }
}

/// `<data_dir>/safe-updates/<run_id>/<file>`: each component below the data directory opened
/// with `O_NOFOLLOW` (a link is refused), the file a regular file of at most [`MAX_IMAGE`].
fn read_image(data_dir: &Path, run_id: &str, file: &str) -> Option<Vec<u8>> {
    use crate::node_helper::nofollow::{open_at, open_dir_at};
    use std::ffi::OsStr;
    let base = std::fs::File::open(data_dir).ok()?;
    let runs = open_dir_at(base.as_fd(), OsStr::new("safe-updates")).ok()?;
    let dir = open_dir_at(runs.as_fd(), OsStr::new(run_id)).ok()?;
    let fd = open_at(dir.as_fd(), OsStr::new(file), 0).ok()?;
    let f = std::fs::File::from(fd);
    let meta = f.metadata().ok()?;
    if !meta.is_file() || meta.len() > MAX_IMAGE {
        return None;
    }
    let mut out = Vec::with_capacity(meta.len() as usize);
    f.take(MAX_IMAGE).read_to_end(&mut out).ok()?;
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn image_names_are_index_phase_png() {
        for ok in [
            "0-before.png",
            "9-after.png",
            "10-diff.png",
            "99-before.png",
        ] {
            assert!(is_image_name(ok), "{ok}");
        }
        for bad in [
            "100-before.png",
            "-before.png",
            "a-before.png",
            "0-before.PNG",
            "0-other.png",
            "../0-before.png",
            "0-before.png/",
            "0-before.png\0",
            "x/0-diff.png",
            "0-diff.png.bak",
        ] {
            assert!(!is_image_name(bad), "{bad}");
        }
    }

    #[test]
    fn daily_runs_once_per_window_weekly_once_in_seven_days() {
        use SafeUpdateSchedule::*;
        let w = Some((120, 240)); // 02:00-04:00
        let now = datetime!(2026-12-03 02:30 UTC);
        assert!(due(Daily, w, None, now));
        assert!(!due(Daily, w, None, datetime!(2026-12-03 04:00 UTC)));
        assert!(!due(Daily, w, Some(datetime!(2026-12-03 02:00 UTC)), now));
        assert!(due(Daily, w, Some(datetime!(2026-12-02 03:59 UTC)), now));
        assert!(!due(Weekly, w, Some(datetime!(2026-12-02 03:59 UTC)), now));
        assert!(!due(Weekly, w, Some(datetime!(2026-11-27 02:10 UTC)), now));
        assert!(due(Weekly, w, Some(datetime!(2026-11-26 02:40 UTC)), now));
        // A window past midnight: 23:00-01:00.
        let late = Some((1380, 60));
        let after_midnight = datetime!(2026-12-03 00:30 UTC);
        assert!(!due(
            Daily,
            late,
            Some(datetime!(2026-12-02 23:10 UTC)),
            after_midnight
        ));
        assert!(due(
            Daily,
            late,
            Some(datetime!(2026-12-01 23:10 UTC)),
            after_midnight
        ));
        // No window: 24 h / 7 days after the last run.
        assert!(!due(
            Daily,
            None,
            Some(datetime!(2026-12-02 03:00 UTC)),
            now
        ));
        assert!(due(Daily, None, Some(datetime!(2026-12-02 02:30 UTC)), now));
        assert!(!due(Off, None, None, now));
    }

    #[test]
    fn the_apply_payload_names_the_versions() {
        let u = FoundUpdate {
            kind: "plugin".into(),
            id: "fx/fx.php".into(),
            from: "1.0".into(),
            to: "1.2".into(),
        };
        let p = apply_payload("b", &[u]);
        assert_eq!(p["pre_backup_id"], "b");
        assert_eq!(p["scope"], "all");
        assert_eq!(
            p["versions"],
            json!([{"kind": "plugin", "id": "fx/fx.php", "version": "1.2"}])
        );
    }
}
