//! The backup service (backups-restore-promotion.md §1, api.md Backups): accepting a backup of
//! an environment (a `pending` row, its own data key in the secrets store, the `backup_create`
//! job) and a Verify of a completed one (`backup_verify`). Where a backup is kept is decided
//! here, once, at creation: an S3-compatible bucket when `backup_s3_bucket` is set, else a
//! directory on the environment's node.

pub mod download;
pub mod schedule;
pub mod schedule_view;
pub mod storage;

use time::Duration;
use uuid::Uuid;

use crate::clock::{format_ts, parse_ts, SharedClock};
use crate::domain::{BackupScope, BackupStatus, BackupStorageType, JobType, NodeStatus};
use crate::jobs::{BackupCreatePayload, BackupVerifyPayload, Engine};
use crate::secrets::Secrets;
use crate::services::{JobRequest, Mutation, Mutations, ServiceError};
use crate::sites::Actor;
use crate::store::backups::{fetch_backup, insert_backup, BackupRecord, NewBackup};
use crate::store::environments::{fetch_environment, EnvironmentRecord};
use crate::store::nodes::fetch_node;
use crate::store::settings::fetch_setting;
use crate::store::{Store, StoreError};

/// Where local backups live on a node (backups-restore-promotion.md §1): the node helper's
/// own constant, so the paths the control plane records are the ones `backup-delete` accepts.
pub use crate::node_helper::backup::delete::LOCAL_ROOT as LOCAL_BACKUP_ROOT;

/// Default `backup_retention_days`.
pub const DEFAULT_RETENTION_DAYS: i64 = 30;

/// Default `backup_schedule_hours` (0 turns scheduled backups off).
pub const DEFAULT_SCHEDULE_HOURS: i64 = 24;

/// How often each site's backups are cleaned up (jobs.md §9), and how long after start-up
/// the first check runs.
pub const CLEANUP_EVERY: time::Duration = time::Duration::hours(6);
pub const CLEANUP_FIRST_CHECK_AFTER: time::Duration = time::Duration::minutes(1);

/// The secrets-store key of a backup's data key (an age X25519 identity).
pub fn data_key_secret(backup_id: &str) -> String {
    format!("backup/{backup_id}/key")
}

/// The local storage path of a backup: `/var/backups/pressluft/<site>/<env>/<backup>/`.
pub fn local_storage_path(site_id: &str, environment_id: &str, backup_id: &str) -> String {
    format!("{LOCAL_BACKUP_ROOT}/{site_id}/{environment_id}/{backup_id}/")
}

/// The S3 storage path of a backup: `s3://<bucket>/<prefix>/<site>/<env>/<backup>/`.
pub fn s3_storage_path(
    bucket: &str,
    prefix: &str,
    site_id: &str,
    environment_id: &str,
    backup_id: &str,
) -> String {
    let prefix = prefix.trim_matches('/');
    let prefix = if prefix.is_empty() {
        String::new()
    } else {
        format!("{prefix}/")
    };
    format!("s3://{bucket}/{prefix}{site_id}/{environment_id}/{backup_id}/")
}

/// What an accepted backup returns.
#[derive(Debug, Clone)]
pub struct BackupCreated {
    pub backup_id: String,
    pub job_id: String,
}

/// The backup service.
#[derive(Clone)]
pub struct Backups {
    store: Store,
    mutations: Mutations,
    secrets: Secrets,
}

impl Backups {
    pub fn new(store: Store, engine: Engine, secrets: Secrets, clock: SharedClock) -> Self {
        Self {
            mutations: Mutations::new(store.clone(), engine, clock),
            store,
            secrets,
        }
    }

    /// An environment's backups, newest first; `NotFound` for an unknown environment.
    pub async fn list(&self, environment_id: &str) -> Result<Vec<BackupRecord>, ServiceError> {
        if self.store.get_environment(environment_id).await?.is_none() {
            return Err(ServiceError::NotFound("environment"));
        }
        Ok(self.store.list_backups(environment_id).await?)
    }

    /// One backup; `NotFound` when there is none.
    pub async fn get(&self, backup_id: &str) -> Result<BackupRecord, ServiceError> {
        self.store
            .get_backup(backup_id)
            .await?
            .ok_or(ServiceError::NotFound("backup"))
    }

    /// `POST /api/environments/{id}/backups`: a `pending` backup of `scope` and its
    /// `backup_create` job. Any environment status is allowed (api.md); the node must be
    /// active. `actor` is `None` for scheduled backups (no audit row).
    pub async fn create(
        &self,
        actor: Option<&Actor>,
        environment_id: &str,
        scope: &str,
    ) -> Result<BackupCreated, ServiceError> {
        let scope: BackupScope = scope.parse().map_err(|_| {
            ServiceError::invalid("backup_scope", "must be one of: db, files, full")
        })?;
        let mut m = self.mutations.begin().await?;
        let env = fetch_environment(&mut m.tx, environment_id)
            .await?
            .ok_or(ServiceError::NotFound("environment"))?;
        let refused = crate::sites::deletion_refusal("environment", env.status)
            .map(Err)
            .unwrap_or(node_active(&mut m, &env).await?);
        if let Err(e) = refused {
            return Err(match actor {
                Some(a) => {
                    let audit = a.audit(JobType::BackupCreate, ("environment", &env.id));
                    self.mutations.refuse(m, audit, e).await
                }
                None => e,
            });
        }
        let backup_id = self.add_pending(&mut m, &env, scope).await?;
        let job = JobRequest {
            job_type: JobType::BackupCreate,
            site_id: Some(&env.site_id),
            environment_id: Some(&env.id),
            node_id: &env.node_id,
            payload: BackupCreatePayload {
                backup_id: backup_id.clone(),
                backup_scope: scope,
                ..Default::default()
            },
        };
        let audit = actor.map(|a| a.audit(JobType::BackupCreate, ("backup", &backup_id)));
        let job_id = self.mutations.accept(m, job, audit).await?;
        tracing::info!(environment = %env.id, backup = %backup_id, %scope, job = %job_id, "backup accepted");
        Ok(BackupCreated { backup_id, job_id })
    }

    /// Inserts a `pending` backup of `env` inside another mutation (the pre-operation backup of
    /// an update, a restore, an import: jobs.md §11), with its data key; where it is kept is
    /// decided now, from the settings in force. Returns its id; the caller's job produces it.
    pub async fn add_pending(
        &self,
        m: &mut Mutation,
        env: &EnvironmentRecord,
        scope: BackupScope,
    ) -> Result<String, ServiceError> {
        let backup_id = Uuid::new_v4().to_string();
        // The data key exists before the row that needs it; a refusal after this point is
        // impossible (only the commit can fail, leaving an unused secret).
        self.secrets.put(
            &data_key_secret(&backup_id),
            &crate::node_helper::backup::generate_data_key(),
        )?;
        insert_pending(&mut m.tx, env, &backup_id, scope, &m.now).await?;
        Ok(backup_id)
    }

    /// `POST /api/backups/{id}/verify`: a `backup_verify` job for a `completed` backup.
    pub async fn verify(&self, actor: &Actor, backup_id: &str) -> Result<String, ServiceError> {
        let mut m = self.mutations.begin().await?;
        let backup = fetch_backup(&mut m.tx, backup_id)
            .await?
            .ok_or(ServiceError::NotFound("backup"))?;
        let env = fetch_environment(&mut m.tx, &backup.environment_id)
            .await?
            .ok_or(ServiceError::NotFound("environment"))?;
        let audit = actor.audit(JobType::BackupVerify, ("backup", &backup.id));
        if backup.status != BackupStatus::Completed {
            let e = ServiceError::Conflict(format!(
                "only a completed backup can be verified; this one is {}",
                backup.status
            ));
            return Err(self.mutations.refuse(m, audit, e).await);
        }
        if let Err(e) = node_active(&mut m, &env).await? {
            return Err(self.mutations.refuse(m, audit, e).await);
        }
        let job = JobRequest {
            job_type: JobType::BackupVerify,
            site_id: Some(&env.site_id),
            environment_id: Some(&env.id),
            node_id: &env.node_id,
            payload: BackupVerifyPayload {
                backup_id: backup.id.clone(),
                ..Default::default()
            },
        };
        let job_id = self.mutations.accept(m, job, Some(audit)).await?;
        tracing::info!(backup = %backup.id, job = %job_id, "backup verify accepted");
        Ok(job_id)
    }
}

/// `Err(node_not_active)` when the environment's node cannot take work now.
async fn node_active(
    m: &mut Mutation,
    env: &EnvironmentRecord,
) -> Result<Result<(), ServiceError>, ServiceError> {
    let node = fetch_node(&mut m.tx, &env.node_id).await?;
    Ok(match node {
        Some(n) if n.status == NodeStatus::Active => Ok(()),
        _ => Err(ServiceError::NodeNotActive(
            "the environment's node is not active".into(),
        )),
    })
}

/// The storage of a new backup, from the settings at creation.
/// Inserts the `pending` row of backup `backup_id` of `env` whose data key is already in the
/// secrets store (inside the caller's transaction): where it is kept and how long, decided now
/// from the settings in force. [`Backups::add_pending`] and a job hook that prepared the key
/// before its run (a safe update's automatic apply, issue 16) share it.
pub(crate) async fn insert_pending(
    conn: &mut sqlx::AnyConnection,
    env: &EnvironmentRecord,
    backup_id: &str,
    scope: BackupScope,
    now: &str,
) -> Result<(), StoreError> {
    let (storage_type, storage_path) = storage_for(conn, &env.site_id, &env.id, backup_id).await?;
    let retention_days = fetch_setting(conn, "backup_retention_days")
        .await?
        .and_then(|d| d.parse::<i64>().ok())
        .unwrap_or(DEFAULT_RETENTION_DAYS);
    let created = parse_ts(now).expect("the clock's timestamps parse");
    let retention_until = format_ts(created + Duration::days(retention_days));
    insert_backup(
        conn,
        &NewBackup {
            id: backup_id,
            environment_id: &env.id,
            scope,
            storage_type,
            storage_path: &storage_path,
            retention_until: &retention_until,
        },
        now,
    )
    .await?;
    tracing::info!(environment = %env.id, backup = %backup_id, %scope, storage = %storage_type, "backup row added (pending)");
    Ok(())
}

async fn storage_for(
    conn: &mut sqlx::AnyConnection,
    site_id: &str,
    environment_id: &str,
    backup_id: &str,
) -> Result<(BackupStorageType, String), StoreError> {
    let bucket = fetch_setting(conn, "backup_s3_bucket").await?;
    Ok(match bucket.filter(|b| !b.is_empty()) {
        Some(bucket) => {
            let prefix = fetch_setting(conn, "backup_s3_prefix")
                .await?
                .unwrap_or_else(|| "pressluft".into());
            (
                BackupStorageType::S3,
                s3_storage_path(&bucket, &prefix, site_id, environment_id, backup_id),
            )
        }
        None => (
            BackupStorageType::Local,
            local_storage_path(site_id, environment_id, backup_id),
        ),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn storage_paths_follow_the_spec() {
        assert_eq!(
            local_storage_path("s", "e", "b"),
            "/var/backups/pressluft/s/e/b/"
        );
        assert_eq!(
            s3_storage_path("bk", "/pressluft/", "s", "e", "b"),
            "s3://bk/pressluft/s/e/b/"
        );
        assert_eq!(s3_storage_path("bk", "", "s", "e", "b"), "s3://bk/s/e/b/");
        assert_eq!(data_key_secret("b"), "backup/b/key");
    }
}
