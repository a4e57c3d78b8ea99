//! Live updates: a change feed over the database, fanned out in process.
//!
//! The database is the source of truth, so live events are derived from it rather than from
//! the code paths that write: a watcher reads jobs whose `updated_at` moved since its last look
//! (every second, and at once when woken by an in-process write) and broadcasts them. A change
//! made by any writer — a worker, the CLI, another process on the same database — therefore
//! reaches every SSE subscriber, and an event always describes committed state.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{broadcast, watch, Notify};

use crate::store::{JobRecord, ResourceChange, Store};

/// How far back each look re-reads, to catch rows committed late with an older `updated_at`.
const OVERLAP: Duration = Duration::from_secs(5);
/// Poll interval when nobody wakes the watcher.
const POLL: Duration = Duration::from_secs(1);

/// One live event.
#[derive(Debug, Clone)]
pub enum Event {
    /// A job row was inserted or changed (its new state).
    Job(Arc<JobRecord>),
    /// A site, environment, node or release was inserted or changed.
    Resource(Arc<ResourceChange>),
}

/// One line of a running job's output.
#[derive(Debug, Clone)]
pub struct OutputLine {
    pub job_id: Arc<str>,
    /// 1-based line number in the job's log file, so a reader that replayed the file can skip
    /// lines it already has.
    pub seq: u64,
    pub line: Arc<str>,
}

/// The in-process fan-out; cheap to clone.
#[derive(Clone)]
pub struct Events {
    tx: broadcast::Sender<Event>,
    /// Output lines travel on their own channel so a chatty playbook cannot crowd out state
    /// changes.
    output: broadcast::Sender<OutputLine>,
    wake: Arc<Notify>,
}

impl Default for Events {
    fn default() -> Self {
        Self::new()
    }
}

impl Events {
    pub fn new() -> Self {
        let (tx, _) = broadcast::channel(1024);
        let (output, _) = broadcast::channel(4096);
        Self {
            tx,
            output,
            wake: Arc::new(Notify::new()),
        }
    }

    pub fn subscribe(&self) -> broadcast::Receiver<Event> {
        self.tx.subscribe()
    }

    pub fn subscribe_output(&self) -> broadcast::Receiver<OutputLine> {
        self.output.subscribe()
    }

    /// Publishes a line of job output to live subscribers.
    pub fn job_output(&self, job_id: &Arc<str>, seq: u64, line: String) {
        let _ = self.output.send(OutputLine {
            job_id: job_id.clone(),
            seq,
            line: line.into(),
        });
    }

    /// Tells the watcher that jobs changed, so it looks now instead of at the next tick.
    pub fn jobs_changed(&self) {
        self.wake.notify_one();
    }

    /// Runs the job change feed until `shutdown` turns true.
    pub async fn run_job_watcher(self, store: Store, mut shutdown: watch::Receiver<bool>) {
        let mut feed = ChangeFeed::<JobRecord>::default();
        let mut resources = ChangeFeed::<ResourceChange>::default();
        match store.latest_job_change().await {
            Ok(latest) => feed.cursor = latest.unwrap_or_default(),
            Err(e) => tracing::warn!(error = %e, "job change feed: initial read failed"),
        }
        match store.latest_resource_change().await {
            Ok(latest) => resources.cursor = latest.unwrap_or_default(),
            Err(e) => tracing::warn!(error = %e, "resource change feed: initial read failed"),
        }
        loop {
            tokio::select! {
                _ = self.wake.notified() => {}
                _ = tokio::time::sleep(POLL) => {}
                _ = shutdown.wait_for(|stop| *stop) => return,
            }
            let since = feed.since();
            match store.jobs_changed_since(&since, 1000).await {
                Ok(rows) => {
                    for job in feed.accept(rows) {
                        // No subscribers is fine: nobody is watching.
                        let _ = self.tx.send(Event::Job(Arc::new(job)));
                    }
                }
                Err(e) => tracing::warn!(error = %e, "job change feed: read failed"),
            }
            // Resource transitions commit with job changes; both feeds are read on each wake.
            match store
                .resources_changed_since(&resources.since(), 1000)
                .await
            {
                Ok(rows) => {
                    for change in resources.accept(rows) {
                        let _ = self.tx.send(Event::Resource(Arc::new(change)));
                    }
                }
                Err(e) => tracing::warn!(error = %e, "resource change feed: read failed"),
            }
        }
    }
}

/// A row the change feed follows.
trait FeedRow {
    fn key(&self) -> String;
    fn updated_at(&self) -> &str;
    /// The parts that change with its state.
    fn fingerprint(&self) -> String;
}

impl FeedRow for JobRecord {
    fn key(&self) -> String {
        self.id.clone()
    }
    fn updated_at(&self) -> &str {
        &self.updated_at
    }
    fn fingerprint(&self) -> String {
        fingerprint(self)
    }
}

impl FeedRow for ResourceChange {
    fn key(&self) -> String {
        format!("{}:{}", self.resource_type, self.id)
    }
    fn updated_at(&self) -> &str {
        &self.updated_at
    }
    fn fingerprint(&self) -> String {
        format!("{}|{}|{}", self.updated_at, self.status, self.state_version)
    }
}

/// The watcher's memory: the newest change seen and what it already sent near it.
#[derive(Debug)]
struct ChangeFeed<T> {
    cursor: String,
    /// row key → (`updated_at`, fingerprint) of the state already sent, for rows inside the
    /// overlap window. The fingerprint catches two changes within one millisecond.
    sent: HashMap<String, (String, String)>,
    _rows: std::marker::PhantomData<T>,
}

impl<T> Default for ChangeFeed<T> {
    fn default() -> Self {
        Self {
            cursor: String::new(),
            sent: HashMap::new(),
            _rows: std::marker::PhantomData,
        }
    }
}

/// The parts of a job row that change with its state.
fn fingerprint(j: &JobRecord) -> String {
    format!(
        "{}|{}|{}|{:?}|{:?}|{:?}|{:?}|{:?}",
        j.updated_at,
        j.status,
        j.attempt_count,
        j.run_after,
        j.locked_by,
        j.finished_at,
        j.error_code,
        j.cancel_requested_at
    )
}

impl<T: FeedRow> ChangeFeed<T> {
    /// Where the next look starts: the cursor minus the overlap.
    fn since(&self) -> String {
        match crate::clock::parse_ts(&self.cursor) {
            Some(t) => crate::clock::format_ts(t - OVERLAP),
            None => String::new(),
        }
    }

    /// Filters out rows already sent and advances the cursor.
    fn accept(&mut self, rows: Vec<T>) -> Vec<T> {
        let mut fresh = Vec::new();
        for row in rows {
            let print = row.fingerprint();
            let key = row.key();
            if self.sent.get(&key).is_some_and(|(_, p)| *p == print) {
                continue;
            }
            if *row.updated_at() > *self.cursor {
                self.cursor = row.updated_at().to_string();
            }
            self.sent.insert(key, (row.updated_at().to_string(), print));
            fresh.push(row);
        }
        let floor = self.since();
        self.sent.retain(|_, (updated, _)| *updated >= floor);
        fresh
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job(id: &str, updated_at: &str) -> JobRecord {
        JobRecord {
            id: id.into(),
            job_type: crate::domain::JobType::NodeProvision,
            status: crate::domain::JobStatus::Queued,
            site_id: None,
            environment_id: None,
            node_id: "n".into(),
            payload_json: "{}".into(),
            attempt_count: 0,
            max_attempts: 3,
            run_after: None,
            locked_at: None,
            locked_by: None,
            started_at: None,
            finished_at: None,
            error_code: None,
            error_message: None,
            heartbeat_at: None,
            cancel_requested_at: None,
            parent_job_id: None,
            output_tail: None,
            created_at: updated_at.into(),
            updated_at: updated_at.into(),
            site_name: None,
            environment_name: None,
            node_name: None,
        }
    }

    #[test]
    fn sends_each_change_once_even_when_reread() {
        let mut feed = ChangeFeed::<JobRecord>::default();
        let a = job("a", "2026-01-01T00:00:01.000Z");
        assert_eq!(feed.accept(vec![a.clone()]).len(), 1);
        assert_eq!(
            feed.accept(vec![a.clone()]).len(),
            0,
            "re-read in the overlap"
        );
        let a2 = job("a", "2026-01-01T00:00:02.000Z");
        assert_eq!(
            feed.accept(vec![a, a2]).len(),
            1,
            "a new state of the same job"
        );
        assert_eq!(feed.cursor, "2026-01-01T00:00:02.000Z");
    }

    #[test]
    fn two_changes_in_one_millisecond_are_both_sent() {
        let mut feed = ChangeFeed::<JobRecord>::default();
        let queued = job("a", "2026-01-01T00:00:01.000Z");
        let mut done = queued.clone();
        done.status = crate::domain::JobStatus::Succeeded;
        assert_eq!(feed.accept(vec![queued]).len(), 1);
        assert_eq!(
            feed.accept(vec![done.clone()]).len(),
            1,
            "same updated_at, new state"
        );
        assert_eq!(feed.accept(vec![done]).len(), 0);
    }

    #[test]
    fn late_commits_with_older_timestamps_are_caught() {
        let mut feed = ChangeFeed::<JobRecord>::default();
        feed.accept(vec![job("b", "2026-01-01T00:00:10.000Z")]);
        assert_eq!(feed.since(), "2026-01-01T00:00:05.000Z");
        let late = job("c", "2026-01-01T00:00:09.500Z");
        assert_eq!(feed.accept(vec![late]).len(), 1);
        assert_eq!(
            feed.cursor, "2026-01-01T00:00:10.000Z",
            "cursor never moves back"
        );
    }
}
