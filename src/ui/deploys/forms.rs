//! The Deploys forms (POST): Deploy (source type and ref), Apply Updates (a scope) and Roll
//! Back, through the deploy service as the API; on success the job's page follows the work
//! live, a refusal shows the environment page again with the error on its field.

use std::collections::HashMap;

use askama::Template;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;

use crate::deploys::DeployInput;
use crate::http::error::ApiError;
use crate::http::extract::{parse_uuid, PathId};
use crate::http::session::UiSession;
use crate::sites::Actor;
use crate::state::AppState;
use crate::ui::form_errors::form_error;
use crate::ui::forms::{CsrfForm, FormState, NoFields};
use crate::ui::sites::pages::environment_page_with_deploys;

/// The source types offered.
pub const SOURCE_TYPES: [(&str, &str); 2] = [("git", "Git repository"), ("upload", "Archive")];

/// The update scopes offered, `all` first.
pub const UPDATE_SCOPES: [(&str, &str); 4] = [
    ("all", "Everything (core, plugins, themes)"),
    ("core", "WordPress core"),
    ("plugins", "Plugins"),
    ("themes", "Themes"),
];

/// Examples of every accepted `source_ref` form (api.md), shown under the field.
pub const SOURCE_EXAMPLES: [&str; 7] = [
    "https://github.com/acme/site.git#main",
    "https://user:token@git.example.com/acme/site.git#v1.2.0",
    "git@github.com:acme/site.git#3f2c1a9",
    "ssh://git@git.example.com/acme/site.git#release",
    "https://downloads.example.com/site.tar.gz (upload: .tar.gz, .tgz, .tar.zst, .zip)",
    "s3://bucket/builds/site.zip (upload, with the backup storage's credentials)",
    "/srv/builds/site.tar.gz (upload, a file on the node)",
];

/// The Deploy form's values.
#[derive(Debug, Deserialize)]
#[serde(default)]
pub struct DeployForm {
    pub source_type: String,
    pub source_ref: String,
}

impl Default for DeployForm {
    fn default() -> Self {
        DeployForm {
            source_type: "git".into(),
            source_ref: String::new(),
        }
    }
}

/// The Apply Updates form's values.
#[derive(Debug, Deserialize)]
#[serde(default)]
pub struct UpdateForm {
    pub scope: String,
}

impl Default for UpdateForm {
    fn default() -> Self {
        UpdateForm {
            scope: "all".into(),
        }
    }
}

/// What the Deploys forms show: the values sent and, after a refusal, the errors of the form
/// that was sent (`deploy` or `update`).
#[derive(Default)]
pub struct DeploysShown {
    pub deploy: DeployForm,
    pub update: UpdateForm,
    pub deploy_state: FormState,
    pub update_state: FormState,
}

impl DeploysShown {
    pub fn status(&self) -> StatusCode {
        if self.deploy_state.status != StatusCode::OK {
            self.deploy_state.status
        } else {
            self.update_state.status
        }
    }
}

/// The two forms as shown.
#[derive(Template)]
#[template(path = "partials/deploy_forms.html")]
pub struct DeployFormsView {
    pub environment_id: String,
    pub csrf_token: String,
    pub source_type: String,
    pub source_ref: String,
    pub deploy_key: String,
    pub scope: String,
    pub deploy_errors: HashMap<String, String>,
    pub deploy_notice: Option<String>,
    pub update_errors: HashMap<String, String>,
    pub update_notice: Option<String>,
}

/// `POST /environments/{id}/deploy`.
pub async fn deploy(
    State(state): State<AppState>,
    UiSession(session): UiSession,
    PathId(id): PathId,
    CsrfForm(form): CsrfForm<DeployForm>,
) -> Result<Response, ApiError> {
    let input = DeployInput {
        source_type: form.source_type.clone(),
        source_ref: form.source_ref.clone(),
    };
    match state
        .deploys
        .deploy(&Actor::from(&session), &id, input)
        .await
    {
        Ok(job_id) => Ok(Redirect::to(&format!("/jobs/{job_id}")).into_response()),
        Err(e) => {
            let shown = DeploysShown {
                deploy: form,
                deploy_state: form_error(e)?,
                ..Default::default()
            };
            environment_page_with_deploys(&state, &session, &id, shown).await
        }
    }
}

/// `POST /environments/{id}/updates`.
pub async fn updates(
    State(state): State<AppState>,
    UiSession(session): UiSession,
    PathId(id): PathId,
    CsrfForm(form): CsrfForm<UpdateForm>,
) -> Result<Response, ApiError> {
    match state
        .deploys
        .update(&Actor::from(&session), &id, form.scope.trim())
        .await
    {
        Ok(job_id) => Ok(Redirect::to(&format!("/jobs/{job_id}")).into_response()),
        Err(e) => {
            let shown = DeploysShown {
                update: form,
                update_state: form_error(e)?,
                ..Default::default()
            };
            environment_page_with_deploys(&state, &session, &id, shown).await
        }
    }
}

/// `POST /environments/{id}/releases/{release_id}/rollback`.
pub async fn rollback(
    State(state): State<AppState>,
    UiSession(session): UiSession,
    Path((id, release_id)): Path<(String, String)>,
    _: CsrfForm<NoFields>,
) -> Result<Response, ApiError> {
    let id = parse_uuid(&id).ok_or_else(|| ApiError::field("id", "must be a UUID"))?;
    let release_id =
        parse_uuid(&release_id).ok_or_else(|| ApiError::field("release_id", "must be a UUID"))?;
    match state
        .deploys
        .rollback(&Actor::from(&session), &id, &release_id)
        .await
    {
        Ok(job_id) => Ok(Redirect::to(&format!("/jobs/{job_id}")).into_response()),
        Err(e) => {
            let mut refused = form_error(e)?;
            refused.notice = refused.notice.map(|n| format!("Not rolled back: {n}"));
            let shown = DeploysShown {
                deploy_state: refused,
                ..Default::default()
            };
            environment_page_with_deploys(&state, &session, &id, shown).await
        }
    }
}
