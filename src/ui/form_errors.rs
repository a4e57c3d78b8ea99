//! The one mapping of a service's refusal to what a dashboard form shows (the API's is
//! `From<ServiceError> for ApiError`): input errors under their field, a refusal as a sentence
//! for the whole form; anything else is an error page.

use std::collections::HashMap;

use axum::http::StatusCode;

use crate::api::error::ApiError;
use crate::services::ServiceError;

/// What a refused form shows: its status, field errors, or a sentence for the whole form.
pub type FormError = (StatusCode, HashMap<String, String>, Option<String>);

/// The form's errors for `e`, or the error page's [`ApiError`] when no form can show it.
pub fn form_error(e: ServiceError) -> Result<FormError, ApiError> {
    match e {
        ServiceError::Invalid { field, message }
        | ServiceError::SettingsInvalid { field, message } => Ok((
            StatusCode::BAD_REQUEST,
            HashMap::from([(field.to_string(), message)]),
            None,
        )),
        ServiceError::Conflict(m) => {
            Ok((StatusCode::CONFLICT, HashMap::new(), Some(format!("{m}."))))
        }
        ServiceError::NodeNotActive(m) => Ok((
            StatusCode::CONFLICT,
            HashMap::new(),
            Some(format!(
                "{m}: register and provision a node with a public IP first."
            )),
        )),
        other => Err(other.into()),
    }
}
