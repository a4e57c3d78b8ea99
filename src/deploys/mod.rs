//! The deploy service (api.md Environments; backups-restore-promotion.md §6–7): accepting a
//! deploy (`env_deploy`), an update (`env_update`, with its pre-update backup row) and a manual
//! rollback to a kept healthy release (`release_rollback`), and each site's deploy key.
//!
//! Every request is checked here ("env ok": the environment exists, neither it nor its site is
//! `failed`, its node is `active`), refused with a `rejected` audit row, or enqueued with an
//! `accepted` one; what happens on the node and the health gate after it belong to the job
//! kinds (src/jobs/env_deploy, env_update, release_rollback, health_check).

pub mod cache;
pub mod deploy_key;
pub mod drift;
pub mod import;
pub mod promote;
pub mod restore;
pub mod source;
pub mod updates;

use crate::backups::Backups;
use crate::clock::SharedClock;
use crate::domain::{
    BackupScope, HealthStatus, JobType, NodeStatus, ReleaseSourceType, SiteStatus, UpdateScope,
};
use crate::jobs::{Engine, EnvDeployPayload, EnvUpdatePayload, ReleaseRollbackPayload};
use crate::node_helper::spec::UpdateVersion;
use crate::secrets::Secrets;
use crate::services::{JobRequest, Mutation, Mutations, ServiceError};
use crate::sites::Actor;
use crate::store::environments::{fetch_environment, EnvironmentRecord};
use crate::store::nodes::fetch_node;
use crate::store::releases::{fetch_release, ReleaseRecord};
use crate::store::sites::fetch_site;
use crate::store::Store;

pub use source::Source;

/// How many releases an environment keeps (the node prunes to this; a manual rollback may
/// target only one of them).
pub use crate::node_helper::releases::RELEASE_KEEP;

/// The secrets-store key holding a deploy's whole `source_ref` when it has credentials.
pub fn source_ref_secret_key(id: &str) -> String {
    format!("deploy/{id}/source_ref")
}

/// A deploy request (`POST /api/environments/{id}/deploy`).
#[derive(Debug, Clone)]
pub struct DeployInput {
    pub source_type: String,
    pub source_ref: String,
}

/// The deploy service.
#[derive(Clone)]
pub struct Deploys {
    store: Store,
    mutations: Mutations,
    secrets: Secrets,
    backups: Backups,
    allow_loopback_sources: bool,
}

impl Deploys {
    pub fn new(
        store: Store,
        engine: Engine,
        secrets: Secrets,
        clock: SharedClock,
        backups: Backups,
        allow_loopback_sources: bool,
    ) -> Self {
        Self {
            mutations: Mutations::new(store.clone(), engine, clock),
            store,
            secrets,
            backups,
            allow_loopback_sources,
        }
    }

    /// `POST /api/environments/{id}/deploy`: validates the source (400 naming `source_type`
    /// or `source_ref`), then "env ok", then enqueues `env_deploy`.
    pub async fn deploy(
        &self,
        actor: &Actor,
        environment_id: &str,
        input: DeployInput,
    ) -> Result<String, ServiceError> {
        let source_type: ReleaseSourceType = input
            .source_type
            .parse()
            .map_err(|_| ServiceError::invalid("source_type", "must be one of: git, upload"))?;
        let source = source::parse(
            source_type,
            input.source_ref.trim(),
            self.allow_loopback_sources,
        )?;
        let m = self.mutations.begin().await?;
        let (m, env) = self
            .env_ok(m, actor, JobType::EnvDeploy, environment_id)
            .await?;
        if source.needs_deploy_key() {
            // Created now, so the public key the operator copies is the one the job uses.
            deploy_key::ensure(&self.secrets, &env.site_id)?;
        }
        // Credentials in the source's URL live only in the secrets store; the payload (and so
        // the job row, the audit and the API) holds the redacted form.
        let source_ref = input.source_ref.trim();
        let redacted = crate::sources::redact_userinfo(source_ref).into_owned();
        let source_ref_secret = if redacted != source_ref {
            let key = source_ref_secret_key(&uuid::Uuid::new_v4().to_string());
            self.secrets.put(&key, source_ref)?;
            Some(key)
        } else {
            None
        };
        let payload = EnvDeployPayload {
            source_type,
            source_ref: redacted,
            source_ref_secret,
            ..Default::default()
        };
        let job = JobRequest {
            job_type: JobType::EnvDeploy,
            site_id: Some(&env.site_id),
            environment_id: Some(&env.id),
            node_id: &env.node_id,
            payload,
        };
        let audit = actor.audit(JobType::EnvDeploy, ("environment", &env.id));
        let job_id = self.mutations.accept(m, job, Some(audit)).await?;
        tracing::info!(environment = %env.id, %source_type, source = %crate::sources::redact_userinfo(source_ref), job = %job_id, "deploy accepted");
        Ok(job_id)
    }

    /// `POST /api/environments/{id}/updates`: "env ok", then a `pending` full pre-update
    /// backup and `env_update` in one transaction.
    pub async fn update(
        &self,
        actor: &Actor,
        environment_id: &str,
        scope: &str,
    ) -> Result<String, ServiceError> {
        let scope: UpdateScope = scope.parse().map_err(|_| {
            ServiceError::invalid("scope", "must be one of: core, plugins, themes, all")
        })?;
        self.enqueue_update(actor, environment_id, scope, None)
            .await
    }

    /// An `env_update` of exactly `versions` (scope `all`; issue 16: a safe-update run's tested
    /// updates, applied automatically or approved by a person): the node applies each item only
    /// at exactly its version and refuses the whole update (`PRECONDITION_FAILED`, nothing
    /// changed) when WordPress offers another one. Otherwise as [`Self::update`].
    pub async fn update_versions(
        &self,
        actor: &Actor,
        environment_id: &str,
        versions: Vec<UpdateVersion>,
    ) -> Result<String, ServiceError> {
        validate_versions(&versions)?;
        self.enqueue_update(actor, environment_id, UpdateScope::All, Some(versions))
            .await
    }

    async fn enqueue_update(
        &self,
        actor: &Actor,
        environment_id: &str,
        scope: UpdateScope,
        versions: Option<Vec<UpdateVersion>>,
    ) -> Result<String, ServiceError> {
        let m = self.mutations.begin().await?;
        let (mut m, env) = self
            .env_ok(m, actor, JobType::EnvUpdate, environment_id)
            .await?;
        let pre_backup_id = self
            .backups
            .add_pending(&mut m, &env, BackupScope::Full)
            .await?;
        let job = JobRequest {
            job_type: JobType::EnvUpdate,
            site_id: Some(&env.site_id),
            environment_id: Some(&env.id),
            node_id: &env.node_id,
            payload: EnvUpdatePayload {
                scope,
                versions,
                pre_backup_id: pre_backup_id.clone(),
                ..Default::default()
            },
        };
        let audit = actor.audit(JobType::EnvUpdate, ("environment", &env.id));
        let job_id = self.mutations.accept(m, job, Some(audit)).await?;
        tracing::info!(environment = %env.id, %scope, pre_backup = %pre_backup_id, job = %job_id, "update accepted");
        Ok(job_id)
    }

    /// `POST /api/environments/{id}/releases/{release_id}/rollback`: a manual rollback to a
    /// kept, healthy release of the environment other than the current one, without a database
    /// restore, health-gated like a deploy.
    pub async fn rollback(
        &self,
        actor: &Actor,
        environment_id: &str,
        release_id: &str,
    ) -> Result<String, ServiceError> {
        let m = self.mutations.begin().await?;
        let (mut m, env) = self
            .env_ok(m, actor, JobType::ReleaseRollback, environment_id)
            .await?;
        let target = match fetch_release(&mut m.tx, release_id).await? {
            Some(r) if r.environment_id == env.id => r,
            _ => return Err(ServiceError::NotFound("release")),
        };
        let kept = self.store.list_releases(&env.id).await?;
        let audit = actor.audit(JobType::ReleaseRollback, ("environment", &env.id));
        if let Err(e) = rollback_target_ok(&env, &target, &kept) {
            return Err(self.mutations.refuse(m, audit, e).await);
        }
        let current = env.current_release_id.clone().unwrap_or_default();
        let job = JobRequest {
            job_type: JobType::ReleaseRollback,
            site_id: Some(&env.site_id),
            environment_id: Some(&env.id),
            node_id: &env.node_id,
            payload: ReleaseRollbackPayload {
                failed_release_id: current,
                target_release_id: target.id.clone(),
                reason: format!("manual rollback by {}", actor.email),
                ..Default::default()
            },
        };
        let job_id = self.mutations.accept(m, job, Some(audit)).await?;
        tracing::info!(environment = %env.id, release = %target.id, job = %job_id, "manual rollback accepted");
        Ok(job_id)
    }

    /// `GET /api/sites/{id}/deploy-key`: the site's deploy key's public half (created on first
    /// use; the private half stays in the secrets store).
    pub async fn deploy_key(&self, site_id: &str) -> Result<String, ServiceError> {
        if self.store.get_site(site_id).await?.is_none() {
            return Err(ServiceError::NotFound("site"));
        }
        Ok(deploy_key::ensure(&self.secrets, site_id)?)
    }

    /// "env ok" (api.md §3): the environment (404), neither it nor its site `failed` (409
    /// `conflict`), its node `active` (409 `node_not_active`); a refusal writes its `rejected`
    /// audit row.
    async fn env_ok(
        &self,
        mut m: Mutation,
        actor: &Actor,
        action: JobType,
        environment_id: &str,
    ) -> Result<(Mutation, EnvironmentRecord), ServiceError> {
        let env = fetch_environment(&mut m.tx, environment_id)
            .await?
            .ok_or(ServiceError::NotFound("environment"))?;
        let site = fetch_site(&mut m.tx, &env.site_id)
            .await?
            .ok_or(ServiceError::NotFound("site"))?;
        let node = fetch_node(&mut m.tx, &env.node_id).await?;
        let refusal = if let Some(e) = crate::sites::deletion_refusal("environment", env.status)
            .or_else(|| crate::sites::deletion_refusal("site", site.status))
        {
            Some(e)
        } else if env.status == SiteStatus::Failed {
            Some(ServiceError::Conflict(
                "the environment has failed; reset it first".into(),
            ))
        } else if site.status == SiteStatus::Failed {
            Some(ServiceError::Conflict(
                "the site has failed; reset it first".into(),
            ))
        } else if !node.is_some_and(|n| n.status == NodeStatus::Active) {
            Some(ServiceError::NodeNotActive(
                "the environment's node is not active".into(),
            ))
        } else {
            None
        };
        match refusal {
            None => Ok((m, env)),
            Some(e) => {
                let audit = actor.audit(action, ("environment", &env.id));
                Err(self.mutations.refuse(m, audit, e).await)
            }
        }
    }
}

/// Whether `target` may be rolled back to: not the current release, healthy, and among the
/// [`RELEASE_KEEP`] newest releases (`kept`, newest first), which are the ones still on the
/// node.
pub fn rollback_target_ok(
    env: &EnvironmentRecord,
    target: &ReleaseRecord,
    kept: &[ReleaseRecord],
) -> Result<(), ServiceError> {
    if env.current_release_id.as_deref() == Some(target.id.as_str()) {
        return Err(ServiceError::Conflict(
            "this release is already the current one".into(),
        ));
    }
    if target.health_status != HealthStatus::Healthy {
        return Err(ServiceError::Conflict(format!(
            "only a healthy release can be rolled back to; this one is {}",
            target.health_status
        )));
    }
    if !kept.iter().take(RELEASE_KEEP).any(|r| r.id == target.id) {
        return Err(ServiceError::Conflict(format!(
            "this release is no longer kept on the node (the newest {RELEASE_KEEP} are)"
        )));
    }
    Ok(())
}

/// How many items an exact-versions update may list.
pub const MAX_UPDATE_VERSIONS: usize = 200;

/// An exact-versions update's list (issue 16): 1 to [`MAX_UPDATE_VERSIONS`] items, each
/// [`UpdateVersion::validate`] (kind core/plugin/theme, `id` 1–200 characters without control
/// characters, `version` `^[0-9A-Za-z.+-]{1,64}$`), no item twice. The field named is
/// `versions`, the message names the item.
pub fn validate_versions(versions: &[UpdateVersion]) -> Result<(), ServiceError> {
    if versions.is_empty() || versions.len() > MAX_UPDATE_VERSIONS {
        return Err(ServiceError::invalid(
            "versions",
            &format!("must list 1 to {MAX_UPDATE_VERSIONS} updates"),
        ));
    }
    crate::node_helper::update::check_versions_form("all", versions)
        .map_err(|e| ServiceError::invalid("versions", &e.to_string()))
}

#[cfg(test)]
mod version_tests {
    use super::*;
    use crate::node_helper::spec::UpdateKind;

    fn v(kind: UpdateKind, id: &str, version: &str) -> UpdateVersion {
        UpdateVersion {
            kind,
            id: id.into(),
            version: version.into(),
        }
    }

    #[test]
    fn exact_versions_are_validated() {
        let ok = [v(UpdateKind::Plugin, "a/a.php", "1.1")];
        assert!(validate_versions(&ok).is_ok());
        let err = validate_versions(&[]).unwrap_err();
        assert_eq!(err.field(), Some("versions"));
        for bad in [
            v(UpdateKind::Plugin, "a/a.php", "1.1\n"),
            v(UpdateKind::Plugin, "a\u{0}", "1.1"),
            v(UpdateKind::Theme, "", "1.1"),
            v(UpdateKind::Core, "core", "$(id)"),
        ] {
            let err = validate_versions(&[bad]).unwrap_err();
            assert_eq!(err.field(), Some("versions"), "{err}");
            assert!(err.to_string().contains("versions[0]"), "{err}");
        }
        let many = vec![v(UpdateKind::Plugin, "a/a.php", "1"); MAX_UPDATE_VERSIONS + 1];
        assert!(validate_versions(&many).is_err());
        // An unknown kind never gets this far: the JSON does not parse.
        assert!(serde_json::from_str::<UpdateVersion>(
            r#"{"kind": "mu-plugin", "id": "a", "version": "1"}"#
        )
        .is_err());
    }
}
