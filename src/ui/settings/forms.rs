//! The Settings forms (POST): the WordPress source and the backups group, through the same
//! settings service and validation as `/_admin/settings/*`; a refused form is shown again with
//! its errors.

use axum::extract::State;
use axum::response::Response;
use serde::Deserialize;

use super::pages::{page, Shown};
use crate::backups::storage::S3Credentials;
use crate::http::error::ApiError;
use crate::http::session::{CurrentSession, UiSession};
use crate::services::ServiceError;
use crate::settings::backups::{BackupSettings, CredentialsChange};
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
    pub wordpress_update_source: String,
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
        wordpress_update_source: Some(form.wordpress_update_source.clone()),
    };
    let result = state
        .settings
        .put_wordpress(&session.user.user_id, input)
        .await;
    // The page shows what was sent, but never credentials in it.
    let refused = || Shown {
        wordpress: Some(WordPressForm {
            wordpress_source: crate::sources::redact_userinfo(&form.wordpress_source).into_owned(),
            ..form
        }),
        ..Shown::default()
    };
    after_save(&state, &session, result, refused).await
}

/// The page after a save: "saved", or the refused form shown again (as `refused` makes it)
/// with its errors.
async fn after_save<T>(
    state: &AppState,
    session: &CurrentSession,
    result: Result<T, ServiceError>,
    refused: impl FnOnce() -> Shown,
) -> Result<Response, ApiError> {
    match result {
        Ok(_) => page(state, session, Shown::default(), FormState::default(), true).await,
        Err(e) => {
            let shown = form_error(e)?;
            page(state, session, refused(), shown, false).await
        }
    }
}

/// The backups form's values. The access key fields are never pre-filled: both empty keeps
/// the stored credentials; `remove_credentials` deletes them.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct BackupsForm {
    pub backup_retention_days: String,
    pub backup_schedule_hours: String,
    pub backup_s3_endpoint: String,
    pub backup_s3_region: String,
    pub backup_s3_bucket: String,
    pub backup_s3_prefix: String,
    pub access_key_id: String,
    pub secret_access_key: String,
    pub remove_credentials: bool,
}

impl BackupsForm {
    fn credentials(&self) -> CredentialsChange {
        if self.remove_credentials {
            CredentialsChange::Delete
        } else if self.access_key_id.is_empty() && self.secret_access_key.is_empty() {
            CredentialsChange::Keep
        } else {
            CredentialsChange::Set(S3Credentials {
                access_key_id: self.access_key_id.trim().to_string(),
                secret_access_key: self.secret_access_key.trim().to_string(),
            })
        }
    }
}

/// `POST /settings/backups`.
pub async fn save_backups(
    State(state): State<AppState>,
    UiSession(session): UiSession,
    CsrfForm(form): CsrfForm<BackupsForm>,
) -> Result<Response, ApiError> {
    let input = BackupSettings {
        backup_retention_days: Some(form.backup_retention_days.clone()),
        backup_schedule_hours: Some(form.backup_schedule_hours.clone()),
        backup_s3_endpoint: Some(form.backup_s3_endpoint.clone()),
        backup_s3_region: Some(form.backup_s3_region.clone()),
        backup_s3_bucket: Some(form.backup_s3_bucket.clone()),
        backup_s3_prefix: Some(form.backup_s3_prefix.clone()),
        backup_s3_credentials: form.credentials(),
    };
    let result = state
        .settings
        .put_backups(&session.user.user_id, input)
        .await;
    // Shown again as sent, except the credentials (never echoed).
    let refused = || Shown {
        backups: Some(BackupsForm {
            access_key_id: String::new(),
            secret_access_key: String::new(),
            ..form
        }),
        ..Shown::default()
    };
    after_save(&state, &session, result, refused).await
}
