//! The Settings page (GET): effective values of every setting, the WordPress source form and
//! the backups form with where new backups are kept.

use std::collections::HashMap;

use askama::Template;
use axum::extract::State;
use axum::response::{IntoResponse, Response};

use super::forms::{BackupsForm, WordPressForm};
use crate::http::error::ApiError;
use crate::http::session::{CurrentSession, UiSession};
use crate::state::AppState;
use crate::ui::forms::FormState;
use crate::ui::render;
use crate::ui::views::Layout;

#[derive(Template)]
#[template(path = "settings.html")]
struct SettingsPage {
    layout: Layout,
    values: Vec<(&'static str, String)>,
    secrets: Vec<(&'static str, bool)>,
    form: WordPressForm,
    backups: BackupsForm,
    /// Where new backups go: a bucket is set (off-site) or not (local on each node).
    s3_bucket: Option<String>,
    credentials_stored: bool,
    errors: HashMap<String, String>,
    saved: bool,
}

/// Forms to show as sent (after a refusal) instead of with the stored values.
#[derive(Default)]
pub(super) struct Shown {
    pub wordpress: Option<WordPressForm>,
    pub backups: Option<BackupsForm>,
}

pub(super) async fn page(
    state: &AppState,
    session: &CurrentSession,
    forms: Shown,
    shown: FormState,
    saved: bool,
) -> Result<Response, ApiError> {
    let view = state.settings.view().await?;
    let value = |key: &str| view.get(key).unwrap_or_default().to_string();
    let backups = forms.backups.unwrap_or_else(|| BackupsForm {
        backup_retention_days: value("backup_retention_days"),
        backup_schedule_hours: value("backup_schedule_hours"),
        backup_s3_endpoint: value("backup_s3_endpoint"),
        backup_s3_region: value("backup_s3_region"),
        backup_s3_bucket: value("backup_s3_bucket"),
        backup_s3_prefix: value("backup_s3_prefix"),
        ..BackupsForm::default()
    });
    let credentials_stored = view
        .secrets
        .iter()
        .any(|(k, set)| *k == crate::settings::backups::CREDENTIALS_KEY && *set);
    let form = forms.wordpress.unwrap_or_else(|| WordPressForm {
        wordpress_source: view.get("wordpress_source").unwrap_or_default().to_string(),
        wordpress_source_sha256: view
            .get("wordpress_source_sha256")
            .unwrap_or_default()
            .to_string(),
        wordpress_update_source: view
            .get("wordpress_update_source")
            .unwrap_or_default()
            .to_string(),
    });
    let page = SettingsPage {
        layout: Layout::new("Settings", "settings", session),
        values: view
            .values
            .iter()
            .map(|(k, v)| (*k, v.clone().unwrap_or_else(|| "not set".into())))
            .collect(),
        secrets: view.secrets.clone(),
        form,
        backups,
        s3_bucket: view.get("backup_s3_bucket").map(str::to_string),
        credentials_stored,
        errors: shown.errors,
        saved,
    };
    Ok((shown.status, render(&page)).into_response())
}

/// `GET /settings`.
pub async fn show(
    State(state): State<AppState>,
    UiSession(session): UiSession,
) -> Result<Response, ApiError> {
    page(
        &state,
        &session,
        Shown::default(),
        FormState::default(),
        false,
    )
    .await
}
