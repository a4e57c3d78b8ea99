//! The error of every service action. The API maps it to an error response once
//! (`From<ServiceError> for ApiError`) and the dashboard to a form's errors once
//! (`ui::errors::form_error`); a service says what went wrong, never how it is shown.

use crate::secrets::SecretsError;
use crate::store::StoreError;

/// Failures of service actions.
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    /// 400 `validation_failed`, naming the field.
    #[error("{field}: {message}")]
    Invalid {
        field: &'static str,
        message: String,
    },
    /// 400 `settings_invalid`, naming the setting (api.md §7).
    #[error("{field}: {message}")]
    SettingsInvalid {
        field: &'static str,
        message: String,
    },
    /// 409 `conflict`: the request is valid but the current state refuses it.
    #[error("{0}")]
    Conflict(String),
    /// 409 `node_not_active`: no active node can take the work.
    #[error("{0}")]
    NodeNotActive(String),
    /// 409 `drift_gate_failed`: no clean, fresh drift check for the source's preset (the
    /// message names the reason in plain words).
    #[error("{0}")]
    DriftGateFailed(String),
    /// 409 `backup_gate_failed`: no fresh completed full backup of the target.
    #[error("{0}")]
    BackupGateFailed(String),
    /// 404: the named resource does not exist.
    #[error("{0} not found")]
    NotFound(&'static str),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Secrets(#[from] SecretsError),
}

impl From<sqlx::Error> for ServiceError {
    fn from(e: sqlx::Error) -> Self {
        ServiceError::Store(StoreError::Query(e))
    }
}

impl ServiceError {
    /// A [`ServiceError::Invalid`] for `field`.
    pub fn invalid(field: &'static str, message: &str) -> Self {
        ServiceError::Invalid {
            field,
            message: message.to_string(),
        }
    }

    /// The field an input error names, if it is one (unit tests of the validations).
    pub fn field(&self) -> Option<&'static str> {
        match self {
            ServiceError::Invalid { field, .. } | ServiceError::SettingsInvalid { field, .. } => {
                Some(field)
            }
            _ => None,
        }
    }
}
