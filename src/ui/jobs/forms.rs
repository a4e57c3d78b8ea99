//! The job page's Cancel button (POST), through the same engine call as the API; a refused
//! cancel shows the job page again with a notice.

use axum::extract::State;
use axum::response::{IntoResponse, Response};

use crate::http::error::ApiError;
use crate::http::extract::PathId;
use crate::http::session::UiSession;
use crate::state::AppState;
use crate::ui::forms::{CsrfForm, NoFields};

/// `POST /jobs/{id}/cancel` (dashboard form).
pub async fn cancel_job(
    State(state): State<AppState>,
    UiSession(session): UiSession,
    PathId(id): PathId,
    _: CsrfForm<NoFields>,
) -> Result<Response, ApiError> {
    use crate::jobs::CancelOutcome;
    let notice = match state.engine.cancel(&id, &session.user.user_id).await? {
        CancelOutcome::NotFound => return Err(ApiError::not_found("job")),
        CancelOutcome::NotCancellable(status) => Some(format!(
            "This job can no longer be cancelled: it is already {status}."
        )),
        CancelOutcome::Status(_) => None,
    };
    if notice.is_some() {
        return super::pages::job_page(&state, &session, &id, notice).await;
    }
    Ok(axum::response::Redirect::to(&format!("/jobs/{id}")).into_response())
}
