//! Sites, environments, releases and drift checks: the rows `site_create` and `env_create`
//! create and the transitions their jobs write (state-machines.md, Site and environment).
//!
//! Status changes are guarded by `state_version`; inside the engine's write transaction a
//! lost update is impossible, so a zero-row update is reported as an error.

use sqlx::{FromRow, SqliteConnection};

use super::{Store, StoreError};
use crate::domain::SiteStatus;

/// A `sites` row.
#[derive(Debug, Clone, FromRow)]
pub struct SiteRecord {
    pub id: String,
    pub name: String,
    pub slug: String,
    pub status: String,
    pub primary_environment_id: Option<String>,
    pub created_at: String,
    pub updated_at: String,
    pub state_version: i64,
}

/// An `environments` row.
#[derive(Debug, Clone, FromRow)]
pub struct EnvironmentRecord {
    pub id: String,
    pub site_id: String,
    pub name: String,
    pub slug: String,
    pub environment_type: String,
    pub status: String,
    pub node_id: String,
    pub source_environment_id: Option<String>,
    pub promotion_preset: String,
    pub preview_url: String,
    pub primary_domain_id: Option<String>,
    pub current_release_id: Option<String>,
    pub drift_status: String,
    pub drift_checked_at: Option<String>,
    pub last_drift_check_id: Option<String>,
    pub fastcgi_cache_enabled: bool,
    pub redis_cache_enabled: bool,
    pub created_at: String,
    pub updated_at: String,
    pub state_version: i64,
}

/// A `releases` row.
#[derive(Debug, Clone, FromRow)]
pub struct ReleaseRecord {
    pub id: String,
    pub environment_id: String,
    pub source_type: String,
    pub source_ref: String,
    pub path: String,
    pub health_status: String,
    pub notes: Option<String>,
    pub job_id: Option<String>,
    pub created_at: String,
}

#[derive(FromRow)]
struct SiteRelease {
    #[sqlx(flatten)]
    release: ReleaseRecord,
    environment_name: String,
    environment_type: String,
}

/// A site listed with what the Sites page shows.
#[derive(Debug, Clone, FromRow)]
pub struct SiteSummary {
    #[sqlx(flatten)]
    pub site: SiteRecord,
    pub production_url: Option<String>,
    pub environment_count: i64,
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

/// A release to record.
#[derive(Debug, Clone)]
pub struct NewRelease<'a> {
    pub id: &'a str,
    pub environment_id: &'a str,
    pub source_type: &'a str,
    pub source_ref: &'a str,
    pub path: &'a str,
    pub notes: Option<&'a str>,
    pub job_id: &'a str,
}

/// A drift check row to insert.
#[derive(Debug, Clone)]
pub struct NewDriftCheck<'a> {
    pub id: &'a str,
    pub environment_id: &'a str,
    pub promotion_preset: &'a str,
    pub status: &'a str,
    pub db_checksums_json: &'a str,
    pub file_checksums_json: &'a str,
    pub is_baseline: bool,
}

const SITE_SUMMARY: &str = "SELECT s.*,
    (SELECT e.preview_url FROM environments e WHERE e.id = s.primary_environment_id) AS production_url,
    (SELECT COUNT(*) FROM environments e WHERE e.site_id = s.id) AS environment_count
  FROM sites s";

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

    /// `(id, name)` of every site, by name: the options of a site filter.
    pub async fn site_options(&self) -> Result<Vec<(String, String)>, StoreError> {
        Ok(
            sqlx::query_as("SELECT id, name FROM sites ORDER BY name, id")
                .fetch_all(&self.pool)
                .await?,
        )
    }

    /// Every site, newest first.
    pub async fn list_sites(&self) -> Result<Vec<SiteSummary>, StoreError> {
        Ok(sqlx::query_as(&format!(
            "{SITE_SUMMARY} ORDER BY s.created_at DESC, s.id DESC"
        ))
        .fetch_all(&self.pool)
        .await?)
    }

    pub async fn get_site(&self, id: &str) -> Result<Option<SiteRecord>, StoreError> {
        Ok(sqlx::query_as("SELECT * FROM sites WHERE id = ?")
            .bind(id)
            .fetch_optional(&self.pool)
            .await?)
    }

    /// A site's environments, production first, then oldest first.
    pub async fn list_environments(
        &self,
        site_id: &str,
    ) -> Result<Vec<EnvironmentRecord>, StoreError> {
        Ok(sqlx::query_as(
            "SELECT * FROM environments WHERE site_id = ?
             ORDER BY environment_type <> 'production', created_at, id",
        )
        .bind(site_id)
        .fetch_all(&self.pool)
        .await?)
    }

    pub async fn get_environment(&self, id: &str) -> Result<Option<EnvironmentRecord>, StoreError> {
        fetch_environment(&mut *self.pool.acquire().await?, id).await
    }

    /// An environment's releases, newest first.
    pub async fn list_releases(
        &self,
        environment_id: &str,
    ) -> Result<Vec<ReleaseRecord>, StoreError> {
        Ok(sqlx::query_as(
            "SELECT * FROM releases WHERE environment_id = ? ORDER BY created_at DESC, id DESC",
        )
        .bind(environment_id)
        .fetch_all(&self.pool)
        .await?)
    }

    /// The releases of every environment of a site, newest first, with the environment's name
    /// and type.
    pub async fn list_site_releases(
        &self,
        site_id: &str,
        limit: i64,
    ) -> Result<Vec<(ReleaseRecord, String, String)>, StoreError> {
        let rows: Vec<SiteRelease> = sqlx::query_as(
            "SELECT r.*, e.name AS environment_name, e.environment_type
             FROM releases r JOIN environments e ON e.id = r.environment_id
             WHERE e.site_id = ? ORDER BY r.created_at DESC, r.id DESC LIMIT ?",
        )
        .bind(site_id)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .into_iter()
            .map(|r| (r.release, r.environment_name, r.environment_type))
            .collect())
    }

    pub async fn get_release(&self, id: &str) -> Result<Option<ReleaseRecord>, StoreError> {
        Ok(sqlx::query_as("SELECT * FROM releases WHERE id = ?")
            .bind(id)
            .fetch_optional(&self.pool)
            .await?)
    }
}

pub async fn fetch_site(
    conn: &mut SqliteConnection,
    id: &str,
) -> Result<Option<SiteRecord>, StoreError> {
    Ok(sqlx::query_as("SELECT * FROM sites WHERE id = ?")
        .bind(id)
        .fetch_optional(conn)
        .await?)
}

pub async fn fetch_environment(
    conn: &mut SqliteConnection,
    id: &str,
) -> Result<Option<EnvironmentRecord>, StoreError> {
    Ok(sqlx::query_as("SELECT * FROM environments WHERE id = ?")
        .bind(id)
        .fetch_optional(conn)
        .await?)
}

pub async fn fetch_release(
    conn: &mut SqliteConnection,
    id: &str,
) -> Result<Option<ReleaseRecord>, StoreError> {
    Ok(sqlx::query_as("SELECT * FROM releases WHERE id = ?")
        .bind(id)
        .fetch_optional(conn)
        .await?)
}

/// Whether a site uses `slug`.
pub async fn site_slug_taken(conn: &mut SqliteConnection, slug: &str) -> Result<bool, StoreError> {
    let row: Option<(i64,)> = sqlx::query_as("SELECT 1 FROM sites WHERE slug = ?")
        .bind(slug)
        .fetch_optional(conn)
        .await?;
    Ok(row.is_some())
}

/// Whether an environment of `site_id` uses `slug`.
pub async fn environment_slug_taken(
    conn: &mut SqliteConnection,
    site_id: &str,
    slug: &str,
) -> Result<bool, StoreError> {
    let row: Option<(i64,)> =
        sqlx::query_as("SELECT 1 FROM environments WHERE site_id = ? AND slug = ?")
            .bind(site_id)
            .bind(slug)
            .fetch_optional(conn)
            .await?;
    Ok(row.is_some())
}

/// Whether any environment's id starts with the same 8 characters (architecture.md §4).
pub async fn environment_prefix_taken(
    conn: &mut SqliteConnection,
    id: &str,
) -> Result<bool, StoreError> {
    let row: Option<(i64,)> =
        sqlx::query_as("SELECT 1 FROM environments WHERE substr(id, 1, 8) = ?")
            .bind(&id[..8])
            .fetch_optional(conn)
            .await?;
    Ok(row.is_some())
}

/// Inserts a site (without its primary environment, set by [`set_primary_environment`]).
pub async fn insert_site(
    conn: &mut SqliteConnection,
    id: &str,
    name: &str,
    slug: &str,
    status: SiteStatus,
    now: &str,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO sites (id, name, slug, status, created_at, updated_at)
         VALUES (?, ?, ?, ?, ?, ?)",
    )
    .bind(id)
    .bind(name)
    .bind(slug)
    .bind(status.as_str())
    .bind(now)
    .bind(now)
    .execute(conn)
    .await
    .map_err(StoreError::unique("site"))?;
    Ok(())
}

pub async fn set_primary_environment(
    conn: &mut SqliteConnection,
    site_id: &str,
    environment_id: &str,
    now: &str,
) -> Result<(), StoreError> {
    sqlx::query("UPDATE sites SET primary_environment_id = ?, updated_at = ? WHERE id = ?")
        .bind(environment_id)
        .bind(now)
        .bind(site_id)
        .execute(conn)
        .await?;
    Ok(())
}

pub async fn insert_environment(
    conn: &mut SqliteConnection,
    e: &NewEnvironment<'_>,
    now: &str,
) -> Result<(), StoreError> {
    sqlx::query(
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

fn lost_update(what: &str, id: &str) -> StoreError {
    StoreError::Query(sqlx::Error::Protocol(format!(
        "{what} {id} changed concurrently"
    )))
}

/// Sets a site's status (guarded by the `state_version` read).
pub async fn set_site_status(
    conn: &mut SqliteConnection,
    site: &SiteRecord,
    to: SiteStatus,
    now: &str,
) -> Result<(), StoreError> {
    let r = sqlx::query(
        "UPDATE sites SET status = ?, state_version = state_version + 1, updated_at = ?
         WHERE id = ? AND state_version = ?",
    )
    .bind(to.as_str())
    .bind(now)
    .bind(&site.id)
    .bind(site.state_version)
    .execute(conn)
    .await?;
    if r.rows_affected() != 1 {
        return Err(lost_update("site", &site.id));
    }
    tracing::info!(site = %site.id, from = %site.status, to = to.as_str(), "site status changed");
    Ok(())
}

/// Sets an environment's status (guarded by the `state_version` read).
pub async fn set_environment_status(
    conn: &mut SqliteConnection,
    env: &EnvironmentRecord,
    to: SiteStatus,
    now: &str,
) -> Result<(), StoreError> {
    let r = sqlx::query(
        "UPDATE environments SET status = ?, state_version = state_version + 1, updated_at = ?
         WHERE id = ? AND state_version = ?",
    )
    .bind(to.as_str())
    .bind(now)
    .bind(&env.id)
    .bind(env.state_version)
    .execute(conn)
    .await?;
    if r.rows_affected() != 1 {
        return Err(lost_update("environment", &env.id));
    }
    tracing::info!(environment = %env.id, from = %env.status, to = to.as_str(), "environment status changed");
    Ok(())
}

/// Records a built release and makes it the environment's current one, setting the
/// environment `active` (one statement pair inside the completion transaction).
pub async fn record_release_and_activate(
    conn: &mut SqliteConnection,
    env: &EnvironmentRecord,
    r: &NewRelease<'_>,
    now: &str,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO releases (id, environment_id, source_type, source_ref, path, health_status,
           notes, job_id, created_at)
         VALUES (?, ?, ?, ?, ?, 'unknown', ?, ?, ?)",
    )
    .bind(r.id)
    .bind(r.environment_id)
    .bind(r.source_type)
    .bind(r.source_ref)
    .bind(r.path)
    .bind(r.notes)
    .bind(r.job_id)
    .bind(now)
    .execute(&mut *conn)
    .await?;
    let u = sqlx::query(
        "UPDATE environments SET current_release_id = ?, status = 'active',
           state_version = state_version + 1, updated_at = ?
         WHERE id = ? AND state_version = ?",
    )
    .bind(r.id)
    .bind(now)
    .bind(&env.id)
    .bind(env.state_version)
    .execute(conn)
    .await?;
    if u.rows_affected() != 1 {
        return Err(lost_update("environment", &env.id));
    }
    tracing::info!(environment = %env.id, release = r.id, path = r.path, "release recorded; environment active");
    Ok(())
}

pub async fn insert_drift_check(
    conn: &mut SqliteConnection,
    d: &NewDriftCheck<'_>,
    now: &str,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO drift_checks (id, environment_id, promotion_preset, status,
           db_checksums_json, file_checksums_json, is_baseline, checked_at)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
    )
    .bind(d.id)
    .bind(d.environment_id)
    .bind(d.promotion_preset)
    .bind(d.status)
    .bind(d.db_checksums_json)
    .bind(d.file_checksums_json)
    .bind(d.is_baseline)
    .bind(now)
    .execute(conn)
    .await?;
    Ok(())
}

/// The environment's canonical URL: `https://<primary domain>` when it has one, else its
/// preview URL (domains-and-tls.md §2).
pub async fn canonical_url(
    conn: &mut SqliteConnection,
    environment_id: &str,
) -> Result<Option<String>, StoreError> {
    let row: Option<(String,)> = sqlx::query_as(
        "SELECT COALESCE('https://' || d.hostname, e.preview_url)
         FROM environments e LEFT JOIN domains d ON d.id = e.primary_domain_id
         WHERE e.id = ?",
    )
    .bind(environment_id)
    .fetch_optional(conn)
    .await?;
    Ok(row.map(|(u,)| u))
}

/// Nodes sites may be placed on, in placement order: the local node first, then oldest first
/// (architecture.md §3). `(id, public_ip)`.
pub async fn eligible_nodes(
    conn: &mut SqliteConnection,
) -> Result<Vec<(String, String)>, StoreError> {
    Ok(sqlx::query_as(
        "SELECT id, public_ip FROM nodes
         WHERE status = 'active' AND public_ip IS NOT NULL AND public_ip <> ''
         ORDER BY is_local DESC, created_at, id",
    )
    .fetch_all(conn)
    .await?)
}
