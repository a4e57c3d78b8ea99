//! What executes a claimed job: the [`Runner`] seam between the queue and the outside world.
//!
//! The production runner is [`super::ansible::AnsibleRunner`] (one playbook per job type).
//! Tests of the queue's own logic plug in scripted runners; they never stand in for a feature.

use std::future::Future;
use std::pin::Pin;

use serde_json::Value;
use tokio::sync::watch;

use super::errors::JobErrorCode;
use super::output::OutputSink;
use crate::store::JobRecord;

/// Why the worker asks a run to stop early.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StopReason {
    /// An admin cancelled the job.
    Cancel,
    /// The job timeout elapsed.
    Timeout,
    /// The worker lost its lease (the job was recovered elsewhere).
    LeaseLost,
}

/// How a run ended.
#[derive(Debug, Clone)]
pub enum RunOutcome {
    /// Done; `result` is what the playbook reported (`{}` when nothing).
    Succeeded { result: Value },
    /// Failed with a registered job error code; `result`: what the playbook reported before it
    /// failed (a partial result some kinds record, e.g. a completed pre-update backup).
    Failed {
        code: JobErrorCode,
        message: String,
        result: Option<Value>,
    },
    /// Stopped because the worker asked (see [`StopReason`]); no result.
    Stopped,
}

/// Everything a run gets besides the job row.
pub struct RunContext {
    /// Turns `Some` when the worker wants the run to stop; runners must honour it promptly.
    pub stop: watch::Receiver<Option<StopReason>>,
    /// Where output lines go (job log file, live subscribers, stored tail).
    pub output: OutputSink,
}

pub type RunFuture<'a> = Pin<Box<dyn Future<Output = RunOutcome> + Send + 'a>>;

/// Executes one claimed job.
pub trait Runner: Send + Sync + 'static {
    fn run<'a>(&'a self, job: &'a JobRecord, ctx: RunContext) -> RunFuture<'a>;
}
