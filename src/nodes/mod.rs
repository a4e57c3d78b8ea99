//! The node service: registering nodes (the local one at first start) and re-provisioning.
//! Each action enqueues `node_provision` in the same transaction as the rows it creates and its
//! audit row ([`crate::services::Mutations`]); input validation is in [`validate`].

pub mod command;
pub mod validate;

use std::net::Ipv4Addr;

use crate::clock::SharedClock;
use crate::domain::{JobType, NodeStatus};
use crate::jobs::{Engine, NodeProvisionPayload};
use crate::services::{AuditEntry, JobRequest, Mutations, ServiceError};
use crate::store::nodes::{fetch_node, insert_node};
use crate::store::queue::job_pending_for_node;
use crate::store::{Store, StoreError};

pub use validate::{is_dns_name, is_ssh_user, NodeInput};

/// The job that provisions `node_id` (its payload is empty at the enqueue).
fn provision_job(node_id: &str) -> JobRequest<'_, NodeProvisionPayload> {
    JobRequest {
        job_type: JobType::NodeProvision,
        site_id: None,
        environment_id: None,
        node_id,
        payload: NodeProvisionPayload::default(),
    }
}

/// The audit row of a `node_provision` request.
fn audit<'a>(user_id: &'a str, node_id: &'a str) -> AuditEntry<'a> {
    AuditEntry {
        user_id,
        action: JobType::NodeProvision.as_str(),
        resource_type: "node",
        resource_id: node_id,
    }
}

/// The node service.
#[derive(Clone)]
pub struct Nodes {
    store: Store,
    mutations: Mutations,
}

impl Nodes {
    pub fn new(store: Store, engine: Engine, clock: SharedClock) -> Self {
        let mutations = Mutations::new(store.clone(), engine, clock);
        Self { store, mutations }
    }

    /// Registers a node and enqueues its provisioning, audited for `user_id`.
    pub async fn register(
        &self,
        user_id: &str,
        input: NodeInput,
    ) -> Result<(String, String), ServiceError> {
        let node = input.validate()?;
        let mut m = self.mutations.begin().await?;
        if node.is_local {
            if let Some(existing) = self.store.local_node().await? {
                let e = ServiceError::Conflict(format!(
                    "a local node is already registered ({})",
                    existing.name
                ));
                return Err(self
                    .mutations
                    .refuse(m, audit(user_id, &existing.id), e)
                    .await);
            }
        }
        insert_node(&mut m.tx, &node, &m.now)
            .await
            .map_err(|e| match e {
                StoreError::Duplicate(_) => {
                    ServiceError::Conflict("a local node is already registered".into())
                }
                other => ServiceError::Store(other),
            })?;
        let job_id = self
            .mutations
            .accept(m, provision_job(&node.id), Some(audit(user_id, &node.id)))
            .await?;
        tracing::info!(node = %node.id, name = %node.name, hostname = %node.hostname, job = %job_id, "node registered");
        Ok((node.id, job_id))
    }

    /// Enqueues `node_provision` again (not while one is pending, not for decommissioned nodes).
    pub async fn provision(&self, user_id: &str, node_id: &str) -> Result<String, ServiceError> {
        let mut m = self.mutations.begin().await?;
        let node = fetch_node(&mut m.tx, node_id)
            .await?
            .ok_or(ServiceError::NotFound("node"))?;
        let refusal = if node.status == NodeStatus::Decommissioned {
            Some("the node is decommissioned")
        } else if job_pending_for_node(&mut m.tx, node_id, JobType::NodeProvision).await? {
            Some("a node_provision job for this node is already queued or running")
        } else {
            None
        };
        if let Some(reason) = refusal {
            let e = ServiceError::Conflict(reason.to_string());
            return Err(self.mutations.refuse(m, audit(user_id, node_id), e).await);
        }
        let job_id = self
            .mutations
            .accept(m, provision_job(node_id), Some(audit(user_id, node_id)))
            .await?;
        tracing::info!(node = node_id, job = %job_id, "provision requested");
        Ok(job_id)
    }

    /// At the first `serve` start: registers this host as the local node (127.0.0.1 as root)
    /// and enqueues its provisioning. No audit row: no user asked. `None` when a local node
    /// exists, also when another replica registered it in the same moment.
    pub async fn register_local_if_missing(
        &self,
        public_ip: Option<Ipv4Addr>,
    ) -> Result<Option<String>, ServiceError> {
        if self.store.local_node().await?.is_some() {
            return Ok(None);
        }
        let name = std::fs::read_to_string("/proc/sys/kernel/hostname")
            .map(|h| h.trim().to_string())
            .ok()
            .filter(|h| !h.is_empty())
            .unwrap_or_else(|| "local".into());
        let node = NodeInput {
            name,
            hostname: "127.0.0.1".into(),
            public_ip: public_ip.map(|ip| ip.to_string()),
            ssh_port: Some(22),
            ssh_user: Some("root".into()),
            is_local: true,
        }
        .validate()?;
        let mut m = self.mutations.begin().await?;
        match insert_node(&mut m.tx, &node, &m.now).await {
            Ok(()) => {}
            // Another replica starting at the same time registered it between the check above
            // and this insert (the partial unique index `nodes_one_local` holds one local node).
            Err(StoreError::Duplicate(_)) => {
                tracing::info!("local node registered by another replica starting beside this one");
                return Ok(None);
            }
            Err(e) => return Err(e.into()),
        }
        let job_id = self
            .mutations
            .accept(m, provision_job(&node.id), None)
            .await?;
        tracing::info!(node = %node.id, job = %job_id, "local node registered; provisioning enqueued");
        Ok(Some(node.id))
    }
}
