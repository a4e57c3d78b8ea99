//! `release_rollback`: an environment back on an earlier release (jobs.md §11,
//! backups-restore-promotion.md §6) — the follow-up of a failed health gate, or a manual
//! rollback to a kept healthy release — by `pressluft node release-rollback` through
//! `release-rollback.yml`: `current` switched back, the database (and uploads) restored from
//! the pre-operation backup when the payload names one, reload and purge.
//!
//! Submodules: [`vars`] (what the playbook and the node helper get).

mod vars;

use serde::{Deserialize, Serialize};

use super::kinds::JobKind;
use super::payload::Attempts;
use vars::extra_vars;

/// The `release_rollback` job type (a follow-up: claimed first, holding its site).
pub struct ReleaseRollback;

impl JobKind for ReleaseRollback {
    fn playbook(&self) -> &'static str {
        "release-rollback.yml"
    }

    fn follow_up(&self) -> bool {
        true
    }

    super::kinds::job_hooks!(extra_vars);
}

/// The payload of `release_rollback` (jobs.md §11).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ReleaseRollbackPayload {
    /// The release rolled back from (current when the rollback was decided).
    pub failed_release_id: String,
    /// The release made current again.
    pub target_release_id: String,
    /// The pre-operation backup the database (and uploads) come back from, if any.
    pub restore_backup_id: Option<String>,
    pub restore_uploads: bool,
    /// Tables (without prefix) not restored (promotion only).
    pub restore_skip_tables: Vec<String>,
    /// Why: the failing checks, or who asked for a manual rollback.
    pub reason: String,
    #[serde(flatten)]
    pub attempts: Attempts,
}
