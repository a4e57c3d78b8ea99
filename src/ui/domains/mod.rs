//! The Domains part of the environment page (ui.md, environment page): the environment's custom
//! domains with the primary marked and their TLS status, the A record each needs
//! (`hostname → node public IP`), the exact DNS message while a DNS check fails, an add form
//! and Remove with confirmation.
//!
//! The panel is a fragment the page loads lazily and reloads whenever its live stream sends
//! the `environment` event (every change of the environment or one of its jobs, `ui::live`;
//! domain jobs are environment jobs), so `pending → active` shows in place. The forms post
//! with htmx and get the panel back (a refusal as a sentence in it); without JavaScript they
//! post normally and come back to the environment page.

use askama::Template;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::Router;
use serde::Deserialize;

use crate::domain::{JobStatus, JobType, TlsStatus};
use crate::http::error::{ApiError, OrNotFound};
use crate::http::extract::PathId;
use crate::http::session::{CurrentSession, UiSession};
use crate::sites::Actor;
use crate::state::AppState;
use crate::store::environments::EnvironmentRecord;
use crate::store::{Store, StoreError};
use crate::ui::form_errors::form_error;
use crate::ui::forms::{CsrfForm, NoFields};
use crate::ui::render;

/// The Domains routes.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/environments/{id}/domains", get(panel).post(add))
        .route("/domains/{id}/remove", post(remove))
}

/// One domain as the panel shows it.
pub struct DomainRow {
    pub id: String,
    pub hostname: String,
    pub tls_status: String,
    pub primary: bool,
    /// Its latest job is queued or running.
    pub busy: bool,
    /// The latest job's id (link to its live output).
    pub job_id: Option<String>,
    /// The latest job's error (the exact DNS message for `DNS_MISMATCH`), also while a retry
    /// waits.
    pub error: String,
    /// `DNS_MISMATCH` (shown as the DNS instruction).
    pub dns_mismatch: bool,
    /// A Remove button is offered (not pending, not being removed).
    pub removable: bool,
}

/// The panel fragment.
#[derive(Template)]
#[template(path = "partials/domains_panel.html")]
pub struct DomainsPanel {
    pub environment_id: String,
    pub csrf_token: String,
    /// The node's public IPv4 (the A records' target); empty when unknown.
    pub public_ip: String,
    pub preview_url: String,
    pub domains: Vec<DomainRow>,
    /// What the add form held when it was refused.
    pub hostname: String,
    /// Why the last request was refused.
    pub notice: Option<String>,
}

impl DomainsPanel {
    pub async fn load(
        store: &Store,
        env: &EnvironmentRecord,
        csrf_token: String,
    ) -> Result<Self, StoreError> {
        let public_ip = store
            .get_node(&env.node_id)
            .await?
            .and_then(|n| n.public_ip)
            .unwrap_or_default();
        let mut domains = Vec::new();
        for d in store.list_domains(&env.id).await? {
            let job = store.latest_domain_job(&d.id).await?;
            let busy = job
                .as_ref()
                .is_some_and(|j| matches!(j.status, JobStatus::Queued | JobStatus::Running));
            let (error, dns_mismatch) = match &job {
                Some(j) if j.error_code.is_some() && j.status != JobStatus::Succeeded => {
                    let code = j.error_code.clone().unwrap_or_default();
                    let line: String = j
                        .error_message
                        .as_deref()
                        .unwrap_or("")
                        .lines()
                        .next()
                        .unwrap_or("")
                        .chars()
                        .take(400)
                        .collect();
                    let dns = code == "DNS_MISMATCH";
                    (if dns { line } else { format!("{code}: {line}") }, dns)
                }
                _ => (String::new(), false),
            };
            let removing = job
                .as_ref()
                .is_some_and(|j| j.job_type == JobType::DomainRemove && busy);
            domains.push(DomainRow {
                primary: env.primary_domain_id.as_deref() == Some(d.id.as_str()),
                removable: d.tls_status != TlsStatus::Pending && !removing,
                tls_status: d.tls_status.to_string(),
                job_id: job.map(|j| j.id),
                id: d.id,
                hostname: d.hostname,
                busy,
                error,
                dns_mismatch,
            });
        }
        Ok(DomainsPanel {
            environment_id: env.id.clone(),
            csrf_token,
            public_ip,
            preview_url: env.preview_url.clone(),
            domains,
            hostname: String::new(),
            notice: None,
        })
    }
}

async fn load_panel(
    state: &AppState,
    session: &CurrentSession,
    id: &str,
) -> Result<DomainsPanel, ApiError> {
    let env = state
        .store
        .get_environment(id)
        .await?
        .or_not_found("environment")?;
    Ok(DomainsPanel::load(&state.store, &env, session.csrf_token()).await?)
}

/// `GET /environments/{id}/domains` (an htmx fragment).
pub async fn panel(
    State(state): State<AppState>,
    UiSession(session): UiSession,
    PathId(id): PathId,
) -> Result<Response, ApiError> {
    Ok(render(&load_panel(&state, &session, &id).await?).into_response())
}

/// The add form.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct AddForm {
    pub hostname: String,
}

/// The answer to a form: with htmx the panel (showing `refused` when the service said no),
/// else back to the environment page (a refusal is the error page).
async fn answer(
    state: &AppState,
    session: &CurrentSession,
    headers: &HeaderMap,
    env_id: &str,
    hostname: &str,
    outcome: Result<(), crate::services::ServiceError>,
) -> Result<Response, ApiError> {
    let htmx = headers.contains_key("hx-request");
    match outcome {
        Ok(()) if !htmx => {
            Ok(Redirect::to(&format!("/environments/{env_id}#domains")).into_response())
        }
        Err(e) if !htmx => Err(e.into()),
        Ok(()) => Ok(render(&load_panel(state, session, env_id).await?).into_response()),
        Err(e) => {
            let refused = form_error(e)?;
            let mut panel = load_panel(state, session, env_id).await?;
            panel.hostname = hostname.to_string();
            panel.notice = refused
                .notice
                .or_else(|| refused.errors.into_values().next());
            Ok(render(&panel).into_response())
        }
    }
}

/// `POST /environments/{id}/domains`.
pub async fn add(
    State(state): State<AppState>,
    UiSession(session): UiSession,
    PathId(id): PathId,
    headers: HeaderMap,
    CsrfForm(form): CsrfForm<AddForm>,
) -> Result<Response, ApiError> {
    let outcome = state
        .domains
        .add(&Actor::from(&session), &id, &form.hostname)
        .await
        .map(drop);
    answer(&state, &session, &headers, &id, &form.hostname, outcome).await
}

/// `POST /domains/{id}/remove`.
pub async fn remove(
    State(state): State<AppState>,
    UiSession(session): UiSession,
    PathId(id): PathId,
    headers: HeaderMap,
    _: CsrfForm<NoFields>,
) -> Result<Response, ApiError> {
    let domain = state.store.get_domain(&id).await?.or_not_found("domain")?;
    let outcome = state
        .domains
        .remove(&Actor::from(&session), &id)
        .await
        .map(drop);
    answer(
        &state,
        &session,
        &headers,
        &domain.environment_id,
        "",
        outcome,
    )
    .await
}
