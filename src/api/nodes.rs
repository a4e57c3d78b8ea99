//! Node endpoints: list, get, register, provision, the control plane's SSH public key.

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::error::{ApiError, ErrorBody};
use super::extract::{AppJson, PathId};
use crate::http::error::OrNotFound;
use crate::http::session::CurrentSession;
use crate::nodes::NodeInput;
use crate::state::AppState;
use crate::store::nodes::NodeRecord;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// This resource's routes (relative to `/api`), each registered with its OpenAPI entry.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_nodes, register_node))
        .routes(routes!(ssh_public_key))
        .routes(routes!(get_node))
        .routes(routes!(provision_node))
}

/// A managed server.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Node {
    #[schema(format = "uuid")]
    pub id: String,
    pub name: String,
    /// SSH target: IP literal or DNS name.
    pub hostname: String,
    /// Public IPv4; required before sites are placed on the node.
    pub public_ip: Option<String>,
    pub ssh_port: i64,
    pub ssh_user: String,
    #[schema(value_type = crate::domain::NodeStatus)]
    pub status: crate::domain::NodeStatus,
    /// The control-plane host itself.
    pub is_local: bool,
    #[schema(format = "date-time")]
    pub last_seen_at: Option<String>,
    /// What the last successful provisioning found about the firewall; null before.
    #[schema(value_type = Option<crate::domain::FirewallStatus>)]
    pub firewall_status: Option<String>,
    /// Sentences from the last provisioning worth attention (e.g. firewall unavailable).
    pub provision_warning: Option<String>,
    #[schema(format = "date-time")]
    pub created_at: String,
    #[schema(format = "date-time")]
    pub updated_at: String,
    pub state_version: i64,
}

impl From<NodeRecord> for Node {
    fn from(n: NodeRecord) -> Self {
        Node {
            id: n.id,
            name: n.name,
            hostname: n.hostname,
            public_ip: n.public_ip,
            ssh_port: n.ssh_port,
            ssh_user: n.ssh_user,
            status: n.status,
            is_local: n.is_local,
            last_seen_at: n.last_seen_at,
            firewall_status: n.firewall_status,
            provision_warning: n.provision_warning,
            created_at: n.created_at,
            updated_at: n.updated_at,
            state_version: n.state_version,
        }
    }
}

/// `202 {"job_id"}`.
#[derive(Debug, Serialize, ToSchema)]
pub struct JobAccepted {
    #[schema(format = "uuid")]
    pub job_id: String,
}

/// `{"public_key": "ssh-ed25519 …"}`.
#[derive(Debug, Serialize, ToSchema)]
pub struct PublicKeyResponse {
    pub public_key: String,
}

/// Registration body.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RegisterNodeRequest {
    #[schema(schema_with = crate::http::schema::name)]
    pub name: String,
    #[schema(schema_with = crate::http::schema::hostname)]
    pub hostname: String,
    #[serde(default)]
    #[schema(schema_with = crate::http::schema::public_ip)]
    pub public_ip: Option<String>,
    #[serde(default, deserialize_with = "json_integer")]
    #[schema(schema_with = crate::http::schema::ssh_port)]
    pub ssh_port: Option<i64>,
    #[serde(default)]
    #[schema(schema_with = crate::http::schema::ssh_user)]
    pub ssh_user: Option<String>,
    /// This host (the control plane's own); at most one. Default false.
    #[serde(default)]
    pub is_local: bool,
}

/// A JSON integer as JSON Schema defines one: `22` and `22.0` are the same number (the document
/// says `type: integer`, and a fuzzer sent `53651.0`).
fn json_integer<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<i64>, D::Error> {
    use serde::de::Error;
    match Option::<serde_json::Number>::deserialize(d)? {
        None => Ok(None),
        Some(n) => n
            .as_i64()
            .or_else(|| {
                n.as_f64()
                    .filter(|f| f.fract() == 0.0 && f.abs() < 9.0e15)
                    .map(|f| f as i64)
            })
            .map(Some)
            .ok_or_else(|| D::Error::custom(format!("must be an integer, not {n}"))),
    }
}

/// All nodes, newest first.
#[utoipa::path(get, path = "/nodes", tag = "nodes",
    responses((status = 200, body = [Node]), (status = 401, body = ErrorBody)))]
pub async fn list_nodes(
    State(state): State<AppState>,
    _s: CurrentSession,
) -> Result<Json<Vec<Node>>, ApiError> {
    Ok(Json(
        state
            .store
            .list_nodes()
            .await?
            .into_iter()
            .map(Node::from)
            .collect(),
    ))
}

/// One node.
#[utoipa::path(get, path = "/nodes/{id}", tag = "nodes",
    params(crate::http::schema::IdPath),
    responses((status = 200, body = Node), crate::http::error::IdErrors))]
pub async fn get_node(
    State(state): State<AppState>,
    _s: CurrentSession,
    PathId(id): PathId,
) -> Result<Json<Node>, ApiError> {
    let node = state.store.get_node(&id).await?.or_not_found("node")?;
    Ok(Json(node.into()))
}

/// The public key to authorize on a node (`~/.ssh/authorized_keys` of its SSH user).
#[utoipa::path(get, path = "/nodes/ssh-public-key", tag = "nodes",
    responses((status = 200, body = PublicKeyResponse), (status = 401, body = ErrorBody)))]
pub async fn ssh_public_key(
    State(state): State<AppState>,
    _s: CurrentSession,
) -> Result<Json<PublicKeyResponse>, ApiError> {
    let public_key = state.secrets.ssh_public_key().map_err(ApiError::internal)?;
    Ok(Json(PublicKeyResponse { public_key }))
}

/// Registers a node (`provisioning`) and starts `node_provision`.
#[utoipa::path(post, path = "/nodes", tag = "nodes",
    request_body = RegisterNodeRequest,
    responses((status = 202, body = JobAccepted), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 409, description = "`conflict`: a local node already exists", body = ErrorBody)))]
pub async fn register_node(
    State(state): State<AppState>,
    session: CurrentSession,
    AppJson(body): AppJson<RegisterNodeRequest>,
) -> Result<(StatusCode, Json<JobAccepted>), ApiError> {
    let input = NodeInput {
        name: body.name,
        hostname: body.hostname,
        public_ip: body.public_ip,
        ssh_port: body.ssh_port,
        ssh_user: body.ssh_user,
        is_local: body.is_local,
    };
    let (_, job_id) = state.nodes.register(&session.user.user_id, input).await?;
    Ok((StatusCode::ACCEPTED, Json(JobAccepted { job_id })))
}

/// Runs `node_provision` again (converges the node to the current configuration).
#[utoipa::path(post, path = "/nodes/{id}/provision", tag = "nodes",
    params(crate::http::schema::IdPath),
    responses((status = 202, body = JobAccepted), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 404, body = ErrorBody),
        (status = 409, description = "`conflict`: decommissioned, or a provision is already pending", body = ErrorBody)))]
pub async fn provision_node(
    State(state): State<AppState>,
    session: CurrentSession,
    PathId(id): PathId,
) -> Result<(StatusCode, Json<JobAccepted>), ApiError> {
    let job_id = state.nodes.provision(&session.user.user_id, &id).await?;
    Ok((StatusCode::ACCEPTED, Json(JobAccepted { job_id })))
}
