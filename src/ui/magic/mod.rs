//! The dashboard side of magic login, reset and cancel: an "Open WordPress admin" button on
//! every environment (a form that POSTs with the CSRF token into a new tab, answered with a 303
//! to the one-time login link), "Reset" buttons on a failed site or environment, and a Cancel
//! button on each queued or running job listed on the site and environment pages (the job
//! page's cancel form, `/jobs/{id}/cancel`). The controls are one fragment per page, loaded by
//! htmx and reloaded on the page's live events, so they follow the state without a reload.

pub mod forms;
pub mod views;

use axum::routing::{get, post};
use axum::Router;

use crate::state::AppState;

/// The magic-login, reset and controls routes.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/environments/{id}/magic-login", post(forms::magic_login))
        .route("/environments/{id}/reset", post(forms::reset_environment))
        .route("/sites/{id}/reset", post(forms::reset_site))
        .route(
            "/ui/environments/{id}/controls",
            get(views::environment_controls),
        )
        .route("/ui/sites/{id}/controls", get(views::site_controls))
}
