//! Sites: the `sites` table, created by the site service and moved through its states by
//! `site_create` (state-machines.md, Site and environment).
//!
//! Status changes are guarded by `state_version`; inside the engine's write transaction a
//! lost update is impossible, so a zero-row update is reported as an error.

use sqlx::{AnyConnection, FromRow};

use super::{lost_update, row_by_id, set_status_guarded, Store, StoreError};
use crate::domain::SiteStatus;

/// A `sites` row.
#[derive(Debug, Clone, FromRow)]
pub struct SiteRecord {
    pub id: String,
    pub name: String,
    pub slug: String,
    pub status: SiteStatus,
    pub primary_environment_id: Option<String>,
    pub created_at: String,
    pub updated_at: String,
    pub state_version: i64,
    /// When its `site_delete` finished (status `deleted`).
    pub deleted_at: Option<String>,
    /// How often its restore drill runs by itself (issue 14).
    pub drill_schedule: crate::domain::DrillSchedule,
    /// How often its safe-update run starts by itself (issue 16).
    pub safe_updates_schedule: crate::domain::SafeUpdateSchedule,
    /// `HH:MM-HH:MM` (UTC) scheduled runs start in, or `None`: any time.
    pub safe_updates_window: Option<String>,
    /// JSON array of the check pages' paths (empty: home plus the main menu's paths).
    pub safe_updates_paths: String,
    /// The most a page may change (percent of its pixels) and still pass.
    pub safe_updates_threshold: f64,
    /// JSON object: path → regions the comparison ignores.
    pub safe_updates_masks: String,
}

/// A site listed with what the Sites page shows.
#[derive(Debug, Clone, FromRow)]
pub struct SiteSummary {
    #[sqlx(flatten)]
    pub site: SiteRecord,
    pub production_url: Option<String>,
    pub environment_count: i64,
}

const SITE_SUMMARY: &str = "SELECT s.*,
    (SELECT e.preview_url FROM environments e WHERE e.id = s.primary_environment_id) AS production_url,
    (SELECT COUNT(*) FROM environments e WHERE e.site_id = s.id AND e.status <> 'deleted')
      AS environment_count
  FROM sites s";

impl Store {
    /// `(id, name)` of every site, by name: the options of a site filter.
    pub async fn site_options(&self) -> Result<Vec<(String, String)>, StoreError> {
        Ok(
            crate::store::query_as("SELECT id, name FROM sites ORDER BY name, id")
                .fetch_all(&self.pool)
                .await?,
        )
    }

    /// Every site not deleted (`include_deleted`: every site), newest first.
    pub async fn list_sites(&self, include_deleted: bool) -> Result<Vec<SiteSummary>, StoreError> {
        let filter = if include_deleted {
            ""
        } else {
            " WHERE s.status <> 'deleted'"
        };
        Ok(crate::store::query_as(&format!(
            "{SITE_SUMMARY}{filter} ORDER BY s.created_at DESC, s.id DESC"
        ))
        .fetch_all(&self.pool)
        .await?)
    }

    pub async fn get_site(&self, id: &str) -> Result<Option<SiteRecord>, StoreError> {
        row_by_id(&self.pool, "sites", id).await
    }
}

fetch_by_id!(fetch_site, SiteRecord, "sites");

/// Whether a site not deleted uses `slug` (a deleted site's slug is free again; one being
/// deleted still holds it).
pub async fn site_slug_taken(conn: &mut AnyConnection, slug: &str) -> Result<bool, StoreError> {
    let row: Option<(i64,)> =
        crate::store::query_as("SELECT 1 FROM sites WHERE slug = ? AND status <> 'deleted'")
            .bind(slug)
            .fetch_optional(conn)
            .await?;
    Ok(row.is_some())
}

/// Inserts a site (without its primary environment, set by [`set_primary_environment`]).
pub async fn insert_site(
    conn: &mut AnyConnection,
    id: &str,
    name: &str,
    slug: &str,
    status: SiteStatus,
    now: &str,
) -> Result<(), StoreError> {
    crate::store::query(
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
    conn: &mut AnyConnection,
    site_id: &str,
    environment_id: &str,
    now: &str,
) -> Result<(), StoreError> {
    crate::store::query("UPDATE sites SET primary_environment_id = ?, updated_at = ? WHERE id = ?")
        .bind(environment_id)
        .bind(now)
        .bind(site_id)
        .execute(conn)
        .await?;
    Ok(())
}

/// Sets a site's status (guarded by the `state_version` read).
pub async fn set_site_status(
    conn: &mut AnyConnection,
    site: &SiteRecord,
    to: SiteStatus,
    now: &str,
) -> Result<(), StoreError> {
    let from = (site.status, site.state_version);
    set_lifecycle_status(conn, "site", &site.id, from, to, now).await
}

/// Moves a site or environment row (`what`: `site` or `environment`) from `(status,
/// state_version)` to `to`; a lost update is an error. A row that is `deleting` or `deleted`
/// stays so (deletion wins): a job that was running when the delete was accepted, or that
/// is refused at its start behind it, does not bring it back; only the delete kinds move it,
/// with [`set_deletion_status`].
pub(super) async fn set_lifecycle_status(
    conn: &mut AnyConnection,
    what: &'static str,
    id: &str,
    (from, state_version): (SiteStatus, i64),
    to: SiteStatus,
    now: &str,
) -> Result<(), StoreError> {
    if from.is_deletion() {
        tracing::info!(
            id,
            status = from.as_str(),
            ignored = to.as_str(),
            "{what} is being deleted; status change ignored"
        );
        return Ok(());
    }
    set_status_any(conn, what, id, (from, state_version), to, now).await
}

/// The delete kinds' status change of a site or environment row (`deleting`, `deleted` with
/// `deleted_at`, `failed`, or back to the status before a refused or cancelled delete).
pub async fn set_deletion_status(
    conn: &mut AnyConnection,
    what: &'static str,
    id: &str,
    (from, state_version): (SiteStatus, i64),
    to: SiteStatus,
    now: &str,
) -> Result<(), StoreError> {
    if from == to {
        return Ok(());
    }
    let table = if what == "site" {
        "sites"
    } else {
        "environments"
    };
    let deleted_at = (to == SiteStatus::Deleted).then_some(now);
    // One statement: the CHECK ties `deleted` to `deleted_at`.
    let sql = format!(
        "UPDATE {table} SET status = ?, deleted_at = ?, state_version = state_version + 1,
           updated_at = ? WHERE id = ? AND state_version = ?"
    );
    let update = crate::store::query(&sql)
        .bind(to.as_str())
        .bind(deleted_at)
        .bind(now)
        .bind(id)
        .bind(state_version);
    if !super::updated_one(&mut *conn, update).await? {
        return Err(lost_update(what, id));
    }
    tracing::info!(
        id,
        from = from.as_str(),
        to = to.as_str(),
        "{what} status changed"
    );
    Ok(())
}

async fn set_status_any(
    conn: &mut AnyConnection,
    what: &'static str,
    id: &str,
    (from, state_version): (SiteStatus, i64),
    to: SiteStatus,
    now: &str,
) -> Result<(), StoreError> {
    let table = if what == "site" {
        "sites"
    } else {
        "environments"
    };
    if !set_status_guarded(conn, table, id, state_version, to.as_str(), now).await? {
        return Err(lost_update(what, id));
    }
    tracing::info!(
        id,
        from = from.as_str(),
        to = to.as_str(),
        "{what} status changed"
    );
    Ok(())
}
