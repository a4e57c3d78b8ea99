//! The one mapping of a service's refusal to what a dashboard form shows (the API's is
//! `From<ServiceError> for ApiError`): input errors under their field, a refusal as a sentence
//! for the whole form; anything else is an error page.

use axum::http::StatusCode;

use super::forms::FormState;
use crate::http::error::ApiError;
use crate::services::ServiceError;

/// The form's state for `e`, or the error page's [`ApiError`] when no form can show it.
pub fn form_error(e: ServiceError) -> Result<FormState, ApiError> {
    match e {
        ServiceError::Invalid { field, message }
        | ServiceError::SettingsInvalid { field, message } => Ok(FormState::field(field, message)),
        ServiceError::Conflict(m) => Ok(FormState::notice(StatusCode::CONFLICT, format!("{m}."))),
        ServiceError::DriftGateFailed(m) | ServiceError::BackupGateFailed(m) => {
            Ok(FormState::notice(StatusCode::CONFLICT, m))
        }
        ServiceError::NodeNotActive(m) => Ok(FormState::notice(
            StatusCode::CONFLICT,
            format!("{m}: register and provision a node with a public IP first."),
        )),
        other => Err(other.into()),
    }
}
