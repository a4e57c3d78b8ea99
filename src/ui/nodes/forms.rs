//! The Nodes forms (POST): register a node and "Provision again", through the same node service
//! as the API; a refused form is shown again with its values and errors.

use std::collections::HashMap;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;

use super::pages::page;
use crate::http::error::ApiError;
use crate::http::extract::PathId;
use crate::http::session::UiSession;
use crate::nodes::{NodeError, NodeInput};
use crate::state::AppState;
use crate::ui::forms::{check_form_csrf, read_form};

/// The register form's values, echoed back after an error.
#[derive(Debug, Default, Deserialize)]
pub struct NodeForm {
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub hostname: String,
    #[serde(default)]
    pub public_ip: String,
    #[serde(default)]
    pub ssh_port: String,
    #[serde(default)]
    pub ssh_user: String,
    #[serde(default)]
    pub is_local: bool,
}

/// `POST /nodes`: registers and starts provisioning; on success, the job's page.
pub async fn register(
    State(state): State<AppState>,
    UiSession(session): UiSession,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let form: NodeForm = read_form(&session, &headers, &body)?;
    let ssh_port = match form.ssh_port.trim() {
        "" => None,
        p => match p.parse::<i64>() {
            Ok(n) => Some(n),
            Err(_) => {
                let errors = HashMap::from([(
                    "ssh_port".to_string(),
                    "must be a number from 1 to 65535".to_string(),
                )]);
                return page(
                    &state,
                    &session,
                    StatusCode::BAD_REQUEST,
                    form,
                    errors,
                    None,
                )
                .await;
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
        Err(NodeError::Invalid { field, message }) => {
            let errors = HashMap::from([(field.to_string(), message)]);
            page(
                &state,
                &session,
                StatusCode::BAD_REQUEST,
                form,
                errors,
                None,
            )
            .await
        }
        Err(NodeError::Conflict(message)) => {
            page(
                &state,
                &session,
                StatusCode::CONFLICT,
                form,
                HashMap::new(),
                Some(message),
            )
            .await
        }
        Err(other) => Err(other.into()),
    }
}

/// `POST /nodes/{id}/provision`.
pub async fn provision(
    State(state): State<AppState>,
    UiSession(session): UiSession,
    PathId(id): PathId,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    check_form_csrf(&session, &headers, &body)?;
    match state.nodes.provision(&session.user.user_id, &id).await {
        Ok(job_id) => Ok(Redirect::to(&format!("/jobs/{job_id}")).into_response()),
        Err(NodeError::Conflict(message)) => {
            let notice = Some(format!("Not started: {message}."));
            page(
                &state,
                &session,
                StatusCode::CONFLICT,
                NodeForm::default(),
                HashMap::new(),
                notice,
            )
            .await
        }
        Err(other) => Err(other.into()),
    }
}
