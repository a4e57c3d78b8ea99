//! Worker loops: claim, run, repeat; idle workers sleep until woken by an enqueue or released
//! lock, or for 2 s at most (the polling fallback).

use std::time::Duration;

use tokio::sync::watch;

use super::engine::Engine;

/// Poll interval of an idle worker.
pub const POLL: Duration = Duration::from_secs(2);

/// `<hostname>:<pid>/<index>` (jobs.md §10).
pub fn worker_id(index: usize) -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_else(|_| "localhost".into());
    format!("{host}:{}/{index}", std::process::id())
}

/// Runs one worker until `shutdown` turns true.
pub async fn run(engine: Engine, index: usize, mut shutdown: watch::Receiver<bool>) {
    let id = worker_id(index);
    tracing::debug!(worker = %id, "worker started");
    loop {
        // Register interest before looking, so a wake between the look and the wait is kept.
        let notified = engine.wake_handle().notified();
        tokio::pin!(notified);
        notified.as_mut().enable();
        loop {
            if *shutdown.borrow() {
                return;
            }
            match engine.claim(&id).await {
                Ok(Some(job)) => {
                    let running = engine.execute(job, &id);
                    tokio::select! {
                        r = running => if let Err(e) = r {
                            tracing::error!(worker = %id, error = %e, "recording a job's outcome failed");
                        },
                        // On shutdown the run is dropped (its process group is killed); the job
                        // stays `running` and is recovered as WORKER_LOST after restart.
                        _ = shutdown.wait_for(|s| *s) => return,
                    }
                }
                Ok(None) => break,
                Err(e) => {
                    tracing::error!(worker = %id, error = %e, "claiming a job failed");
                    break;
                }
            }
        }
        tokio::select! {
            _ = &mut notified => {}
            _ = tokio::time::sleep(POLL) => {}
            _ = shutdown.wait_for(|s| *s) => return,
        }
    }
}
