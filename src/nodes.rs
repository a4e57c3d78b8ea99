//! The node service: registering nodes (the local one at first start), re-provisioning, and the
//! validation of node input. Each action enqueues `node_provision` in the same transaction as
//! the rows it creates and its audit row.

use std::net::{IpAddr, Ipv4Addr};

use uuid::Uuid;

use crate::clock::{format_ts, SharedClock};
use crate::domain::{JobType, NodeStatus};
use crate::jobs::Engine;
use crate::store::audit::{insert_audit, NewAudit};
use crate::store::nodes::{fetch_node, insert_node, NewNode};
use crate::store::queue::{job_pending_for_node, NewJob};
use crate::store::{Store, StoreError};

/// Failures of node actions.
#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    #[error("{field}: {message}")]
    Invalid {
        field: &'static str,
        message: String,
    },
    #[error("{0}")]
    Conflict(String),
    #[error("node not found")]
    NotFound,
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Registration input, before validation.
#[derive(Debug, Clone, Default)]
pub struct NodeInput {
    pub name: String,
    pub hostname: String,
    pub public_ip: Option<String>,
    pub ssh_port: Option<i64>,
    pub ssh_user: Option<String>,
    pub is_local: bool,
}

impl From<sqlx::Error> for NodeError {
    fn from(e: sqlx::Error) -> Self {
        NodeError::Store(StoreError::Query(e))
    }
}

fn invalid(field: &'static str, message: &str) -> NodeError {
    NodeError::Invalid {
        field,
        message: message.to_string(),
    }
}

/// A DNS name: labels of `[a-z0-9-]` (1–63, no edge hyphen), at most 253 characters.
pub fn is_dns_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 253
        && s.split('.').all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && !l.starts_with('-')
                && !l.ends_with('-')
                && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        })
}

/// The SSH user pattern `^[a-z_][a-z0-9_-]{0,31}$`.
pub fn is_ssh_user(s: &str) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_lowercase() || c == '_')
        && s.len() <= 32
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-')
}

impl NodeInput {
    /// Validates every field, naming the first bad one.
    pub fn validate(self) -> Result<NewNode, NodeError> {
        let name = crate::domain::parse_name(&self.name)
            .ok_or_else(|| invalid("name", crate::domain::NAME_RULE))?;
        // Taken as sent (the dashboard trims its form fields): the API document states these
        // patterns exactly, so the server accepts nothing it does not describe.
        let hostname = self.hostname.to_ascii_lowercase();
        if hostname.parse::<IpAddr>().is_err() && !is_dns_name(&hostname) {
            return Err(invalid("hostname", "must be an IP address or a DNS name"));
        }
        let public_ip = match self.public_ip.filter(|s| !s.is_empty()) {
            None => None,
            Some(ip) => Some(
                ip.parse::<Ipv4Addr>()
                    .map_err(|_| invalid("public_ip", "must be an IPv4 address"))?
                    .to_string(),
            ),
        };
        let ssh_port = self.ssh_port.unwrap_or(22);
        if !(1..=65535).contains(&ssh_port) {
            return Err(invalid("ssh_port", "must be from 1 to 65535"));
        }
        let ssh_user = self.ssh_user.unwrap_or_else(|| "root".into());
        if !is_ssh_user(&ssh_user) {
            return Err(invalid("ssh_user", "must match ^[a-z_][a-z0-9_-]{0,31}$"));
        }
        Ok(NewNode {
            id: Uuid::new_v4().to_string(),
            name,
            hostname,
            public_ip,
            ssh_port,
            ssh_user,
            is_local: self.is_local,
        })
    }
}

fn provision_job(node_id: &str) -> NewJob {
    NewJob {
        id: Uuid::new_v4().to_string(),
        job_type: JobType::NodeProvision,
        site_id: None,
        environment_id: None,
        node_id: node_id.to_string(),
        payload_json: "{}".into(),
        max_attempts: crate::jobs::kinds::kind(JobType::NodeProvision).max_attempts(),
        parent_job_id: None,
    }
}

/// The audit row of a `node_provision` request.
async fn audit_node_provision(
    conn: &mut sqlx::SqliteConnection,
    user_id: &str,
    node_id: &str,
    result: &str,
    job_id: Option<&str>,
    now: &str,
) -> Result<(), StoreError> {
    let id = Uuid::new_v4().to_string();
    let audit = NewAudit {
        id: &id,
        user_id,
        action: JobType::NodeProvision.as_str(),
        resource_type: "node",
        resource_id: node_id,
        result,
        job_id,
    };
    insert_audit(conn, &audit, now).await?;
    tracing::info!(node = node_id, result, "audit written");
    Ok(())
}

/// The node service.
#[derive(Clone)]
pub struct Nodes {
    store: Store,
    engine: Engine,
    clock: SharedClock,
}

impl Nodes {
    pub fn new(store: Store, engine: Engine, clock: SharedClock) -> Self {
        Self {
            store,
            engine,
            clock,
        }
    }

    /// Registers a node and enqueues its provisioning, audited for `user_id`.
    pub async fn register(
        &self,
        user_id: &str,
        input: NodeInput,
    ) -> Result<(String, String), NodeError> {
        let node = input.validate()?;
        let now = format_ts(self.clock.now());
        let mut tx = self.store.begin_write().await?;
        if node.is_local {
            if let Some(existing) = self.store.local_node().await? {
                audit_node_provision(&mut tx, user_id, &existing.id, "rejected", None, &now)
                    .await?;
                tx.commit().await?;
                tracing::info!(existing = %existing.id, "node registration refused: a local node exists");
                return Err(NodeError::Conflict(format!(
                    "a local node is already registered ({})",
                    existing.name
                )));
            }
        }
        insert_node(&mut tx, &node, &now)
            .await
            .map_err(|e| match e {
                StoreError::Duplicate(_) => {
                    NodeError::Conflict("a local node is already registered".into())
                }
                other => NodeError::Store(other),
            })?;
        let job = provision_job(&node.id);
        Engine::enqueue(&mut tx, &job, &now).await?;
        audit_node_provision(&mut tx, user_id, &node.id, "accepted", Some(&job.id), &now).await?;
        tx.commit().await?;
        tracing::info!(node = %node.id, name = %node.name, hostname = %node.hostname, job = %job.id, "node registered; audit written");
        self.engine.enqueued();
        Ok((node.id, job.id))
    }

    /// Enqueues `node_provision` again (not while one is pending, not for decommissioned nodes).
    pub async fn provision(&self, user_id: &str, node_id: &str) -> Result<String, NodeError> {
        let now = format_ts(self.clock.now());
        let mut tx = self.store.begin_write().await?;
        let node = fetch_node(&mut tx, node_id)
            .await?
            .ok_or(NodeError::NotFound)?;
        let refusal = if node.status == NodeStatus::Decommissioned {
            Some("the node is decommissioned")
        } else if job_pending_for_node(&mut tx, node_id, JobType::NodeProvision).await? {
            Some("a node_provision job for this node is already queued or running")
        } else {
            None
        };
        if let Some(reason) = refusal {
            audit_node_provision(&mut tx, user_id, node_id, "rejected", None, &now).await?;
            tx.commit().await?;
            tracing::info!(node = node_id, reason, "provision refused");
            return Err(NodeError::Conflict(reason.to_string()));
        }
        let job = provision_job(node_id);
        Engine::enqueue(&mut tx, &job, &now).await?;
        audit_node_provision(&mut tx, user_id, node_id, "accepted", Some(&job.id), &now).await?;
        tx.commit().await?;
        tracing::info!(node = node_id, job = %job.id, "provision requested; audit written");
        self.engine.enqueued();
        Ok(job.id)
    }

    /// At the first `serve` start: registers this host as the local node (127.0.0.1 as root)
    /// and enqueues its provisioning. No audit row: no user asked.
    pub async fn register_local_if_missing(
        &self,
        public_ip: Option<Ipv4Addr>,
    ) -> Result<Option<String>, NodeError> {
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
        let now = format_ts(self.clock.now());
        let mut tx = self.store.begin_write().await?;
        insert_node(&mut tx, &node, &now).await?;
        let job = provision_job(&node.id);
        Engine::enqueue(&mut tx, &job, &now).await?;
        tx.commit().await?;
        tracing::info!(node = %node.id, job = %job.id, "local node registered; provisioning enqueued");
        self.engine.enqueued();
        Ok(Some(node.id))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn input() -> NodeInput {
        NodeInput {
            name: "edge-1".into(),
            hostname: "Edge-1.Example.com".into(),
            ..Default::default()
        }
    }

    #[test]
    fn validates_and_normalises() {
        let n = input().validate().unwrap();
        assert_eq!(n.hostname, "edge-1.example.com");
        assert_eq!((n.ssh_port, n.ssh_user.as_str()), (22, "root"));
        let field = |i: NodeInput| match i.validate() {
            Err(NodeError::Invalid { field, .. }) => field,
            other => panic!("{other:?}"),
        };
        assert_eq!(
            field(NodeInput {
                name: " ".into(),
                ..input()
            }),
            "name"
        );
        assert_eq!(
            field(NodeInput {
                hostname: "bad host".into(),
                ..input()
            }),
            "hostname"
        );
        // Taken as sent: the API document's pattern has no room for padding or a root dot.
        for padded in [" x.com", "x.com.", "x.com\n"] {
            assert_eq!(
                field(NodeInput {
                    hostname: padded.into(),
                    ..input()
                }),
                "hostname"
            );
        }
        assert_eq!(
            field(NodeInput {
                name: "a\u{7}b".into(),
                ..input()
            }),
            "name"
        );
        assert_eq!(
            field(NodeInput {
                hostname: "-x.com".into(),
                ..input()
            }),
            "hostname"
        );
        assert_eq!(
            field(NodeInput {
                public_ip: Some("::1".into()),
                ..input()
            }),
            "public_ip"
        );
        assert_eq!(
            field(NodeInput {
                ssh_port: Some(0),
                ..input()
            }),
            "ssh_port"
        );
        assert_eq!(
            field(NodeInput {
                ssh_user: Some("Root".into()),
                ..input()
            }),
            "ssh_user"
        );
        assert!(NodeInput {
            hostname: "10.0.0.5".into(),
            ..input()
        }
        .validate()
        .is_ok());
        assert!(NodeInput {
            hostname: "::1".into(),
            ..input()
        }
        .validate()
        .is_ok());
    }
}
