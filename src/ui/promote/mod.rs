//! The promotion page (ui.md, Promotion): `/environments/{id}/promote`, linked as "Promote"
//! from every non-production environment page. It shows both gates exactly as the API judges
//! them ([`crate::deploys::promote::evaluate`]): the drift panel of the drift area
//! (`partials/drift_section.html`: run a drift check, its differences) with the drift gate's
//! verdict,
//! the backup gate (production's newest full backup and its age; "Create production backup
//! now" while none is fresh), each blocking reason in plain words, and keeps Promote disabled
//! while any gate fails. An acknowledgement checkbox is required as well, and never bypasses
//! a gate (the server judges the gates again and shows a refusal inline). The gates, the
//! promotion's jobs and its outcome refresh live: the status fragment reloads on the site's
//! job events (`/ui/events?view=site`) and every 10 s (a gate may expire with time).

use askama::Template;
use axum::extract::State;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::Router;
use serde::Deserialize;

use crate::clock::{ago, parse_ts};
use crate::deploys::promote::{evaluate, Gates};
use crate::domain::{EnvironmentType, JobStatus, JobType};
use crate::http::error::{ApiError, OrNotFound};
use crate::http::extract::PathId;
use crate::http::session::{CurrentSession, UiSession};
use crate::sites::Actor;
use crate::state::AppState;
use crate::store::environments::production_of;
use crate::store::environments::EnvironmentRecord;
use crate::store::{JobFilter, JobRecord};
use crate::ui::form_errors::form_error;
use crate::ui::forms::{CsrfForm, FormState, NoFields};
use crate::ui::render;
use crate::ui::views::{JobRow, Layout};

/// The promotion routes.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/environments/{id}/promote", get(page).post(submit))
        .route("/environments/{id}/promote/status", get(status))
        .route("/environments/{id}/promote/backup", post(backup))
}

/// The live part of the page: gates, buttons, jobs, outcome.
#[derive(Template)]
#[template(path = "partials/promote_status.html")]
pub struct PromoteStatus {
    pub env_id: String,
    pub prod_name: String,
    pub csrf_token: String,
    pub preset: String,
    pub drift_status: String,
    pub drift_age: String,
    pub drift_failure: Option<String>,
    pub drift_running: bool,
    pub backup_desc: String,
    pub backup_failure: Option<String>,
    pub backup_running: bool,
    pub promote_running: bool,
    pub can_promote: bool,
    /// The latest promotion of this environment: its outcome in words and a job id.
    pub outcome: Option<(String, String, String)>,
    pub jobs: Vec<JobRow>,
}

#[derive(Template)]
#[template(path = "partials/promote_page.html")]
struct PromotePage {
    layout: Layout,
    env: EnvironmentRecord,
    prod: EnvironmentRecord,
    protected: String,
    notice: Option<String>,
    status: PromoteStatus,
}

/// Source and production, or the reason there is no promotion page (404 for production).
async fn pair(
    state: &AppState,
    id: &str,
) -> Result<(EnvironmentRecord, EnvironmentRecord), ApiError> {
    let env = state
        .store
        .get_environment(id)
        .await?
        .or_not_found("environment")?;
    if env.environment_type == EnvironmentType::Production.as_str() {
        return Err(ApiError::not_found("promotion of a production environment"));
    }
    let mut conn = state
        .store
        .pool()
        .acquire()
        .await
        .map_err(ApiError::internal)?;
    let prod = production_of(&mut conn, &env.site_id)
        .await?
        .or_not_found("production environment")?;
    Ok((env, prod))
}

/// Jobs of the site that concern the promotion (drift checks of the env, production's backups
/// and promotions with their gates), newest first.
async fn related_jobs(
    state: &AppState,
    env: &EnvironmentRecord,
    prod: &EnvironmentRecord,
) -> Result<Vec<JobRecord>, ApiError> {
    let jobs = state
        .store
        .list_jobs(&JobFilter {
            site_id: Some(env.site_id.clone()),
            limit: 40,
            ..Default::default()
        })
        .await?;
    Ok(jobs
        .into_iter()
        .filter(|j| {
            let on = |e: &EnvironmentRecord| j.environment_id.as_deref() == Some(e.id.as_str());
            (on(env) && j.job_type == JobType::DriftCheck)
                || (on(prod)
                    && matches!(
                        j.job_type,
                        JobType::BackupCreate
                            | JobType::EnvPromote
                            | JobType::HealthCheck
                            | JobType::ReleaseRollback
                    ))
        })
        .take(8)
        .collect())
}

fn unfinished(j: &JobRecord) -> bool {
    matches!(j.status, JobStatus::Queued | JobStatus::Running)
}

/// The latest promotion from `env` and how it ended (gate included).
fn outcome(env: &EnvironmentRecord, jobs: &[JobRecord]) -> Option<(String, String, String)> {
    let promote = jobs.iter().find(|j| {
        j.job_type == JobType::EnvPromote
            && serde_json::from_str::<serde_json::Value>(&j.payload_json)
                .ok()
                .and_then(|p| p["source_environment_id"].as_str().map(str::to_string))
                .as_deref()
                == Some(env.id.as_str())
    })?;
    let child = |parent: &str, t: JobType| {
        jobs.iter()
            .find(|j| j.parent_job_id.as_deref() == Some(parent) && j.job_type == t)
    };
    let gate = child(&promote.id, JobType::HealthCheck);
    let rollback = gate.and_then(|g| child(&g.id, JobType::ReleaseRollback));
    let (kind, words) = match (promote.status, gate, rollback) {
        (JobStatus::Queued | JobStatus::Running, _, _) => ("running", "Promotion running…".into()),
        (JobStatus::Failed, _, _) => (
            "failed",
            format!(
                "Promotion failed before going live ({}): {}",
                promote.error_code.as_deref().unwrap_or("error"),
                promote.error_message.as_deref().unwrap_or("see the job")
            ),
        ),
        (JobStatus::Cancelled, _, _) => ("failed", "Promotion cancelled.".into()),
        (JobStatus::Succeeded, _, Some(r)) if unfinished(r) => (
            "running",
            "Health check failed: rolling back production…".into(),
        ),
        (JobStatus::Succeeded, _, Some(r)) => (
            "failed",
            if r.status == JobStatus::Succeeded {
                "Promotion rolled back: the promoted release failed its health check; production \
                 is back on its previous release and its replaced tables came back from the gate \
                 backup (protected tables untouched)."
                    .into()
            } else {
                "Promotion failed its health check and the rollback failed: check production."
                    .into()
            },
        ),
        (JobStatus::Succeeded, Some(g), None) if unfinished(g) => {
            ("running", "Live; health check running…".into())
        }
        (JobStatus::Succeeded, Some(g), None) if g.status == JobStatus::Succeeded => (
            "succeeded",
            "Promotion succeeded: production is healthy on the promoted release.".into(),
        ),
        (JobStatus::Succeeded, _, None) => ("running", "Live; health check pending…".into()),
    };
    Some((kind.into(), words, promote.id.clone()))
}

async fn load_status(
    state: &AppState,
    session: &CurrentSession,
    env: &EnvironmentRecord,
    prod: &EnvironmentRecord,
) -> Result<PromoteStatus, ApiError> {
    let now = state.clock.now();
    let mut conn = state
        .store
        .pool()
        .acquire()
        .await
        .map_err(ApiError::internal)?;
    let gates: Gates = evaluate(&mut conn, env, prod, now).await?;
    drop(conn);
    let age = |at: &str| parse_ts(at).map(|t| ago(t, now)).unwrap_or_default();
    let (drift_status, drift_age) = match &gates.drift.subject {
        Some(c) if !c.is_baseline => (c.status.to_string(), age(&c.checked_at)),
        _ => ("unknown".into(), String::new()),
    };
    let backup_desc = match &gates.backup.subject {
        Some(b) => format!(
            "Newest full backup of production: completed {} ({}).",
            b.completed_at.as_deref().map(age).unwrap_or_default(),
            b.completed_at.as_deref().unwrap_or_default()
        ),
        None => "Production has no completed full backup.".into(),
    };
    let jobs = related_jobs(state, env, prod).await?;
    let running = |t: JobType, e: &EnvironmentRecord| {
        jobs.iter().any(|j| {
            j.job_type == t && j.environment_id.as_deref() == Some(e.id.as_str()) && unfinished(j)
        })
    };
    let promote_running = ["env_promote", "health_check", "release_rollback"]
        .iter()
        .any(|t| running(t.parse().expect("a job type"), prod));
    Ok(PromoteStatus {
        env_id: env.id.clone(),
        prod_name: prod.name.clone(),
        csrf_token: session.csrf_token(),
        preset: env.promotion_preset.clone(),
        drift_status,
        drift_age,
        drift_failure: gates.drift.failure.clone(),
        drift_running: running(JobType::DriftCheck, env),
        backup_desc,
        backup_failure: gates.backup.failure.clone(),
        backup_running: running(JobType::BackupCreate, prod),
        promote_running,
        can_promote: gates.pass() && !promote_running,
        outcome: outcome(env, &jobs),
        jobs: jobs.iter().map(JobRow::from).collect(),
    })
}

async fn show(
    state: &AppState,
    session: &CurrentSession,
    id: &str,
    shown: FormState,
) -> Result<Response, ApiError> {
    let (env, prod) = pair(state, id).await?;
    let status = load_status(state, session, &env, &prod).await?;
    let preset: crate::domain::PromotionPreset = env
        .promotion_preset
        .parse()
        .unwrap_or(crate::domain::PromotionPreset::CommerceProtect);
    let page = PromotePage {
        layout: Layout::new(&format!("Promote {}", env.name), "sites", session),
        protected: preset.protected_tables().join(", "),
        env,
        prod,
        notice: shown.notice,
        status,
    };
    Ok((shown.status, render(&page)).into_response())
}

/// `GET /environments/{id}/promote`.
async fn page(
    State(state): State<AppState>,
    UiSession(session): UiSession,
    PathId(id): PathId,
) -> Result<Response, ApiError> {
    show(&state, &session, &id, FormState::default()).await
}

/// `GET /environments/{id}/promote/status`: the live fragment.
async fn status(
    State(state): State<AppState>,
    UiSession(session): UiSession,
    PathId(id): PathId,
) -> Result<Response, ApiError> {
    let (env, prod) = pair(&state, &id).await?;
    Ok(render(&load_status(&state, &session, &env, &prod).await?))
}

/// The promote form: the acknowledgement (required; it never bypasses a gate).
#[derive(Debug, Deserialize)]
pub struct PromoteForm {
    #[serde(default)]
    acknowledge: Option<String>,
}

/// `POST /environments/{id}/promote`.
async fn submit(
    State(state): State<AppState>,
    UiSession(session): UiSession,
    PathId(id): PathId,
    CsrfForm(form): CsrfForm<PromoteForm>,
) -> Result<Response, ApiError> {
    let (env, prod) = pair(&state, &id).await?;
    if form.acknowledge.as_deref() != Some("yes") {
        let shown = FormState::notice(
            axum::http::StatusCode::BAD_REQUEST,
            "Tick the acknowledgement first: production's code and unprotected tables will be \
             replaced.",
        );
        return show(&state, &session, &id, shown).await;
    }
    match state
        .deploys
        .promote(&Actor::from(&session), &env.id, &prod.id)
        .await
    {
        Ok(_) => Ok(Redirect::to(&format!("/environments/{id}/promote")).into_response()),
        Err(e) => {
            let mut shown = form_error(e)?;
            shown.notice = shown.notice.map(|n| format!("Not promoted: {n}"));
            show(&state, &session, &id, shown).await
        }
    }
}

/// `POST /environments/{id}/promote/backup`: a full backup of production now.
async fn backup(
    State(state): State<AppState>,
    UiSession(session): UiSession,
    PathId(id): PathId,
    _: CsrfForm<NoFields>,
) -> Result<Response, ApiError> {
    let (_, prod) = pair(&state, &id).await?;
    match state
        .backups
        .create(Some(&Actor::from(&session)), &prod.id, "full")
        .await
    {
        Ok(_) => Ok(Redirect::to(&format!("/environments/{id}/promote")).into_response()),
        Err(e) => {
            let mut shown = form_error(e)?;
            shown.notice = shown.notice.map(|n| format!("No backup: {n}"));
            show(&state, &session, &id, shown).await
        }
    }
}
