//! Point-in-time counts for the overview (no caching: always from the database).

use serde::Serialize;
use utoipa::ToSchema;

use super::{Store, StoreError};

/// `GET /api/metrics`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema, sqlx::FromRow)]
pub struct Metrics {
    /// Jobs in `running`.
    pub jobs_running: i64,
    /// Jobs in `queued`.
    pub jobs_queued: i64,
    /// Nodes in `active`.
    pub nodes_active: i64,
    /// All sites.
    pub sites_total: i64,
}

impl Store {
    pub async fn metrics(&self) -> Result<Metrics, StoreError> {
        Ok(crate::store::query_as(
            "SELECT
               (SELECT COUNT(*) FROM jobs WHERE status = 'running') AS jobs_running,
               (SELECT COUNT(*) FROM jobs WHERE status = 'queued') AS jobs_queued,
               (SELECT COUNT(*) FROM nodes WHERE status = 'active') AS nodes_active,
               (SELECT COUNT(*) FROM sites) AS sites_total",
        )
        .fetch_one(&self.pool)
        .await?)
    }
}
