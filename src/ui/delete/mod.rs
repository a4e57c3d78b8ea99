//! The dashboard's deletion controls (issue 13): the "Danger zone" of the environment page
//! (Delete environment, staging and clone only) and of the site page (Delete site), each
//! asking for the site's slug typed out. A mismatch is refused with a field error on a
//! confirmation page before the service is asked; an accepted delete redirects to its job's
//! page, which follows the work live. Deleted sites are hidden from the sites list unless its
//! "Show deleted" toggle is on (`ui::sites`).

use std::collections::HashMap;

use askama::Template;
use axum::extract::State;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::post;
use axum::Router;
use serde::Deserialize;

use crate::http::error::{ApiError, OrNotFound};
use crate::http::extract::PathId;
use crate::http::session::{CurrentSession, UiSession};
use crate::sites::Actor;
use crate::state::AppState;
use crate::ui::form_errors::form_error;
use crate::ui::forms::{CsrfForm, FormState};
use crate::ui::render;
use crate::ui::views::Layout;

/// The deletion routes.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/environments/{id}/delete", post(delete_environment))
        .route("/sites/{id}/delete", post(delete_site))
}

/// The typed confirmation.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct DeleteForm {
    pub confirm_slug: String,
}

/// The confirmation page, shown again after a mismatch or a refusal.
#[derive(Template)]
#[template(path = "delete_confirm.html")]
struct ConfirmPage {
    layout: Layout,
    /// `environment` or `site`.
    what: &'static str,
    name: String,
    slug: String,
    action: String,
    back: String,
    typed: String,
    errors: HashMap<String, String>,
    notice: Option<String>,
}

/// What is being deleted, for the confirmation page.
struct Target {
    what: &'static str,
    name: String,
    slug: String,
    action: String,
    back: String,
}

fn confirm_page(session: &CurrentSession, t: Target, typed: String, shown: FormState) -> Response {
    let page = ConfirmPage {
        layout: Layout::new(&format!("Delete {}", t.name), "sites", session),
        what: t.what,
        name: t.name,
        slug: t.slug,
        action: t.action,
        back: t.back,
        typed,
        errors: shown.errors,
        notice: shown.notice,
    };
    (shown.status, render(&page)).into_response()
}

/// The typed slug must be the site's slug exactly (surrounding spaces aside).
fn mismatch(typed: &str, slug: &str) -> Option<FormState> {
    (typed.trim() != slug).then(|| {
        FormState::field(
            "confirm_slug",
            format!("type the site's slug, {slug}, exactly to confirm"),
        )
    })
}
/// The typed slug checked, then `delete` run: the job page on success, the confirmation page
/// again with the field error or the refusal otherwise.
async fn confirmed(
    session: &CurrentSession,
    target: Target,
    typed: String,
    slug: &str,
    delete: impl std::future::Future<Output = Result<String, crate::services::ServiceError>>,
) -> Result<Response, ApiError> {
    if let Some(shown) = mismatch(&typed, slug) {
        return Ok(confirm_page(session, target, typed, shown));
    }
    match delete.await {
        Ok(job_id) => Ok(Redirect::to(&format!("/jobs/{job_id}")).into_response()),
        Err(e) => Ok(confirm_page(session, target, typed, form_error(e)?)),
    }
}

/// `POST /environments/{id}/delete`.
async fn delete_environment(
    State(state): State<AppState>,
    UiSession(session): UiSession,
    PathId(id): PathId,
    CsrfForm(form): CsrfForm<DeleteForm>,
) -> Result<Response, ApiError> {
    let env = state
        .store
        .get_environment(&id)
        .await?
        .or_not_found("environment")?;
    let site = state
        .store
        .get_site(&env.site_id)
        .await?
        .or_not_found("site")?;
    let target = Target {
        what: "environment",
        name: env.name.clone(),
        slug: site.slug.clone(),
        action: format!("/environments/{id}/delete"),
        back: format!("/environments/{id}"),
    };
    let actor = Actor::from(&session);
    confirmed(&session, target, form.confirm_slug, &site.slug, async {
        state.deletions.delete_environment(&actor, &id).await
    })
    .await
}

/// `POST /sites/{id}/delete`.
async fn delete_site(
    State(state): State<AppState>,
    UiSession(session): UiSession,
    PathId(id): PathId,
    CsrfForm(form): CsrfForm<DeleteForm>,
) -> Result<Response, ApiError> {
    let site = state.store.get_site(&id).await?.or_not_found("site")?;
    let target = Target {
        what: "site",
        name: site.name.clone(),
        slug: site.slug.clone(),
        action: format!("/sites/{id}/delete"),
        back: format!("/sites/{id}"),
    };
    let actor = Actor::from(&session);
    confirmed(&session, target, form.confirm_slug, &site.slug, async {
        state.deletions.delete_site(&actor, &id).await
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::StatusCode;

    #[test]
    fn only_the_exact_slug_confirms() {
        assert!(mismatch("shop", "shop").is_none());
        assert!(mismatch(" shop ", "shop").is_none());
        for bad in ["", "Shop", "sho", "shop2", "other"] {
            let shown = mismatch(bad, "shop").expect(bad);
            assert_eq!(shown.status, StatusCode::BAD_REQUEST);
            assert!(shown.errors.contains_key("confirm_slug"));
        }
    }
}
