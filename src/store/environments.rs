//! Environments: the `environments` table, one row per copy of a site on a node, created by
//! `site_create` (production) and `env_create` (clones) (state-machines.md, Site and
//! environment). Status changes are guarded by `state_version` like a site's.

use sqlx::{AnyConnection, FromRow};

use super::sites::set_lifecycle_status;
use super::{Store, StoreError};
use crate::domain::{DriftStatus, SiteStatus};

/// An `environments` row.
#[derive(Debug, Clone, FromRow)]
pub struct EnvironmentRecord {
    pub id: String,
    pub site_id: String,
    pub name: String,
    pub slug: String,
    pub environment_type: String,
    pub status: SiteStatus,
    pub node_id: String,
    pub source_environment_id: Option<String>,
    pub promotion_preset: String,
    pub preview_url: String,
    pub primary_domain_id: Option<String>,
    pub current_release_id: Option<String>,
    pub drift_status: DriftStatus,
    pub drift_checked_at: Option<String>,
    pub last_drift_check_id: Option<String>,
    #[sqlx(try_from = "crate::store::Flag")]
    pub fastcgi_cache_enabled: bool,
    #[sqlx(try_from = "crate::store::Flag")]
    pub redis_cache_enabled: bool,
    pub created_at: String,
    pub updated_at: String,
    pub state_version: i64,
    /// When its `env_delete` (or its site's `site_delete`) finished (status `deleted`).
    pub deleted_at: Option<String>,
}

/// An environment to insert.
#[derive(Debug, Clone)]
pub struct NewEnvironment<'a> {
    pub id: &'a str,
    pub site_id: &'a str,
    pub name: &'a str,
    pub slug: &'a str,
    pub environment_type: &'a str,
    pub status: SiteStatus,
    pub node_id: &'a str,
    pub source_environment_id: Option<&'a str>,
    pub promotion_preset: &'a str,
    pub preview_url: &'a str,
}

impl Store {
    /// A site's environments, production first, then oldest first.
    pub async fn list_environments(
        &self,
        site_id: &str,
    ) -> Result<Vec<EnvironmentRecord>, StoreError> {
        let order = "environment_type <> 'production', created_at, id";
        self.rows_where("environments", "site_id", site_id, order)
            .await
    }

    pub async fn get_environment(&self, id: &str) -> Result<Option<EnvironmentRecord>, StoreError> {
        fetch_environment(&mut *self.pool.acquire().await?, id).await
    }
}

fetch_by_id!(fetch_environment, EnvironmentRecord, "environments");

/// Whether an environment of `site_id` not deleted uses `slug`.
pub async fn environment_slug_taken(
    conn: &mut AnyConnection,
    site_id: &str,
    slug: &str,
) -> Result<bool, StoreError> {
    let row: Option<(i64,)> = crate::store::query_as(
        "SELECT 1 FROM environments WHERE site_id = ? AND slug = ? AND status <> 'deleted'",
    )
    .bind(site_id)
    .bind(slug)
    .fetch_optional(conn)
    .await?;
    Ok(row.is_some())
}

/// The environments of `site_id` not `deleted`, production first.
pub async fn live_environments(
    conn: &mut AnyConnection,
    site_id: &str,
) -> Result<Vec<EnvironmentRecord>, StoreError> {
    Ok(crate::store::query_as(
        "SELECT * FROM environments WHERE site_id = ? AND status <> 'deleted'
          ORDER BY environment_type <> 'production', created_at, id",
    )
    .bind(site_id)
    .fetch_all(conn)
    .await?)
}

/// Whether any environment's id starts with the same 8 characters (architecture.md §4).
pub async fn environment_prefix_taken(
    conn: &mut AnyConnection,
    id: &str,
) -> Result<bool, StoreError> {
    let row: Option<(i64,)> =
        crate::store::query_as("SELECT 1 FROM environments WHERE substr(id, 1, 8) = ?")
            .bind(&id[..8])
            .fetch_optional(conn)
            .await?;
    Ok(row.is_some())
}

pub async fn insert_environment(
    conn: &mut AnyConnection,
    e: &NewEnvironment<'_>,
    now: &str,
) -> Result<(), StoreError> {
    crate::store::query(
        "INSERT INTO environments (id, site_id, name, slug, environment_type, status, node_id,
           source_environment_id, promotion_preset, preview_url, drift_status,
           fastcgi_cache_enabled, redis_cache_enabled, created_at, updated_at)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'unknown', 1, 1, ?, ?)",
    )
    .bind(e.id)
    .bind(e.site_id)
    .bind(e.name)
    .bind(e.slug)
    .bind(e.environment_type)
    .bind(e.status.as_str())
    .bind(e.node_id)
    .bind(e.source_environment_id)
    .bind(e.promotion_preset)
    .bind(e.preview_url)
    .bind(now)
    .bind(now)
    .execute(conn)
    .await
    .map_err(StoreError::unique("environment"))?;
    Ok(())
}

/// Deletes the row of an environment still `cloning` whose job never created it on a node
/// (nothing of it exists anywhere else).
pub async fn delete_unbuilt_environment(
    conn: &mut AnyConnection,
    id: &str,
) -> Result<(), StoreError> {
    crate::store::query("DELETE FROM environments WHERE id = ? AND status = 'cloning'")
        .bind(id)
        .execute(conn)
        .await?;
    Ok(())
}

/// Sets an environment's status (guarded by the `state_version` read).
pub async fn set_environment_status(
    conn: &mut AnyConnection,
    env: &EnvironmentRecord,
    to: SiteStatus,
    now: &str,
) -> Result<(), StoreError> {
    let from = (env.status, env.state_version);
    set_lifecycle_status(conn, "environment", &env.id, from, to, now).await
}

/// The environment's canonical URL: `https://<primary domain>` when it has one, else its
/// preview URL (domains-and-tls.md §2).
pub async fn canonical_url(
    conn: &mut AnyConnection,
    environment_id: &str,
) -> Result<Option<String>, StoreError> {
    let row: Option<(String,)> = crate::store::query_as(
        "SELECT COALESCE('https://' || d.hostname, e.preview_url)
         FROM environments e LEFT JOIN domains d ON d.id = e.primary_domain_id
         WHERE e.id = ?",
    )
    .bind(environment_id)
    .fetch_optional(conn)
    .await?;
    Ok(row.map(|(u,)| u))
}

/// Writes an environment's cache flags (the intent; `env_cache_toggle` converges the node to
/// them). Not a status change: `state_version` stays.
pub async fn set_cache_flags(
    conn: &mut AnyConnection,
    environment_id: &str,
    fastcgi_cache_enabled: bool,
    redis_cache_enabled: bool,
    now: &str,
) -> Result<(), StoreError> {
    crate::store::query(
        "UPDATE environments SET fastcgi_cache_enabled = ?, redis_cache_enabled = ?, updated_at = ?
         WHERE id = ?",
    )
    .bind(crate::store::flag(fastcgi_cache_enabled))
    .bind(crate::store::flag(redis_cache_enabled))
    .bind(now)
    .bind(environment_id)
    .execute(conn)
    .await?;
    Ok(())
}

/// The host names of an environment's custom domains (oldest first).
pub async fn domain_hostnames(
    conn: &mut AnyConnection,
    environment_id: &str,
) -> Result<Vec<String>, StoreError> {
    let rows: Vec<(String,)> = crate::store::query_as(
        "SELECT hostname FROM domains WHERE environment_id = ? ORDER BY created_at, id",
    )
    .bind(environment_id)
    .fetch_all(conn)
    .await?;
    Ok(rows.into_iter().map(|(h,)| h).collect())
}

/// The site an environment belongs to (`None`: no such environment).
pub async fn environment_site_id(
    conn: &mut AnyConnection,
    id: &str,
) -> Result<Option<String>, StoreError> {
    Ok(
        crate::store::query_scalar("SELECT site_id FROM environments WHERE id = ?")
            .bind(id)
            .fetch_optional(&mut *conn)
            .await?,
    )
}

/// The site's live production environment (the promotion target), if any.
pub async fn production_of(
    conn: &mut AnyConnection,
    site_id: &str,
) -> Result<Option<EnvironmentRecord>, StoreError> {
    let id: Option<(String,)> = crate::store::query_as(
        "SELECT id FROM environments WHERE site_id = ? AND environment_type = 'production'
           AND deleted_at IS NULL LIMIT 1",
    )
    .bind(site_id)
    .fetch_optional(&mut *conn)
    .await?;
    match id {
        Some((id,)) => fetch_environment(conn, &id).await,
        None => Ok(None),
    }
}
