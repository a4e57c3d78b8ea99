//! The Sites pages: list, Create Site, the site page with its environment cards and jobs,
//! Create Environment, and the environment page with its releases — through the same site
//! service as the API. Panels refresh live over `/ui/events`.

use std::collections::HashMap;

use askama::Template;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;

use super::form_errors::form_error;
use super::pages::render;
use super::views::{short_ts_str, JobRow, Layout};
use crate::api::error::ApiError;
use crate::api::extract::PathId;
use crate::http::session::{CurrentSession, UiSession};
use crate::sites::{slugify, Actor, EnvironmentInput, SiteInput};
use crate::state::AppState;
use crate::store::sites::{EnvironmentRecord, ReleaseRecord, SiteRecord, SiteSummary};
use crate::store::{JobFilter, Store, StoreError};

/// Jobs shown on a site page.
const SITE_JOBS: i64 = 10;
/// Releases shown on a site page.
pub(super) const SITE_RELEASES: i64 = 20;

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
            status: s.site.status,
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

fn release_name(path: &str) -> String {
    path.rsplit('/').next().unwrap_or(path).to_string()
}

impl ReleaseRow {
    fn new(r: &ReleaseRecord, current: Option<&str>) -> Self {
        ReleaseRow {
            environment: String::new(),
            environment_type: String::new(),
            name: release_name(&r.path),
            source: format!(
                "{} · {}",
                r.source_type,
                crate::sites::redact_url_password(&r.source_ref)
            ),
            health_status: r.health_status.clone(),
            notes: r.notes.clone().unwrap_or_default(),
            job_id: r.job_id.clone().unwrap_or_default(),
            created: short_ts_str(&r.created_at),
            current: current == Some(r.id.as_str()),
        }
    }
}

async fn env_cards(store: &Store, envs: &[EnvironmentRecord]) -> Result<Vec<EnvCard>, StoreError> {
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
            status: e.status.clone(),
            preview_url: e.preview_url.clone(),
            http_only: e.preview_url.starts_with("http://"),
            node_name: nodes
                .iter()
                .find(|n| n.id == e.node_id)
                .map(|n| n.name.clone())
                .unwrap_or_else(|| e.node_id.clone()),
            release: release
                .as_ref()
                .map(|r| release_name(&r.path))
                .unwrap_or_default(),
            release_health: release.map(|r| r.health_status).unwrap_or_default(),
            drift_status: e.drift_status.clone(),
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

/// The environment page's live panel: header and releases.
#[derive(Template)]
#[template(path = "partials/environment_panel.html")]
pub struct EnvironmentPanel {
    pub env: EnvCard,
    pub site: SiteRecord,
    pub releases: Vec<ReleaseRow>,
}

impl SiteRows {
    pub async fn load(store: &Store) -> Result<Self, StoreError> {
        Ok(SiteRows {
            sites: store
                .list_sites()
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
        let releases = store
            .list_releases(&env.id)
            .await?
            .iter()
            .map(|r| ReleaseRow::new(r, env.current_release_id.as_deref()))
            .collect();
        Ok(Some(EnvironmentPanel {
            env: cards.swap_remove(pos),
            site,
            releases,
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

#[derive(Template)]
#[template(path = "sites.html")]
struct SitesPage {
    layout: Layout,
    sites: Vec<SiteRow>,
}

/// `GET /sites`.
pub async fn list(
    State(state): State<AppState>,
    UiSession(session): UiSession,
) -> Result<Response, ApiError> {
    Ok(render(&SitesPage {
        layout: Layout::new("Sites", "sites", &session),
        sites: SiteRows::load(&state.store).await?.sites,
    }))
}

/// The Create Site form's values, echoed back after an error.
#[derive(Debug, Default, Deserialize)]
pub struct SiteForm {
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub slug: String,
}

#[derive(Template)]
#[template(path = "site_new.html")]
struct NewSitePage {
    layout: Layout,
    form: SiteForm,
    errors: HashMap<String, String>,
    notice: Option<String>,
    preview_hint: String,
}

async fn new_site_page(
    state: &AppState,
    session: &CurrentSession,
    status: StatusCode,
    form: SiteForm,
    errors: HashMap<String, String>,
    notice: Option<String>,
) -> Result<Response, ApiError> {
    let preview_domain = state.store.get_setting("preview_domain").await?;
    let preview_hint = match preview_domain {
        Some(d) => format!("https://<id>.{d}"),
        None => {
            "http://<id>.<node IP>.sslip.io (HTTP only — set a preview domain for HTTPS)".into()
        }
    };
    let page = NewSitePage {
        layout: Layout::new("Create site", "sites", session),
        form,
        errors,
        notice,
        preview_hint,
    };
    Ok((status, render(&page)).into_response())
}

/// `GET /sites/new`.
pub async fn new_site(
    State(state): State<AppState>,
    UiSession(session): UiSession,
) -> Result<Response, ApiError> {
    new_site_page(
        &state,
        &session,
        StatusCode::OK,
        SiteForm::default(),
        HashMap::new(),
        None,
    )
    .await
}

/// `POST /sites`: creates the site, then its page (which follows the job live).
pub async fn create_site(
    State(state): State<AppState>,
    UiSession(session): UiSession,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let mut form: SiteForm = super::read_form(&session, &headers, &body)?;
    if form.slug.trim().is_empty() {
        form.slug = slugify(&form.name);
    }
    let input = SiteInput {
        name: form.name.clone(),
        slug: form.slug.trim().to_string(),
    };
    match state.sites.create_site(&Actor::from(&session), input).await {
        Ok(created) => Ok(Redirect::to(&format!("/sites/{}", created.site_id)).into_response()),
        Err(e) => {
            let (status, errors, notice) = form_error(e)?;
            new_site_page(&state, &session, status, form, errors, notice).await
        }
    }
}

#[derive(Template)]
#[template(path = "site.html")]
struct SitePage {
    layout: Layout,
    site: SiteRecord,
    envs: Vec<EnvCard>,
    releases: Vec<ReleaseRow>,
    jobs: Vec<JobRow>,
    empty_message: &'static str,
}

/// `GET /sites/{id}`.
pub async fn site_page(
    State(state): State<AppState>,
    UiSession(session): UiSession,
    PathId(id): PathId,
) -> Result<Response, ApiError> {
    let site = state
        .store
        .get_site(&id)
        .await?
        .ok_or_else(|| ApiError::not_found("site"))?;
    let cards = EnvCards::load(&state.store, &id).await?;
    Ok(render(&SitePage {
        layout: Layout::new(&site.name, "sites", &session),
        envs: cards.envs,
        releases: cards.releases,
        jobs: site_jobs(&state.store, &id).await?,
        empty_message: EMPTY_SITE_JOBS,
        site,
    }))
}

/// The Create Environment form's values.
#[derive(Debug, Default, Deserialize)]
pub struct EnvironmentForm {
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub slug: String,
    #[serde(default)]
    pub environment_type: String,
    #[serde(default)]
    pub source_environment_id: String,
    #[serde(default)]
    pub promotion_preset: String,
}

#[derive(Template)]
#[template(path = "environment_new.html")]
struct NewEnvironmentPage {
    layout: Layout,
    site: SiteRecord,
    sources: Vec<(String, String)>,
    form: EnvironmentForm,
    errors: HashMap<String, String>,
    notice: Option<String>,
}

async fn new_environment_page(
    state: &AppState,
    session: &CurrentSession,
    site_id: &str,
    status: StatusCode,
    form: EnvironmentForm,
    errors: HashMap<String, String>,
    notice: Option<String>,
) -> Result<Response, ApiError> {
    let site = state
        .store
        .get_site(site_id)
        .await?
        .ok_or_else(|| ApiError::not_found("site"))?;
    let sources = state
        .store
        .list_environments(site_id)
        .await?
        .into_iter()
        .map(|e| {
            (
                e.id,
                format!("{} ({}, {})", e.name, e.environment_type, e.status),
            )
        })
        .collect();
    let page = NewEnvironmentPage {
        layout: Layout::new("Create environment", "sites", session),
        site,
        sources,
        form,
        errors,
        notice,
    };
    Ok((status, render(&page)).into_response())
}

/// `GET /sites/{id}/environments/new`.
pub async fn new_environment(
    State(state): State<AppState>,
    UiSession(session): UiSession,
    PathId(id): PathId,
) -> Result<Response, ApiError> {
    let form = EnvironmentForm {
        name: "Staging".into(),
        slug: "staging".into(),
        environment_type: "staging".into(),
        promotion_preset: "content-protect".into(),
        ..Default::default()
    };
    new_environment_page(
        &state,
        &session,
        &id,
        StatusCode::OK,
        form,
        HashMap::new(),
        None,
    )
    .await
}

/// `POST /sites/{id}/environments`: creates the environment, then the site page.
pub async fn create_environment(
    State(state): State<AppState>,
    UiSession(session): UiSession,
    PathId(id): PathId,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let mut form: EnvironmentForm = super::read_form(&session, &headers, &body)?;
    if form.slug.trim().is_empty() {
        form.slug = slugify(&form.name);
    }
    let input = EnvironmentInput {
        name: form.name.clone(),
        slug: form.slug.trim().to_string(),
        environment_type: form.environment_type.trim().to_string(),
        source_environment_id: Some(form.source_environment_id.trim().to_string()),
        promotion_preset: Some(form.promotion_preset.trim().to_string()),
    };
    match state
        .sites
        .create_environment(&Actor::from(&session), &id, input)
        .await
    {
        Ok(created) => Ok(Redirect::to(&format!("/sites/{}", created.site_id)).into_response()),
        Err(e) => {
            let (status, errors, notice) = form_error(e)?;
            new_environment_page(&state, &session, &id, status, form, errors, notice).await
        }
    }
}

#[derive(Template)]
#[template(path = "environment.html")]
struct EnvironmentPage {
    layout: Layout,
    env: EnvCard,
    site: SiteRecord,
    releases: Vec<ReleaseRow>,
}

/// `GET /environments/{id}`.
pub async fn environment_page(
    State(state): State<AppState>,
    UiSession(session): UiSession,
    PathId(id): PathId,
) -> Result<Response, ApiError> {
    let panel = EnvironmentPanel::load(&state.store, &id)
        .await?
        .ok_or_else(|| ApiError::not_found("environment"))?;
    Ok(render(&EnvironmentPage {
        layout: Layout::new(&panel.env.name, "sites", &session),
        env: panel.env,
        site: panel.site,
        releases: panel.releases,
    }))
}

/// `—` for an empty value in templates.
pub fn or_dash(s: &str) -> &str {
    if s.is_empty() {
        "—"
    } else {
        s
    }
}
