//! The Settings page (GET): effective values of every setting, the WordPress source form, the
//! backups form with where new backups are kept, the domain configuration and ACME forms, and
//! the `node_provision` jobs that reconcile the nodes after a domain save, live.

use std::collections::HashMap;

use askama::Template;
use axum::extract::State;
use axum::response::{IntoResponse, Response};

use super::forms::{AcmeForm, BackupsForm, DomainForm, WordPressForm};
use crate::domain::JobType;
use crate::http::error::ApiError;
use crate::http::session::{CurrentSession, UiSession};
use crate::state::AppState;
use crate::store::JobFilter;
use crate::ui::forms::FormState;
use crate::ui::render;
use crate::ui::views::JobRow;
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
    domain: DomainForm,
    acme: AcmeForm,
    dns01_stored: bool,
    /// `(name, credential keys)` of each DNS-01 provider, for the select and its help.
    providers: Vec<(&'static str, String)>,
    /// After a domain save: the `node_provision` jobs it started (`(id, short id)`).
    started_jobs: Option<Vec<(String, String)>>,
    /// The recent `node_provision` jobs (live: `/ui/events?view=jobs&job_type=node_provision`).
    jobs: Vec<JobRow>,
    empty_message: &'static str,
}

/// Rows of the live `node_provision` table (as many as the live stream renders).
const PROVISION_JOBS: i64 = crate::ui::jobs::views::JOBS_PAGE;

/// Shown when no node was ever provisioned.
const EMPTY_PROVISION_JOBS: &str = "No node_provision jobs yet.";

/// Forms to show as sent (after a refusal) instead of with the stored values.
#[derive(Default)]
pub(super) struct Shown {
    pub wordpress: Option<WordPressForm>,
    pub backups: Option<BackupsForm>,
    pub domain: Option<DomainForm>,
    pub acme: Option<AcmeForm>,
    /// A domain save succeeded and started these jobs.
    pub started_jobs: Option<Vec<String>>,
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
        safe_updates_retention_days: view
            .get("safe_updates_retention_days")
            .unwrap_or_default()
            .to_string(),
    });
    let domain = forms.domain.unwrap_or_else(|| DomainForm {
        control_plane_domain: value("control_plane_domain"),
        preview_domain: value("preview_domain"),
        dns01_provider: value("dns01_provider"),
        ..DomainForm::default()
    });
    let acme = forms.acme.unwrap_or_else(|| AcmeForm {
        acme_email: value("acme_email"),
        acme_directory_url: value("acme_directory_url"),
        acme_ca_bundle: value("acme_ca_bundle"),
    });
    let dns01_stored = view
        .secrets
        .iter()
        .any(|(k, set)| *k == crate::settings::domain_config::CREDENTIALS_KEY && *set);
    let filter = JobFilter {
        job_type: Some(JobType::NodeProvision),
        limit: PROVISION_JOBS,
        ..JobFilter::default()
    };
    let jobs = state.store.list_jobs(&filter).await?;
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
        domain,
        acme,
        dns01_stored,
        providers: crate::settings::domain_config::PROVIDERS
            .iter()
            .map(|(name, keys)| (*name, keys.join(", ")))
            .collect(),
        started_jobs: forms.started_jobs.map(|ids| {
            ids.into_iter()
                .map(|id| {
                    let short = id.chars().take(8).collect();
                    (id, short)
                })
                .collect()
        }),
        jobs: jobs.iter().map(JobRow::from).collect(),
        empty_message: EMPTY_PROVISION_JOBS,
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
