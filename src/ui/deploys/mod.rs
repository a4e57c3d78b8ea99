//! The Deploys part of the environment page: the Deploy form (with the site's deploy key), the
//! Apply Updates form with the available updates (loaded lazily from the node), and the
//! release timeline (releases, rollbacks between them, the last failed deploy's error) with
//! its "Roll back to this release" buttons. Rendered into the environment page
//! (`ui::sites::pages`) and refreshed live (`ui::live`, the `timeline` fragment).

pub mod forms;
pub mod pages;
pub mod views;

use axum::routing::post;
use axum::Router;

use crate::state::AppState;

/// The Deploys routes.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/environments/{id}/deploy", post(forms::deploy))
        .route(
            "/environments/{id}/updates",
            post(forms::updates).get(pages::updates_list),
        )
        .route(
            "/environments/{id}/releases/{release_id}/rollback",
            post(forms::rollback),
        )
}
