//! The WordPress source form (POST), through `/_admin/settings/wordpress`'s settings service
//! and validation; a refused form is shown again with its errors.

use axum::extract::State;
use axum::response::Response;
use serde::Deserialize;

use super::pages::page;
use crate::http::error::ApiError;
use crate::http::session::UiSession;
use crate::settings::WordPressSettings;
use crate::state::AppState;
use crate::ui::form_errors::form_error;
use crate::ui::forms::{CsrfForm, FormState};

/// The WordPress source form's values.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct WordPressForm {
    pub wordpress_source: String,
    pub wordpress_source_sha256: String,
}

/// `POST /settings/wordpress`.
pub async fn save_wordpress(
    State(state): State<AppState>,
    UiSession(session): UiSession,
    CsrfForm(form): CsrfForm<WordPressForm>,
) -> Result<Response, ApiError> {
    let input = WordPressSettings {
        wordpress_source: Some(form.wordpress_source.clone()),
        wordpress_source_sha256: Some(form.wordpress_source_sha256.clone()),
    };
    match state
        .settings
        .put_wordpress(&session.user.user_id, input)
        .await
    {
        Ok(_) => page(&state, &session, None, FormState::default(), true).await,
        Err(e) => {
            let shown = form_error(e)?;
            // The page shows what was sent, but never credentials in it.
            let form = WordPressForm {
                wordpress_source: crate::sources::redact_userinfo(&form.wordpress_source)
                    .into_owned(),
                ..form
            };
            page(&state, &session, Some(form), shown, false).await
        }
    }
}
