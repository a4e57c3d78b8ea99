//! Nodes: the servers Pressluft manages over SSH.

use sqlx::{AnyConnection, FromRow};

use super::{row_by_id, set_status_guarded, Store, StoreError};
use crate::domain::NodeStatus;

/// `SELECT <columns>` of the nodes sites may be placed on, in placement order: the local node
/// first, then oldest first (architecture.md §3). One rule for the placement and the form.
macro_rules! eligible_nodes_sql {
    ($columns:literal) => {
        concat!(
            "SELECT ",
            $columns,
            " FROM nodes WHERE status = 'active' AND public_ip IS NOT NULL AND public_ip <> ''
             ORDER BY is_local DESC, created_at, id"
        )
    };
}

/// A `nodes` row.
#[derive(Debug, Clone, FromRow)]
pub struct NodeRecord {
    pub id: String,
    pub name: String,
    pub hostname: String,
    pub public_ip: Option<String>,
    pub ssh_port: i64,
    pub ssh_user: String,
    pub status: NodeStatus,
    #[sqlx(try_from = "crate::store::Flag")]
    pub is_local: bool,
    pub last_seen_at: Option<String>,
    pub created_at: String,
    pub updated_at: String,
    pub state_version: i64,
    pub firewall_status: Option<String>,
    pub provision_warning: Option<String>,
}

/// An environment a node holds, with its site (the node page).
#[derive(Debug, Clone, FromRow)]
pub struct NodeEnvironment {
    pub site_id: String,
    pub site_name: String,
    pub environment_id: String,
    pub environment_name: String,
    pub environment_type: String,
    pub status: String,
}

/// A node to insert (status `provisioning`).
#[derive(Debug, Clone)]
pub struct NewNode {
    pub id: String,
    pub name: String,
    pub hostname: String,
    pub public_ip: Option<String>,
    pub ssh_port: i64,
    pub ssh_user: String,
    pub is_local: bool,
}

impl Store {
    pub async fn list_nodes(&self) -> Result<Vec<NodeRecord>, StoreError> {
        Ok(
            crate::store::query_as("SELECT * FROM nodes ORDER BY created_at DESC, id DESC")
                .fetch_all(&self.pool)
                .await?,
        )
    }

    /// The nodes a site may be placed on, in placement order ([`eligible_nodes`]): the create
    /// form's choice.
    pub async fn eligible_nodes(&self) -> Result<Vec<NodeRecord>, StoreError> {
        Ok(crate::store::query_as(eligible_nodes_sql!("*"))
            .fetch_all(&self.pool)
            .await?)
    }

    pub async fn get_node(&self, id: &str) -> Result<Option<NodeRecord>, StoreError> {
        row_by_id(&self.pool, "nodes", id).await
    }

    /// What a node holds: its environments that are not deleted, with their site, by site
    /// name then production first (the node page).
    pub async fn environments_on_node(
        &self,
        node_id: &str,
    ) -> Result<Vec<NodeEnvironment>, StoreError> {
        Ok(crate::store::query_as(
            "SELECT s.id AS site_id, s.name AS site_name, e.id AS environment_id,
                    e.name AS environment_name, e.environment_type, e.status
               FROM environments e JOIN sites s ON s.id = e.site_id
              WHERE e.node_id = ? AND e.status <> 'deleted'
              ORDER BY s.name, s.id, e.environment_type <> 'production', e.created_at, e.id",
        )
        .bind(node_id)
        .fetch_all(&self.pool)
        .await?)
    }

    pub async fn local_node(&self) -> Result<Option<NodeRecord>, StoreError> {
        Ok(
            crate::store::query_as("SELECT * FROM nodes WHERE is_local = 1")
                .fetch_optional(&self.pool)
                .await?,
        )
    }
}

/// Inserts a node in `provisioning`; [`StoreError::Duplicate`] for a second local node.
pub async fn insert_node(
    conn: &mut AnyConnection,
    n: &NewNode,
    now: &str,
) -> Result<(), StoreError> {
    crate::store::query(
        "INSERT INTO nodes (id, name, hostname, public_ip, ssh_port, ssh_user, status, is_local,
           created_at, updated_at)
         VALUES (?, ?, ?, ?, ?, ?, 'provisioning', ?, ?, ?)",
    )
    .bind(&n.id)
    .bind(&n.name)
    .bind(&n.hostname)
    .bind(&n.public_ip)
    .bind(n.ssh_port)
    .bind(&n.ssh_user)
    .bind(crate::store::flag(n.is_local))
    .bind(now)
    .bind(now)
    .execute(conn)
    .await
    .map_err(StoreError::unique("local node"))?;
    Ok(())
}

fetch_by_id!(fetch_node, NodeRecord, "nodes");

/// Optimistic status change: applies only if the row still has `state_version`. False when a
/// concurrent change got there first.
pub async fn set_node_status(
    conn: &mut AnyConnection,
    node: &NodeRecord,
    to: NodeStatus,
    now: &str,
) -> Result<bool, StoreError> {
    set_status_guarded(
        conn,
        "nodes",
        &node.id,
        node.state_version,
        to.as_str(),
        now,
    )
    .await
}

/// Records a successful contact and the provisioning report.
pub async fn record_node_provisioned(
    conn: &mut AnyConnection,
    id: &str,
    firewall_status: Option<&str>,
    provision_warning: Option<&str>,
    now: &str,
) -> Result<(), StoreError> {
    crate::store::query(
        "UPDATE nodes SET last_seen_at = ?, firewall_status = ?, provision_warning = ?,
           state_version = state_version + 1, updated_at = ?
         WHERE id = ?",
    )
    .bind(now)
    .bind(firewall_status)
    .bind(provision_warning)
    .bind(now)
    .bind(id)
    .execute(conn)
    .await?;
    Ok(())
}

/// Refreshes a node's `last_seen_at` after a run that reached it (data-model.md: after every
/// contact). Not a state change: `state_version` and `updated_at` stay.
pub async fn touch_last_seen(
    conn: &mut AnyConnection,
    id: &str,
    now: &str,
) -> Result<(), StoreError> {
    crate::store::query("UPDATE nodes SET last_seen_at = ? WHERE id = ?")
        .bind(now)
        .bind(id)
        .execute(conn)
        .await?;
    Ok(())
}

/// Nodes sites may be placed on, in placement order. `(id, public_ip)`.
pub async fn eligible_nodes(conn: &mut AnyConnection) -> Result<Vec<(String, String)>, StoreError> {
    Ok(crate::store::query_as(eligible_nodes_sql!("id, public_ip"))
        .fetch_all(conn)
        .await?)
}

/// The nodes a domain-config save reconciles (api.md §7): every `active` node when
/// `all_active`, plus the local node (unless decommissioned) when `local`; local first.
pub async fn reconcile_targets(
    conn: &mut AnyConnection,
    all_active: bool,
    local: bool,
) -> Result<Vec<String>, StoreError> {
    let rows: Vec<(String,)> = crate::store::query_as(
        "SELECT id FROM nodes
         WHERE (?1 = 1 AND status = 'active') OR (?2 = 1 AND is_local = 1 AND status <> 'decommissioned')
         ORDER BY is_local DESC, created_at, id",
    )
    .bind(crate::store::flag(all_active))
    .bind(crate::store::flag(local))
    .fetch_all(conn)
    .await?;
    Ok(rows.into_iter().map(|(id,)| id).collect())
}
