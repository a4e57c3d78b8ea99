//! "Restore" in the dashboard (ui.md, environment detail: Backups, Restore): the environment page
//! links to `/environments/{id}/restore`, which lists the completed backups of every environment
//! of the site; choosing one (or "Restore" on a completed backup in the Backups panel, through
//! `/backups/{id}/restore`) shows the confirmation: the backup (id, source environment, created,
//! scope), exactly what will be replaced, that a full pre-restore backup is taken first and that
//! a failed health check rolls back. Confirming posts through the deploy service as the API;
//! the job's page then follows the restore live, and its release (`backup:<id>`) appears in the
//! releases timeline. A refusal shows the confirmation again with the error.

use std::collections::HashMap;

use askama::Template;
use axum::extract::{Query, State};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use axum::Router;
use serde::Deserialize;

use crate::domain::{BackupScope, BackupStatus};
use crate::http::error::{ApiError, OrNotFound};
use crate::http::extract::PathId;
use crate::http::session::{CurrentSession, UiSession};
use crate::sites::Actor;
use crate::state::AppState;
use crate::store::environments::EnvironmentRecord;
use crate::ui::form_errors::form_error;
use crate::ui::forms::{CsrfForm, FormState};
use crate::ui::render;
use crate::ui::views::{short_ts, short_ts_str, Layout};

/// The restore routes.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/environments/{id}/restore", get(page).post(submit))
        .route("/backups/{id}/restore", get(from_backup))
}

/// One restorable backup as listed and confirmed.
#[derive(Clone)]
pub struct RestorableBackup {
    pub id: String,
    pub short_id: String,
    /// The environment it was taken of (name and id).
    pub source_name: String,
    pub source_id: String,
    pub scope: String,
    pub created: String,
    pub completed: String,
    /// What restoring it replaces in the target, in words.
    pub replaces: Vec<&'static str>,
    /// Taken of another environment: its URLs are rewritten to the target's.
    pub other_environment: bool,
}

impl RestorableBackup {
    fn new(
        b: &crate::store::backups::BackupRecord,
        source: &EnvironmentRecord,
        target: &str,
    ) -> Self {
        let replaces = match b.backup_scope {
            BackupScope::Full => vec![
                "the release files (a new release from the backup's files)",
                "the database (every table)",
                "the uploads (wp-content/uploads)",
            ],
            BackupScope::Db => vec![
                "the database (every table); the code stays (a new release copied from the current one)",
            ],
            BackupScope::Files => vec![
                "the release files (a new release from the backup's files)",
                "the uploads (wp-content/uploads); the database stays",
            ],
        };
        RestorableBackup {
            id: b.id.clone(),
            short_id: b.id.chars().take(8).collect(),
            source_name: source.name.clone(),
            source_id: source.id.clone(),
            scope: b.backup_scope.to_string(),
            created: short_ts_str(&b.created_at),
            completed: short_ts(b.completed_at.as_deref()),
            replaces,
            other_environment: source.id != target,
        }
    }
}

#[derive(Template)]
#[template(path = "partials/restore_page.html")]
struct RestorePage {
    layout: Layout,
    env: EnvironmentRecord,
    site_name: String,
    backups: Vec<RestorableBackup>,
    /// The backup being confirmed.
    chosen: Option<RestorableBackup>,
    errors: HashMap<String, String>,
    notice: Option<String>,
}

/// The chosen backup (`?backup_id=`).
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct Chosen {
    pub backup_id: String,
}

/// The completed backups of every environment of the target's site, newest first.
async fn restorable(
    state: &AppState,
    env: &EnvironmentRecord,
) -> Result<Vec<RestorableBackup>, ApiError> {
    let mut all = Vec::new();
    for source in state.store.list_environments(&env.site_id).await? {
        for b in state.store.list_backups(&source.id).await? {
            if b.status == BackupStatus::Completed && b.checksum.is_some() {
                all.push((
                    b.created_at.clone(),
                    RestorableBackup::new(&b, &source, &env.id),
                ));
            }
        }
    }
    all.sort_by(|a, b| b.0.cmp(&a.0));
    Ok(all.into_iter().map(|(_, b)| b).collect())
}

async fn show(
    state: &AppState,
    session: &CurrentSession,
    env_id: &str,
    backup_id: &str,
    shown: FormState,
) -> Result<Response, ApiError> {
    let env = state
        .store
        .get_environment(env_id)
        .await?
        .or_not_found("environment")?;
    let site = state
        .store
        .get_site(&env.site_id)
        .await?
        .or_not_found("site")?;
    let backups = restorable(state, &env).await?;
    let chosen = backups
        .iter()
        .find(|b| !backup_id.is_empty() && b.id == backup_id)
        .cloned();
    let mut notice = shown.notice;
    if !backup_id.is_empty() && chosen.is_none() && notice.is_none() {
        notice = Some(
            "That backup cannot be restored here: it is not a completed backup of this site."
                .into(),
        );
    }
    let page = RestorePage {
        layout: Layout::new(&format!("Restore {}", env.name), "sites", session),
        site_name: site.name,
        env,
        backups,
        chosen,
        errors: shown.errors,
        notice,
    };
    Ok((shown.status, render(&page)).into_response())
}

/// `GET /environments/{id}/restore[?backup_id=…]`: the list, or the confirmation.
async fn page(
    State(state): State<AppState>,
    UiSession(session): UiSession,
    PathId(id): PathId,
    Query(chosen): Query<Chosen>,
) -> Result<Response, ApiError> {
    show(
        &state,
        &session,
        &id,
        &chosen.backup_id,
        FormState::default(),
    )
    .await
}

/// `GET /backups/{id}/restore`: the confirmation of restoring the backup into its own
/// environment (the Backups panel's "Restore").
async fn from_backup(
    State(state): State<AppState>,
    UiSession(_session): UiSession,
    PathId(id): PathId,
) -> Result<Response, ApiError> {
    let backup = state.store.get_backup(&id).await?.or_not_found("backup")?;
    Ok(Redirect::to(&format!(
        "/environments/{}/restore?backup_id={}",
        backup.environment_id, backup.id
    ))
    .into_response())
}

/// `POST /environments/{id}/restore` (`backup_id`): the confirmed restore.
async fn submit(
    State(state): State<AppState>,
    UiSession(session): UiSession,
    PathId(id): PathId,
    CsrfForm(form): CsrfForm<Chosen>,
) -> Result<Response, ApiError> {
    match state
        .deploys
        .restore(&Actor::from(&session), &id, &form.backup_id)
        .await
    {
        Ok(job_id) => Ok(Redirect::to(&format!("/jobs/{job_id}")).into_response()),
        Err(e) => {
            let shown = form_error(e)?;
            show(&state, &session, &id, &form.backup_id, shown).await
        }
    }
}
