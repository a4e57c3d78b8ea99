//! The dashboard side of safe updates (issue 16): a page per site (`/sites/{id}/safe-updates`,
//! one link on the site page) with "Run now", the schedule and check settings (the same
//! service and validation as `PATCH /api/sites/{id}`, errors under their field) and the run
//! history; a page per run (`/safe-updates/{id}`) with its outcome, its job live (the job
//! page's panel, reloaded on the site's job events), the updates tried, the PHP fatals and per
//! check page the before / after / diff images side by side (served by the API's images
//! endpoint), the changed share against the threshold and the reasons; a held run's Approve
//! (after a confirmation) and Dismiss. The overview lists the sites whose run waits for review.
//! Every form carries the session's CSRF token ([`CsrfForm`]); every value is escaped by
//! askama.

pub mod views;

use std::collections::{BTreeMap, HashMap};

use askama::Template;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::Router;
use serde::Deserialize;

use self::views::{
    collect_masks, mask_pages, masks_text, outcome_badge, outcome_words, parse_paths,
    parse_threshold, parse_window, threshold_text, Mask, PageView, RunJson, RunRow,
};
use crate::domain::{JobType, SafeUpdateSchedule};
use crate::http::error::{ApiError, OrNotFound};
use crate::http::extract::PathId;
use crate::http::session::{CurrentSession, UiSession};
use crate::safe_updates::service::SiteSettingsChange;
use crate::sites::Actor;
use crate::state::AppState;
use crate::store::sites::SiteRecord;
use crate::store::{JobFilter, JobRecord};
use crate::ui::form_errors::form_error;
use crate::ui::forms::{CsrfForm, FormState, NoFields};
use crate::ui::jobs::views::JobPanel;
use crate::ui::render;
use crate::ui::views::{short_ts, Layout};

/// How many runs the history lists.
const HISTORY: usize = 30;

/// The safe-update routes.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/sites/{id}/safe-updates", get(page).post(run_now))
        .route("/sites/{id}/safe-updates/settings", post(save_settings))
        .route("/ui/sites/{id}/safe-updates/runs", get(runs_fragment))
        .route("/safe-updates/{id}", get(run_page))
        .route("/safe-updates/{id}/approve", post(approve))
        .route("/safe-updates/{id}/dismiss", post(dismiss))
        .route("/ui/safe-updates/{id}/status", get(status_fragment))
        .route("/ui/safe-updates/pending", get(pending))
}

// ------------------------------------------------------------------ the site's page

/// One page's masks field.
pub struct MaskField {
    pub path: String,
    /// The textarea's name (`mask_<i>`), also the key of its error.
    pub field: String,
    pub text: String,
}

/// The settings form's values as shown.
pub struct SettingsForm {
    pub schedule: String,
    pub window: String,
    pub paths: String,
    pub threshold: String,
    pub masks: Vec<MaskField>,
}

/// The site's stored check paths.
fn stored_paths(site: &SiteRecord) -> Vec<String> {
    serde_json::from_str(&site.safe_updates_paths).unwrap_or_default()
}

/// The site's stored masks.
fn stored_masks(site: &SiteRecord) -> BTreeMap<String, Vec<Mask>> {
    serde_json::from_str(&site.safe_updates_masks).unwrap_or_default()
}

impl SettingsForm {
    /// The form with the site's saved settings.
    fn of(site: &SiteRecord) -> Self {
        let paths = stored_paths(site);
        let masks = stored_masks(site);
        SettingsForm {
            schedule: site.safe_updates_schedule.to_string(),
            window: site.safe_updates_window.clone().unwrap_or_default(),
            paths: paths.join("\n"),
            threshold: threshold_text(site.safe_updates_threshold),
            masks: mask_pages(&paths)
                .into_iter()
                .enumerate()
                .map(|(i, path)| MaskField {
                    text: masks.get(&path).map(|m| masks_text(m)).unwrap_or_default(),
                    field: format!("mask_{i}"),
                    path,
                })
                .collect(),
        }
    }
}

/// The submitted settings form (its fields by name: the masks fields are one per page).
struct SentSettings(HashMap<String, String>);

impl SentSettings {
    fn get(&self, name: &str) -> String {
        self.0.get(name).cloned().unwrap_or_default()
    }

    /// The masks fields as sent: (path, text) in page order (at most 11 pages).
    fn mask_fields(&self) -> Vec<(String, String)> {
        (0..=10)
            .map_while(|i| {
                let path = self.0.get(&format!("mask_path_{i}"))?;
                Some((path.clone(), self.get(&format!("mask_{i}"))))
            })
            .collect()
    }

    /// The form shown again as sent.
    fn shown(&self) -> SettingsForm {
        SettingsForm {
            schedule: self.get("safe_updates_schedule"),
            window: self.get("safe_updates_window"),
            paths: self.get("safe_updates_paths"),
            threshold: self.get("safe_updates_threshold"),
            masks: self
                .mask_fields()
                .into_iter()
                .enumerate()
                .map(|(i, (path, text))| MaskField {
                    path,
                    field: format!("mask_{i}"),
                    text,
                })
                .collect(),
        }
    }
}

#[derive(Template)]
#[template(path = "partials/safe_updates_runs.html")]
struct RunsFragment {
    runs: Vec<RunRow>,
}

#[derive(Template)]
#[template(path = "safe_updates.html")]
struct SafeUpdatesPage {
    layout: Layout,
    site_id: String,
    site_name: String,
    schedules: &'static [&'static str],
    form: SettingsForm,
    errors: HashMap<String, String>,
    notice: Option<String>,
    saved: bool,
    /// A run of the site waiting for review (its id).
    held_run: Option<String>,
    /// A run is running: the history also polls.
    polling: bool,
    runs: Vec<RunRow>,
}

async fn site_of(state: &AppState, id: &str) -> Result<SiteRecord, ApiError> {
    state.store.get_site(id).await?.or_not_found("site")
}

async fn run_rows(state: &AppState, site_id: &str) -> Result<Vec<RunRow>, ApiError> {
    Ok(state
        .store
        .list_safe_update_runs(site_id)
        .await?
        .iter()
        .take(HISTORY)
        .map(|r| RunRow::from(&RunJson::from_record(r)))
        .collect())
}

/// The site's page: `form` as given (the saved settings unless a refused form is shown again).
async fn show_page(
    state: &AppState,
    session: &CurrentSession,
    site: SiteRecord,
    form: Option<SettingsForm>,
    shown: FormState,
    saved: bool,
) -> Result<Response, ApiError> {
    let runs = run_rows(state, &site.id).await?;
    let held_run = runs
        .iter()
        .find(|r| r.outcome == "held")
        .map(|r| r.id.clone());
    let page = SafeUpdatesPage {
        layout: Layout::new(&format!("Safe updates · {}", site.name), "sites", session),
        form: form.unwrap_or_else(|| SettingsForm::of(&site)),
        site_id: site.id,
        site_name: site.name,
        schedules: SafeUpdateSchedule::VALUES,
        errors: shown.errors,
        notice: shown.notice,
        saved,
        held_run,
        polling: runs.iter().any(|r| r.outcome == "running"),
        runs,
    };
    Ok((shown.status, render(&page)).into_response())
}

/// `GET /sites/{id}/safe-updates?saved=1`.
#[derive(Debug, Default, Deserialize)]
pub struct PageQuery {
    #[serde(default)]
    saved: Option<String>,
}

/// `GET /sites/{id}/safe-updates`.
async fn page(
    State(state): State<AppState>,
    UiSession(session): UiSession,
    PathId(id): PathId,
    Query(q): Query<PageQuery>,
) -> Result<Response, ApiError> {
    let site = site_of(&state, &id).await?;
    let saved = q.saved.is_some();
    show_page(&state, &session, site, None, FormState::default(), saved).await
}

/// `GET /ui/sites/{id}/safe-updates/runs`: the live history.
async fn runs_fragment(
    State(state): State<AppState>,
    UiSession(_session): UiSession,
    PathId(id): PathId,
) -> Result<Response, ApiError> {
    let site = site_of(&state, &id).await?;
    Ok(render(&RunsFragment {
        runs: run_rows(&state, &site.id).await?,
    }))
}

/// `POST /sites/{id}/safe-updates` (Run now): to the run's page, which follows its job live.
async fn run_now(
    State(state): State<AppState>,
    UiSession(session): UiSession,
    PathId(id): PathId,
    _: CsrfForm<NoFields>,
) -> Result<Response, ApiError> {
    let site = site_of(&state, &id).await?;
    match state
        .safe_updates
        .start(Some(&Actor::from(&session)), &site.id)
        .await
    {
        Ok(started) => {
            Ok(Redirect::to(&format!("/safe-updates/{}", started.run_id)).into_response())
        }
        Err(e) => {
            let mut shown = form_error(e)?;
            shown.notice = Some(format!(
                "Not started: {}",
                shown
                    .notice
                    .take()
                    .or_else(|| shown.errors.values().next().cloned())
                    .unwrap_or_default()
            ));
            show_page(&state, &session, site, None, shown, false).await
        }
    }
}

/// `POST /sites/{id}/safe-updates/settings`: saved through the service `PATCH /api/sites/{id}`
/// uses; a refused form comes back as sent with the error under its field.
async fn save_settings(
    State(state): State<AppState>,
    UiSession(session): UiSession,
    PathId(id): PathId,
    CsrfForm(fields): CsrfForm<HashMap<String, String>>,
) -> Result<Response, ApiError> {
    let site = site_of(&state, &id).await?;
    let sent = SentSettings(fields);
    let paths = parse_paths(&sent.get("safe_updates_paths"));
    let read = parse_threshold(&sent.get("safe_updates_threshold")).and_then(|threshold| {
        collect_masks(&sent.mask_fields(), &paths).map(|masks| (threshold, masks))
    });
    let (threshold, masks) = match read {
        Ok(v) => v,
        Err((field, message)) => {
            let shown = FormState::field(&field, message);
            return show_page(&state, &session, site, Some(sent.shown()), shown, false).await;
        }
    };
    let masks: serde_json::Map<String, serde_json::Value> = masks
        .into_iter()
        .map(|(path, list)| (path, serde_json::json!(list)))
        .collect();
    let change = SiteSettingsChange {
        schedule: Some(sent.get("safe_updates_schedule").trim().to_string()),
        window: Some(parse_window(&sent.get("safe_updates_window"))),
        paths: Some(serde_json::json!(paths)),
        threshold: Some(serde_json::json!(threshold)),
        masks: Some(serde_json::Value::Object(masks)),
        ..Default::default()
    };
    match state
        .safe_updates
        .update_site(&Actor::from(&session), &site.id, &change)
        .await
    {
        Ok(_) => {
            Ok(Redirect::to(&format!("/sites/{}/safe-updates?saved=1", site.id)).into_response())
        }
        Err(e) => {
            let shown = form_error(e)?;
            show_page(&state, &session, site, Some(sent.shown()), shown, false).await
        }
    }
}

// ------------------------------------------------------------------ a run's page

/// A job of the run, with the job page's panel.
pub struct RunJob {
    pub title: &'static str,
    pub test: &'static str,
    pub id: String,
    pub short_id: String,
    pub status: String,
    /// Still queued or running: shown open.
    pub open: bool,
    pub panel_html: String,
}

/// The live part of a run's page.
#[derive(Template)]
#[template(path = "partials/safe_updates_status.html")]
struct RunStatus {
    run_id: String,
    csrf_token: String,
    outcome: String,
    badge: &'static str,
    words: &'static str,
    trigger: String,
    started: String,
    finished: String,
    decided: Option<String>,
    reason: Option<String>,
    held: bool,
    jobs: Vec<RunJob>,
}

async fn run_status(
    state: &AppState,
    session: &CurrentSession,
    run: &RunJson,
) -> Result<RunStatus, ApiError> {
    let mut records = Vec::new();
    for (id, title, test) in [
        (run.job_id.as_deref(), "The run's job", "safe-update-job"),
        (
            run.apply_job_id.as_deref(),
            "Production update",
            "safe-update-apply-job",
        ),
    ] {
        if let Some(record) = match id {
            Some(id) => state.store.get_job(id).await?,
            None => None,
        } {
            records.push((record, title, test));
        }
    }
    // The production update's health gate and, when it failed, the rollback after it: the run
    // page shows how the update ended on production, not only that it was applied.
    if let Some(apply) = records
        .iter()
        .find(|(_, _, t)| *t == "safe-update-apply-job")
    {
        let gate = follow_up(state, &apply.0.id, JobType::HealthCheck).await?;
        let rollback = match &gate {
            Some(g) => follow_up(state, &g.id, JobType::ReleaseRollback).await?,
            None => None,
        };
        if let Some(g) = gate {
            records.push((g, "Production health check", "safe-update-apply-gate"));
        }
        if let Some(r) = rollback {
            records.push((r, "Production rollback", "safe-update-apply-rollback"));
        }
    }
    let mut jobs = Vec::new();
    for (record, title, test) in records {
        let panel = JobPanel::new(&record, session.csrf_token());
        jobs.push(RunJob {
            title,
            test,
            id: panel.row.id.clone(),
            short_id: panel.row.short_id.clone(),
            status: panel.row.status.clone(),
            open: panel.cancellable,
            panel_html: panel.render().map_err(ApiError::internal)?,
        });
    }
    let decided = run.decided_at.as_deref().map(|at| {
        let by = run.decided_by_email.as_deref().unwrap_or("someone");
        format!("{} by {by}", short_ts(Some(at)))
    });
    Ok(RunStatus {
        run_id: run.id.clone(),
        csrf_token: session.csrf_token(),
        outcome: run.outcome.clone(),
        badge: outcome_badge(&run.outcome),
        words: outcome_words(&run.outcome),
        trigger: run.trigger.clone(),
        started: short_ts(Some(&run.created_at)),
        finished: short_ts(run.finished_at.as_deref()),
        decided,
        reason: run.reason.clone(),
        held: run.outcome == "held",
        jobs,
    })
}

#[derive(Template)]
#[template(path = "safe_updates_run.html")]
struct RunPage {
    layout: Layout,
    title: String,
    run_id: String,
    site_id: String,
    site_name: String,
    outcome: String,
    notice: Option<String>,
    confirm: bool,
    /// The production update's job (id, short id) right after the approval.
    approved_job: Option<(String, String)>,
    updates: Vec<String>,
    fatals: Vec<String>,
    threshold: String,
    pages: Vec<PageView>,
    // The live part, rendered in place the first time.
    csrf_token: String,
    badge: &'static str,
    words: &'static str,
    trigger: String,
    started: String,
    finished: String,
    decided: Option<String>,
    reason: Option<String>,
    held: bool,
    jobs: Vec<RunJob>,
    /// The run or one of its jobs is unfinished: the live part also polls (a job event sent
    /// before the page's stream connected would otherwise be missed).
    polling: bool,
}

/// The follow-up of type `job_type` that job `parent` enqueued, if any.
async fn follow_up(
    state: &AppState,
    parent: &str,
    job_type: JobType,
) -> Result<Option<JobRecord>, ApiError> {
    let filter = JobFilter {
        parent_job_id: Some(parent.to_string()),
        job_type: Some(job_type),
        limit: 1,
        ..JobFilter::default()
    };
    Ok(state.store.list_jobs(&filter).await?.into_iter().next())
}

/// The run (as the API shows it) with the e-mail of whoever decided it.
async fn load_run(state: &AppState, id: &str) -> Result<RunJson, ApiError> {
    let record = state
        .store
        .get_safe_update_run(id)
        .await?
        .or_not_found("safe-update run")?;
    let mut run = RunJson::from_record(&record);
    if let Some(user) = &run.decided_by {
        run.decided_by_email = state.store.user_email(user).await?;
    }
    Ok(run)
}

/// `GET /safe-updates/{id}?confirm=approve|approved=1`.
#[derive(Debug, Default, Deserialize)]
pub struct RunQuery {
    #[serde(default)]
    confirm: Option<String>,
    #[serde(default)]
    approved: Option<String>,
}

async fn show_run(
    state: &AppState,
    session: &CurrentSession,
    id: &str,
    q: RunQuery,
    shown: FormState,
) -> Result<Response, ApiError> {
    let run = load_run(state, id).await?;
    let site = site_of(state, &run.site_id).await?;
    let status = run_status(state, session, &run).await?;
    let run_dir = state.config.data_dir.join("safe-updates").join(&run.id);
    let pages = run
        .pages
        .iter()
        .map(|p| {
            let mut view = PageView::new(&run.id, p);
            // An image the run did not write (a page that did not load) is not linked.
            for shot in &mut view.shots {
                let exists = shot
                    .file
                    .as_deref()
                    .and_then(|f| std::fs::symlink_metadata(run_dir.join(f)).ok())
                    .is_some_and(|m| m.is_file());
                if !exists {
                    shot.url = None;
                }
            }
            view
        })
        .collect();
    let threshold = run.threshold_percent.unwrap_or(site.safe_updates_threshold);
    let held = run.outcome == "held";
    let approved_job = (q.approved.is_some() && run.outcome == "approved")
        .then(|| run.apply_job_id.clone())
        .flatten()
        .map(|id| (id.clone(), id.chars().take(8).collect()));
    let page = RunPage {
        layout: Layout::new(
            &format!("Safe update {}", &run.id[..8.min(run.id.len())]),
            "sites",
            session,
        ),
        title: format!("Safe update run {}", &run.id[..8.min(run.id.len())]),
        run_id: run.id.clone(),
        site_id: site.id.clone(),
        site_name: site.name.clone(),
        outcome: run.outcome.clone(),
        notice: shown.notice,
        confirm: held && q.confirm.as_deref() == Some("approve"),
        approved_job,
        updates: run.updates.iter().map(|u| u.label()).collect(),
        fatals: run.fatals.clone(),
        threshold: format!("{} %", threshold_text(threshold)),
        pages,
        csrf_token: status.csrf_token,
        badge: status.badge,
        words: status.words,
        trigger: status.trigger,
        started: status.started,
        finished: status.finished,
        decided: status.decided,
        reason: status.reason,
        held: status.held,
        polling: run.outcome == "running" || status.jobs.iter().any(|j| j.open),
        jobs: status.jobs,
    };
    Ok((shown.status, render(&page)).into_response())
}

/// `GET /safe-updates/{id}`.
async fn run_page(
    State(state): State<AppState>,
    UiSession(session): UiSession,
    PathId(id): PathId,
    Query(q): Query<RunQuery>,
) -> Result<Response, ApiError> {
    show_run(&state, &session, &id, q, FormState::default()).await
}

/// `GET /ui/safe-updates/{id}/status?shown=<outcome>`: the live part; when the outcome is no
/// longer the one the page shows, the page reloads itself (`HX-Refresh`) to show what the run
/// found.
#[derive(Debug, Default, Deserialize)]
pub struct StatusQuery {
    #[serde(default)]
    shown: Option<String>,
}

async fn status_fragment(
    State(state): State<AppState>,
    UiSession(session): UiSession,
    PathId(id): PathId,
    Query(q): Query<StatusQuery>,
) -> Result<Response, ApiError> {
    let run = load_run(&state, &id).await?;
    if q.shown.as_deref().is_some_and(|s| s != run.outcome) {
        return Ok(([("HX-Refresh", "true")], StatusCode::OK).into_response());
    }
    Ok(render(&run_status(&state, &session, &run).await?))
}

/// `POST /safe-updates/{id}/approve` (after the confirmation): production's update starts;
/// the run's page then shows its job live. A refusal (not held any more) is shown on the page.
async fn approve(
    State(state): State<AppState>,
    UiSession(session): UiSession,
    PathId(id): PathId,
    _: CsrfForm<NoFields>,
) -> Result<Response, ApiError> {
    match state
        .safe_updates
        .approve(&Actor::from(&session), &id)
        .await
    {
        Ok(_) => Ok(Redirect::to(&format!("/safe-updates/{id}?approved=1")).into_response()),
        Err(e) => refused(&state, &session, &id, "Not approved", e).await,
    }
}

/// `POST /safe-updates/{id}/dismiss`.
async fn dismiss(
    State(state): State<AppState>,
    UiSession(session): UiSession,
    PathId(id): PathId,
    _: CsrfForm<NoFields>,
) -> Result<Response, ApiError> {
    match state
        .safe_updates
        .dismiss(&Actor::from(&session), &id)
        .await
    {
        Ok(_) => Ok(Redirect::to(&format!("/safe-updates/{id}")).into_response()),
        Err(e) => refused(&state, &session, &id, "Not dismissed", e).await,
    }
}

/// The run's page again with the service's refusal as a sentence.
async fn refused(
    state: &AppState,
    session: &CurrentSession,
    id: &str,
    what: &str,
    e: crate::services::ServiceError,
) -> Result<Response, ApiError> {
    let mut shown = form_error(e)?;
    let reason = shown
        .notice
        .take()
        .or_else(|| shown.errors.values().next().cloned())
        .unwrap_or_default();
    shown.notice = Some(format!("{what}: {reason}"));
    show_run(state, session, id, RunQuery::default(), shown).await
}

// ------------------------------------------------------------------ the overview

/// A site whose run waits for review.
pub struct HeldRun {
    pub site_id: String,
    pub site_name: String,
    pub run_id: String,
    pub started: String,
    pub updates: Vec<String>,
}

#[derive(Template)]
#[template(path = "partials/safe_updates_pending.html")]
struct PendingFragment {
    held: Vec<HeldRun>,
}

/// `GET /ui/safe-updates/pending`: the overview's list of held runs.
async fn pending(
    State(state): State<AppState>,
    UiSession(_session): UiSession,
) -> Result<Response, ApiError> {
    let sites = state.store.list_sites(false).await?;
    let mut held = Vec::new();
    for r in state.store.held_safe_update_runs().await? {
        let Some(site) = sites.iter().find(|s| s.site.id == r.site_id) else {
            continue;
        };
        let run = RunJson::from_record(&r);
        held.push(HeldRun {
            site_id: site.site.id.clone(),
            site_name: site.site.name.clone(),
            run_id: run.id.clone(),
            started: short_ts(Some(&run.created_at)),
            updates: run.updates.iter().map(|u| u.label()).collect(),
        });
    }
    Ok(render(&PendingFragment { held }))
}
