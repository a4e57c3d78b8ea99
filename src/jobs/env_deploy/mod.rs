//! `env_deploy`: a new release of an environment from a git repository or an archive
//! (jobs.md §11, architecture.md §5), built and made live by `pressluft node release-deploy`
//! through `env-deploy.yml`, then health-gated by a `health_check` follow-up.
//!
//! Submodules: [`vars`] (what the playbook and the node helper get).

mod vars;

use serde::{Deserialize, Serialize};

use super::payload::{Attempts, Release};
use crate::domain::ReleaseSourceType;
use vars::extra_vars;

super::kinds::job_kind!(EnvDeploy, "env-deploy.yml", [on_start, extra_vars]);

/// The payload of `env_deploy` (jobs.md §11), built by [`crate::deploys::Deploys::deploy`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct EnvDeployPayload {
    pub source_type: ReleaseSourceType,
    /// As requested, with the credentials of a URL's user-info replaced by `***`.
    pub source_ref: String,
    /// The secrets-store key of the whole `source_ref` when it had credentials
    /// ([`crate::deploys::source_ref_secret_key`]); the kind deletes it when the job ends.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source_ref_secret: Option<String>,
    #[serde(flatten)]
    pub release: Release,
    /// The environment's current release at the first start: the rollback target (run-stable).
    pub previous_release_id: Option<String>,
    #[serde(flatten)]
    pub attempts: Attempts,
}

impl Default for EnvDeployPayload {
    fn default() -> Self {
        Self {
            source_type: ReleaseSourceType::Git,
            source_ref: String::new(),
            source_ref_secret: None,
            release: Release::default(),
            previous_release_id: None,
            attempts: Attempts::default(),
        }
    }
}

// STAND-IN (i12-deploy, until the engine hooks of i12-engine land; the lead replaces it at
// merge): fixes the run-stable release name and the previous release at the first start so
// that `extra_vars` can build the node spec.
async fn on_start(
    conn: &mut sqlx::SqliteConnection,
    job: &mut crate::store::JobRecord,
    now: &str,
) -> Result<(), crate::store::StoreError> {
    let (_, env) = super::lifecycle::site_and_environment(conn, job).await?;
    let id = job.id.clone();
    super::payload::update(conn, job, |p: &mut EnvDeployPayload| {
        super::lifecycle::fix_release_name(&mut p.release, now, &id);
        if p.previous_release_id.is_none() {
            p.previous_release_id = env.current_release_id.clone();
        }
    })
    .await
    .map(drop)
}
