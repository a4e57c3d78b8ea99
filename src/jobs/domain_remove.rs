//! `domain_remove`: a custom domain detached from its environment (domains-and-tls.md §3,
//! jobs.md §11) through `domain-remove.yml`: its server block deleted and Nginx reloaded
//! (`pressluft node domain-apply`), then its certificate deleted (`certbot delete
//! --cert-name <hostname>`; after the reload, so no live block names it).
//!
//! When it was the primary, the oldest remaining active domain becomes the primary: the
//! remaining blocks are rewritten so that one serves and the others answer `301` to it, and
//! the database is rewritten from `https://<hostname>` to `https://<new primary>` — or back to
//! the preview URL when no active domain remains. Reload and purge of all the environment's
//! hosts (the removed one included) follow. Which domain takes over is decided from the
//! database when the run starts (jobs of a site never run in parallel).
//!
//! Success deletes the row and sets or clears `primary_domain_id`. A failure leaves the row
//! `disabled` (a second `DELETE` retries).

use serde::{Deserialize, Serialize};
use serde_json::Value;
use sqlx::AnyConnection;

use super::domain_add::{active_domains, apply_spec, common_vars, render_list};
use super::env_cache_toggle::environment_hosts;
use super::kinds::{ResolvedVars, VarsContext, VarsError};
use super::lifecycle::{node_spec_vars, site_and_environment};
use super::payload::{self, Attempts};
use crate::domain::TlsStatus;
use crate::node_helper::spec::UrlRewrite;
use crate::sites::layout::EnvLayout;
use crate::store::domains::{delete_domain, fetch_domain, set_primary_domain, DomainRecord};
use crate::store::environments::fetch_environment;
use crate::store::{JobRecord, StoreError};

super::kinds::job_kind!(
    DomainRemove,
    "domain-remove.yml",
    [validate_start, on_success, extra_vars]
);

/// The payload of `domain_remove` (jobs.md §11): `was_primary` records whether the domain was
/// the primary when the removal was requested (the run decides from the database).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct DomainRemovePayload {
    pub domain_id: String,
    pub hostname: String,
    pub was_primary: bool,
    #[serde(flatten)]
    pub attempts: Attempts,
}

async fn validate_start(
    conn: &mut AnyConnection,
    job: &JobRecord,
) -> Result<Result<(), String>, StoreError> {
    let p: DomainRemovePayload = payload::read(job);
    Ok(match fetch_domain(conn, &p.domain_id).await? {
        None => Err(format!("the domain {} no longer exists", p.hostname)),
        Some(d) if d.tls_status != TlsStatus::Disabled => Err(format!(
            "the domain {} is {}, not marked for removal",
            d.hostname, d.tls_status
        )),
        Some(_) => Ok(()),
    })
}

/// The row goes; when it was the primary, the oldest remaining active domain takes over.
async fn on_success(
    conn: &mut AnyConnection,
    job: &JobRecord,
    _result: &Value,
    now: &str,
) -> Result<(), StoreError> {
    let p: DomainRemovePayload = payload::read(job);
    let env_id = job.environment_id.as_deref().unwrap_or_default();
    let env = fetch_environment(conn, env_id).await?;
    let was_primary = env
        .as_ref()
        .is_some_and(|e| e.primary_domain_id.as_deref() == Some(p.domain_id.as_str()));
    delete_domain(conn, &p.domain_id, now).await?;
    if let (true, Some(env)) = (was_primary, env) {
        let (active, _) = active_domains(conn, &env).await?;
        let next = active.first().map(|d| d.id.as_str());
        set_primary_domain(conn, &env.id, next, now).await?;
    }
    Ok(())
}

/// Variables of `domain-remove.yml`: `node_spec` ([`crate::node_helper::spec::DomainApplySpec`]:
/// the domain's block removed, the rewrite when it was the primary), `domain_id`,
/// `domain_hostname` (the certificate's name), `primary_domain_hostname` (the new primary, ""
/// for the preview URL), `domain_blocks_wanted` (the remaining active domains' blocks when
/// the primary changes, else none), the flat block variables.
async fn extra_vars(cx: &VarsContext<'_>, job: &JobRecord) -> Result<ResolvedVars, VarsError> {
    let _ = cx.node;
    let p: DomainRemovePayload = payload::read(job);
    let mut conn = cx.store.pool().acquire().await.map_err(StoreError::from)?;
    let (site, env) = site_and_environment(&mut conn, job).await?;
    let layout = EnvLayout::new(&site.id, &env.id);
    let domain = fetch_domain(&mut conn, &p.domain_id)
        .await?
        .ok_or(VarsError::Missing("the domain"))?;
    let was_primary = env.primary_domain_id.as_deref() == Some(domain.id.as_str());
    let (active, _) = active_domains(&mut conn, &env).await?;
    let remaining: Vec<&DomainRecord> = active.iter().filter(|d| d.id != domain.id).collect();
    let next = remaining.first().map(|d| d.hostname.clone());
    let (rewrite, blocks) = if was_primary {
        let to = next
            .as_ref()
            .map_or(env.preview_url.clone(), |h| format!("https://{h}"));
        let rewrite = UrlRewrite {
            from: format!("https://{}", domain.hostname),
            to,
        };
        let blocks: Vec<(&DomainRecord, bool)> = remaining.iter().map(|d| (*d, true)).collect();
        (Some(rewrite), blocks)
    } else {
        (None, Vec::new())
    };
    let hosts = environment_hosts(&mut conn, &env).await?;
    let spec = apply_spec(&env, &layout, hosts, rewrite, vec![domain.id.clone()]);
    let mut resolved = node_spec_vars(&env.id, &spec, Vec::new())?;
    common_vars(&mut conn, &site, &env, &layout, &mut resolved).await?;
    let primary = next.unwrap_or_default();
    let mut put = |k: &str, v: Value| {
        resolved.vars.insert(k.to_string(), v);
    };
    put("domain_id", domain.id.clone().into());
    put("domain_hostname", domain.hostname.clone().into());
    put("domain_was_primary", was_primary.into());
    put("primary_domain_hostname", primary.clone().into());
    put("domain_blocks_wanted", render_list(&blocks, &primary));
    Ok(resolved)
}
