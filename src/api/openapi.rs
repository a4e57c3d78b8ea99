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
        (name = "domains", description = "Custom domains of environments"),
        (name = "deploys", description = "Deploys, updates, rollbacks and deploy keys"),
        (name = "cache", description = "Page and object cache of environments"),
        (name = "drift", description = "Drift checks: production's changes since a clone"),
        (name = "safe-updates", description = "Safe automatic updates: tried on a temporary clone, compared visually, applied or held for review"),
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
    let mut doc = super::routes().into_openapi();
    require_a_property(&mut doc, "CacheRequest");
    require_a_property(&mut doc, "UpdateSiteRequest");
    doc.to_yaml().expect("the OpenAPI document serializes")
}

/// Sets `minProperties: 1` on a body schema whose fields are each optional but not all at
/// once. utoipa-gen 5.5 writes `#[schema(min_properties = …)]` as `maxProperties`, so the
/// constraint is added here.
fn require_a_property(doc: &mut utoipa::openapi::OpenApi, schema: &str) {
    use utoipa::openapi::{schema::Schema, RefOr};
    if let Some(RefOr::T(Schema::Object(object))) = doc
        .components
        .as_mut()
        .and_then(|c| c.schemas.get_mut(schema))
    {
        object.min_properties = Some(1);
    }
}

/// `GET /api/openapi.yaml`.
pub async fn serve_yaml(_session: CurrentSession) -> impl IntoResponse {
    ([(CONTENT_TYPE, "application/yaml")], yaml())
}
