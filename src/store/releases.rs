//! Releases: the `releases` table, one row per built copy of an environment's code; recording
//! one makes it the environment's current release (releases-and-rollback.md). A release is
//! immutable except its `health_status` and appended notes (data-model.md).

use sqlx::{AnyConnection, FromRow};

use super::environments::EnvironmentRecord;
use super::{lost_update, row_by_id, Store, StoreError};
use crate::domain::HealthStatus;

/// A `releases` row.
#[derive(Debug, Clone, FromRow)]
pub struct ReleaseRecord {
    pub id: String,
    pub environment_id: String,
    pub source_type: String,
    pub source_ref: String,
    pub path: String,
    pub health_status: HealthStatus,
    pub notes: Option<String>,
    pub job_id: Option<String>,
    pub created_at: String,
    /// Moves with every change of `health_status` or `notes` (the live resource feed).
    pub state_version: i64,
    pub updated_at: String,
}

#[derive(FromRow)]
struct SiteRelease {
    #[sqlx(flatten)]
    release: ReleaseRecord,
    environment_name: String,
    environment_type: String,
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

impl Store {
    /// An environment's releases, newest first.
    pub async fn list_releases(
        &self,
        environment_id: &str,
    ) -> Result<Vec<ReleaseRecord>, StoreError> {
        let order = "created_at DESC, id DESC";
        self.rows_where("releases", "environment_id", environment_id, order)
            .await
    }

    /// The releases of every environment of a site, newest first, with the environment's name
    /// and type.
    pub async fn list_site_releases(
        &self,
        site_id: &str,
        limit: i64,
    ) -> Result<Vec<(ReleaseRecord, String, String)>, StoreError> {
        let rows: Vec<SiteRelease> = crate::store::query_as(
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
        row_by_id(&self.pool, "releases", id).await
    }
}

fetch_by_id!(fetch_release, ReleaseRecord, "releases");

async fn insert_release(
    conn: &mut AnyConnection,
    r: &NewRelease<'_>,
    now: &str,
) -> Result<(), StoreError> {
    crate::store::query(
        "INSERT INTO releases (id, environment_id, source_type, source_ref, path, health_status,
           notes, job_id, created_at, updated_at)
         VALUES (?, ?, ?, ?, ?, 'unknown', ?, ?, ?, ?)",
    )
    .bind(r.id)
    .bind(r.environment_id)
    .bind(r.source_type)
    .bind(r.source_ref)
    .bind(r.path)
    .bind(r.notes)
    .bind(r.job_id)
    .bind(now)
    .bind(now)
    .execute(conn)
    .await?;
    Ok(())
}

/// Records a built release (health `unknown`) and makes it the environment's current one
/// WITHOUT touching the environment's status: a health-gated job leaves it `deploying` until
/// its gate ends.
pub async fn record_release(
    conn: &mut AnyConnection,
    env: &EnvironmentRecord,
    r: &NewRelease<'_>,
    now: &str,
) -> Result<(), StoreError> {
    insert_release(conn, r, now).await?;
    set_current_release(conn, &env.id, r.id, now).await?;
    tracing::info!(environment = %env.id, release = r.id, path = r.path, "release recorded; current");
    Ok(())
}

/// Makes `release_id` the environment's current release (status unchanged).
pub async fn set_current_release(
    conn: &mut AnyConnection,
    environment_id: &str,
    release_id: &str,
    now: &str,
) -> Result<(), StoreError> {
    let u = crate::store::query(
        "UPDATE environments SET current_release_id = ?,
           state_version = state_version + 1, updated_at = ?
         WHERE id = ?",
    )
    .bind(release_id)
    .bind(now)
    .bind(environment_id)
    .execute(conn)
    .await?;
    if u.rows_affected() != 1 {
        return Err(lost_update("environment", environment_id));
    }
    Ok(())
}

/// Sets a release's health, appending `append_note` to its notes ("; "-separated); bumps
/// `state_version` and `updated_at` (the live feed).
pub async fn set_release_health(
    conn: &mut AnyConnection,
    release_id: &str,
    health: HealthStatus,
    append_note: Option<&str>,
    now: &str,
) -> Result<(), StoreError> {
    let u = crate::store::query(
        "UPDATE releases SET health_status = ?1,
           notes = CASE WHEN ?2 IS NULL THEN notes
                        WHEN notes IS NULL OR notes = '' THEN ?2
                        ELSE notes || '; ' || ?2 END,
           state_version = state_version + 1, updated_at = ?3
         WHERE id = ?4",
    )
    .bind(health)
    .bind(append_note)
    .bind(now)
    .bind(release_id)
    .execute(conn)
    .await?;
    if u.rows_affected() != 1 {
        return Err(lost_update("release", release_id));
    }
    tracing::info!(release = release_id, health = %health, "release health set");
    Ok(())
}

/// Appends `note` to a release's notes, health unchanged.
pub async fn append_release_note(
    conn: &mut AnyConnection,
    release_id: &str,
    note: &str,
    now: &str,
) -> Result<(), StoreError> {
    let Some(r) = fetch_release(&mut *conn, release_id).await? else {
        return Err(lost_update("release", release_id));
    };
    set_release_health(conn, release_id, r.health_status, Some(note), now).await
}

/// Records a built release and makes it the environment's current one, setting the
/// environment `active` (one statement pair inside the completion transaction).
pub async fn record_release_and_activate(
    conn: &mut AnyConnection,
    env: &EnvironmentRecord,
    r: &NewRelease<'_>,
    now: &str,
) -> Result<(), StoreError> {
    insert_release(conn, r, now).await?;
    let u = crate::store::query(
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
