//! The scheduler loop (jobs.md §9): every 30 s, recover jobs whose worker stopped heartbeating;
//! once a day (and at start-up), purge old sessions and login attempts; every tick, the backup
//! duties whose rules live in [`crate::backups::schedule`]: scheduled `full` backups, and (from
//! [`CLEANUP_FIRST_CHECK_AFTER`] after start-up) the per-site `backup_cleanup` and the removal
//! of expired backups' data keys; and the weekly/monthly restore drills
//! ([`crate::drills::Drills::run_schedule`], issue 14); the daily/weekly safe-update runs in
//! each site's window and the retention of finished runs with their images
//! ([`crate::safe_updates::SafeUpdates`], issue 16). Due times derive from rows, so a tick is
//! safe to repeat.

use std::time::Duration;

use tokio::sync::watch;

use super::engine::Engine;
use crate::backups::schedule::RunCount;
use crate::backups::{Backups, CLEANUP_FIRST_CHECK_AFTER};
use crate::clock::{format_ts, SharedClock};
use crate::drills::Drills;
use crate::safe_updates::SafeUpdates;
use crate::services::ServiceError;

pub const TICK: Duration = Duration::from_secs(30);
const PURGE_EVERY: time::Duration = time::Duration::hours(24);

/// The scheduler's duties and the little it remembers between ticks (when it started, when it
/// last purged).
pub struct Scheduler {
    engine: Engine,
    backups: Backups,
    clock: SharedClock,
    started: time::OffsetDateTime,
    last_purge: Option<time::OffsetDateTime>,
    /// The restore drill schedule (issue 14); `None`: not this scheduler's duty.
    drills: Option<Drills>,
    /// The safe-update schedule and retention (issue 16); `None`: not this scheduler's duty.
    safe_updates: Option<SafeUpdates>,
}

/// Runs until `shutdown` turns true.
pub async fn run(
    engine: Engine,
    backups: Backups,
    drills: Drills,
    safe_updates: SafeUpdates,
    clock: SharedClock,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut scheduler = Scheduler::new(engine, backups, clock)
        .with_drills(drills)
        .with_safe_updates(safe_updates);
    let mut lease = crate::store::replicas::SchedulerLease::default();
    loop {
        // Several replicas on one PostgreSQL database: only the lease holder runs the duties.
        if lease.held(scheduler.engine.store()).await {
            scheduler.tick().await;
        }
        tokio::select! {
            _ = tokio::time::sleep(TICK) => {}
            _ = shutdown.wait_for(|s| *s) => return,
        }
    }
}

impl Scheduler {
    pub fn new(engine: Engine, backups: Backups, clock: SharedClock) -> Self {
        let started = clock.now();
        Self {
            engine,
            backups,
            clock,
            started,
            last_purge: None,
            drills: None,
            safe_updates: None,
        }
    }

    /// Adds the weekly/monthly restore drills ([`Drills::run_schedule`]) to the duties.
    pub fn with_drills(mut self, drills: Drills) -> Self {
        self.drills = Some(drills);
        self
    }

    /// Adds the safe-update schedule and retention ([`SafeUpdates::run_schedule`],
    /// [`SafeUpdates::prune`]) to the duties.
    pub fn with_safe_updates(mut self, safe_updates: SafeUpdates) -> Self {
        self.safe_updates = Some(safe_updates);
        self
    }

    /// One pass of every scheduler duty.
    pub async fn tick(&mut self) {
        tick(&self.engine, &self.clock, &mut self.last_purge).await;
        log_run("backup_schedule", self.backups.run_schedule().await);
        if let Some(drills) = &self.drills {
            log_run("drill_schedule", drills.run_schedule().await);
        }
        if let Some(safe_updates) = &self.safe_updates {
            log_run("safe_update_schedule", safe_updates.run_schedule().await);
        }
        if self.clock.now() - self.started < CLEANUP_FIRST_CHECK_AFTER {
            return;
        }
        log_run("backup_cleanup", self.backups.run_cleanup().await);
        if let Some(safe_updates) = &self.safe_updates {
            match safe_updates.prune().await {
                Ok(0) => {}
                Ok(n) => {
                    tracing::info!(run = "safe_update_retention", removed = n, "scheduler run")
                }
                Err(e) => tracing::error!(error = %e, "scheduler: pruning safe-update runs failed"),
            }
        }
        match self.backups.remove_expired_keys().await {
            Ok(0) => {}
            Ok(n) => tracing::info!(run = "backup_keys", removed = n, "scheduler run"),
            Err(e) => tracing::error!(error = %e, "scheduler: removing expired data keys failed"),
        }
    }
}

/// `scheduler run=<name> enqueued=n skipped=m` (jobs.md §9); at debug level when the run found
/// nothing to do (every 30 s).
fn log_run(name: &str, outcome: Result<RunCount, ServiceError>) {
    match outcome {
        Ok(n) if n == RunCount::default() => {
            tracing::debug!(run = name, enqueued = 0, skipped = 0, "scheduler run")
        }
        Ok(n) => tracing::info!(
            run = name,
            enqueued = n.enqueued,
            skipped = n.skipped,
            "scheduler run"
        ),
        Err(e) => tracing::error!(run = name, error = %e, "scheduler run failed"),
    }
}

/// The stale-heartbeat recovery and the auth purge.
async fn tick(engine: &Engine, clock: &SharedClock, last_purge: &mut Option<time::OffsetDateTime>) {
    match engine.recover_stale().await {
        Ok(n) => tracing::debug!(run = "stale_heartbeats", recovered = n, "scheduler run"),
        Err(e) => tracing::error!(error = %e, "scheduler: stale-heartbeat recovery failed"),
    }
    let now = clock.now();
    if last_purge.is_none_or(|t| now - t >= PURGE_EVERY) {
        let sessions_before = format_ts(now - time::Duration::days(7));
        let attempts_before = format_ts(now - time::Duration::hours(24));
        match engine
            .store()
            .purge_auth_history(&sessions_before, &attempts_before)
            .await
        {
            Ok((sessions, attempts)) => {
                *last_purge = Some(now);
                tracing::info!(
                    run = "purge_auth",
                    sessions,
                    login_attempts = attempts,
                    "scheduler run"
                );
            }
            Err(e) => tracing::error!(error = %e, "scheduler: purge failed"),
        }
    }
}
