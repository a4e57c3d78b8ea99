//! The OpenAPI 3.1 document, generated from the handlers' annotations and committed as
//! `contracts/openapi.yaml` (a test fails when the two differ).

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
    paths(
        super::auth::login,
        super::auth::logout,
        super::jobs::list_jobs,
        super::jobs::get_job,
        super::jobs::cancel_job,
        super::jobs::job_output,
        super::events::job_events,
        super::nodes::list_nodes,
        super::nodes::get_node,
        super::nodes::ssh_public_key,
        super::nodes::register_node,
        super::nodes::provision_node,
        super::sites::list_sites,
        super::sites::create_site,
        super::sites::get_site,
        super::sites::list_environments,
        super::sites::create_environment,
        super::sites::get_environment,
        super::sites::list_releases,
        super::audit::list_audit_logs,
        super::metrics::get_metrics,
        super::events::events,
    ),
    components(schemas(ErrorBody, ErrorCode)),
    modifiers(&SessionCookie),
    security(("session_cookie" = [])),
    tags(
        (name = "auth", description = "Login and logout"),
        (name = "jobs", description = "Jobs, metrics and live events"),
        (name = "nodes", description = "Managed servers"),
        (name = "sites", description = "Sites, environments and releases"),
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
    ApiDoc::openapi()
        .to_yaml()
        .expect("the OpenAPI document serializes")
}

/// `GET /api/openapi.yaml`.
pub async fn serve_yaml(_session: CurrentSession) -> impl IntoResponse {
    ([(CONTENT_TYPE, "application/yaml")], yaml())
}
