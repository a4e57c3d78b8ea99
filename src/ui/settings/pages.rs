//! The Settings page (GET): effective values of every setting and the WordPress source form.

use std::collections::HashMap;

use askama::Template;
use axum::extract::State;
use axum::response::{IntoResponse, Response};

use super::forms::WordPressForm;
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
    errors: HashMap<String, String>,
    saved: bool,
}

pub(super) async fn page(
    state: &AppState,
    session: &CurrentSession,
    form: Option<WordPressForm>,
    shown: FormState,
    saved: bool,
) -> Result<Response, ApiError> {
    let view = state.settings.view().await?;
    let form = form.unwrap_or_else(|| WordPressForm {
        wordpress_source: view.get("wordpress_source").unwrap_or_default().to_string(),
        wordpress_source_sha256: view
            .get("wordpress_source_sha256")
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
    page(&state, &session, None, FormState::default(), false).await
}
