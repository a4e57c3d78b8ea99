//! The custom-domain service (domains-and-tls.md §3, api.md Backups and domains): adding a
//! domain to an environment (a `pending` row and its `domain_add` job) and removing one
//! (`tls_status = disabled` and its `domain_remove` job). The host-name rules of api.md live
//! here ([`normalize_hostname`]); what happens on the node is the jobs' (src/jobs/domain_add.rs,
//! src/jobs/domain_remove.rs).

use uuid::Uuid;

use crate::clock::SharedClock;
use crate::domain::hostname::{check_fqdn, is_under};
use crate::domain::{JobType, NodeStatus, SiteStatus, TlsStatus};
use crate::jobs::{DomainAddPayload, DomainRemovePayload, Engine};
use crate::services::{JobRequest, Mutation, Mutations, ServiceError};
use crate::sites::Actor;
use crate::store::domains::{
    domain_by_hostname, domain_job_open, fetch_domain, insert_domain, set_tls_status, DomainRecord,
};
use crate::store::environments::{fetch_environment, EnvironmentRecord};
use crate::store::nodes::fetch_node;
use crate::store::settings::fetch_setting;
use crate::store::sites::fetch_site;
use crate::store::Store;

/// What an accepted add returns.
#[derive(Debug, Clone)]
pub struct DomainAccepted {
    pub domain_id: String,
    pub job_id: String,
}

/// The domain service.
#[derive(Clone)]
pub struct Domains {
    store: Store,
    mutations: Mutations,
}

/// Why a host name is refused (the message of the 400 naming `hostname`).
fn refuse(message: &str) -> ServiceError {
    ServiceError::invalid("hostname", message)
}

/// The host name as stored (api.md): trimmed, lower-cased, one trailing dot dropped; then an
/// FQDN (labels of 1–63 `[a-z0-9-]` without an edge hyphen, at least two labels, at most 253
/// characters), not an IP address, no wildcard, not `sslip.io` or under it. The settings-bound
/// rules (preview domain, control-plane domain) are [`refuse_reserved`]'s.
pub fn normalize_hostname(raw: &str) -> Result<String, ServiceError> {
    let lower = raw.trim().to_ascii_lowercase();
    let host = lower.strip_suffix('.').unwrap_or(&lower);
    check_fqdn(host).map_err(refuse)?;
    if host == "sslip.io" || host.ends_with(".sslip.io") {
        return Err(refuse(
            "must not be an sslip.io name (those are preview URLs)",
        ));
    }
    Ok(host.to_string())
}

/// The rules that depend on the settings: not under `preview_domain`, not the
/// `control_plane_domain`.
pub fn refuse_reserved(
    host: &str,
    preview_domain: Option<&str>,
    control_plane_domain: Option<&str>,
) -> Result<(), ServiceError> {
    if let Some(p) = preview_domain.filter(|p| !p.is_empty()) {
        if is_under(host, &p.to_ascii_lowercase()) {
            return Err(refuse(&format!(
                "must not be under the preview domain {p} (its names are preview URLs)"
            )));
        }
    }
    if let Some(c) = control_plane_domain.filter(|c| !c.is_empty()) {
        if host == c.to_ascii_lowercase() {
            return Err(refuse("must not be the control plane's domain"));
        }
    }
    Ok(())
}

impl Domains {
    pub fn new(store: Store, engine: Engine, clock: SharedClock) -> Self {
        Self {
            mutations: Mutations::new(store.clone(), engine, clock),
            store,
        }
    }

    /// An environment's domains, oldest first; `NotFound` for an unknown environment.
    pub async fn list(&self, environment_id: &str) -> Result<Vec<DomainRecord>, ServiceError> {
        if self.store.get_environment(environment_id).await?.is_none() {
            return Err(ServiceError::NotFound("environment"));
        }
        Ok(self.store.list_domains(environment_id).await?)
    }

    /// One domain; `NotFound` when there is none.
    pub async fn get(&self, domain_id: &str) -> Result<DomainRecord, ServiceError> {
        self.store
            .get_domain(domain_id)
            .await?
            .ok_or(ServiceError::NotFound("domain"))
    }

    /// `POST /api/environments/{id}/domains`: a `pending` domain and its `domain_add` job.
    pub async fn add(
        &self,
        actor: &Actor,
        environment_id: &str,
        hostname: &str,
    ) -> Result<DomainAccepted, ServiceError> {
        let mut m = self.mutations.begin().await?;
        let env = fetch_environment(&mut m.tx, environment_id)
            .await?
            .ok_or(ServiceError::NotFound("environment"))?;
        let checked = match normalize_hostname(hostname) {
            Ok(host) => {
                let preview = fetch_setting(&mut m.tx, "preview_domain").await?;
                let control = fetch_setting(&mut m.tx, "control_plane_domain").await?;
                refuse_reserved(&host, preview.as_deref(), control.as_deref()).map(|()| host)
            }
            Err(e) => Err(e),
        };
        // A 400 is only logged, not audited (api.md §6): the transaction is dropped unused.
        let host = match checked {
            Ok(host) => host,
            Err(e) => {
                drop(m);
                tracing::info!(environment = %env.id, error = %e, "domain add refused");
                return Err(e);
            }
        };
        if let Some(e) = env_refusal(&mut m, &env).await? {
            let audit = actor.audit(JobType::DomainAdd, ("environment", &env.id));
            return Err(self.mutations.refuse(m, audit, e).await);
        }
        if let Some(other) = domain_by_hostname(&mut m.tx, &host).await? {
            let where_ = if other.environment_id == env.id {
                "this environment"
            } else {
                "another environment"
            };
            let e = ServiceError::Conflict(format!("{host} is already a domain of {where_}"));
            let audit = actor.audit(JobType::DomainAdd, ("environment", &env.id));
            return Err(self.mutations.refuse(m, audit, e).await);
        }
        let domain_id = Uuid::new_v4().to_string();
        insert_domain(&mut m.tx, &domain_id, &env.id, &host, &m.now).await?;
        let job = JobRequest {
            job_type: JobType::DomainAdd,
            site_id: Some(&env.site_id),
            environment_id: Some(&env.id),
            node_id: &env.node_id,
            payload: DomainAddPayload {
                domain_id: domain_id.clone(),
                hostname: host.clone(),
                ..Default::default()
            },
        };
        let audit = actor.audit(JobType::DomainAdd, ("domain", &domain_id));
        let job_id = self.mutations.accept(m, job, Some(audit)).await?;
        tracing::info!(environment = %env.id, domain = %domain_id, hostname = %host, job = %job_id, "domain add accepted");
        Ok(DomainAccepted { domain_id, job_id })
    }

    /// `DELETE /api/domains/{id}`: `tls_status = disabled` and its `domain_remove` job. Refused
    /// (409) while the domain is `pending` (its `domain_add` has not finished) or while a
    /// `domain_remove` of it is queued or running.
    pub async fn remove(&self, actor: &Actor, domain_id: &str) -> Result<String, ServiceError> {
        let mut m = self.mutations.begin().await?;
        let domain = fetch_domain(&mut m.tx, domain_id)
            .await?
            .ok_or(ServiceError::NotFound("domain"))?;
        let env = fetch_environment(&mut m.tx, &domain.environment_id)
            .await?
            .ok_or(ServiceError::NotFound("environment"))?;
        let refusal = if domain.tls_status == TlsStatus::Pending {
            Some(ServiceError::Conflict(format!(
                "{} is still being added: cancel or await its domain_add job first",
                domain.hostname
            )))
        } else if domain_job_open(&mut m.tx, JobType::DomainRemove, &domain.id).await? {
            Some(ServiceError::Conflict(format!(
                "{} is already being removed",
                domain.hostname
            )))
        } else {
            env_refusal(&mut m, &env).await?
        };
        if let Some(e) = refusal {
            let audit = actor.audit(JobType::DomainRemove, ("domain", &domain.id));
            return Err(self.mutations.refuse(m, audit, e).await);
        }
        let was_primary = env.primary_domain_id.as_deref() == Some(domain.id.as_str());
        set_tls_status(&mut m.tx, &domain.id, TlsStatus::Disabled, &m.now).await?;
        let job = JobRequest {
            job_type: JobType::DomainRemove,
            site_id: Some(&env.site_id),
            environment_id: Some(&env.id),
            node_id: &env.node_id,
            payload: DomainRemovePayload {
                domain_id: domain.id.clone(),
                hostname: domain.hostname.clone(),
                was_primary,
                ..Default::default()
            },
        };
        let audit = actor.audit(JobType::DomainRemove, ("domain", &domain.id));
        let job_id = self.mutations.accept(m, job, Some(audit)).await?;
        tracing::info!(environment = %env.id, domain = %domain.id, hostname = %domain.hostname, was_primary, job = %job_id, "domain remove accepted");
        Ok(job_id)
    }
}

/// "Env ok" (api.md): the environment and its site neither deleted nor being deleted nor
/// failed, its node active.
async fn env_refusal(
    m: &mut Mutation,
    env: &EnvironmentRecord,
) -> Result<Option<ServiceError>, ServiceError> {
    let site = fetch_site(&mut m.tx, &env.site_id)
        .await?
        .ok_or(ServiceError::NotFound("site"))?;
    let node = fetch_node(&mut m.tx, &env.node_id).await?;
    Ok(
        if let Some(e) = crate::sites::deletion_refusal("environment", env.status)
            .or_else(|| crate::sites::deletion_refusal("site", site.status))
        {
            Some(e)
        } else if env.status == SiteStatus::Failed {
            Some(ServiceError::Conflict(
                "the environment has failed; reset it first".into(),
            ))
        } else if !node.is_some_and(|n| n.status == NodeStatus::Active) {
            Some(ServiceError::NodeNotActive(
                "the environment's node is not active".into(),
            ))
        } else {
            None
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn field_message(r: Result<String, ServiceError>) -> String {
        match r {
            Err(ServiceError::Invalid { field, message }) => {
                assert_eq!(field, "hostname");
                message
            }
            other => panic!("expected a refusal, got {other:?}"),
        }
    }

    #[test]
    fn host_names_are_normalized() {
        assert_eq!(
            normalize_hostname("Shop.Example.COM.").unwrap(),
            "shop.example.com"
        );
        assert_eq!(
            normalize_hostname(" a-b.example.test ").unwrap(),
            "a-b.example.test"
        );
        assert_eq!(
            normalize_hostname("xn--bcher-kva.example").unwrap(),
            "xn--bcher-kva.example"
        );
    }

    #[test]
    fn bad_host_names_are_refused_with_a_reason() {
        assert!(field_message(normalize_hostname("localhost")).contains("fully qualified"));
        assert!(field_message(normalize_hostname("203.0.113.5")).contains("IP"));
        assert!(field_message(normalize_hostname("::1")).contains("IP"));
        assert!(field_message(normalize_hostname("*.example.com")).contains("wildcard"));
        assert!(field_message(normalize_hostname("a.1-2-3-4.sslip.io")).contains("sslip.io"));
        assert!(field_message(normalize_hostname("-a.example.com")).contains("labels"));
        assert!(field_message(normalize_hostname("a_b.example.com")).contains("labels"));
        assert!(field_message(normalize_hostname("a..example.com")).contains("labels"));
        assert!(field_message(normalize_hostname("a b.example.com")).contains("labels"));
        assert!(field_message(normalize_hostname("")).contains("empty"));
        let long = format!("{}.example.com", "a".repeat(64));
        assert!(field_message(normalize_hostname(&long)).contains("labels"));
        let too_long = format!("{}example.com", "abcdefghi.".repeat(25));
        assert!(field_message(normalize_hostname(&too_long)).contains("253"));
    }

    #[test]
    fn preview_and_control_plane_names_are_reserved() {
        let p = Some("wp.example.com");
        let c = Some("pressluft.example.com");
        assert!(refuse_reserved("a1b2c3d4.wp.example.com", p, c).is_err());
        assert!(refuse_reserved("wp.example.com", p, c).is_err());
        assert!(refuse_reserved("pressluft.example.com", p, c).is_err());
        refuse_reserved("shop.example.com", p, c).unwrap();
        refuse_reserved("xwp.example.com", p, c).unwrap();
        refuse_reserved("pressluft.example.com", p, None).unwrap();
    }
}
