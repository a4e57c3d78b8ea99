//! The resource feed: sites, environments, nodes, releases, backups and domains that changed since a point in
//! time, for the live `resource` events (api.md §5). One `UNION ALL` over the tables, so the
//! event stream needs no table of its own.

use std::fmt;

use sqlx::any::AnyRow;
use sqlx::{FromRow, Row};

use super::{Store, StoreError};
use crate::domain::{BackupStatus, HealthStatus, NodeStatus, ResourceType, SiteStatus, TlsStatus};

/// A site, environment, node or release row's state, for the live `resource` events
/// (api.md §5). A release's status is its `health_status`; releases have no `state_version`
/// or `updated_at` column (yet), so they report `1` and `created_at`.
#[derive(Debug, Clone)]
pub struct ResourceChange {
    /// `site`, `environment`, `node` or `release`.
    pub resource_type: ResourceType,
    pub id: String,
    pub status: ResourceStatus,
    pub state_version: i64,
    pub updated_at: String,
}

/// A resource's status, from its type's set of values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResourceStatus {
    /// A site's or an environment's.
    Site(SiteStatus),
    Node(NodeStatus),
    /// A release's `health_status`.
    Release(HealthStatus),
    Backup(BackupStatus),
    /// A custom domain's `tls_status`.
    Domain(TlsStatus),
}

impl ResourceStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            ResourceStatus::Site(s) => s.as_str(),
            ResourceStatus::Node(s) => s.as_str(),
            ResourceStatus::Release(s) => s.as_str(),
            ResourceStatus::Backup(s) => s.as_str(),
            ResourceStatus::Domain(s) => s.as_str(),
        }
    }
}

impl fmt::Display for ResourceStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Decodes the status by the row's type: a value outside that type's set (or a type the feed
/// does not select) is a decode error of the `status` column, not a panic.
impl FromRow<'_, AnyRow> for ResourceChange {
    fn from_row(row: &AnyRow) -> Result<Self, sqlx::Error> {
        let resource_type: ResourceType = row.try_get("resource_type")?;
        let text: &str = row.try_get("status")?;
        let decode = |e: Box<dyn std::error::Error + Send + Sync>| sqlx::Error::ColumnDecode {
            index: "status".into(),
            source: e,
        };
        let status = match resource_type {
            ResourceType::Site | ResourceType::Environment => {
                ResourceStatus::Site(text.parse().map_err(|e| decode(Box::new(e)))?)
            }
            ResourceType::Node => {
                ResourceStatus::Node(text.parse().map_err(|e| decode(Box::new(e)))?)
            }
            ResourceType::Release => {
                ResourceStatus::Release(text.parse().map_err(|e| decode(Box::new(e)))?)
            }
            ResourceType::Backup => {
                ResourceStatus::Backup(text.parse().map_err(|e| decode(Box::new(e)))?)
            }
            ResourceType::Domain => {
                ResourceStatus::Domain(text.parse().map_err(|e| decode(Box::new(e)))?)
            }
        };
        Ok(ResourceChange {
            resource_type,
            id: row.try_get("id")?,
            status,
            state_version: row.try_get("state_version")?,
            updated_at: row.try_get("updated_at")?,
        })
    }
}

const RESOURCES: &str =
    "SELECT 'site' AS resource_type, id, status, state_version, updated_at FROM sites
  UNION ALL SELECT 'environment', id, status, state_version, updated_at FROM environments
  UNION ALL SELECT 'node', id, status, state_version, updated_at FROM nodes
  UNION ALL SELECT 'release', id, health_status, state_version, updated_at FROM releases
  UNION ALL SELECT 'backup', id, status, state_version, updated_at FROM backups
  UNION ALL SELECT 'domain', id, tls_status, 1, updated_at FROM domains";

impl Store {
    /// Resources whose `updated_at` is at or after `since`, oldest change first.
    pub async fn resources_changed_since(
        &self,
        since: &str,
        limit: i64,
    ) -> Result<Vec<ResourceChange>, StoreError> {
        self.changed_since(&format!("SELECT * FROM ({RESOURCES}) j"), since, limit)
            .await
    }

    /// The newest `updated_at` of any resource, where the resource feed starts.
    pub async fn latest_resource_change(&self) -> Result<Option<String>, StoreError> {
        self.latest_change(&format!("({RESOURCES}) r")).await
    }
}
