//! Adding a staging or clone environment to a site: validation, the refusals (one production
//! environment, unique slugs, failed site or source), the source's node, then the environment
//! row with `env_create` (jobs.md §2, api.md Environments).

use super::layout;
use super::secrets::create_environment_secrets;
use super::validate::{validate_name, validate_slug};
use super::{new_environment_id, Actor, Created, EnvironmentInput, Sites};
use crate::domain::{EnvironmentType, JobType, PromotionPreset, SiteStatus};
use crate::jobs::EnvCreatePayload;
use crate::services::{JobRequest, ServiceError};
use crate::store::environments::{
    environment_slug_taken, fetch_environment, insert_environment, NewEnvironment,
};
use crate::store::nodes::fetch_node;
use crate::store::settings::fetch_setting;
use crate::store::sites::fetch_site;
use crate::store::StoreError;

impl Sites {
    /// Adds a staging/clone environment copied from another one and enqueues `env_create`.
    pub async fn create_environment(
        &self,
        actor: &Actor,
        site_id: &str,
        input: EnvironmentInput,
    ) -> Result<Created, ServiceError> {
        let name = validate_name(&input.name)?;
        let slug = validate_slug(&input.slug)?;
        let env_type: EnvironmentType = input.environment_type.parse().map_err(|_| {
            ServiceError::invalid(
                "environment_type",
                "must be one of: production, staging, clone",
            )
        })?;
        let preset: PromotionPreset = input
            .promotion_preset
            .as_deref()
            .filter(|p| !p.is_empty())
            .ok_or_else(|| ServiceError::invalid("promotion_preset", "is required"))?
            .parse()
            .map_err(|_| {
                ServiceError::invalid(
                    "promotion_preset",
                    "must be one of: content-protect, commerce-protect",
                )
            })?;
        let source_id = input
            .source_environment_id
            .filter(|s| !s.is_empty())
            .map(|s| {
                crate::http::extract::parse_uuid(&s)
                    .ok_or_else(|| ServiceError::invalid("source_environment_id", "must be a UUID"))
            })
            .transpose()?;

        let mut m = self.mutations.begin().await?;
        let site = fetch_site(&mut m.tx, site_id)
            .await?
            .ok_or(ServiceError::NotFound("site"))?;
        let source_id = match source_id.or_else(|| site.primary_environment_id.clone()) {
            Some(id) => id,
            None => {
                return Err(ServiceError::Conflict(
                    "the site has no production environment".into(),
                ))
            }
        };
        let source = match fetch_environment(&mut m.tx, &source_id).await? {
            Some(e) if e.site_id == site.id => e,
            _ => {
                return Err(ServiceError::invalid(
                    "source_environment_id",
                    "must be an environment of this site",
                ))
            }
        };
        let resource = ("site", site.id.as_str());
        let refusal = if env_type == EnvironmentType::Production {
            Some(ServiceError::Conflict(
                "a site has exactly one production environment".into(),
            ))
        } else if let Some(e) = super::deletion_refusal("site", site.status) {
            Some(e)
        } else if let Some(e) = super::deletion_refusal("source environment", source.status) {
            Some(e)
        } else if environment_slug_taken(&mut m.tx, &site.id, &slug).await? {
            Some(ServiceError::Conflict(format!(
                "the slug {slug} is already used by an environment of this site"
            )))
        } else if site.status == SiteStatus::Failed {
            Some(ServiceError::Conflict(
                "the site has failed; reset it first".into(),
            ))
        } else if source.status == SiteStatus::Failed {
            // A source still being built is accepted: its job runs first (one job per site)
            // and the clone waits queued (issue 4); the start-time check then needs it active.
            Some(ServiceError::Conflict(
                "the source environment has failed; reset it first".into(),
            ))
        } else {
            None
        };
        if let Some(e) = refusal {
            return Err(self
                .mutations
                .refuse(m, actor.audit(JobType::EnvCreate, resource), e)
                .await);
        }
        let node = fetch_node(&mut m.tx, &source.node_id).await?;
        let Some(node) =
            node.filter(|n| n.status == crate::domain::NodeStatus::Active && n.public_ip.is_some())
        else {
            let e =
                ServiceError::NodeNotActive("the source environment's node is not active".into());
            return Err(self
                .mutations
                .refuse(m, actor.audit(JobType::EnvCreate, resource), e)
                .await);
        };
        let preview_domain = fetch_setting(&mut m.tx, "preview_domain").await?;
        let env_id = new_environment_id(&mut m.tx).await?;
        let preview_url = layout::preview_url(
            &env_id,
            preview_domain.as_deref(),
            node.public_ip.as_deref().unwrap_or_default(),
        );
        create_environment_secrets(&self.secrets, &env_id)?;
        insert_environment(
            &mut m.tx,
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
            &m.now,
        )
        .await
        .map_err(|e| match e {
            StoreError::Duplicate(_) => ServiceError::Conflict(format!(
                "the slug {slug} is already used by an environment of this site"
            )),
            other => ServiceError::Store(other),
        })?;
        let payload = EnvCreatePayload {
            source_environment_id: source.id.clone(),
            ..Default::default()
        };
        let job = JobRequest {
            job_type: JobType::EnvCreate,
            site_id: Some(&site.id),
            environment_id: Some(&env_id),
            node_id: &node.id,
            payload,
        };
        let audit = actor.audit(JobType::EnvCreate, ("environment", &env_id));
        let job_id = self.mutations.accept(m, job, Some(audit)).await?;
        tracing::info!(site = %site.id, environment = %env_id, source = %source.id, preview_url = %preview_url, job = %job_id, "environment created");
        Ok(Created {
            site_id: site.id,
            environment_id: env_id,
            job_id,
        })
    }
}
