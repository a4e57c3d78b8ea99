//! The Sites forms (POST): Create Site and Create Environment, through the same site service as
//! the API; a refused form is shown again with its values and errors.

use axum::extract::State;
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;

use super::pages::{new_environment_page, new_site_page};
use crate::http::error::ApiError;
use crate::http::extract::PathId;
use crate::http::session::UiSession;
use crate::sites::{slugify, Actor, EnvironmentInput, SiteInput};
use crate::state::AppState;
use crate::ui::form_errors::form_error;
use crate::ui::forms::CsrfForm;

/// The Create Site form's values, echoed back after an error.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct SiteForm {
    pub name: String,
    pub slug: String,
    /// The chosen node (the select shows when more than one node is eligible); empty = the
    /// placement rule.
    pub node_id: String,
}

/// The Create Environment form's values.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct EnvironmentForm {
    pub name: String,
    pub slug: String,
    pub environment_type: String,
    pub source_environment_id: String,
    pub promotion_preset: String,
}

/// Fills a slug left empty from the name (the form shows it if refused); returns the slug to
/// send, trimmed.
fn slug_to_send(slug: &mut String, name: &str) -> String {
    if slug.trim().is_empty() {
        *slug = slugify(name);
    }
    slug.trim().to_string()
}

/// `POST /sites`: creates the site, then its page (which follows the job live).
pub async fn create_site(
    State(state): State<AppState>,
    UiSession(session): UiSession,
    CsrfForm(mut form): CsrfForm<SiteForm>,
) -> Result<Response, ApiError> {
    let slug = slug_to_send(&mut form.slug, &form.name);
    let input = SiteInput {
        name: form.name.clone(),
        slug,
        node_id: Some(form.node_id.trim().to_string()),
    };
    match state.sites.create_site(&Actor::from(&session), input).await {
        Ok(created) => Ok(Redirect::to(&format!("/sites/{}", created.site_id)).into_response()),
        Err(e) => new_site_page(&state, &session, form, form_error(e)?).await,
    }
}

/// `POST /sites/{id}/environments`: creates the environment, then the site page.
pub async fn create_environment(
    State(state): State<AppState>,
    UiSession(session): UiSession,
    PathId(id): PathId,
    CsrfForm(mut form): CsrfForm<EnvironmentForm>,
) -> Result<Response, ApiError> {
    let slug = slug_to_send(&mut form.slug, &form.name);
    let input = EnvironmentInput {
        name: form.name.clone(),
        slug,
        environment_type: form.environment_type.trim().to_string(),
        source_environment_id: Some(form.source_environment_id.trim().to_string()),
        promotion_preset: Some(form.promotion_preset.trim().to_string()),
    };
    match state
        .sites
        .create_environment(&Actor::from(&session), &id, input)
        .await
    {
        Ok(created) => Ok(Redirect::to(&format!("/sites/{}", created.site_id)).into_response()),
        Err(e) => new_environment_page(&state, &session, &id, form, form_error(e)?).await,
    }
}
