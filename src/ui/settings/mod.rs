//! The Settings area of the dashboard: the page (GET), the WordPress source, backups, domain
//! configuration and ACME forms (POST).

pub mod forms;
pub mod pages;

use axum::routing::{get, post};
use axum::Router;

use crate::state::AppState;

/// The Settings routes.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/settings", get(pages::show))
        .route("/settings/wordpress", post(forms::save_wordpress))
        .route("/settings/backups", post(forms::save_backups))
        .route("/settings/domain-config", post(forms::save_domain_config))
        .route("/settings/acme", post(forms::save_acme))
}
