//! The Nodes page: list with live status, the control plane's public key, the register form
//! and "Provision again" — through the same node service as the API.

use std::collections::HashMap;

use askama::Template;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;

use super::form_errors::form_error;
use super::pages::render;
use super::views::Layout;
use crate::api::error::ApiError;
use crate::api::extract::PathId;
use crate::domain::JobType;
use crate::http::session::{CurrentSession, UiSession};
use crate::nodes::NodeInput;
use crate::state::AppState;
use crate::store::nodes::NodeRecord;
use crate::store::{JobFilter, JobRecord, Store, StoreError};

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

#[derive(Template)]
#[template(path = "nodes.html")]
struct NodesPage {
    layout: Layout,
    nodes: Vec<NodeRecord>,
    csrf_token: String,
    public_key: String,
    form: NodeForm,
    errors: HashMap<String, String>,
    notice: Option<String>,
}

/// The node rows fragment, also sent live.
#[derive(Template)]
#[template(path = "partials/node_rows.html")]
pub struct NodeRows {
    pub nodes: Vec<NodeRecord>,
    pub csrf_token: String,
}

async fn page(
    state: &AppState,
    session: &CurrentSession,
    status: StatusCode,
    form: NodeForm,
    errors: HashMap<String, String>,
    notice: Option<String>,
) -> Result<Response, ApiError> {
    let public_key = state.secrets.ssh_public_key().map_err(ApiError::internal)?;
    let page = NodesPage {
        layout: Layout::new("Nodes", "nodes", session),
        nodes: state.store.list_nodes().await?,
        csrf_token: session.csrf_token(),
        public_key,
        form,
        errors,
        notice,
    };
    Ok((status, render(&page)).into_response())
}

/// `GET /nodes`.
pub async fn list(
    State(state): State<AppState>,
    UiSession(session): UiSession,
) -> Result<Response, ApiError> {
    let form = NodeForm {
        ssh_port: "22".into(),
        ssh_user: "root".into(),
        ..Default::default()
    };
    page(&state, &session, StatusCode::OK, form, HashMap::new(), None).await
}

/// `POST /nodes`: registers and starts provisioning; on success, the job's page.
pub async fn register(
    State(state): State<AppState>,
    UiSession(session): UiSession,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let form: NodeForm = super::read_form(&session, &headers, &body)?;
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
        Err(e) => {
            let (status, errors, notice) = form_error(e)?;
            page(&state, &session, status, form, errors, notice).await
        }
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
    super::check_form_csrf(&session, &headers, &body)?;
    match state.nodes.provision(&session.user.user_id, &id).await {
        Ok(job_id) => Ok(Redirect::to(&format!("/jobs/{job_id}")).into_response()),
        Err(e) => {
            let (status, errors, notice) = form_error(e)?;
            let notice = notice.map(|n| format!("Not started: {n}"));
            page(
                &state,
                &session,
                status,
                NodeForm::default(),
                errors,
                notice,
            )
            .await
        }
    }
}

/// Provisioning jobs the node page lists.
pub const NODE_JOBS: i64 = 50;

/// What the node page's jobs table says when empty.
const EMPTY_NODE_JOBS: &str = "No provisioning job for this node yet.";

/// The node page's content, re-rendered live: details, firewall state, the last failure and the
/// provisioning history (its `node_provision` jobs).
#[derive(Template)]
#[template(path = "partials/node_panel.html")]
pub struct NodePanel {
    pub node: NodeRecord,
    pub csrf_token: String,
    pub firewall: &'static str,
    pub last_failure: Option<JobRecord>,
    pub jobs: Vec<super::views::JobRow>,
    pub empty_message: &'static str,
}

impl NodePanel {
    /// The panel of node `id`; `None` when there is no such node.
    pub async fn load(
        store: &Store,
        id: &str,
        csrf_token: String,
    ) -> Result<Option<Self>, StoreError> {
        let Some(node) = store.get_node(id).await? else {
            return Ok(None);
        };
        let jobs = store
            .list_jobs(&JobFilter {
                node_id: Some(id.to_string()),
                job_type: Some(JobType::NodeProvision),
                limit: NODE_JOBS,
                ..Default::default()
            })
            .await?;
        let last_failure = jobs.iter().find(|j| j.status == "failed").cloned();
        let firewall = match node.firewall_status.as_deref() {
            Some("active") => "active: Pressluft manages the node's firewall",
            Some("unavailable") => "unavailable: the kernel refused the firewall",
            Some("skipped") => "not managed (PRESSLUFT_MANAGE_FIREWALL=false)",
            _ => "unknown until the first successful provisioning",
        };
        Ok(Some(NodePanel {
            node,
            csrf_token,
            firewall,
            last_failure,
            jobs: jobs.iter().map(super::views::JobRow::from).collect(),
            empty_message: EMPTY_NODE_JOBS,
        }))
    }
}

#[derive(Template)]
#[template(path = "node.html")]
struct NodePage {
    layout: Layout,
    node_id: String,
    panel: String,
}

/// `GET /nodes/{id}`.
pub async fn detail(
    State(state): State<AppState>,
    UiSession(session): UiSession,
    PathId(id): PathId,
) -> Result<Response, ApiError> {
    let panel = NodePanel::load(&state.store, &id, session.csrf_token())
        .await?
        .ok_or_else(|| ApiError::not_found("node"))?;
    let page = NodePage {
        layout: Layout::new(&panel.node.name, "nodes", &session),
        node_id: id,
        panel: panel.render().map_err(ApiError::internal)?,
    };
    Ok(render(&page))
}
