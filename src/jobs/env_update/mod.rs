//! `env_update`: WordPress core, plugin and theme updates of an environment (jobs.md §11,
//! backups-restore-promotion.md §7): the pre-update full backup first, then a copy of the
//! current release updated by WordPress's own upgrader classes through the PHP bridge, made
//! live by `pressluft node env-update` through `env-update.yml`, then health-gated.
//!
//! Submodules: [`vars`] (what the playbook and the node helper get).

mod vars;

use serde::{Deserialize, Serialize};

use super::payload::{Attempts, Release};
use crate::domain::UpdateScope;
use vars::extra_vars;

super::kinds::job_kind!(EnvUpdate, "env-update.yml", [extra_vars]);

/// The payload of `env_update` (jobs.md §11), built by [`crate::deploys::Deploys::update`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct EnvUpdatePayload {
    pub scope: UpdateScope,
    /// The pre-update full backup, inserted `pending` with the job.
    pub pre_backup_id: String,
    #[serde(flatten)]
    pub release: Release,
    /// The environment's current release at the first start: the rollback target (run-stable).
    pub previous_release_id: Option<String>,
    #[serde(flatten)]
    pub attempts: Attempts,
}

impl Default for EnvUpdatePayload {
    fn default() -> Self {
        Self {
            scope: UpdateScope::All,
            pre_backup_id: String::new(),
            release: Release::default(),
            previous_release_id: None,
            attempts: Attempts::default(),
        }
    }
}
