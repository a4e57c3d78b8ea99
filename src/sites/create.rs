//! Creating a site: validation, placement (the chosen `node_id` when eligible, else the
//! placement rule: the first eligible node), the preview URL,
//! the production environment's secrets, then the site and environment rows with `site_create`
//! (jobs.md §2, api.md Sites).

use uuid::Uuid;

use super::layout;
use super::secrets::create_environment_secrets;
use super::validate::{validate_name, validate_slug};
use super::{new_environment_id, Actor, Created, SiteInput, Sites};
use crate::domain::{EnvironmentType, JobType, PromotionPreset, SiteStatus};
use crate::jobs::SiteCreatePayload;
use crate::services::{JobRequest, ServiceError};
use crate::store::environments::{insert_environment, NewEnvironment};
use crate::store::nodes::{eligible_nodes, fetch_node};
use crate::store::settings::fetch_setting;
use crate::store::sites::{insert_site, set_primary_environment, site_slug_taken};

impl Sites {
    /// Creates a site with its production environment and enqueues `site_create`.
    pub async fn create_site(
        &self,
        actor: &Actor,
        input: SiteInput,
    ) -> Result<Created, ServiceError> {
        let name = validate_name(&input.name)?;
        let slug = validate_slug(&input.slug)?;
        let chosen = input
            .node_id
            .filter(|s| !s.is_empty())
            .map(|s| {
                crate::http::extract::parse_uuid(&s)
                    .ok_or_else(|| ServiceError::invalid("node_id", "must be a UUID"))
            })
            .transpose()?;
        let mut m = self.mutations.begin().await?;
        // A refused create names the requested slug as its resource: no row exists.
        let resource = ("site", slug.as_str());
        if site_slug_taken(&mut m.tx, &slug).await? {
            let e = ServiceError::Conflict(format!("the slug {slug} is already in use"));
            return Err(self
                .mutations
                .refuse(m, actor.audit(JobType::SiteCreate, resource), e)
                .await);
        }
        let eligible = eligible_nodes(&mut m.tx).await?;
        let placed = match &chosen {
            None => eligible.into_iter().next().ok_or_else(|| {
                ServiceError::NodeNotActive(
                    "no active node with a public IP to place the site on".into(),
                )
            }),
            Some(id) => match eligible.into_iter().find(|(n, _)| n == id) {
                Some(node) => Ok(node),
                None => match fetch_node(&mut m.tx, id).await? {
                    None => Err(ServiceError::invalid("node_id", "must be an existing node")),
                    Some(node) => Err(ServiceError::NodeNotActive(format!(
                        "node_id: the node {} is {} or has no public IP; sites are placed only \
                         on active nodes with a public IP",
                        node.name,
                        node.status.as_str()
                    ))),
                },
            },
        };
        let (node_id, public_ip) = match placed {
            Ok(node) => node,
            Err(e) => {
                return Err(self
                    .mutations
                    .refuse(m, actor.audit(JobType::SiteCreate, resource), e)
                    .await)
            }
        };
        let preview_domain = fetch_setting(&mut m.tx, "preview_domain").await?;
        let site_id = Uuid::new_v4().to_string();
        let env_id = new_environment_id(&mut m.tx).await?;
        let preview_url = layout::preview_url(&env_id, preview_domain.as_deref(), &public_ip);
        create_environment_secrets(&self.secrets, &env_id)?;

        insert_site(
            &mut m.tx,
            &site_id,
            &name,
            &slug,
            SiteStatus::Deploying,
            &m.now,
        )
        .await?;
        insert_environment(
            &mut m.tx,
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
            &m.now,
        )
        .await?;
        set_primary_environment(&mut m.tx, &site_id, &env_id, &m.now).await?;
        let payload = SiteCreatePayload {
            site_title: name.clone(),
            wp_admin_email: actor.email.clone(),
            ..Default::default()
        };
        let job = JobRequest {
            job_type: JobType::SiteCreate,
            site_id: Some(&site_id),
            environment_id: Some(&env_id),
            node_id: &node_id,
            payload,
        };
        let audit = actor.audit(JobType::SiteCreate, ("site", &site_id));
        let job_id = self.mutations.accept(m, job, Some(audit)).await?;
        tracing::info!(site = %site_id, slug = %slug, environment = %env_id, preview_url = %preview_url, job = %job_id, "site created");
        Ok(Created {
            site_id,
            environment_id: env_id,
            job_id,
        })
    }
}
