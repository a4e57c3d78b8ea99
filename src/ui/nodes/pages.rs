//! The Nodes pages (GET): the list with live status, the control plane's public key and the
//! register form; the node page.

use std::collections::HashMap;

use askama::Template;
use axum::extract::State;
use axum::response::{IntoResponse, Response};

use super::forms::NodeForm;
use super::views::NodePanel;
use crate::http::error::ApiError;
use crate::http::error::OrNotFound;
use crate::http::extract::PathId;
use crate::http::session::{CurrentSession, UiSession};
use crate::state::AppState;
use crate::store::nodes::NodeRecord;
use crate::ui::forms::FormState;
use crate::ui::render;
use crate::ui::views::Layout;

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

pub(super) async fn page(
    state: &AppState,
    session: &CurrentSession,
    form: NodeForm,
    shown: FormState,
) -> Result<Response, ApiError> {
    let public_key = state.secrets.ssh_public_key().map_err(ApiError::internal)?;
    let page = NodesPage {
        layout: Layout::new("Nodes", "nodes", session),
        nodes: state.store.list_nodes().await?,
        csrf_token: session.csrf_token(),
        public_key,
        form,
        errors: shown.errors,
        notice: shown.notice,
    };
    Ok((shown.status, render(&page)).into_response())
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
    page(&state, &session, form, FormState::default()).await
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
        .or_not_found("node")?;
    let page = NodePage {
        layout: Layout::new(&panel.node.name, "nodes", &session),
        node_id: id,
        panel: panel.render().map_err(ApiError::internal)?,
    };
    Ok(render(&page))
}
