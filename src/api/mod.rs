//! The JSON API under `/api` (api.md): handlers validate input, call the services and the store,
//! and answer in the documented shapes. Errors leave through [`error::ApiError`] only.

pub mod admin_settings;
pub mod audit;
mod auth;
pub mod backups;
pub mod cache;
pub mod deploys;
pub mod domains;
pub mod drift;
pub mod drills;
mod events;
mod imports;
pub mod jobs;
pub mod magic;
mod metrics;
pub mod nodes;
pub mod openapi;
mod promote;
mod restores;
pub mod safe_updates;
pub mod sites;

use axum::routing::get;
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;

use crate::state::AppState;

/// The error type and extractors live in [`crate::http`], shared with the dashboard.
pub use crate::http::{error, extract, schema};

pub use jobs::JobStatusResponse;

/// Routes relative to `/api` with the OpenAPI document they describe: each resource module
/// registers its routes together with their OpenAPI entries.
pub fn routes() -> OpenApiRouter<AppState> {
    let resources = [
        auth::router(),
        jobs::router(),
        events::router(),
        nodes::router(),
        sites::router(),
        backups::router(),
        domains::router(),
        deploys::router(),
        cache::router(),
        drift::router(),
        magic::router(),
        imports::router(),
        drills::router(),
        promote::router(),
        restores::router(),
        safe_updates::router(),
        audit::router(),
        metrics::router(),
    ];
    resources
        .into_iter()
        .fold(
            OpenApiRouter::with_openapi(openapi::ApiDoc::openapi()),
            OpenApiRouter::merge,
        )
        .route("/openapi.yaml", get(openapi::serve_yaml))
}

/// Routes relative to `/api`.
pub fn router() -> axum::Router<AppState> {
    routes().into()
}
