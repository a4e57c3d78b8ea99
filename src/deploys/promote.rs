//! Promotion's request-time gates and its acceptance (api.md `POST
//! /api/environments/{id}/promote`, backups-restore-promotion.md §5): a non-production
//! environment → its site's production, on the same node, both "env ok", then two gates with
//! **no override**:
//!
//! - **drift**: the source's `last_drift_check_id` is a `clean` check (not the baseline), made
//!   with the source's current preset, at most [`DRIFT_MAX_AGE_MIN`] minutes ago;
//! - **backup**: the target has a `completed` `full` backup whose `completed_at` is at most
//!   [`BACKUP_MAX_AGE_MIN`] minutes ago; the newest such one is the gate backup (the rollback's
//!   database source).
//!
//! Each failing gate is answered with its own code (`drift_gate_failed`, `backup_gate_failed`)
//! and a reason in plain words; [`evaluate`] is also what the dashboard's promotion page shows,
//! so the page and the API can never disagree about why a promotion is blocked.

use sqlx::AnyConnection;
use time::OffsetDateTime;

use super::Deploys;
use crate::clock::parse_ts;
use crate::domain::{DriftStatus, EnvironmentType, JobType};
use crate::jobs::EnvPromotePayload;
use crate::services::{JobRequest, ServiceError};
use crate::sites::Actor;
use crate::store::backups::{newest_full_backup, BackupRecord};
use crate::store::drift::{drift_check_summary, DriftCheckSummary};
use crate::store::environments::{fetch_environment, EnvironmentRecord};
use crate::store::StoreError;

/// How old the source's clean drift check may be (backups-restore-promotion.md §5).
pub const DRIFT_MAX_AGE_MIN: i64 = 30;
/// How old the target's newest full backup may be.
pub const BACKUP_MAX_AGE_MIN: i64 = 60;

/// One gate's outcome: passes, or the reason it does not in plain words.
#[derive(Debug, Clone)]
pub struct GateOutcome<T> {
    /// What the gate looked at (the source's last drift check; the target's newest completed
    /// full backup, fresh or not).
    pub subject: Option<T>,
    /// Age of the subject in whole minutes.
    pub age_min: Option<i64>,
    /// `None` when the gate passes.
    pub failure: Option<String>,
}

impl<T> GateOutcome<T> {
    pub fn passes(&self) -> bool {
        self.failure.is_none()
    }
}

/// Both gates of promoting `source` into `target`.
#[derive(Debug, Clone)]
pub struct Gates {
    pub drift: GateOutcome<DriftCheckSummary>,
    pub backup: GateOutcome<BackupRecord>,
}

impl Gates {
    pub fn pass(&self) -> bool {
        self.drift.passes() && self.backup.passes()
    }
}

fn age_min(at: &str, now: OffsetDateTime) -> Option<i64> {
    parse_ts(at).map(|t| (now - t).whole_minutes().max(0))
}

/// Strictly older than `max` minutes (a check exactly `max` minutes old still passes).
fn older_than(at: &str, now: OffsetDateTime, max: i64) -> bool {
    parse_ts(at).is_none_or(|t| now - t > time::Duration::minutes(max))
}

/// The drift gate of `source` at `now`.
pub async fn drift_gate(
    conn: &mut AnyConnection,
    source: &EnvironmentRecord,
    now: OffsetDateTime,
) -> Result<GateOutcome<DriftCheckSummary>, StoreError> {
    let check = match &source.last_drift_check_id {
        Some(id) => drift_check_summary(conn, id).await?,
        None => None,
    };
    let age = check.as_ref().and_then(|c| age_min(&c.checked_at, now));
    let failure = match &check {
        None => Some("No drift check has been run for this environment yet: run one.".to_string()),
        Some(c) if c.is_baseline => {
            Some("No drift check has been run for this environment yet: run one.".to_string())
        }
        Some(c) if c.status != DriftStatus::Clean => Some(format!(
            "Production has changed since this environment was cloned (the last drift check \
             is {}); promoting would overwrite those changes, so it is blocked. Clone \
             production again and re-apply your changes.",
            c.status
        )),
        Some(c) if c.promotion_preset != source.promotion_preset => Some(format!(
            "The last drift check compared the preset {}, but this environment's preset is {}: \
             run a new drift check.",
            c.promotion_preset, source.promotion_preset
        )),
        Some(c) if older_than(&c.checked_at, now, DRIFT_MAX_AGE_MIN) => Some(format!(
            "The last clean drift check is {} min old (more than {DRIFT_MAX_AGE_MIN} min): \
             run a new one.",
            age.unwrap_or_default()
        )),
        Some(_) => None,
    };
    Ok(GateOutcome {
        subject: check,
        age_min: age,
        failure,
    })
}

/// The backup gate of `target` at `now`.
pub async fn backup_gate(
    conn: &mut AnyConnection,
    target: &EnvironmentRecord,
    now: OffsetDateTime,
) -> Result<GateOutcome<BackupRecord>, StoreError> {
    let newest = newest_full_backup(conn, &target.id).await?;
    let completed_at = newest.as_ref().and_then(|b| b.completed_at.clone());
    let age = completed_at.as_deref().and_then(|at| age_min(at, now));
    let failure = match &completed_at {
        None => Some(
            "Production has no completed full backup: create one now (a promotion needs one \
             from the last 60 min to roll back to)."
                .to_string(),
        ),
        Some(at) if older_than(at, now, BACKUP_MAX_AGE_MIN) => Some(format!(
            "The newest full backup of production completed {} min ago (more than \
             {BACKUP_MAX_AGE_MIN} min): create a fresh one.",
            age.unwrap_or_default()
        )),
        Some(_) => None,
    };
    Ok(GateOutcome {
        subject: newest,
        age_min: age,
        failure,
    })
}

/// Both gates (see the module doc).
pub async fn evaluate(
    conn: &mut AnyConnection,
    source: &EnvironmentRecord,
    target: &EnvironmentRecord,
    now: OffsetDateTime,
) -> Result<Gates, StoreError> {
    Ok(Gates {
        drift: drift_gate(conn, source, now).await?,
        backup: backup_gate(conn, target, now).await?,
    })
}

impl Deploys {
    /// `POST /api/environments/{id}/promote`: the target (a UUID, else 400; unknown, 404);
    /// same site, target production, source not (400 naming `target_environment_id`); the
    /// same node (409 `conflict`); both "env ok"; then the drift and the backup gate (409
    /// `drift_gate_failed` / `backup_gate_failed`, audited `rejected`); then `env_promote` on
    /// the target, its payload naming the gate backup and the drift check.
    pub async fn promote(
        &self,
        actor: &Actor,
        source_id: &str,
        target_environment_id: &str,
    ) -> Result<String, ServiceError> {
        let target_id = uuid::Uuid::parse_str(target_environment_id.trim())
            .map_err(|_| ServiceError::invalid("target_environment_id", "must be a UUID"))?
            .to_string();
        let mut m = self.mutations.begin().await?;
        let source = fetch_environment(&mut m.tx, source_id)
            .await?
            .ok_or(ServiceError::NotFound("environment"))?;
        let target = fetch_environment(&mut m.tx, &target_id)
            .await?
            .ok_or(ServiceError::NotFound("target environment"))?;
        if target.site_id != source.site_id {
            return Err(ServiceError::invalid(
                "target_environment_id",
                "must be an environment of the same site",
            ));
        }
        let production = EnvironmentType::Production.as_str();
        if target.environment_type != production {
            return Err(ServiceError::invalid(
                "target_environment_id",
                "must be the site's production environment",
            ));
        }
        if source.environment_type == production {
            return Err(ServiceError::invalid(
                "target_environment_id",
                "production cannot be promoted; promote a staging or clone environment into it",
            ));
        }
        let audit = actor.audit(JobType::EnvPromote, ("environment", &target.id));
        if target.node_id != source.node_id {
            let e = ServiceError::Conflict(
                "the environment and production are on different nodes; promotion copies on \
                 one node only"
                    .into(),
            );
            return Err(self.mutations.refuse(m, audit, e).await);
        }
        let (m, _) = self
            .env_ok(m, actor, JobType::EnvPromote, &source.id)
            .await?;
        let (mut m, target) = self
            .env_ok(m, actor, JobType::EnvPromote, &target.id)
            .await?;
        let now = parse_ts(&m.now).unwrap_or_else(OffsetDateTime::now_utc);
        let gates = evaluate(&mut m.tx, &source, &target, now).await?;
        if let Some(reason) = gates.drift.failure.clone() {
            return Err(self
                .mutations
                .refuse(m, audit, ServiceError::DriftGateFailed(reason))
                .await);
        }
        if let Some(reason) = gates.backup.failure.clone() {
            return Err(self
                .mutations
                .refuse(m, audit, ServiceError::BackupGateFailed(reason))
                .await);
        }
        let payload = EnvPromotePayload {
            source_environment_id: source.id.clone(),
            gate_backup_id: gates.backup.subject.map(|b| b.id).unwrap_or_default(),
            drift_check_id: gates.drift.subject.map(|c| c.id).unwrap_or_default(),
            ..Default::default()
        };
        let job = JobRequest {
            job_type: JobType::EnvPromote,
            site_id: Some(&target.site_id),
            environment_id: Some(&target.id),
            node_id: &target.node_id,
            payload: payload.clone(),
        };
        let job_id = self.mutations.accept(m, job, Some(audit)).await?;
        tracing::info!(source = %source.id, target = %target.id, gate_backup = %payload.gate_backup_id,
            drift_check = %payload.drift_check_id, job = %job_id, "promotion accepted");
        Ok(job_id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ages_are_strict() {
        let now = parse_ts("2026-01-01T12:00:00.000Z").unwrap();
        assert!(!older_than("2026-01-01T11:30:00.000Z", now, 30));
        assert!(older_than("2026-01-01T11:29:00.000Z", now, 30));
        assert!(older_than("not a time", now, 30));
        assert_eq!(age_min("2026-01-01T11:29:00.000Z", now), Some(31));
    }
}
