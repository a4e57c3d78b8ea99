//! Restore drills (issue 14, item 4; beyond the spec — docs/decisions.md "Restore and
//! promotion (issue 14): restore drills"): a backup nobody has restored is a hope, not a
//! backup. A drill restores the site's latest completed full backup of production into a
//! temporary environment, runs the health checks there, records pass/fail and removes the
//! temporary environment again — all inside one `restore_drill` job
//! (src/jobs/restore_drill.rs), so production is never touched.
//!
//! This service accepts a drill (`POST /api/sites/{id}/drills`, and the scheduler's weekly or
//! monthly drills): in ONE transaction the temporary environment's row (type `clone`, slug
//! `drill-<8 hex>`, `cloning`) and its secrets, the drill's record (`running`) and the job,
//! plus the audit row. It refuses (409 `conflict`) a site without a completed full production
//! backup, a site with a drill queued or running, a failed or deleted site; 409
//! `node_not_active` when production's node is not active. It also sets the site's
//! `drill_schedule` (`PATCH /api/sites/{id}`).

use time::Duration;
use uuid::Uuid;

use crate::backups::schedule::RunCount;
use crate::clock::{parse_ts, SharedClock};
use crate::domain::{DrillSchedule, JobType, NodeStatus, SiteStatus};
use crate::jobs::{Engine, RestoreDrillPayload};
use crate::secrets::Secrets;
use crate::services::{AuditEntry, JobRequest, Mutations, ServiceError};
use crate::sites::secrets::create_environment_secrets;
use crate::sites::{deletion_refusal, layout, new_environment_id, Actor};
use crate::store::drills::{
    drill_in_progress, insert_drill, latest_production_backup, set_drill_schedule, DrillRecord,
    NewDrill,
};
use crate::store::environments::{fetch_environment, insert_environment, NewEnvironment};
use crate::store::nodes::fetch_node;
use crate::store::settings::fetch_setting;
use crate::store::sites::fetch_site;
use crate::store::Store;

/// The audit action of a change of a site's settings (`PATCH /api/sites/{id}`).
pub const SITE_UPDATE: &str = "site_update";

/// What an accepted drill returns.
#[derive(Debug, Clone)]
pub struct DrillStarted {
    pub drill_id: String,
    pub environment_id: String,
    pub job_id: String,
}

/// How long after its last drill a site on `schedule` gets the next one (`None`: off).
pub fn drill_interval(schedule: DrillSchedule) -> Option<Duration> {
    match schedule {
        DrillSchedule::Off => None,
        DrillSchedule::Weekly => Some(Duration::days(7)),
        DrillSchedule::Monthly => Some(Duration::days(30)),
    }
}

/// The drill service.
#[derive(Clone)]
pub struct Drills {
    store: Store,
    mutations: Mutations,
    secrets: Secrets,
    clock: SharedClock,
}

impl Drills {
    pub fn new(store: Store, engine: Engine, secrets: Secrets, clock: SharedClock) -> Self {
        Self {
            mutations: Mutations::new(store.clone(), engine, clock.clone()),
            store,
            secrets,
            clock,
        }
    }

    /// A site's drills, newest first; `NotFound` for an unknown site.
    pub async fn list(&self, site_id: &str) -> Result<Vec<DrillRecord>, ServiceError> {
        if self.store.get_site(site_id).await?.is_none() {
            return Err(ServiceError::NotFound("site"));
        }
        Ok(self.store.list_drills(site_id).await?)
    }

    /// `POST /api/sites/{id}/drills` (`actor`), or a scheduled drill (`None`: no audit row).
    pub async fn start(
        &self,
        actor: Option<&Actor>,
        site_id: &str,
    ) -> Result<DrillStarted, ServiceError> {
        let mut m = self.mutations.begin().await?;
        let site = fetch_site(&mut m.tx, site_id)
            .await?
            .ok_or(ServiceError::NotFound("site"))?;
        let audit = actor.map(|a| a.audit(JobType::RestoreDrill, ("site", site_id)));
        let production = match &site.primary_environment_id {
            Some(id) => fetch_environment(&mut m.tx, id).await?,
            None => None,
        };
        let backup = latest_production_backup(&mut m.tx, &site.id).await?;
        let refusal = if let Some(e) = deletion_refusal("site", site.status) {
            Some(e)
        } else if site.status == SiteStatus::Failed {
            Some(ServiceError::Conflict(
                "the site has failed; reset it first".into(),
            ))
        } else if production.is_none() {
            Some(ServiceError::Conflict(
                "the site has no production environment".into(),
            ))
        } else if drill_in_progress(&mut m.tx, &site.id).await? {
            Some(ServiceError::Conflict(
                "a restore drill of this site is already queued or running".into(),
            ))
        } else if backup.is_none() {
            Some(ServiceError::Conflict(
                "the site has no completed full backup of its production environment to drill: \
                 take a full backup first"
                    .into(),
            ))
        } else {
            None
        };
        let refuse = |m, e| async move {
            match audit {
                Some(audit) => self.mutations.refuse(m, audit, e).await,
                // A scheduled drill that cannot run leaves no trace (the rollback drops `m`).
                None => e,
            }
        };
        if let Some(e) = refusal {
            return Err(refuse(m, e).await);
        }
        let (Some(production), Some(backup_id)) = (production, backup) else {
            // Both refused above.
            let e = ServiceError::Conflict("the site cannot be drilled".into());
            return Err(refuse(m, e).await);
        };
        let node = fetch_node(&mut m.tx, &production.node_id)
            .await?
            .filter(|n| n.status == NodeStatus::Active && n.public_ip.is_some());
        let Some(node) = node else {
            let e = ServiceError::NodeNotActive(
                "the production environment's node is not active".into(),
            );
            return Err(refuse(m, e).await);
        };

        let preview_domain = fetch_setting(&mut m.tx, "preview_domain").await?;
        let env_id = new_environment_id(&mut m.tx).await?;
        let preview_url = layout::preview_url(
            &env_id,
            preview_domain.as_deref(),
            node.public_ip.as_deref().unwrap_or_default(),
        );
        let slug = format!("drill-{}", &env_id[..8]);
        let name = format!(
            "Restore drill {}",
            m.now.get(..16).unwrap_or(&m.now).replace('T', " ")
        );
        create_environment_secrets(&self.secrets, &env_id)?;
        insert_environment(
            &mut m.tx,
            &NewEnvironment {
                id: &env_id,
                site_id: &site.id,
                name: &name,
                slug: &slug,
                environment_type: "clone",
                status: SiteStatus::Cloning,
                node_id: &node.id,
                source_environment_id: Some(&production.id),
                promotion_preset: &production.promotion_preset,
                preview_url: &preview_url,
            },
            &m.now,
        )
        .await?;
        let drill_id = Uuid::new_v4().to_string();
        let job_id = Uuid::new_v4().to_string();
        insert_drill(
            &mut m.tx,
            &NewDrill {
                id: &drill_id,
                site_id: &site.id,
                environment_id: &env_id,
                backup_id: &backup_id,
                job_id: &job_id,
            },
            &m.now,
        )
        .await?;
        let payload = RestoreDrillPayload {
            drill_id: drill_id.clone(),
            backup_id: backup_id.clone(),
            ..Default::default()
        };
        let job = JobRequest {
            job_type: JobType::RestoreDrill,
            site_id: Some(&site.id),
            environment_id: Some(&env_id),
            node_id: &node.id,
            payload,
        };
        let job_id = self.mutations.accept_as(m, job_id, job, audit).await?;
        tracing::info!(site = %site.id, drill = %drill_id, backup = %backup_id, environment = %env_id, job = %job_id, "restore drill accepted");
        Ok(DrillStarted {
            drill_id,
            environment_id: env_id,
            job_id,
        })
    }

    /// `PATCH /api/sites/{id}` `{"drill_schedule": …}`: validated (naming the field), refused
    /// for a site being deleted or deleted; audited as `site_update`.
    pub async fn set_schedule(
        &self,
        actor: &Actor,
        site_id: &str,
        schedule: &str,
    ) -> Result<(), ServiceError> {
        let schedule: DrillSchedule = schedule.parse().map_err(|_| {
            ServiceError::invalid("drill_schedule", "must be one of: off, weekly, monthly")
        })?;
        let mut m = self.mutations.begin().await?;
        let site = fetch_site(&mut m.tx, site_id)
            .await?
            .ok_or(ServiceError::NotFound("site"))?;
        let audit = AuditEntry {
            user_id: &actor.user_id,
            action: SITE_UPDATE,
            resource_type: "site",
            resource_id: site_id,
        };
        if let Some(e) = deletion_refusal("site", site.status) {
            return Err(self.mutations.refuse(m, audit, e).await);
        }
        set_drill_schedule(&mut m.tx, &site.id, schedule, &m.now).await?;
        self.mutations.complete(m, audit).await?;
        tracing::info!(site = %site.id, drill_schedule = %schedule, "drill schedule set");
        Ok(())
    }

    /// The scheduler's duty: every active site on a weekly or monthly schedule whose newest
    /// drill started longer ago than the interval (or that never had one) gets a drill; a site
    /// whose drill cannot start now (no completed full backup, a drill or other job holding
    /// it, node not active) is skipped and tried again next tick. A drill's record starts the
    /// next period, so a site gets one drill per period.
    pub async fn run_schedule(&self) -> Result<RunCount, ServiceError> {
        let now = self.clock.now();
        let mut count = RunCount::default();
        for site in self.store.scheduled_drill_sites().await? {
            let Some(interval) = drill_interval(site.drill_schedule) else {
                continue;
            };
            let last = site.last_started_at.as_deref().and_then(parse_ts);
            if last.is_some_and(|t| now - t < interval) {
                continue;
            }
            match self.start(None, &site.site_id).await {
                Ok(_) => count.enqueued += 1,
                Err(ServiceError::Conflict(_) | ServiceError::NodeNotActive(_)) => {
                    count.skipped += 1
                }
                Err(e) => return Err(e),
            }
        }
        Ok(count)
    }
}
