//! `health_check`: the health gate after a mutation of an environment (jobs.md §11,
//! backups-restore-promotion.md §6) — HTTP of the canonical URL, WordPress installed, database
//! reachable — run on the node by `pressluft node health-check` (src/node_helper/health.rs)
//! through `health-check.yml`.
//!
//! This is the skeleton: the kind, its payload, its variables and its playbook. The playbook
//! exits 0 whenever it could evaluate the checks and writes them to the result file; when one
//! failed it also reports `HEALTH_CHECK_FAILED` with a message naming the failing checks, so
//! the job fails (not retried). A successful run records nothing, and the kind has no hooks:
//! an environment without a current release is refused by the helper on the node (exit 3,
//! `PRECONDITION_FAILED`). What the gate does with the
//! outcome is the deploy issue's work: enqueueing `health_check` as the follow-up of
//! `env_deploy`, `env_update`, `env_restore`, `env_promote` and `site_import`, marking the
//! release `healthy`/`unhealthy`, returning environment and site to `active` or `failed`, and
//! enqueueing `release_rollback` from the payload's `rollback_*` fields.

use serde::{Deserialize, Serialize};

use super::kinds::{JobKind, ResolvedVars, VarsContext, VarsError};
use super::lifecycle::site_and_environment;
use super::payload::Attempts;
use crate::node_helper::spec::{HealthCheckSpec, CONTRACT_VERSION};
use crate::sites::layout::{url_host, EnvLayout};
use crate::store::environments::canonical_url;
use crate::store::{JobRecord, StoreError};

/// The `health_check` job type.
pub struct HealthCheck;

impl JobKind for HealthCheck {
    fn playbook(&self) -> &'static str {
        "health-check.yml"
    }

    fn follow_up(&self) -> bool {
        true
    }

    super::kinds::job_hooks!(extra_vars);
}

/// The payload of `health_check` (jobs.md §11): the release it gates, the job it follows and
/// what a rollback restores.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct HealthCheckPayload {
    /// The release the gated job made current.
    pub release_id: String,
    /// The job this one follows up.
    pub gated_job_id: String,
    /// The release current before the gated job.
    pub rollback_target_release_id: String,
    /// The backup a rollback restores from, if any.
    pub rollback_backup_id: Option<String>,
    pub rollback_restore_uploads: bool,
    /// Tables a rollback leaves alone (promotion only).
    pub rollback_skip_tables: Vec<String>,
    #[serde(flatten)]
    pub attempts: Attempts,
}

/// The environment's own hosts: its preview host and the canonical URL's host (its primary
/// domain, when it has one), without repeats.
pub(crate) fn own_hosts(preview_url: &str, canonical: &str) -> Vec<String> {
    let mut hosts = vec![url_host(preview_url).to_ascii_lowercase()];
    let primary = url_host(canonical).to_ascii_lowercase();
    if !hosts.contains(&primary) {
        hosts.push(primary);
    }
    hosts
}

/// Variables of `health-check.yml` (docs/node-helper.md): `node_spec` (what the helper reads;
/// the playbook adds `php_dir`) and `environment_id`. No secrets: the bridge reads the
/// database credentials from the environment's `wp-config.php` on the node.
async fn extra_vars(cx: &VarsContext<'_>, job: &JobRecord) -> Result<ResolvedVars, VarsError> {
    let mut conn = cx.store.pool().acquire().await.map_err(StoreError::from)?;
    let (site, env) = site_and_environment(&mut conn, job).await?;
    let canonical = canonical_url(&mut conn, &env.id)
        .await?
        .unwrap_or_else(|| env.preview_url.clone());
    let layout = EnvLayout::new(&site.id, &env.id);
    let spec = HealthCheckSpec {
        contract_version: CONTRACT_VERSION,
        environment_id: env.id.clone(),
        env_root: layout.env_root,
        env_user: layout.env_user,
        hosts: own_hosts(&env.preview_url, &canonical),
        canonical_url: canonical,
        php_dir: String::new(),
    };
    let spec = serde_json::to_value(&spec).map_err(|_| VarsError::Missing("the node spec"))?;
    let mut resolved = ResolvedVars::default();
    resolved
        .vars
        .insert("environment_id".into(), env.id.clone().into());
    resolved.vars.insert("node_spec".into(), spec);
    Ok(resolved)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::jobs::payload::to_json;

    #[test]
    fn the_hosts_are_the_preview_host_and_the_primary_domain() {
        let preview = "http://a1b2c3d4.127-0-0-1.sslip.io";
        assert_eq!(
            own_hosts(preview, preview),
            vec!["a1b2c3d4.127-0-0-1.sslip.io"]
        );
        assert_eq!(
            own_hosts(preview, "https://Shop.Example"),
            vec!["a1b2c3d4.127-0-0-1.sslip.io", "shop.example"]
        );
    }

    #[test]
    fn the_payload_has_the_specified_fields() {
        let json: serde_json::Value =
            serde_json::from_str(&to_json(&HealthCheckPayload::default())).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"release_id": "", "gated_job_id": "",
                "rollback_target_release_id": "", "rollback_backup_id": null,
                "rollback_restore_uploads": false, "rollback_skip_tables": []})
        );
    }
}
