//! The WordPress source form (POST), through `/_admin/settings/wordpress`'s settings service
//! and validation; a refused form is shown again with its errors.

use std::collections::HashMap;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use serde::Deserialize;

use super::pages::page;
use crate::http::error::ApiError;
use crate::http::session::UiSession;
use crate::settings::{SettingsError, WordPressSettings};
use crate::state::AppState;
use crate::ui::forms::read_form;

/// The WordPress source form's values.
#[derive(Debug, Default, Deserialize)]
pub struct WordPressForm {
    #[serde(default)]
    pub wordpress_source: String,
    #[serde(default)]
    pub wordpress_source_sha256: String,
}

/// `POST /settings/wordpress`.
pub async fn save_wordpress(
    State(state): State<AppState>,
    UiSession(session): UiSession,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let form: WordPressForm = read_form(&session, &headers, &body)?;
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
        Err(SettingsError::Invalid { field, message }) => {
            let errors = HashMap::from([(field.to_string(), message)]);
            // The page shows what was sent, but never credentials in it.
            let form = WordPressForm {
                wordpress_source: crate::sources::redact_userinfo(&form.wordpress_source)
                    .into_owned(),
                ..form
            };
            page(
                &state,
                &session,
                StatusCode::BAD_REQUEST,
                Some(form),
                errors,
                false,
            )
            .await
        }
        Err(other) => Err(other.into()),
    }
}
