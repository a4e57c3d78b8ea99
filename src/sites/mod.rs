//! The site service: creating sites (with their production environment) and further
//! environments (staging/clone). Each action validates its input, applies the placement rule
//! and the preview-URL formula, creates the environment's secrets, and inserts the rows, the
//! job and the audit row in one transaction (jobs.md §2, api.md Sites/Environments).

pub mod layout;

use rand::distributions::{Alphanumeric, DistString};
use uuid::Uuid;

use crate::clock::{format_ts, SharedClock};
use crate::domain::{EnvironmentType, JobType, NodeStatus, PromotionPreset, SiteStatus};
use crate::jobs::Engine;
use crate::secrets::{Secrets, SecretsError};
use crate::store::audit::{insert_audit, NewAudit};
use crate::store::environments::{
    environment_prefix_taken, environment_slug_taken, fetch_environment, insert_environment,
    NewEnvironment,
};
use crate::store::nodes::{eligible_nodes, fetch_node};
use crate::store::queue::NewJob;
use crate::store::settings::fetch_setting;
use crate::store::sites::{fetch_site, insert_site, set_primary_environment, site_slug_taken};
use crate::store::WriteTx;
use crate::store::{Store, StoreError};

/// Failures of site and environment actions.
#[derive(Debug, thiserror::Error)]
pub enum SiteError {
    #[error("{field}: {message}")]
    Invalid {
        field: &'static str,
        message: String,
    },
    /// 409 `conflict`.
    #[error("{0}")]
    Conflict(String),
    /// 409 `node_not_active`.
    #[error("{0}")]
    NodeNotActive(String),
    #[error("{0} not found")]
    NotFound(&'static str),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Secrets(#[from] SecretsError),
}

impl From<sqlx::Error> for SiteError {
    fn from(e: sqlx::Error) -> Self {
        SiteError::Store(StoreError::Query(e))
    }
}

fn invalid(field: &'static str, message: &str) -> SiteError {
    SiteError::Invalid {
        field,
        message: message.to_string(),
    }
}

/// The slug pattern `^[a-z0-9](?:[a-z0-9-]{0,38}[a-z0-9])?$`.
pub fn is_slug(s: &str) -> bool {
    let b = s.as_bytes();
    let ok = |c: &u8| c.is_ascii_lowercase() || c.is_ascii_digit();
    (1..=40).contains(&b.len())
        && ok(&b[0])
        && ok(&b[b.len() - 1])
        && b.iter().all(|c| ok(c) || *c == b'-')
}

/// A slug suggested for a name (the dashboard pre-fills it).
pub fn slugify(name: &str) -> String {
    let mut out = String::new();
    for c in name.to_lowercase().chars() {
        if c.is_ascii_alphanumeric() {
            out.push(c);
        } else if !out.ends_with('-') && !out.is_empty() {
            out.push('-');
        }
    }
    out.truncate(40);
    out.trim_matches('-').to_string()
}

fn validate_name(name: &str) -> Result<String, SiteError> {
    crate::domain::parse_name(name).ok_or_else(|| invalid("name", crate::domain::NAME_RULE))
}

/// Taken as sent (the dashboard trims its form field), as the API document states it.
fn validate_slug(slug: &str) -> Result<String, SiteError> {
    if !is_slug(slug) {
        return Err(invalid(
            "slug",
            "must be 1 to 40 lowercase letters, digits or hyphens, not starting or ending with a hyphen",
        ));
    }
    Ok(slug.to_string())
}

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

/// The secrets store keys of an environment.
pub fn db_password_key(environment_id: &str) -> String {
    format!("env/{environment_id}/db_password")
}

pub fn wp_salts_key(environment_id: &str) -> String {
    format!("env/{environment_id}/wp_salts")
}

/// The password of the environment's Redis ACL user.
pub fn redis_password_key(environment_id: &str) -> String {
    format!("env/{environment_id}/redis_password")
}

/// A new random secret: 32 alphanumerics (database and Redis passwords).
pub fn new_password() -> String {
    Alphanumeric.sample_string(&mut rand::thread_rng(), 32)
}

/// The site service.
#[derive(Clone)]
pub struct Sites {
    store: Store,
    engine: Engine,
    secrets: Secrets,
    clock: SharedClock,
}

impl Sites {
    pub fn new(store: Store, engine: Engine, secrets: Secrets, clock: SharedClock) -> Self {
        Self {
            store,
            engine,
            secrets,
            clock,
        }
    }

    /// A new environment id whose first 8 characters no other environment uses.
    async fn new_environment_id(tx: &mut WriteTx) -> Result<String, SiteError> {
        loop {
            let id = Uuid::new_v4().to_string();
            if !environment_prefix_taken(tx, &id).await? {
                return Ok(id);
            }
        }
    }

    /// The database and Redis passwords and WordPress salts of a new environment, in the
    /// secrets store.
    fn create_environment_secrets(&self, environment_id: &str) -> Result<(), SiteError> {
        let mut rng = rand::thread_rng();
        let password = new_password();
        let salts: Vec<String> = (0..8)
            .map(|_| Alphanumeric.sample_string(&mut rng, 64))
            .collect();
        self.secrets
            .put(&db_password_key(environment_id), &password)?;
        self.secrets
            .put(&redis_password_key(environment_id), &new_password())?;
        self.secrets.put(
            &wp_salts_key(environment_id),
            &serde_json::to_string(&salts).expect("strings serialize"),
        )?;
        Ok(())
    }

    async fn audit(
        tx: &mut WriteTx,
        actor: &Actor,
        action: JobType,
        resource: (&str, &str),
        result: &str,
        job_id: Option<&str>,
        now: &str,
    ) -> Result<(), StoreError> {
        let id = Uuid::new_v4().to_string();
        insert_audit(
            tx,
            &NewAudit {
                id: &id,
                user_id: &actor.user_id,
                action: action.as_str(),
                resource_type: resource.0,
                resource_id: resource.1,
                result,
                job_id,
            },
            now,
        )
        .await?;
        tracing::info!(
            action = action.as_str(),
            resource = resource.1,
            result,
            "audit written"
        );
        Ok(())
    }

    /// Inserts the job of an accepted request and its `accepted` audit row (jobs.md §2);
    /// `target` is `(site, environment, node)`.
    async fn enqueue_audited(
        tx: &mut WriteTx,
        actor: &Actor,
        job_type: JobType,
        target: (&str, &str, &str),
        payload: serde_json::Value,
        resource: (&str, &str),
        now: &str,
    ) -> Result<String, StoreError> {
        let job = NewJob {
            id: Uuid::new_v4().to_string(),
            job_type,
            site_id: Some(target.0.to_string()),
            environment_id: Some(target.1.to_string()),
            node_id: target.2.to_string(),
            payload_json: payload.to_string(),
            max_attempts: crate::jobs::kinds::kind(job_type).max_attempts(),
            parent_job_id: None,
        };
        Engine::enqueue(tx, &job, now).await?;
        Self::audit(
            tx,
            actor,
            job_type,
            resource,
            "accepted",
            Some(&job.id),
            now,
        )
        .await?;
        Ok(job.id)
    }

    /// Refuses with a 409 after writing a `rejected` audit row (api.md §6).
    async fn reject(
        mut tx: WriteTx,
        actor: &Actor,
        action: JobType,
        resource: (&str, &str),
        error: SiteError,
        now: &str,
    ) -> Result<Created, SiteError> {
        Self::audit(&mut tx, actor, action, resource, "rejected", None, now).await?;
        tx.commit().await?;
        tracing::info!(action = action.as_str(), reason = %error, "request refused");
        Err(error)
    }

    /// Creates a site with its production environment and enqueues `site_create`.
    pub async fn create_site(&self, actor: &Actor, input: SiteInput) -> Result<Created, SiteError> {
        let name = validate_name(&input.name)?;
        let slug = validate_slug(&input.slug)?;
        let now = format_ts(self.clock.now());
        let mut tx = self.store.begin_write().await?;
        // A refused create names the requested slug as its resource: no row exists.
        let resource = ("site", slug.as_str());
        if site_slug_taken(&mut tx, &slug).await? {
            let e = SiteError::Conflict(format!("the slug {slug} is already in use"));
            return Self::reject(tx, actor, JobType::SiteCreate, resource, e, &now).await;
        }
        let Some((node_id, public_ip)): Option<(String, String)> =
            eligible_nodes(&mut tx).await?.into_iter().next()
        else {
            let e = SiteError::NodeNotActive(
                "no active node with a public IP to place the site on".into(),
            );
            return Self::reject(tx, actor, JobType::SiteCreate, resource, e, &now).await;
        };
        let preview_domain = fetch_setting(&mut tx, "preview_domain").await?;
        let site_id = Uuid::new_v4().to_string();
        let env_id = Self::new_environment_id(&mut tx).await?;
        let preview_url = layout::preview_url(&env_id, preview_domain.as_deref(), &public_ip);
        self.create_environment_secrets(&env_id)?;

        insert_site(&mut tx, &site_id, &name, &slug, SiteStatus::Deploying, &now).await?;
        insert_environment(
            &mut tx,
            &NewEnvironment {
                id: &env_id,
                site_id: &site_id,
                name: "Production",
                slug: "production",
                environment_type: EnvironmentType::Production.as_str(),
                status: SiteStatus::Deploying,
                node_id: &node_id,
                source_environment_id: None,
                promotion_preset: PromotionPreset::ContentProtect.as_str(),
                preview_url: &preview_url,
            },
            &now,
        )
        .await?;
        set_primary_environment(&mut tx, &site_id, &env_id, &now).await?;
        let payload = serde_json::json!({
            "site_title": name,
            "wp_admin_email": actor.email,
            "release_name": null,
        });
        let job_id = Self::enqueue_audited(
            &mut tx,
            actor,
            JobType::SiteCreate,
            (&site_id, &env_id, &node_id),
            payload,
            ("site", &site_id),
            &now,
        )
        .await?;
        tx.commit().await?;
        tracing::info!(site = %site_id, slug = %slug, environment = %env_id, preview_url = %preview_url, job = %job_id, "site created");
        self.engine.enqueued();
        Ok(Created {
            site_id,
            environment_id: env_id,
            job_id,
        })
    }

    /// Adds a staging/clone environment copied from another one and enqueues `env_create`.
    pub async fn create_environment(
        &self,
        actor: &Actor,
        site_id: &str,
        input: EnvironmentInput,
    ) -> Result<Created, SiteError> {
        let name = validate_name(&input.name)?;
        let slug = validate_slug(&input.slug)?;
        let env_type: EnvironmentType = input.environment_type.parse().map_err(|_| {
            invalid(
                "environment_type",
                "must be one of: production, staging, clone",
            )
        })?;
        let preset: PromotionPreset = input
            .promotion_preset
            .as_deref()
            .filter(|p| !p.is_empty())
            .ok_or_else(|| invalid("promotion_preset", "is required"))?
            .parse()
            .map_err(|_| {
                invalid(
                    "promotion_preset",
                    "must be one of: content-protect, commerce-protect",
                )
            })?;
        let source_id = input
            .source_environment_id
            .filter(|s| !s.is_empty())
            .map(|s| {
                crate::api::extract::parse_uuid(&s)
                    .ok_or_else(|| invalid("source_environment_id", "must be a UUID"))
            })
            .transpose()?;

        let now = format_ts(self.clock.now());
        let mut tx = self.store.begin_write().await?;
        let site = fetch_site(&mut tx, site_id)
            .await?
            .ok_or(SiteError::NotFound("site"))?;
        let source_id = match source_id.or_else(|| site.primary_environment_id.clone()) {
            Some(id) => id,
            None => {
                return Err(SiteError::Conflict(
                    "the site has no production environment".into(),
                ))
            }
        };
        let source = match fetch_environment(&mut tx, &source_id).await? {
            Some(e) if e.site_id == site.id => e,
            _ => {
                return Err(invalid(
                    "source_environment_id",
                    "must be an environment of this site",
                ))
            }
        };
        let resource = ("site", site.id.as_str());
        let refusal = if env_type == EnvironmentType::Production {
            Some(SiteError::Conflict(
                "a site has exactly one production environment".into(),
            ))
        } else if environment_slug_taken(&mut tx, &site.id, &slug).await? {
            Some(SiteError::Conflict(format!(
                "the slug {slug} is already used by an environment of this site"
            )))
        } else if site.status == SiteStatus::Failed {
            Some(SiteError::Conflict(
                "the site has failed; reset it first".into(),
            ))
        } else if source.status == SiteStatus::Failed {
            // A source still being built is accepted: its job runs first (one job per site)
            // and the clone waits queued (issue 4); the start-time check then needs it active.
            Some(SiteError::Conflict(
                "the source environment has failed; reset it first".into(),
            ))
        } else {
            None
        };
        if let Some(e) = refusal {
            return Self::reject(tx, actor, JobType::EnvCreate, resource, e, &now).await;
        }
        let node = fetch_node(&mut tx, &source.node_id).await?;
        let Some(node) = node.filter(|n| n.status == NodeStatus::Active && n.public_ip.is_some())
        else {
            let e = SiteError::NodeNotActive("the source environment's node is not active".into());
            return Self::reject(tx, actor, JobType::EnvCreate, resource, e, &now).await;
        };
        let preview_domain = fetch_setting(&mut tx, "preview_domain").await?;
        let env_id = Self::new_environment_id(&mut tx).await?;
        let preview_url = layout::preview_url(
            &env_id,
            preview_domain.as_deref(),
            node.public_ip.as_deref().unwrap_or_default(),
        );
        self.create_environment_secrets(&env_id)?;
        insert_environment(
            &mut tx,
            &NewEnvironment {
                id: &env_id,
                site_id: &site.id,
                name: &name,
                slug: &slug,
                environment_type: env_type.as_str(),
                status: SiteStatus::Cloning,
                node_id: &node.id,
                source_environment_id: Some(&source.id),
                promotion_preset: preset.as_str(),
                preview_url: &preview_url,
            },
            &now,
        )
        .await
        .map_err(|e| match e {
            StoreError::Duplicate(_) => SiteError::Conflict(format!(
                "the slug {slug} is already used by an environment of this site"
            )),
            other => SiteError::Store(other),
        })?;
        let payload = serde_json::json!({
            "source_environment_id": source.id,
            "release_name": null,
        });
        let job_id = Self::enqueue_audited(
            &mut tx,
            actor,
            JobType::EnvCreate,
            (&site.id, &env_id, &node.id),
            payload,
            ("environment", &env_id),
            &now,
        )
        .await?;
        tx.commit().await?;
        tracing::info!(site = %site.id, environment = %env_id, source = %source.id, preview_url = %preview_url, job = %job_id, "environment created");
        self.engine.enqueued();
        Ok(Created {
            site_id: site.id,
            environment_id: env_id,
            job_id,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slugs() {
        for ok in ["a", "my-site", "a1", &"x".repeat(40)] {
            assert!(is_slug(ok), "{ok}");
        }
        for bad in ["", "-a", "a-", "A", "a_b", "ä", &"x".repeat(41)] {
            assert!(!is_slug(bad), "{bad}");
        }
        assert_eq!(slugify("  My Shop: Ünïcode & more!"), "my-shop-n-code-more");
        assert_eq!(slugify("---"), "");
    }

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
