//! Domain endpoints (api.md Backups and domains): an environment's custom domains, adding one
//! (`domain_add`) and removing one (`domain_remove`). The rules (host-name normalisation and
//! refusals, global uniqueness, "env ok", the 409s of a removal) live in the domain service
//! ([`crate::domains::Domains`]); this module only maps HTTP to it.

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::error::{ApiError, ErrorBody};
use super::extract::{AppJson, PathId};
use super::nodes::JobAccepted;
use crate::domain::TlsStatus;
use crate::http::session::CurrentSession;
use crate::sites::Actor;
use crate::state::AppState;
use crate::store::domains::DomainRecord;

/// This resource's routes (relative to `/api`), each registered with its OpenAPI entry.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_domains, add_domain))
        .routes(routes!(remove_domain))
}

/// A custom domain of an environment (its `domains` row).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Domain {
    #[schema(format = "uuid")]
    pub id: String,
    #[schema(format = "uuid")]
    pub environment_id: String,
    /// Lower-case FQDN, unique across all environments.
    pub hostname: String,
    /// `pending` until its `domain_add` succeeds (`active`) or fails finally (`failed`);
    /// `disabled` once its removal was requested.
    #[schema(value_type = TlsStatus)]
    pub tls_status: TlsStatus,
    /// `letsencrypt`.
    pub tls_issuer: String,
    #[schema(format = "date-time")]
    pub created_at: String,
    #[schema(format = "date-time")]
    pub updated_at: String,
}

impl From<DomainRecord> for Domain {
    fn from(d: DomainRecord) -> Self {
        Domain {
            id: d.id,
            environment_id: d.environment_id,
            hostname: d.hostname,
            tls_status: d.tls_status,
            tls_issuer: d.tls_issuer,
            created_at: d.created_at,
            updated_at: d.updated_at,
        }
    }
}

/// Add-domain body.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AddDomainRequest {
    /// Lower-cased and a trailing dot dropped, then: an FQDN (labels 1–63 of `[a-z0-9-]`, no
    /// edge hyphen, at least two labels, at most 253 characters), not an IP, no wildcard, not
    /// under the preview domain, not `*.sslip.io`, not the control-plane domain.
    #[schema(min_length = 1, max_length = 254)]
    pub hostname: String,
}

/// An accepted domain: its `domain_add` job and the new `pending` row.
#[derive(Debug, Serialize, ToSchema)]
pub struct DomainAccepted {
    #[schema(format = "uuid")]
    pub job_id: String,
    #[schema(format = "uuid")]
    pub domain_id: String,
}

/// An environment's custom domains, oldest first.
#[utoipa::path(get, path = "/environments/{id}/domains", tag = "domains",
    params(crate::http::schema::IdPath),
    responses((status = 200, body = [Domain]), crate::http::error::IdErrors))]
pub async fn list_domains(
    State(state): State<AppState>,
    _s: CurrentSession,
    PathId(id): PathId,
) -> Result<Json<Vec<Domain>>, ApiError> {
    let domains = state.domains.list(&id).await?;
    Ok(Json(domains.into_iter().map(Domain::from).collect()))
}

/// Adds a custom domain: a `pending` row and its `domain_add` job (DNS check from the node,
/// HTTP-01 certificate, server block; the first active domain becomes the primary and the
/// canonical URL).
#[utoipa::path(post, path = "/environments/{id}/domains", tag = "domains",
    params(crate::http::schema::IdPath),
    request_body = AddDomainRequest,
    responses((status = 202, body = DomainAccepted),
        (status = 400, description = "`bad_request` naming `hostname`", body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 409, description = "`conflict`: the host name is already a domain, or the environment is being deleted or failed; `node_not_active`: the environment's node is not active", body = ErrorBody)))]
pub async fn add_domain(
    State(state): State<AppState>,
    session: CurrentSession,
    PathId(id): PathId,
    AppJson(body): AppJson<AddDomainRequest>,
) -> Result<(StatusCode, Json<DomainAccepted>), ApiError> {
    let accepted = state
        .domains
        .add(&Actor::from(&session), &id, &body.hostname)
        .await?;
    Ok((
        StatusCode::ACCEPTED,
        Json(DomainAccepted {
            job_id: accepted.job_id,
            domain_id: accepted.domain_id,
        }),
    ))
}

/// Removes a custom domain: `tls_status = disabled` and its `domain_remove` job (block and
/// certificate deleted; when it was the primary, the oldest remaining active domain takes over,
/// else the preview URL).
#[utoipa::path(delete, path = "/domains/{id}", tag = "domains",
    params(crate::http::schema::IdPath),
    responses((status = 202, body = JobAccepted), (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 409, description = "`conflict`: the domain is still pending (its `domain_add` has not finished) or already being removed, or its environment is being deleted or failed; `node_not_active`", body = ErrorBody)))]
pub async fn remove_domain(
    State(state): State<AppState>,
    session: CurrentSession,
    PathId(id): PathId,
) -> Result<(StatusCode, Json<JobAccepted>), ApiError> {
    let job_id = state.domains.remove(&Actor::from(&session), &id).await?;
    Ok((StatusCode::ACCEPTED, Json(JobAccepted { job_id })))
}
