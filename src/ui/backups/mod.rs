//! The Backups part of the environment page: views (rows and schedule shaped for templates),
//! forms (Create Backup, Verify) and the download of a completed backup's artifacts, and the
//! routes that serve them. The section itself is rendered into the environment page
//! (`ui::sites::pages`) and refreshed live (`ui::live`).

pub mod download;
pub mod forms;
pub mod pages;
pub mod views;

use axum::routing::{get, post};
use axum::Router;

use crate::state::AppState;

/// The Backups routes.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/environments/{id}/backups", post(forms::create))
        .route("/backups/{id}/verify", post(forms::verify))
        .route("/backups/{id}/artifacts/{name}", get(download::download))
}
