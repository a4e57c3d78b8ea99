//! The scheduler loop (jobs.md §9): every 30 s, recover jobs whose worker stopped heartbeating;
//! once a day (and at start-up), purge old sessions and login attempts. Recurring backup jobs
//! join here with backups.

use std::time::Duration;

use tokio::sync::watch;

use super::engine::Engine;
use crate::clock::{format_ts, SharedClock};

pub const TICK: Duration = Duration::from_secs(30);
const PURGE_EVERY: time::Duration = time::Duration::hours(24);

/// Runs until `shutdown` turns true.
pub async fn run(engine: Engine, clock: SharedClock, mut shutdown: watch::Receiver<bool>) {
    let mut last_purge: Option<time::OffsetDateTime> = None;
    loop {
        tick(&engine, &clock, &mut last_purge).await;
        tokio::select! {
            _ = tokio::time::sleep(TICK) => {}
            _ = shutdown.wait_for(|s| *s) => return,
        }
    }
}

/// One pass of every scheduler duty.
pub async fn tick(
    engine: &Engine,
    clock: &SharedClock,
    last_purge: &mut Option<time::OffsetDateTime>,
) {
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
