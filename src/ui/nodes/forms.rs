//! The Nodes forms (POST): register a node and "Provision again", through the same node service
//! as the API; a refused form is shown again with its values and errors.

use axum::extract::State;
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;

use super::pages::page;
use crate::http::error::ApiError;
use crate::http::extract::PathId;
use crate::http::session::UiSession;
use crate::nodes::NodeInput;
use crate::state::AppState;
use crate::ui::form_errors::form_error;
use crate::ui::forms::{CsrfForm, FormState, NoFields};

/// The register form's values, echoed back after an error.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct NodeForm {
    pub name: String,
    pub hostname: String,
    pub public_ip: String,
    pub ssh_port: String,
    pub ssh_user: String,
    pub is_local: bool,
}

/// `POST /nodes`: registers and starts provisioning; on success, the job's page.
pub async fn register(
    State(state): State<AppState>,
    UiSession(session): UiSession,
    CsrfForm(form): CsrfForm<NodeForm>,
) -> Result<Response, ApiError> {
    let ssh_port = match form.ssh_port.trim() {
        "" => None,
        p => match p.parse::<i64>() {
            Ok(n) => Some(n),
            Err(_) => {
                let shown = FormState::field("ssh_port", "must be a number from 1 to 65535");
                return page(&state, &session, form, shown).await;
            }
        },
    };
    let input = NodeInput {
        name: form.name.clone(),
        // The service takes values as sent (as the API documents them); form fields are trimmed.
        hostname: form.hostname.trim().to_string(),
        public_ip: Some(form.public_ip.trim().to_string()),
        ssh_port,
        ssh_user: Some(form.ssh_user.trim().to_string()).filter(|u| !u.is_empty()),
        is_local: form.is_local,
    };
    match state.nodes.register(&session.user.user_id, input).await {
        Ok((_, job_id)) => Ok(Redirect::to(&format!("/jobs/{job_id}")).into_response()),
        Err(e) => page(&state, &session, form, form_error(e)?).await,
    }
}

/// `POST /nodes/{id}/provision`.
pub async fn provision(
    State(state): State<AppState>,
    UiSession(session): UiSession,
    PathId(id): PathId,
    _: CsrfForm<NoFields>,
) -> Result<Response, ApiError> {
    match state.nodes.provision(&session.user.user_id, &id).await {
        Ok(job_id) => Ok(Redirect::to(&format!("/jobs/{job_id}")).into_response()),
        Err(e) => {
            let mut shown = form_error(e)?;
            shown.notice = shown.notice.map(|n| format!("Not started: {n}"));
            page(&state, &session, NodeForm::default(), shown).await
        }
    }
}
