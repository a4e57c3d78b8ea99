//! Drift checks (api.md Environments and "Nodes, audit, drift checks";
//! backups-restore-promotion.md §3): accepting a check of a non-production environment
//! (`drift_check`) and reading a recorded check with its differences from the environment's
//! clone-time baseline. Part of the deploy service for its "env ok" rule and its way of
//! accepting a job; the comparison is [`crate::domain::drift`], the node work
//! `src/node_helper/drift.rs`.

use super::Deploys;
use crate::domain::drift::{differences, Checksums, Difference};
use crate::domain::{EnvironmentType, JobType};
use crate::jobs::DriftCheckPayload;
use crate::services::{JobRequest, ServiceError};
use crate::sites::Actor;
use crate::store::drift::{fetch_baseline, fetch_drift_check, DriftCheckRecord};
use crate::store::environments::fetch_environment;
use crate::store::sites::fetch_site;

/// A recorded drift check and what differs from its environment's baseline.
#[derive(Debug, Clone)]
pub struct DriftCheckView {
    pub record: DriftCheckRecord,
    /// Empty for a baseline (it is the reference) and for a clean check.
    pub differences: Vec<Difference>,
}

impl Deploys {
    /// `POST /api/environments/{id}/drift-check`: "env ok"; the environment is not production
    /// and has a baseline (409 `conflict` otherwise), then `drift_check` on production's node.
    pub async fn drift_check(
        &self,
        actor: &Actor,
        environment_id: &str,
    ) -> Result<String, ServiceError> {
        let m = self.mutations.begin().await?;
        let (mut m, env) = self
            .env_ok(m, actor, JobType::DriftCheck, environment_id)
            .await?;
        let audit = actor.audit(JobType::DriftCheck, ("environment", &env.id));
        if env.environment_type == EnvironmentType::Production.as_str() {
            let e = ServiceError::Conflict(
                "production has no drift check: drift is production's change since a \
                 non-production environment was cloned"
                    .into(),
            );
            return Err(self.mutations.refuse(m, audit, e).await);
        }
        let Some(baseline) = fetch_baseline(&mut m.tx, &env.id).await? else {
            let e = ServiceError::Conflict(
                "the environment has no drift baseline (it was not cloned by Pressluft); \
                 create a fresh clone"
                    .into(),
            );
            return Err(self.mutations.refuse(m, audit, e).await);
        };
        let site = fetch_site(&mut m.tx, &env.site_id)
            .await?
            .ok_or(ServiceError::NotFound("site"))?;
        let production = match &site.primary_environment_id {
            Some(id) => fetch_environment(&mut m.tx, id).await?,
            None => None,
        };
        let Some(production) = production.filter(|p| p.current_release_id.is_some()) else {
            let e =
                ServiceError::Conflict("the site's production environment has no release".into());
            return Err(self.mutations.refuse(m, audit, e).await);
        };
        let job = JobRequest {
            job_type: JobType::DriftCheck,
            site_id: Some(&env.site_id),
            environment_id: Some(&env.id),
            node_id: &production.node_id,
            payload: DriftCheckPayload {
                production_environment_id: production.id.clone(),
                baseline_drift_check_id: baseline.id.clone(),
                promotion_preset: env.promotion_preset.parse().ok(),
                ..Default::default()
            },
        };
        let job_id = self.mutations.accept(m, job, Some(audit)).await?;
        tracing::info!(environment = %env.id, preset = %env.promotion_preset, job = %job_id, "drift check accepted");
        Ok(job_id)
    }

    /// `GET /api/drift-checks/{id}`: the row and its differences from the environment's
    /// baseline (the tables and paths the row holds, i.e. its preset's).
    pub async fn get_drift_check(&self, id: &str) -> Result<DriftCheckView, ServiceError> {
        let mut conn = self
            .store
            .pool()
            .acquire()
            .await
            .map_err(crate::store::StoreError::from)?;
        let record = fetch_drift_check(&mut conn, id)
            .await?
            .ok_or(ServiceError::NotFound("drift check"))?;
        let differences = if record.is_baseline {
            Vec::new()
        } else {
            let baseline = fetch_baseline(&mut conn, &record.environment_id).await?;
            let baseline = baseline.map(|b| b.checksums()).transpose();
            compared(&record, baseline)
        };
        Ok(DriftCheckView {
            record,
            differences,
        })
    }
}

/// The differences of `record` from `baseline` (restricted to what the record holds); an
/// unreadable side compares as empty, so everything differs rather than nothing.
fn compared<E: std::fmt::Display>(
    record: &DriftCheckRecord,
    baseline: Result<Option<Checksums>, E>,
) -> Vec<Difference> {
    let current = record.checksums().unwrap_or_else(|e| {
        tracing::error!(drift_check = %record.id, error = %e, "unreadable drift check row");
        Checksums::default()
    });
    let baseline = baseline
        .unwrap_or_else(|e| {
            tracing::error!(drift_check = %record.id, error = %e, "unreadable drift baseline");
            None
        })
        .unwrap_or_default();
    differences(&baseline.restricted_to(&current), &current)
}
