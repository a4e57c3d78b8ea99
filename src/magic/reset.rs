//! Resetting a failed site or environment (`POST /api/sites/{id}/reset`,
//! `POST /api/environments/{id}/reset`): the only way from `failed` back to `active`
//! (state-machines.md). Nothing changes on the node: the operator asserts that what is live is
//! fine after a failure the control plane could not resolve, and the validation (api.md §3
//! decisions) makes sure the row it makes `active` again is consistent — no job in flight for
//! the site, a current release that belongs to the environment, an active node (environment),
//! an active production environment with a release (site).
//!
//! Check and change run in one write transaction, so no job can be enqueued in between; the
//! status change bumps `state_version` and `updated_at`, which the live resource feed reports.
//! Every request that reaches the check writes an audit row (`site_reset` /
//! `environment_reset`): `succeeded`, or `rejected` with the refusal.

use sqlx::AnyConnection;
use uuid::Uuid;

use crate::clock::{format_ts, SharedClock};
use crate::domain::{NodeStatus, SiteStatus};
use crate::store::audit::{insert_audit, NewAudit};
use crate::store::environments::{
    fetch_environment, production_of, set_environment_status, EnvironmentRecord,
};
use crate::store::nodes::fetch_node;
use crate::store::releases::fetch_release;
use crate::store::sites::{fetch_site, set_site_status, SiteRecord};
use crate::store::{Store, StoreError, WriteTx};

/// Why a reset was refused.
#[derive(Debug, thiserror::Error)]
pub enum ResetError {
    /// 404: the named resource does not exist.
    #[error("{0} not found")]
    NotFound(&'static str),
    /// 409 `resource_not_failed`.
    #[error("the {what} is {status}, not failed: only a failed {what} can be reset")]
    NotFailed {
        what: &'static str,
        status: SiteStatus,
    },
    /// 409 `reset_validation_failed`, with `details.reason` = `reason`.
    #[error("{message}")]
    Invalid {
        reason: &'static str,
        message: String,
    },
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<sqlx::Error> for ResetError {
    fn from(e: sqlx::Error) -> Self {
        ResetError::Store(StoreError::Query(e))
    }
}

/// The `details.reason` values of `reset_validation_failed`.
pub mod reason {
    /// A job of the site is queued or running.
    pub const JOBS_IN_PROGRESS: &str = "jobs_in_progress";
    /// Site reset: the site has no production environment.
    pub const NO_PRODUCTION: &str = "no_production_environment";
    /// Site reset: the production environment is not `active`.
    pub const PRODUCTION_NOT_ACTIVE: &str = "production_not_active";
    /// The (production) environment has no current release of its own.
    pub const NO_CURRENT_RELEASE: &str = "no_current_release";
    /// Environment reset: its node is not `active`.
    pub const NODE_NOT_ACTIVE: &str = "node_not_active";
}

/// Resets failed sites and environments.
#[derive(Clone)]
pub struct Resets {
    store: Store,
    clock: SharedClock,
}

impl Resets {
    pub fn new(store: Store, clock: SharedClock) -> Self {
        Self { store, clock }
    }

    /// `POST /api/sites/{id}/reset`: the site `failed` (else `resource_not_failed`); no
    /// queued/running job of the site; its production environment `active` with a current
    /// release of its own. Returns the new status (`active`).
    pub async fn reset_site(&self, user_id: &str, site_id: &str) -> Result<SiteStatus, ResetError> {
        let now = format_ts(self.clock.now());
        let mut tx = self.store.begin_write().await?;
        let site = fetch_site(&mut tx, site_id)
            .await?
            .ok_or(ResetError::NotFound("site"))?;
        let checked = async {
            if site.status != SiteStatus::Failed {
                return Err(ResetError::NotFailed {
                    what: "site",
                    status: site.status,
                });
            }
            no_jobs_in_flight(&mut tx, &site.id).await?;
            let production = production_of(&mut tx, &site.id).await?.ok_or_else(|| {
                invalid(
                    reason::NO_PRODUCTION,
                    "the site has no production environment",
                )
            })?;
            if production.status != SiteStatus::Active {
                return Err(invalid(
                    reason::PRODUCTION_NOT_ACTIVE,
                    format!(
                        "the production environment is {}: reset it first",
                        production.status
                    ),
                ));
            }
            own_current_release(&mut tx, &production).await
        }
        .await;
        self.finish(tx, checked, user_id, Target::Site(&site), &now)
            .await
    }

    /// `POST /api/environments/{id}/reset`: the environment `failed` (else
    /// `resource_not_failed`); no queued/running job of its site; its `current_release_id` a
    /// release of this environment; its node `active`.
    pub async fn reset_environment(
        &self,
        user_id: &str,
        environment_id: &str,
    ) -> Result<SiteStatus, ResetError> {
        let now = format_ts(self.clock.now());
        let mut tx = self.store.begin_write().await?;
        let env = fetch_environment(&mut tx, environment_id)
            .await?
            .ok_or(ResetError::NotFound("environment"))?;
        let checked = async {
            if env.status != SiteStatus::Failed {
                return Err(ResetError::NotFailed {
                    what: "environment",
                    status: env.status,
                });
            }
            no_jobs_in_flight(&mut tx, &env.site_id).await?;
            own_current_release(&mut tx, &env).await?;
            let node = fetch_node(&mut tx, &env.node_id).await?;
            if !node.is_some_and(|n| n.status == NodeStatus::Active) {
                return Err(invalid(
                    reason::NODE_NOT_ACTIVE,
                    "the environment's node is not active",
                ));
            }
            Ok(())
        }
        .await;
        self.finish(tx, checked, user_id, Target::Environment(&env), &now)
            .await
    }

    /// Moves `target` to `active` and audits `succeeded` when `checked` passed, else audits
    /// `rejected`; commits either way (a store error rolls back and writes nothing).
    async fn finish(
        &self,
        mut tx: WriteTx,
        checked: Result<(), ResetError>,
        user_id: &str,
        target: Target<'_>,
        now: &str,
    ) -> Result<SiteStatus, ResetError> {
        let (action, resource_type, resource_id) = match target {
            Target::Site(s) => ("site_reset", "site", s.id.as_str()),
            Target::Environment(e) => ("environment_reset", "environment", e.id.as_str()),
        };
        if let Err(ResetError::Store(_)) = checked {
            return checked.map(|()| SiteStatus::Active);
        }
        let result = if checked.is_ok() {
            "succeeded"
        } else {
            "rejected"
        };
        let id = Uuid::new_v4().to_string();
        insert_audit(
            &mut tx,
            &NewAudit {
                id: &id,
                user_id,
                action,
                resource_type,
                resource_id,
                result,
                job_id: None,
            },
            now,
        )
        .await?;
        if checked.is_ok() {
            match target {
                Target::Site(s) => set_site_status(&mut tx, s, SiteStatus::Active, now).await?,
                Target::Environment(e) => {
                    set_environment_status(&mut tx, e, SiteStatus::Active, now).await?
                }
            }
        }
        tx.commit().await?;
        match checked {
            Ok(()) => {
                tracing::info!(resource_type, resource_id, "reset to active");
                Ok(SiteStatus::Active)
            }
            Err(e) => {
                tracing::info!(resource_type, resource_id, reason = %e, "reset refused");
                Err(e)
            }
        }
    }
}

/// What a reset makes `active` again.
#[derive(Clone, Copy)]
enum Target<'a> {
    Site(&'a SiteRecord),
    Environment(&'a EnvironmentRecord),
}

fn invalid(reason: &'static str, message: impl Into<String>) -> ResetError {
    ResetError::Invalid {
        reason,
        message: message.into(),
    }
}

/// No `queued`/`running` job of the site.
async fn no_jobs_in_flight(conn: &mut AnyConnection, site_id: &str) -> Result<(), ResetError> {
    let n = crate::store::site_jobs_in_flight(conn, site_id).await?;
    if n > 0 {
        return Err(invalid(
            reason::JOBS_IN_PROGRESS,
            format!(
                "{n} job(s) of this site are queued or running: wait for them or cancel them first"
            ),
        ));
    }
    Ok(())
}

/// The environment's `current_release_id` names a release of this environment.
async fn own_current_release(
    conn: &mut AnyConnection,
    env: &EnvironmentRecord,
) -> Result<(), ResetError> {
    let release = match &env.current_release_id {
        Some(id) => fetch_release(&mut *conn, id).await?,
        None => None,
    };
    let own = matches!(release, Some(r) if r.environment_id == env.id);
    if !own {
        return Err(invalid(
            reason::NO_CURRENT_RELEASE,
            format!(
                "the {} environment has no current release of its own",
                env.environment_type
            ),
        ));
    }
    Ok(())
}
