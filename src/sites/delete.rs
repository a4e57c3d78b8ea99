//! Deleting a non-production environment (`DELETE /api/environments/{id}`, `env_delete`) and a
//! whole site (`DELETE /api/sites/{id}`, `site_delete`) — issue 13; the spec leaves deletion
//! out (docs/decisions.md, "Operator toolkit (issue 13): delete").
//!
//! One transaction per request: the checks (404; 409 `conflict` for production, for a target
//! already `deleting`/`deleted`, for an environment of a site being deleted; 409
//! `node_not_active`), a `pending` full final backup of every target with a release
//! ([`Backups::add_pending`], kept until its retention ends), the targets (and the site) moved
//! to `deleting` — so every other mutation refuses them from now on and the slug stays taken —
//! and the job with the statuses before the request in its payload. Other jobs of the site
//! already queued run first (one job per site); the delete waits behind them.

use crate::backups::Backups;
use crate::clock::SharedClock;
use crate::domain::{BackupScope, JobType, NodeStatus, SiteStatus};
use crate::jobs::{DeletePayload, DeleteTarget, Engine};
use crate::services::{JobRequest, Mutation, Mutations, ServiceError};
use crate::store::environments::{fetch_environment, live_environments, EnvironmentRecord};
use crate::store::nodes::fetch_node;
use crate::store::sites::{fetch_site, set_deletion_status};
use crate::store::Store;

use super::Actor;

/// The deletion service.
#[derive(Clone)]
pub struct Deletions {
    mutations: Mutations,
    backups: Backups,
}

/// Why a site or environment refuses a change: `deleting`/`deleted` (for the "env ok" checks
/// of every mutating service).
pub fn deletion_refusal(what: &str, status: SiteStatus) -> Option<ServiceError> {
    match status {
        SiteStatus::Deleting => Some(ServiceError::Conflict(format!(
            "the {what} is being deleted"
        ))),
        SiteStatus::Deleted => Some(ServiceError::Conflict(format!("the {what} is deleted"))),
        _ => None,
    }
}

impl Deletions {
    pub fn new(store: Store, engine: Engine, clock: SharedClock, backups: Backups) -> Self {
        Self {
            mutations: Mutations::new(store, engine, clock),
            backups,
        }
    }

    /// `DELETE /api/environments/{id}`: a staging or clone environment.
    pub async fn delete_environment(
        &self,
        actor: &Actor,
        environment_id: &str,
    ) -> Result<String, ServiceError> {
        let mut m = self.mutations.begin().await?;
        let env = fetch_environment(&mut m.tx, environment_id)
            .await?
            .ok_or(ServiceError::NotFound("environment"))?;
        let site = fetch_site(&mut m.tx, &env.site_id)
            .await?
            .ok_or(ServiceError::NotFound("site"))?;
        let audit = actor.audit(JobType::EnvDelete, ("environment", &env.id));
        let refusal = if env.environment_type == "production" {
            Some(ServiceError::Conflict(
                "the production environment goes only with its site: delete the site".into(),
            ))
        } else if let Some(e) = deletion_refusal("environment", env.status) {
            Some(e)
        } else if let Some(e) = deletion_refusal("site", site.status) {
            Some(e)
        } else {
            node_refusal(&mut m, &env).await?
        };
        if let Some(e) = refusal {
            return Err(self.mutations.refuse(m, audit, e).await);
        }
        let target = self.prepare(&mut m, &env).await?;
        let job = JobRequest {
            job_type: JobType::EnvDelete,
            site_id: Some(&env.site_id),
            environment_id: Some(&env.id),
            node_id: &env.node_id,
            payload: DeletePayload {
                environments: vec![target],
                ..Default::default()
            },
        };
        let job_id = self.mutations.accept(m, job, Some(audit)).await?;
        tracing::info!(environment = %env.id, site = %env.site_id, job = %job_id, "environment delete accepted");
        Ok(job_id)
    }

    /// `DELETE /api/sites/{id}`: the site with every environment it has.
    pub async fn delete_site(&self, actor: &Actor, site_id: &str) -> Result<String, ServiceError> {
        let mut m = self.mutations.begin().await?;
        let site = fetch_site(&mut m.tx, site_id)
            .await?
            .ok_or(ServiceError::NotFound("site"))?;
        let audit = actor.audit(JobType::SiteDelete, ("site", &site.id));
        let envs = live_environments(&mut m.tx, &site.id).await?;
        let production = envs.iter().find(|e| e.environment_type == "production");
        let refusal = if let Some(e) = deletion_refusal("site", site.status) {
            Some(e)
        } else if envs.iter().any(|e| e.status == SiteStatus::Deleting) {
            Some(ServiceError::Conflict(
                "an environment of the site is being deleted; wait for that job".into(),
            ))
        } else if let Some(p) = production {
            if envs.iter().any(|e| e.node_id != p.node_id) {
                Some(ServiceError::Conflict(
                    "the site's environments are on more than one node".into(),
                ))
            } else {
                node_refusal(&mut m, p).await?
            }
        } else {
            Some(ServiceError::Conflict(
                "the site has no production environment".into(),
            ))
        };
        if let Some(e) = refusal {
            return Err(self.mutations.refuse(m, audit, e).await);
        }
        let node_id = production.map(|p| p.node_id.clone()).unwrap_or_default();
        let mut targets = Vec::new();
        for env in &envs {
            targets.push(self.prepare(&mut m, env).await?);
        }
        let from = (site.status, site.state_version);
        set_deletion_status(
            &mut m.tx,
            "site",
            &site.id,
            from,
            SiteStatus::Deleting,
            &m.now,
        )
        .await?;
        let job = JobRequest {
            job_type: JobType::SiteDelete,
            site_id: Some(&site.id),
            environment_id: None,
            node_id: &node_id,
            payload: DeletePayload {
                environments: targets,
                site_previous_status: Some(site.status),
                ..Default::default()
            },
        };
        let job_id = self.mutations.accept(m, job, Some(audit)).await?;
        tracing::info!(site = %site.id, environments = envs.len(), job = %job_id, "site delete accepted");
        Ok(job_id)
    }

    /// The final backup (when the environment has a release) and `deleting`.
    async fn prepare(
        &self,
        m: &mut Mutation,
        env: &EnvironmentRecord,
    ) -> Result<DeleteTarget, ServiceError> {
        let final_backup_id = match env.current_release_id {
            Some(_) => Some(self.backups.add_pending(m, env, BackupScope::Full).await?),
            None => None,
        };
        let from = (env.status, env.state_version);
        set_deletion_status(
            &mut m.tx,
            "environment",
            &env.id,
            from,
            SiteStatus::Deleting,
            &m.now,
        )
        .await?;
        Ok(DeleteTarget {
            environment_id: env.id.clone(),
            previous_status: env.status,
            final_backup_id,
        })
    }
}

/// `node_not_active` unless the environment's node can take the work.
async fn node_refusal(
    m: &mut Mutation,
    env: &EnvironmentRecord,
) -> Result<Option<ServiceError>, ServiceError> {
    let node = fetch_node(&mut m.tx, &env.node_id).await?;
    Ok(match node {
        Some(n) if n.status == NodeStatus::Active => None,
        _ => Some(ServiceError::NodeNotActive(
            "the environment's node is not active".into(),
        )),
    })
}
