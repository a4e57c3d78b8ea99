//! The resource feed: sites, environments, nodes and releases that changed since a point in
//! time, for the live `resource` events (api.md §5). One `UNION ALL` over the tables, so the
//! event stream needs no table of its own.

use sqlx::FromRow;

use super::{Store, StoreError};

/// A site, environment, node or release row's state, for the live `resource` events
/// (api.md §5). A release's status is its `health_status`; releases have no `state_version`
/// or `updated_at` column (yet), so they report `1` and `created_at`.
#[derive(Debug, Clone, FromRow)]
pub struct ResourceChange {
    /// `site`, `environment`, `node` or `release`.
    pub resource_type: String,
    pub id: String,
    pub status: String,
    pub state_version: i64,
    pub updated_at: String,
}

const RESOURCES: &str =
    "SELECT 'site' AS resource_type, id, status, state_version, updated_at FROM sites
  UNION ALL SELECT 'environment', id, status, state_version, updated_at FROM environments
  UNION ALL SELECT 'node', id, status, state_version, updated_at FROM nodes
  UNION ALL SELECT 'release', id, health_status, 1, created_at FROM releases";

impl Store {
    /// Resources whose `updated_at` is at or after `since`, oldest change first.
    pub async fn resources_changed_since(
        &self,
        since: &str,
        limit: i64,
    ) -> Result<Vec<ResourceChange>, StoreError> {
        Ok(sqlx::query_as(&format!(
            "SELECT * FROM ({RESOURCES}) WHERE updated_at >= ? ORDER BY updated_at, id LIMIT ?"
        ))
        .bind(since)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?)
    }

    /// The newest `updated_at` of any resource, where the resource feed starts.
    pub async fn latest_resource_change(&self) -> Result<Option<String>, StoreError> {
        let (ts,): (Option<String>,) =
            sqlx::query_as(&format!("SELECT MAX(updated_at) FROM ({RESOURCES})"))
                .fetch_one(&self.pool)
                .await?;
        Ok(ts)
    }
}
