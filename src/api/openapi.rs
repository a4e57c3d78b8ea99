//! The OpenAPI 3.1 document, generated from the handlers' annotations and committed as
//! `contracts/openapi.yaml` (a test fails when the two differ). [`ApiDoc`] holds what is common
//! (info, security, tags, shared schemas); the paths come from the routers that serve them
//! ([`super::routes`]).

use axum::http::header::CONTENT_TYPE;
use axum::response::IntoResponse;
use utoipa::openapi::security::{ApiKey, ApiKeyValue, SecurityScheme};
use utoipa::{Modify, OpenApi};

use super::error::{ErrorBody, ErrorCode};
use crate::http::session::CurrentSession;

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Pressluft API",
        description = "Control plane for self-hosted WordPress. Mutations are asynchronous jobs; \
                       every error is `{code, message, details?}`."
    ),
    servers((url = "/api")),
    components(schemas(ErrorBody, ErrorCode)),
    modifiers(&SessionCookie),
    security(("session_cookie" = [])),
    tags(
        (name = "auth", description = "Login and logout"),
        (name = "jobs", description = "Jobs, metrics and live events"),
        (name = "nodes", description = "Managed servers"),
        (name = "sites", description = "Sites, environments and releases"),
        (name = "backups", description = "Backups of environments"),
        (name = "deploys", description = "Deploys, updates, rollbacks and deploy keys"),
        (name = "cache", description = "Page and object cache of environments"),
        (name = "audit", description = "Who did what"),
    )
)]
pub struct ApiDoc;

/// Declares the `session_token` cookie as the security scheme.
struct SessionCookie;

impl Modify for SessionCookie {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "session_cookie",
            SecurityScheme::ApiKey(ApiKey::Cookie(ApiKeyValue::new("session_token"))),
        );
    }
}

/// The document as YAML, exactly as committed.
pub fn yaml() -> String {
    super::routes()
        .into_openapi()
        .to_yaml()
        .expect("the OpenAPI document serializes")
}

/// `GET /api/openapi.yaml`.
pub async fn serve_yaml(_session: CurrentSession) -> impl IntoResponse {
    ([(CONTENT_TYPE, "application/yaml")], yaml())
}
