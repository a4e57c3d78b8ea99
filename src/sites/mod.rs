//! The site service: creating sites (with their production environment, [`create`]) and
//! further environments (staging/clone, [`environments`]). Each action validates its input
//! ([`validate`]), applies the placement rule and the preview-URL formula ([`layout`]), creates
//! the environment's secrets ([`secrets`]), and inserts the rows, the job and the audit row in
//! one transaction ([`crate::services::Mutations`]; jobs.md §2, api.md Sites/Environments).

mod create;
mod delete;
mod environments;
pub mod layout;
pub mod secrets;
pub mod validate;

use uuid::Uuid;

use crate::clock::SharedClock;
use crate::domain::JobType;
use crate::jobs::Engine;
use crate::secrets::Secrets;
use crate::services::{AuditEntry, Mutations, ServiceError};
use crate::store::environments::environment_prefix_taken;
use crate::store::Store;
use crate::store::WriteTx;

pub use delete::{deletion_refusal, Deletions};
pub use secrets::{
    db_password_key, environment_secret_keys, new_password, redis_password_key, wp_salts_key,
};
pub use validate::{is_slug, slugify};

/// `POST /api/sites` input.
#[derive(Debug, Clone, Default)]
pub struct SiteInput {
    pub name: String,
    pub slug: String,
}

/// `POST /api/sites/{id}/environments` input.
#[derive(Debug, Clone, Default)]
pub struct EnvironmentInput {
    pub name: String,
    pub slug: String,
    pub environment_type: String,
    pub source_environment_id: Option<String>,
    pub promotion_preset: Option<String>,
}

/// Who asks: the admin's id (audit) and e-mail (WordPress administrator e-mail).
#[derive(Debug, Clone)]
pub struct Actor {
    pub user_id: String,
    pub email: String,
}

impl Actor {
    /// The audit row of this actor's `action` on `resource` (type, id).
    pub(crate) fn audit<'a>(
        &'a self,
        action: JobType,
        resource: (&'a str, &'a str),
    ) -> AuditEntry<'a> {
        AuditEntry {
            user_id: &self.user_id,
            action: action.as_str(),
            resource_type: resource.0,
            resource_id: resource.1,
        }
    }
}

/// What an accepted create returns.
#[derive(Debug, Clone)]
pub struct Created {
    pub site_id: String,
    pub environment_id: String,
    pub job_id: String,
}

/// A URL with its user-info (credentials) replaced by `***` (api.md §4: passwords inside URLs
/// are never shown; issue 9: the whole user-info, a token may be the user name).
pub fn redact_url_password(url: &str) -> String {
    crate::sources::redact_userinfo(url).into_owned()
}

/// The site service.
#[derive(Clone)]
pub struct Sites {
    mutations: Mutations,
    secrets: Secrets,
}

impl Sites {
    pub fn new(store: Store, engine: Engine, secrets: Secrets, clock: SharedClock) -> Self {
        Self {
            mutations: Mutations::new(store, engine, clock),
            secrets,
        }
    }
}

/// A new environment id whose first 8 characters no other environment uses.
pub(crate) async fn new_environment_id(tx: &mut WriteTx) -> Result<String, ServiceError> {
    loop {
        let id = Uuid::new_v4().to_string();
        if !environment_prefix_taken(tx, &id).await? {
            return Ok(id);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn url_passwords_are_redacted() {
        assert_eq!(
            redact_url_password("https://u:secret@h.test/a.tgz"),
            "https://***@h.test/a.tgz"
        );
        assert_eq!(
            redact_url_password("dir:/usr/share/wordpress"),
            "dir:/usr/share/wordpress"
        );
        assert_eq!(
            redact_url_password("https://h.test/p@x"),
            "https://h.test/p@x"
        );
    }
}
