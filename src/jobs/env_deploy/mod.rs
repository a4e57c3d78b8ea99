//! `env_deploy`: a new release of an environment from a git repository or an archive
//! (jobs.md §11, architecture.md §5), built and made live by `pressluft node release-deploy`
//! through `env-deploy.yml`, then health-gated by a `health_check` follow-up.
//!
//! Site and environment are `deploying` from the start until the gate ends
//! ([`super::gate`]); the release is recorded (health `unknown`, current) at the success, with
//! the `health_check` follow-up. A failure before the switch (`SOURCE_FETCH_FAILED`,
//! `ARCHIVE_INVALID`, `PRECONDITION_FAILED`: pre-mutation) returns both to `active`; any other
//! failure or a cancel while running leaves them `failed`. The secret holding a source URL's
//! credentials is deleted by the engine when the job ends, however it ends
//! ([`super::kinds::JobKind::secrets_to_forget`]).
//!
//! Submodules: [`vars`] (what the playbook and the node helper get).

mod vars;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use sqlx::AnyConnection;

use super::gate::{self, check_result, on_cancel, on_final_failure, validate_start};
use super::kinds::JobKind;
use super::payload::{self, Attempts, Release};
use crate::domain::ReleaseSourceType;
use crate::store::{JobRecord, StoreError};
use vars::extra_vars;

/// The `env_deploy` job type (health-gated).
pub struct EnvDeploy;

impl JobKind for EnvDeploy {
    fn playbook(&self) -> &'static str {
        "env-deploy.yml"
    }

    fn health_gated(&self, _job: &JobRecord) -> bool {
        true
    }

    fn secrets_to_forget(&self, job: &JobRecord) -> Vec<String> {
        payload::read::<EnvDeployPayload>(job)
            .source_ref_secret
            .into_iter()
            .collect()
    }

    super::kinds::job_hooks!(
        validate_start,
        on_start,
        check_result,
        on_success,
        on_final_failure,
        on_cancel,
        extra_vars
    );
}

async fn on_start(
    conn: &mut AnyConnection,
    job: &mut JobRecord,
    now: &str,
) -> Result<(), StoreError> {
    gate::enter_fixing_release(conn, job, now).await
}

async fn on_success(
    conn: &mut AnyConnection,
    job: &JobRecord,
    result: &Value,
    now: &str,
) -> Result<(), StoreError> {
    let p = payload::read::<EnvDeployPayload>(job);
    let revision = result["source_revision"]
        .as_str()
        .unwrap_or("(unknown revision)");
    let notes = format!("deployed {revision}");
    let built = gate::BuiltRelease {
        source_type: p.source_type.as_str(),
        source_ref: &p.source_ref,
        notes: &notes,
        rollback_backup_id: None,
        rollback_restore_uploads: false,
    };
    gate::gate_built_release(conn, job, built, now).await
}

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
