//! The Sites pages (GET): list, Create Site, the site page with its environment cards and jobs,
//! Create Environment, and the environment page with its releases. Panels refresh live over
//! `/ui/events`.

use std::collections::HashMap;

use askama::Template;
use axum::extract::State;
use axum::response::{IntoResponse, Response};

use super::forms::{EnvironmentForm, SiteForm};
use super::views::{
    site_jobs, EnvCard, EnvCards, EnvironmentPanel, ReleaseRow, SiteRow, SiteRows, EMPTY_SITE_JOBS,
};
use crate::http::error::ApiError;
use crate::http::error::OrNotFound;
use crate::http::extract::PathId;
use crate::http::session::{CurrentSession, UiSession};
use crate::state::AppState;
use crate::store::sites::SiteRecord;
use crate::ui::backups::forms::BackupForm;
use crate::ui::backups::pages::{section, BackupsSection};
use crate::ui::deploys::forms::DeploysShown;
use crate::ui::deploys::pages::DeploysSection;
use crate::ui::forms::FormState;
use crate::ui::render;
use crate::ui::views::{JobRow, Layout};

#[derive(Template)]
#[template(path = "sites.html")]
struct SitesPage {
    layout: Layout,
    sites: Vec<SiteRow>,
    /// The "Show deleted" toggle is on.
    show_deleted: bool,
}

/// `GET /sites?show_deleted=true` (the toggle: deleted sites too).
#[derive(Debug, Default, serde::Deserialize)]
pub struct SitesQuery {
    #[serde(default)]
    show_deleted: Option<String>,
}

/// `GET /sites`.
pub async fn list(
    State(state): State<AppState>,
    UiSession(session): UiSession,
    axum::extract::Query(q): axum::extract::Query<SitesQuery>,
) -> Result<Response, ApiError> {
    let show_deleted = q.show_deleted.as_deref() == Some("true");
    Ok(render(&SitesPage {
        layout: Layout::new("Sites", "sites", &session),
        sites: SiteRows::load(&state.store, show_deleted).await?.sites,
        show_deleted,
    }))
}

#[derive(Template)]
#[template(path = "site_new.html")]
pub(super) struct NewSitePage {
    layout: Layout,
    form: SiteForm,
    errors: HashMap<String, String>,
    notice: Option<String>,
    preview_hint: String,
    /// The nodes a site may be placed on, in placement order (`(id, label)`); the form offers
    /// the choice when there is more than one.
    nodes: Vec<(String, String)>,
}

pub(super) async fn new_site_page(
    state: &AppState,
    session: &CurrentSession,
    form: SiteForm,
    shown: FormState,
) -> Result<Response, ApiError> {
    let preview_domain = state.store.get_setting("preview_domain").await?;
    let preview_hint = match preview_domain {
        Some(d) => format!("https://<id>.{d}"),
        None => {
            "http://<id>.<node IP>.sslip.io (HTTP only — set a preview domain for HTTPS)".into()
        }
    };
    let nodes = state
        .store
        .eligible_nodes()
        .await?
        .into_iter()
        .map(|n| {
            let label = format!(
                "{} ({}){}",
                n.name,
                n.public_ip.unwrap_or_default(),
                if n.is_local { " · this host" } else { "" }
            );
            (n.id, label)
        })
        .collect();
    let page = NewSitePage {
        layout: Layout::new("Create site", "sites", session),
        nodes,
        form,
        errors: shown.errors,
        notice: shown.notice,
        preview_hint,
    };
    Ok((shown.status, render(&page)).into_response())
}

/// `GET /sites/new`.
pub async fn new_site(
    State(state): State<AppState>,
    UiSession(session): UiSession,
) -> Result<Response, ApiError> {
    new_site_page(&state, &session, SiteForm::default(), FormState::default()).await
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
    let site = state.store.get_site(&id).await?.or_not_found("site")?;
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

pub(super) async fn new_environment_page(
    state: &AppState,
    session: &CurrentSession,
    site_id: &str,
    form: EnvironmentForm,
    shown: FormState,
) -> Result<Response, ApiError> {
    let site = state.store.get_site(site_id).await?.or_not_found("site")?;
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
        errors: shown.errors,
        notice: shown.notice,
    };
    Ok((shown.status, render(&page)).into_response())
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
    new_environment_page(&state, &session, &id, form, FormState::default()).await
}

#[derive(Template)]
#[template(path = "environment.html")]
struct EnvironmentPage {
    layout: Layout,
    env: EnvCard,
    site: SiteRecord,
    backups: BackupsSection,
    deploys: DeploysSection,
}

/// `GET /environments/{id}`.
pub async fn environment_page(
    State(state): State<AppState>,
    UiSession(session): UiSession,
    PathId(id): PathId,
) -> Result<Response, ApiError> {
    environment_page_with(
        &state,
        &session,
        &id,
        BackupForm::default(),
        FormState::default(),
    )
    .await
}

/// The environment page, its Create Backup form showing `form` in state `shown`.
pub(crate) async fn environment_page_with(
    state: &AppState,
    session: &CurrentSession,
    id: &str,
    form: BackupForm,
    shown: FormState,
) -> Result<Response, ApiError> {
    environment_page_full(state, session, id, form, shown, DeploysShown::default()).await
}

/// The environment page, its Deploys forms showing `deploys`.
pub(crate) async fn environment_page_with_deploys(
    state: &AppState,
    session: &CurrentSession,
    id: &str,
    deploys: DeploysShown,
) -> Result<Response, ApiError> {
    let form = BackupForm::default();
    environment_page_full(state, session, id, form, FormState::default(), deploys).await
}

async fn environment_page_full(
    state: &AppState,
    session: &CurrentSession,
    id: &str,
    form: BackupForm,
    shown: FormState,
    deploys: DeploysShown,
) -> Result<Response, ApiError> {
    let status = if shown.status != axum::http::StatusCode::OK {
        shown.status
    } else {
        deploys.status()
    };
    let panel = EnvironmentPanel::load(&state.store, id)
        .await?
        .or_not_found("environment")?;
    let env = state
        .store
        .get_environment(id)
        .await?
        .or_not_found("environment")?;
    let backups = section(state, session, &env, form, shown.errors, shown.notice).await?;
    let deploys = crate::ui::deploys::pages::section(state, session, &env, deploys).await?;
    let page = EnvironmentPage {
        layout: Layout::new(&panel.env.name, "sites", session),
        env: panel.env,
        site: panel.site,
        backups,
        deploys,
    };
    Ok((status, render(&page)).into_response())
}
