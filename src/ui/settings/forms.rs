//! The Settings forms (POST): the WordPress source, the backups group, the domain
//! configuration and the ACME server, through the same settings service and validation as
//! `/_admin/settings/*`; a refused form is shown again with its errors (never its secrets).

use axum::extract::State;
use axum::response::Response;
use serde::Deserialize;

use super::pages::{page, Shown};
use crate::backups::storage::S3Credentials;
use crate::http::error::ApiError;
use crate::http::session::{CurrentSession, UiSession};
use crate::services::ServiceError;
use crate::settings::acme::AcmeSettings;
use crate::settings::backups::{BackupSettings, CredentialsChange};
use crate::settings::domain_config::{CredentialsChange as DnsCredentialsChange, DomainConfig};
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
    pub safe_updates_retention_days: String,
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
        safe_updates_retention_days: Some(form.safe_updates_retention_days.clone()),
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

/// The domain configuration form's values. The credentials textarea is never pre-filled:
/// empty keeps the stored credentials, `delete_credentials` deletes them.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct DomainForm {
    pub control_plane_domain: String,
    pub preview_domain: String,
    pub dns01_provider: String,
    pub dns01_credentials: String,
    pub delete_credentials: bool,
}

impl DomainForm {
    /// The credentials change the form asks for; JSON that is not an object of strings is a
    /// `settings_invalid` on `dns01_credentials` (its text is never echoed).
    fn credentials(&self) -> Result<DnsCredentialsChange, ServiceError> {
        if self.delete_credentials {
            return Ok(DnsCredentialsChange::Delete);
        }
        let text = self.dns01_credentials.trim();
        if text.is_empty() {
            return Ok(DnsCredentialsChange::Keep);
        }
        serde_json::from_str::<crate::settings::domain_config::Credentials>(text)
            .map(DnsCredentialsChange::Set)
            .map_err(|_| {
                crate::settings::invalid(
                    "dns01_credentials",
                    "must be a JSON object of strings, e.g. {\"api_token\": \"…\"}",
                )
            })
    }
}

/// `POST /settings/domain-config`: saved, the page lists the `node_provision` jobs the save
/// started (and shows them live).
pub async fn save_domain_config(
    State(state): State<AppState>,
    UiSession(session): UiSession,
    CsrfForm(form): CsrfForm<DomainForm>,
) -> Result<Response, ApiError> {
    let result = match form.credentials() {
        Ok(credentials) => {
            let input = DomainConfig {
                control_plane_domain: Some(form.control_plane_domain.clone()),
                preview_domain: Some(form.preview_domain.clone()),
                dns01_provider: Some(form.dns01_provider.clone()),
                dns01_credentials: credentials,
            };
            state
                .settings
                .put_domain_config(&session.user.user_id, input)
                .await
        }
        Err(e) => Err(e),
    };
    let started = match &result {
        Ok((_, ids)) => ids.clone(),
        Err(_) => Vec::new(),
    };
    // Shown again as sent, except the credentials (never echoed).
    let refused = || Shown {
        domain: Some(DomainForm {
            dns01_credentials: String::new(),
            delete_credentials: false,
            ..form
        }),
        ..Shown::default()
    };
    match result {
        Ok(_) => {
            let shown = Shown {
                started_jobs: Some(started),
                ..Shown::default()
            };
            page(&state, &session, shown, FormState::default(), true).await
        }
        Err(e) => after_save(&state, &session, Err::<(), _>(e), refused).await,
    }
}

/// The ACME form's values.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct AcmeForm {
    pub acme_email: String,
    pub acme_directory_url: String,
    pub acme_ca_bundle: String,
}

/// `POST /settings/acme`.
pub async fn save_acme(
    State(state): State<AppState>,
    UiSession(session): UiSession,
    CsrfForm(form): CsrfForm<AcmeForm>,
) -> Result<Response, ApiError> {
    let input = AcmeSettings {
        acme_email: Some(form.acme_email.clone()),
        acme_directory_url: Some(form.acme_directory_url.clone()),
        acme_ca_bundle: Some(form.acme_ca_bundle.clone()),
    };
    let result = state.settings.put_acme(&session.user.user_id, input).await;
    let refused = || Shown {
        acme: Some(form),
        ..Shown::default()
    };
    after_save(&state, &session, result, refused).await
}
