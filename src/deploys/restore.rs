//! Accepting a restore (`POST /api/environments/{id}/restore`, api.md; backups-restore-promotion.md
//! §2): a completed backup of the same site, from any of its environments, restored into the
//! environment by `env_restore` ([`crate::jobs::env_restore`]) with a `pending` full
//! pre-restore backup row created in the same transaction.

use crate::domain::{BackupScope, BackupStatus, JobType};
use crate::jobs::env_restore::EnvRestorePayload;
use crate::services::{JobRequest, ServiceError};
use crate::sites::Actor;
use crate::store::backups::fetch_backup;
use crate::store::environments::fetch_environment;

use super::Deploys;

impl Deploys {
    /// `POST /api/environments/{id}/restore`: `backup_id` given (400), the environment (404),
    /// the backup (404), of an environment of the same site (400 naming `backup_id`),
    /// `completed` (409 `conflict`), then "env ok"; enqueues `env_restore` with its `pending`
    /// pre-restore backup. A refusal after the environment was found writes a `rejected` audit
    /// row.
    pub async fn restore(
        &self,
        actor: &Actor,
        environment_id: &str,
        backup_id: &str,
    ) -> Result<String, ServiceError> {
        let backup_id = backup_id.trim();
        if backup_id.is_empty() {
            return Err(ServiceError::invalid("backup_id", "is required"));
        }
        let mut m = self.mutations.begin().await?;
        let env = fetch_environment(&mut m.tx, environment_id)
            .await?
            .ok_or(ServiceError::NotFound("environment"))?;
        let backup = fetch_backup(&mut m.tx, backup_id)
            .await?
            .ok_or(ServiceError::NotFound("backup"))?;
        let source = fetch_environment(&mut m.tx, &backup.environment_id).await?;
        let refusal = if source.as_ref().map(|s| s.site_id.as_str()) != Some(env.site_id.as_str()) {
            Some(ServiceError::invalid(
                "backup_id",
                "must be a backup of the same site",
            ))
        } else if backup.status != BackupStatus::Completed || backup.checksum.is_none() {
            Some(ServiceError::Conflict(format!(
                "the backup is {}: only a completed backup can be restored",
                backup.status
            )))
        } else {
            None
        };
        if let Some(e) = refusal {
            let audit = actor.audit(JobType::EnvRestore, ("environment", &env.id));
            return Err(self.mutations.refuse(m, audit, e).await);
        }
        let (mut m, env) = self
            .env_ok(m, actor, JobType::EnvRestore, environment_id)
            .await?;
        let pre_backup_id = self
            .backups
            .add_pending(&mut m, &env, BackupScope::Full)
            .await?;
        let job = JobRequest {
            job_type: JobType::EnvRestore,
            site_id: Some(&env.site_id),
            environment_id: Some(&env.id),
            node_id: &env.node_id,
            payload: EnvRestorePayload {
                backup_id: backup.id.clone(),
                pre_backup_id: pre_backup_id.clone(),
                ..Default::default()
            },
        };
        let audit = actor.audit(JobType::EnvRestore, ("environment", &env.id));
        let job_id = self.mutations.accept(m, job, Some(audit)).await?;
        tracing::info!(environment = %env.id, backup = %backup.id, pre_backup = %pre_backup_id, job = %job_id, "restore accepted");
        Ok(job_id)
    }
}
