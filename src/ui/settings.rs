//! The Settings page: effective values of every setting, and the WordPress source form
//! (`/_admin/settings/wordpress` through the same settings service and validation).

use std::collections::HashMap;

use askama::Template;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

use super::form_errors::form_error;
use super::pages::render;
use super::views::Layout;
use crate::api::error::ApiError;
use crate::http::session::{CurrentSession, UiSession};
use crate::settings::WordPressSettings;
use crate::state::AppState;

/// The WordPress source form's values.
#[derive(Debug, Default, Deserialize)]
pub struct WordPressForm {
    #[serde(default)]
    pub wordpress_source: String,
    #[serde(default)]
    pub wordpress_source_sha256: String,
}

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

async fn page(
    state: &AppState,
    session: &CurrentSession,
    status: StatusCode,
    form: Option<WordPressForm>,
    errors: HashMap<String, String>,
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
        errors,
        saved,
    };
    Ok((status, render(&page)).into_response())
}

/// `GET /settings`.
pub async fn show(
    State(state): State<AppState>,
    UiSession(session): UiSession,
) -> Result<Response, ApiError> {
    page(
        &state,
        &session,
        StatusCode::OK,
        None,
        HashMap::new(),
        false,
    )
    .await
}

/// `POST /settings/wordpress`.
pub async fn save_wordpress(
    State(state): State<AppState>,
    UiSession(session): UiSession,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let form: WordPressForm = super::read_form(&session, &headers, &body)?;
    let input = WordPressSettings {
        wordpress_source: Some(form.wordpress_source.clone()),
        wordpress_source_sha256: Some(form.wordpress_source_sha256.clone()),
    };
    match state
        .settings
        .put_wordpress(&session.user.user_id, input)
        .await
    {
        Ok(_) => page(&state, &session, StatusCode::OK, None, HashMap::new(), true).await,
        Err(e) => {
            let (status, errors, _) = form_error(e)?;
            // The page shows what was sent, but never credentials in it.
            let form = WordPressForm {
                wordpress_source: crate::sources::redact_userinfo(&form.wordpress_source)
                    .into_owned(),
                ..form
            };
            page(&state, &session, status, Some(form), errors, false).await
        }
    }
}
