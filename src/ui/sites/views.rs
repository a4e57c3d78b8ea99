//! Sites as the pages show them: rows, environment cards and release timelines, loaded from the
//! store and shaped for the templates (also sent live by `ui::live`).

use askama::Template;

use crate::store::environments::EnvironmentRecord;
use crate::store::releases::ReleaseRecord;
use crate::store::sites::{SiteRecord, SiteSummary};
use crate::store::{JobFilter, Store, StoreError};
use crate::ui::views::{short_ts_str, JobRow};

/// Jobs shown on a site page.
const SITE_JOBS: i64 = 10;
/// Releases shown on a site page.
pub const SITE_RELEASES: i64 = 20;

/// One row of the sites list.
pub struct SiteRow {
    pub id: String,
    pub name: String,
    pub slug: String,
    pub status: String,
    pub production_url: String,
    pub environment_count: i64,
    pub created: String,
}

impl From<SiteSummary> for SiteRow {
    fn from(s: SiteSummary) -> Self {
        SiteRow {
            production_url: s.production_url.unwrap_or_default(),
            environment_count: s.environment_count,
            created: short_ts_str(&s.site.created_at),
            id: s.site.id,
            name: s.site.name,
            slug: s.site.slug,
            status: s.site.status.to_string(),
        }
    }
}

/// One environment card (site page) or header (environment page).
pub struct EnvCard {
    pub id: String,
    pub name: String,
    pub slug: String,
    pub environment_type: String,
    pub status: String,
    pub preview_url: String,
    /// sslip.io preview URLs are plain HTTP.
    pub http_only: bool,
    pub node_id: String,
    pub node_name: String,
    pub release: String,
    pub release_health: String,
    pub drift_status: String,
    pub fastcgi_cache: bool,
    pub redis_cache: bool,
    pub source_name: String,
    pub created: String,
}

/// One release in a timeline.
pub struct ReleaseRow {
    /// Environment name and type (site page only).
    pub environment: String,
    pub environment_type: String,
    pub name: String,
    pub source: String,
    pub health_status: String,
    pub notes: String,
    pub job_id: String,
    pub created: String,
    pub current: bool,
}

pub fn release_name(path: &str) -> String {
    path.rsplit('/').next().unwrap_or(path).to_string()
}

impl ReleaseRow {
    pub fn new(r: &ReleaseRecord, current: Option<&str>) -> Self {
        ReleaseRow {
            environment: String::new(),
            environment_type: String::new(),
            name: release_name(&r.path),
            source: format!(
                "{} · {}",
                r.source_type,
                crate::sites::redact_url_password(&r.source_ref)
            ),
            health_status: r.health_status.to_string(),
            notes: r.notes.clone().unwrap_or_default(),
            job_id: r.job_id.clone().unwrap_or_default(),
            created: short_ts_str(&r.created_at),
            current: current == Some(r.id.as_str()),
        }
    }
}

pub async fn env_cards(
    store: &Store,
    envs: &[EnvironmentRecord],
) -> Result<Vec<EnvCard>, StoreError> {
    let nodes = store.list_nodes().await?;
    let mut cards = Vec::with_capacity(envs.len());
    for e in envs {
        let release = match &e.current_release_id {
            Some(id) => store.get_release(id).await?,
            None => None,
        };
        let source_name = envs
            .iter()
            .find(|s| Some(&s.id) == e.source_environment_id.as_ref())
            .map(|s| s.name.clone())
            .unwrap_or_default();
        cards.push(EnvCard {
            id: e.id.clone(),
            name: e.name.clone(),
            slug: e.slug.clone(),
            environment_type: e.environment_type.clone(),
            status: e.status.to_string(),
            preview_url: e.preview_url.clone(),
            http_only: e.preview_url.starts_with("http://") && e.preview_url.contains(".sslip.io"),
            node_id: e.node_id.clone(),
            node_name: nodes
                .iter()
                .find(|n| n.id == e.node_id)
                .map(|n| n.name.clone())
                .unwrap_or_else(|| e.node_id.clone()),
            release: release
                .as_ref()
                .map(|r| release_name(&r.path))
                .unwrap_or_default(),
            release_health: release
                .map(|r| r.health_status.to_string())
                .unwrap_or_default(),
            drift_status: e.drift_status.to_string(),
            fastcgi_cache: e.fastcgi_cache_enabled,
            redis_cache: e.redis_cache_enabled,
            source_name,
            created: short_ts_str(&e.created_at),
        });
    }
    Ok(cards)
}

/// The sites table body, also sent live.
#[derive(Template)]
#[template(path = "partials/site_rows.html")]
pub struct SiteRows {
    pub sites: Vec<SiteRow>,
}

/// The site page's live panels: header status and environment cards.
#[derive(Template)]
#[template(path = "partials/env_cards.html")]
pub struct EnvCards {
    pub envs: Vec<EnvCard>,
    pub releases: Vec<ReleaseRow>,
}

/// The environment page's live panel: its header (the releases are in the Deploys section's
/// timeline, `ui::deploys`).
#[derive(Template)]
#[template(path = "partials/environment_panel.html")]
pub struct EnvironmentPanel {
    pub env: EnvCard,
    pub site: SiteRecord,
}

impl SiteRows {
    /// The sites not deleted (`include_deleted`: all of them).
    pub async fn load(store: &Store, include_deleted: bool) -> Result<Self, StoreError> {
        Ok(SiteRows {
            sites: store
                .list_sites(include_deleted)
                .await?
                .into_iter()
                .map(SiteRow::from)
                .collect(),
        })
    }
}

impl EnvCards {
    pub async fn load(store: &Store, site_id: &str) -> Result<Self, StoreError> {
        let envs = store.list_environments(site_id).await?;
        let current: Vec<&str> = envs
            .iter()
            .filter_map(|e| e.current_release_id.as_deref())
            .collect();
        let releases = store
            .list_site_releases(site_id, SITE_RELEASES)
            .await?
            .into_iter()
            .map(|(r, name, kind)| {
                let current = current.contains(&r.id.as_str()).then_some(r.id.as_str());
                ReleaseRow {
                    environment: name,
                    environment_type: kind,
                    ..ReleaseRow::new(&r, current)
                }
            })
            .collect();
        Ok(EnvCards {
            envs: env_cards(store, &envs).await?,
            releases,
        })
    }
}

impl EnvironmentPanel {
    /// `None` when the environment (or its site) does not exist.
    pub async fn load(store: &Store, environment_id: &str) -> Result<Option<Self>, StoreError> {
        let Some(env) = store.get_environment(environment_id).await? else {
            return Ok(None);
        };
        let Some(site) = store.get_site(&env.site_id).await? else {
            return Ok(None);
        };
        let siblings = store.list_environments(&site.id).await?;
        let mut cards = env_cards(store, &siblings).await?;
        let Some(pos) = cards.iter().position(|c| c.id == env.id) else {
            return Ok(None);
        };
        Ok(Some(EnvironmentPanel {
            env: cards.swap_remove(pos),
            site,
        }))
    }
}

/// The site's recent jobs, as rows.
pub async fn site_jobs(store: &Store, site_id: &str) -> Result<Vec<JobRow>, StoreError> {
    let jobs = store
        .list_jobs(&JobFilter {
            site_id: Some(site_id.to_string()),
            limit: SITE_JOBS,
            ..Default::default()
        })
        .await?;
    Ok(jobs.iter().map(JobRow::from).collect())
}

pub const EMPTY_SITE_JOBS: &str = "No jobs for this site yet.";
