//! The Backups section of the environment page (GET): the Create Backup form and the live
//! panel, rendered for `ui::sites::pages` to place.

use std::collections::HashMap;

use askama::Template;

use super::forms::{BackupForm, BackupFormView};
use super::views::BackupsPanel;
use crate::http::error::ApiError;
use crate::http::session::CurrentSession;
use crate::state::AppState;
use crate::store::environments::EnvironmentRecord;

/// The section's two parts as HTML: the form (kept across live refreshes) and the panel.
pub struct BackupsSection {
    pub form: String,
    pub panel: String,
}

/// The section of `env`, the form showing `form` with `errors` and `notice`.
pub async fn section(
    state: &AppState,
    session: &CurrentSession,
    env: &EnvironmentRecord,
    form: BackupForm,
    errors: HashMap<String, String>,
    notice: Option<String>,
) -> Result<BackupsSection, ApiError> {
    let panel =
        BackupsPanel::load(&state.store, env, session.csrf_token(), state.clock.now()).await?;
    let form = BackupFormView {
        environment_id: env.id.clone(),
        csrf_token: session.csrf_token(),
        scope: form.backup_scope,
        errors,
        notice,
    };
    Ok(BackupsSection {
        form: form.render().map_err(ApiError::internal)?,
        panel: panel.render().map_err(ApiError::internal)?,
    })
}
