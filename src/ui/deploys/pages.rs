//! The Deploys section of the environment page (GET): the forms and the timeline, rendered for
//! `ui::sites::pages` to place, and the available-updates fragment the Apply Updates form loads
//! lazily (the same node query as `GET /api/environments/{id}/updates`).

use askama::Template;
use axum::extract::State;
use axum::response::{IntoResponse, Response};

use super::forms::{DeployFormsView, DeploysShown};
use super::views::Timeline;
use crate::deploys::updates::{available_updates, UpdatesError};
use crate::http::error::ApiError;
use crate::http::extract::PathId;
use crate::http::session::{CurrentSession, UiSession};
use crate::node_helper::spec::{AvailableUpdate, AvailableUpdates};
use crate::state::AppState;
use crate::store::environments::EnvironmentRecord;
use crate::ui::render;

/// The section's two parts as HTML: the forms (kept across live refreshes) and the timeline.
pub struct DeploysSection {
    pub forms: String,
    pub timeline: String,
}

/// The section of `env` showing `shown`.
pub async fn section(
    state: &AppState,
    session: &CurrentSession,
    env: &EnvironmentRecord,
    shown: DeploysShown,
) -> Result<DeploysSection, ApiError> {
    let timeline = Timeline::load(&state.store, env, session.csrf_token()).await?;
    let deploy_key = state.deploys.deploy_key(&env.site_id).await?;
    let forms = DeployFormsView {
        environment_id: env.id.clone(),
        csrf_token: session.csrf_token(),
        source_type: shown.deploy.source_type,
        source_ref: shown.deploy.source_ref,
        deploy_key,
        scope: shown.update.scope,
        deploy_errors: shown.deploy_state.errors,
        deploy_notice: shown.deploy_state.notice,
        update_errors: shown.update_state.errors,
        update_notice: shown.update_state.notice,
    };
    Ok(DeploysSection {
        forms: forms.render().map_err(ApiError::internal)?,
        timeline: timeline.render().map_err(ApiError::internal)?,
    })
}

/// The available updates as a list, or the one line saying why there is none.
#[derive(Template)]
#[template(path = "partials/available_updates.html")]
pub struct UpdatesList {
    pub updates: Vec<(&'static str, AvailableUpdate)>,
    pub error: Option<String>,
}

impl UpdatesList {
    fn new(result: Result<AvailableUpdates, UpdatesError>) -> Self {
        match result {
            Ok(u) => {
                let mut updates: Vec<(&'static str, AvailableUpdate)> =
                    u.core.into_iter().map(|c| ("core", c)).collect();
                updates.extend(u.plugins.into_iter().map(|p| ("plugin", p)));
                updates.extend(u.themes.into_iter().map(|t| ("theme", t)));
                UpdatesList {
                    updates,
                    error: None,
                }
            }
            Err(e) => UpdatesList {
                updates: Vec::new(),
                error: Some(match e {
                    UpdatesError::Unreachable => "Could not connect to the server.".into(),
                    UpdatesError::NotActive(_) => "The environment is not active.".into(),
                    other => format!("{}.", other),
                }),
            },
        }
    }
}

/// `GET /environments/{id}/updates` (an htmx fragment).
pub async fn updates_list(
    State(state): State<AppState>,
    UiSession(_session): UiSession,
    PathId(id): PathId,
) -> Result<Response, ApiError> {
    let result = available_updates(&state.store, &state.secrets, &state.config, &id).await;
    if let Err(UpdatesError::NotFound) = result {
        return Err(ApiError::not_found("environment"));
    }
    if let Err(UpdatesError::Store(e)) = result {
        return Err(e.into());
    }
    Ok(render(&UpdatesList::new(result)).into_response())
}
