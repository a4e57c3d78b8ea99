//! The one mapping of a service error to the API's error response (the dashboard's forms have
//! theirs in `ui::form_errors`).

use serde_json::json;

use super::error::{ApiError, ErrorCode};
use crate::services::ServiceError;

impl From<ServiceError> for ApiError {
    fn from(e: ServiceError) -> Self {
        match e {
            ServiceError::Invalid { field, message } => ApiError::field(field, message),
            ServiceError::SettingsInvalid { field, message } => {
                ApiError::new(ErrorCode::SettingsInvalid, format!("{field}: {message}"))
                    .with_details(json!({ "fields": { field: message } }))
            }
            ServiceError::Conflict(m) => ApiError::new(ErrorCode::Conflict, m),
            ServiceError::NodeNotActive(m) => ApiError::new(ErrorCode::NodeNotActive, m),
            ServiceError::DriftGateFailed(m) => ApiError::new(ErrorCode::DriftGateFailed, m),
            ServiceError::BackupGateFailed(m) => ApiError::new(ErrorCode::BackupGateFailed, m),
            ServiceError::NotFound(what) => ApiError::not_found(what),
            ServiceError::Store(e) => ApiError::internal(e),
            ServiceError::Secrets(e) => ApiError::internal(e),
        }
    }
}
