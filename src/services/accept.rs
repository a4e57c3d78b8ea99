//! Accepting a mutation (jobs.md §2, api.md §6): the caller's row changes, the job that carries
//! them out (if any) and the audit row are written in ONE write transaction; the engine is woken
//! only after the commit. A refusal after the transaction began is recorded the same way: a
//! `rejected` audit row, committed, and the error returned. Every service action ends through
//! [`Mutations::accept`] (with a job), [`Mutations::complete`] (without) or [`Mutations::refuse`].

use serde::Serialize;
use uuid::Uuid;

use super::ServiceError;
use crate::clock::{format_ts, SharedClock};
use crate::domain::JobType;
use crate::jobs::Engine;
use crate::store::audit::{insert_audit, NewAudit};
use crate::store::queue::NewJob;
use crate::store::WriteTx;
use crate::store::{Store, StoreError};

/// The audit row of a request: who asked for what on which resource.
#[derive(Debug, Clone, Copy)]
pub struct AuditEntry<'a> {
    pub user_id: &'a str,
    /// A job type's name, or an action without a job (`settings_update`).
    pub action: &'a str,
    pub resource_type: &'a str,
    pub resource_id: &'a str,
}

/// The job an accepted request enqueues (its attempts come from its kind).
pub struct JobRequest<'a, P: Serialize> {
    pub job_type: JobType,
    pub site_id: Option<&'a str>,
    pub environment_id: Option<&'a str>,
    pub node_id: &'a str,
    pub payload: P,
}

impl<P: Serialize> JobRequest<'_, P> {
    fn new_job(&self, id: String) -> NewJob {
        NewJob {
            id,
            job_type: self.job_type,
            site_id: self.site_id.map(str::to_string),
            environment_id: self.environment_id.map(str::to_string),
            node_id: self.node_id.to_string(),
            payload_json: crate::jobs::payload::to_json(&self.payload),
            max_attempts: crate::jobs::kinds::kind(self.job_type).max_attempts(),
            parent_job_id: None,
        }
    }
}

/// A mutation in progress: its write transaction and its timestamp.
pub struct Mutation {
    pub tx: WriteTx,
    pub now: String,
}

/// Opens, accepts and refuses mutations for a service.
#[derive(Clone)]
pub struct Mutations {
    store: Store,
    engine: Engine,
    clock: SharedClock,
}

impl Mutations {
    pub fn new(store: Store, engine: Engine, clock: SharedClock) -> Self {
        Self {
            store,
            engine,
            clock,
        }
    }

    /// The current time as stored.
    pub fn now(&self) -> String {
        format_ts(self.clock.now())
    }

    /// Begins a mutation: the write transaction the caller's row changes go into.
    pub async fn begin(&self) -> Result<Mutation, ServiceError> {
        let now = self.now();
        let tx = self.store.begin_write().await?;
        Ok(Mutation { tx, now })
    }

    /// Enqueues `job` and writes its `accepted` audit row (none when no user asked) in the
    /// mutation's transaction, commits, then wakes the engine; returns the job's id.
    pub async fn accept<P: Serialize>(
        &self,
        m: Mutation,
        job: JobRequest<'_, P>,
        audit: Option<AuditEntry<'_>>,
    ) -> Result<String, ServiceError> {
        self.accept_as(m, Uuid::new_v4().to_string(), job, audit)
            .await
    }

    /// [`Mutations::accept`] with the job's id chosen by the caller, for a row the mutation
    /// inserts that names its job (a restore drill's record).
    pub async fn accept_as<P: Serialize>(
        &self,
        mut m: Mutation,
        job_id: String,
        job: JobRequest<'_, P>,
        audit: Option<AuditEntry<'_>>,
    ) -> Result<String, ServiceError> {
        let job = job.new_job(job_id);
        Engine::enqueue(&mut m.tx, &job, &m.now).await?;
        if let Some(audit) = audit {
            write_audit(&mut m.tx, &audit, "accepted", Some(&job.id), &m.now).await?;
        }
        m.tx.commit().await?;
        self.engine.enqueued();
        Ok(job.id)
    }

    /// Completes a mutation no job carries out: its `succeeded` audit row, then the commit.
    pub async fn complete(
        &self,
        mut m: Mutation,
        audit: AuditEntry<'_>,
    ) -> Result<(), ServiceError> {
        write_audit(&mut m.tx, &audit, "succeeded", None, &m.now).await?;
        m.tx.commit().await?;
        Ok(())
    }

    /// Completes a synchronous mutation that also starts jobs (a settings save reconciling
    /// nodes): the jobs, its `succeeded` audit row, the commit, then the engine is woken;
    /// returns the jobs' ids in order.
    pub async fn complete_with_jobs<P: Serialize>(
        &self,
        mut m: Mutation,
        jobs: Vec<JobRequest<'_, P>>,
        audit: AuditEntry<'_>,
    ) -> Result<Vec<String>, ServiceError> {
        let mut ids = Vec::with_capacity(jobs.len());
        for job in jobs {
            let job = job.new_job(Uuid::new_v4().to_string());
            Engine::enqueue(&mut m.tx, &job, &m.now).await?;
            ids.push(job.id);
        }
        write_audit(&mut m.tx, &audit, "succeeded", None, &m.now).await?;
        m.tx.commit().await?;
        if !ids.is_empty() {
            self.engine.enqueued();
        }
        Ok(ids)
    }

    /// Refuses the request: writes its `rejected` audit row, commits, and returns `error`
    /// for the caller to return (api.md §6).
    pub async fn refuse(
        &self,
        mut m: Mutation,
        audit: AuditEntry<'_>,
        error: ServiceError,
    ) -> ServiceError {
        let written: Result<(), ServiceError> = async {
            write_audit(&mut m.tx, &audit, "rejected", None, &m.now).await?;
            Ok(m.tx.commit().await?)
        }
        .await;
        if let Err(e) = written {
            return e;
        }
        tracing::info!(action = audit.action, resource = audit.resource_id, reason = %error, "request refused");
        error
    }
}

async fn write_audit(
    tx: &mut WriteTx,
    audit: &AuditEntry<'_>,
    result: &str,
    job_id: Option<&str>,
    now: &str,
) -> Result<(), StoreError> {
    let id = Uuid::new_v4().to_string();
    insert_audit(
        tx,
        &NewAudit {
            id: &id,
            user_id: audit.user_id,
            action: audit.action,
            resource_type: audit.resource_type,
            resource_id: audit.resource_id,
            result,
            job_id,
        },
        now,
    )
    .await?;
    tracing::info!(
        action = audit.action,
        resource = audit.resource_id,
        result,
        "audit written"
    );
    Ok(())
}
