//! The Caching part of the environment page (ui.md, environment page): both cache flags with
//! a toggle each ("FastCGI Page Cache", "Redis Object Cache"), a "Purge cache" button, and the
//! environment's latest cache job with its status, error line and a link to its live output.
//!
//! The panel is a fragment the page loads lazily and reloads whenever its live stream sends
//! the `environment` event (rendered on every change of the environment or one of its jobs,
//! `ui::live`), so a toggle's or purge's job shows its progress in place. The buttons post
//! with htmx and get the panel back (a refusal as a sentence in it); without JavaScript they
//! post normally and come back to the environment page.

use askama::Template;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::Router;
use serde::Deserialize;

use crate::deploys::cache::CacheFlags;
use crate::domain::{JobStatus, JobType};
use crate::http::error::{ApiError, OrNotFound};
use crate::http::extract::PathId;
use crate::http::session::{CurrentSession, UiSession};
use crate::jobs::EnvCacheTogglePayload;
use crate::sites::Actor;
use crate::state::AppState;
use crate::store::environments::EnvironmentRecord;
use crate::store::{Store, StoreError};
use crate::ui::form_errors::form_error;
use crate::ui::forms::{CsrfForm, NoFields};
use crate::ui::render;
use crate::ui::views::short_ts_str;

/// The Caching routes.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/environments/{id}/cache", get(panel).post(toggle))
        .route("/environments/{id}/cache/purge", post(purge))
}

/// The environment's latest cache job as the panel shows it.
pub struct CacheJob {
    pub job_id: String,
    /// What it does: `Purge`, `Page cache on · object cache off`.
    pub what: String,
    pub status: String,
    pub created: String,
    /// `CODE: message` of a failed one.
    pub error: String,
    /// Queued or running.
    pub busy: bool,
}

/// The panel fragment.
#[derive(Template)]
#[template(path = "partials/cache_panel.html")]
pub struct CachePanel {
    pub environment_id: String,
    pub csrf_token: String,
    pub fastcgi: bool,
    pub redis: bool,
    pub last: Option<CacheJob>,
    /// Why the last request was refused.
    pub notice: Option<String>,
}

fn on_off(on: bool) -> &'static str {
    if on {
        "on"
    } else {
        "off"
    }
}

impl CachePanel {
    pub async fn load(
        store: &Store,
        env: &EnvironmentRecord,
        csrf_token: String,
    ) -> Result<Self, StoreError> {
        let last = store
            .latest_environment_job(&env.id, &[JobType::EnvCacheToggle, JobType::CachePurge])
            .await?
            .map(|j| {
                let what = if j.job_type == JobType::CachePurge {
                    "Purge".to_string()
                } else {
                    let p: EnvCacheTogglePayload = crate::jobs::payload::read(&j);
                    format!(
                        "Page cache {} · object cache {}",
                        on_off(p.fastcgi_cache_enabled),
                        on_off(p.redis_cache_enabled)
                    )
                };
                let error = if j.status == JobStatus::Failed {
                    let message = j.error_message.as_deref().unwrap_or("");
                    let line: String = message
                        .lines()
                        .next()
                        .unwrap_or("")
                        .chars()
                        .take(300)
                        .collect();
                    match j.error_code.as_deref() {
                        Some(c) if line.is_empty() => c.to_string(),
                        Some(c) => format!("{c}: {line}"),
                        None => line,
                    }
                } else {
                    String::new()
                };
                CacheJob {
                    busy: matches!(j.status, JobStatus::Queued | JobStatus::Running),
                    status: j.status.to_string(),
                    created: short_ts_str(&j.created_at),
                    job_id: j.id,
                    what,
                    error,
                }
            });
        Ok(CachePanel {
            environment_id: env.id.clone(),
            csrf_token,
            fastcgi: env.fastcgi_cache_enabled,
            redis: env.redis_cache_enabled,
            last,
            notice: None,
        })
    }
}

async fn load_panel(
    state: &AppState,
    session: &CurrentSession,
    id: &str,
) -> Result<CachePanel, ApiError> {
    let env = state
        .store
        .get_environment(id)
        .await?
        .or_not_found("environment")?;
    Ok(CachePanel::load(&state.store, &env, session.csrf_token()).await?)
}

/// `GET /environments/{id}/cache` (an htmx fragment).
pub async fn panel(
    State(state): State<AppState>,
    UiSession(session): UiSession,
    PathId(id): PathId,
) -> Result<Response, ApiError> {
    Ok(render(&load_panel(&state, &session, &id).await?).into_response())
}

/// The toggle form: the one flag its button changes, `true` or `false`.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct ToggleForm {
    pub fastcgi_cache_enabled: Option<String>,
    pub redis_cache_enabled: Option<String>,
}

/// A form's flag: absent, `true` or `false`; anything else names the field.
fn flag(field: &'static str, value: Option<&str>) -> Result<Option<bool>, ApiError> {
    match value {
        None => Ok(None),
        Some("true") => Ok(Some(true)),
        Some("false") => Ok(Some(false)),
        Some(_) => Err(ApiError::field(field, "must be true or false")),
    }
}

/// The answer to a form: with htmx the panel (showing `refused` when the service said no),
/// else back to the environment page (a refusal is the error page).
async fn answer(
    state: &AppState,
    session: &CurrentSession,
    headers: &HeaderMap,
    id: &str,
    outcome: Result<String, crate::services::ServiceError>,
) -> Result<Response, ApiError> {
    let htmx = headers.contains_key("hx-request");
    match outcome {
        Ok(_) if !htmx => Ok(Redirect::to(&format!("/environments/{id}#cache")).into_response()),
        Err(e) if !htmx => Err(e.into()),
        Ok(_) => Ok(render(&load_panel(state, session, id).await?).into_response()),
        Err(e) => {
            let refused = form_error(e)?;
            let mut panel = load_panel(state, session, id).await?;
            panel.notice = refused
                .notice
                .or_else(|| refused.errors.into_values().next());
            Ok(render(&panel).into_response())
        }
    }
}

/// `POST /environments/{id}/cache`.
pub async fn toggle(
    State(state): State<AppState>,
    UiSession(session): UiSession,
    PathId(id): PathId,
    headers: HeaderMap,
    CsrfForm(form): CsrfForm<ToggleForm>,
) -> Result<Response, ApiError> {
    let flags = CacheFlags {
        fastcgi_cache_enabled: flag(
            "fastcgi_cache_enabled",
            form.fastcgi_cache_enabled.as_deref(),
        )?,
        redis_cache_enabled: flag("redis_cache_enabled", form.redis_cache_enabled.as_deref())?,
    };
    let outcome = state
        .deploys
        .set_cache(&Actor::from(&session), &id, flags)
        .await;
    answer(&state, &session, &headers, &id, outcome).await
}

/// `POST /environments/{id}/cache/purge`.
pub async fn purge(
    State(state): State<AppState>,
    UiSession(session): UiSession,
    PathId(id): PathId,
    headers: HeaderMap,
    _: CsrfForm<NoFields>,
) -> Result<Response, ApiError> {
    let outcome = state.deploys.purge_cache(&Actor::from(&session), &id).await;
    answer(&state, &session, &headers, &id, outcome).await
}
