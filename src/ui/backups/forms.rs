//! The Backups forms (POST): Create Backup (a scope) and Verify, through the backup service as
//! the API; on success the job's page follows the work live, a refusal shows the environment
//! page again with the error.

use std::collections::HashMap;

use askama::Template;
use axum::extract::State;
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;

use crate::http::error::{ApiError, OrNotFound};
use crate::http::extract::PathId;
use crate::http::session::UiSession;
use crate::sites::Actor;
use crate::state::AppState;
use crate::ui::form_errors::form_error;
use crate::ui::forms::{CsrfForm, NoFields};
use crate::ui::sites::pages::environment_page_with;

/// The scopes offered, `full` first.
pub const SCOPES: [(&str, &str); 3] = [
    ("full", "Full (database and files)"),
    ("db", "Database only"),
    ("files", "Files only"),
];

/// The Create Backup form's values.
#[derive(Debug, Deserialize)]
#[serde(default)]
pub struct BackupForm {
    pub backup_scope: String,
}

impl Default for BackupForm {
    fn default() -> Self {
        BackupForm {
            backup_scope: "full".into(),
        }
    }
}

/// The Create Backup form as shown (with the values sent and errors after a refusal).
#[derive(Template)]
#[template(path = "partials/backup_form.html")]
pub struct BackupFormView {
    pub environment_id: String,
    pub csrf_token: String,
    pub scope: String,
    pub errors: HashMap<String, String>,
    pub notice: Option<String>,
}

/// `POST /environments/{id}/backups`.
pub async fn create(
    State(state): State<AppState>,
    UiSession(session): UiSession,
    PathId(id): PathId,
    CsrfForm(form): CsrfForm<BackupForm>,
) -> Result<Response, ApiError> {
    let actor = Actor::from(&session);
    match state
        .backups
        .create(Some(&actor), &id, form.backup_scope.trim())
        .await
    {
        Ok(created) => Ok(Redirect::to(&format!("/jobs/{}", created.job_id)).into_response()),
        Err(e) => environment_page_with(&state, &session, &id, form, form_error(e)?).await,
    }
}

/// `POST /backups/{id}/verify`.
pub async fn verify(
    State(state): State<AppState>,
    UiSession(session): UiSession,
    PathId(id): PathId,
    _: CsrfForm<NoFields>,
) -> Result<Response, ApiError> {
    let actor = Actor::from(&session);
    match state.backups.verify(&actor, &id).await {
        Ok(job_id) => Ok(Redirect::to(&format!("/jobs/{job_id}")).into_response()),
        Err(e) => {
            let mut shown = form_error(e)?;
            shown.notice = shown.notice.map(|n| format!("Not verified: {n}"));
            let backup = state.store.get_backup(&id).await?.or_not_found("backup")?;
            let form = BackupForm::default();
            environment_page_with(&state, &session, &backup.environment_id, form, shown).await
        }
    }
}
