//! `node_provision`: turns a host into a Pressluft node (provisioning.md), and the node state
//! machine around it (state-machines.md, Node).

use serde::{Deserialize, Serialize};
use serde_json::Value;
use sqlx::AnyConnection;

use super::errors::JobErrorCode;
use super::kinds::{ResolvedVars, VarsContext, VarsError};
use super::payload::{self, Attempts};
use crate::domain::{JobType, NodeStatus};
use crate::store::nodes::{fetch_node, record_node_provisioned, set_node_status, NodeRecord};
use crate::store::queue::job_succeeded_for_node;
use crate::store::{JobRecord, StoreError};

super::kinds::job_kind!(NodeProvision, "node-provision.yml", all_hooks);

/// The payload of `node_provision`: empty at the enqueue (`{}`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct NodeProvisionPayload {
    /// Run-stable: the node's status when this job first started (a retry finds it
    /// `provisioning` from the first attempt), which decides where a final failure leaves it.
    /// Unset in rows claimed before the field existed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub node_status_at_start: Option<NodeStatus>,
    /// What the successful run reported about the wildcard preview certificate (its result's
    /// `preview_certificate`): read by the jobs that mint `https://` preview hosts and the
    /// node page ([`super::preview_certificate::fact_of`]).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub preview_certificate: Option<super::preview_certificate::PreviewCertificateFact>,
    #[serde(flatten)]
    pub attempts: Attempts,
}

async fn node(conn: &mut AnyConnection, job: &JobRecord) -> Result<NodeRecord, StoreError> {
    fetch_node(conn, &job.node_id)
        .await?
        .ok_or_else(|| StoreError::not_found("node", Some(&job.node_id)))
}

async fn transition(
    conn: &mut AnyConnection,
    node: &NodeRecord,
    to: NodeStatus,
    now: &str,
) -> Result<(), StoreError> {
    if node.status == to {
        return Ok(());
    }
    if !set_node_status(conn, node, to, now).await? {
        // Impossible inside the claim/complete write transaction; refuse loudly if it happens.
        return Err(StoreError::LostUpdate {
            what: "node",
            id: node.id.clone(),
        });
    }
    tracing::info!(node = %node.id, from = %node.status, to = to.as_str(), "node status changed");
    Ok(())
}

async fn validate_start(
    conn: &mut AnyConnection,
    job: &JobRecord,
) -> Result<Result<(), String>, StoreError> {
    let node = node(conn, job).await?;
    if node.status == NodeStatus::Decommissioned {
        return Ok(Err(format!("node {} is decommissioned", node.name)));
    }
    Ok(Ok(()))
}

async fn on_start(
    conn: &mut AnyConnection,
    job: &mut JobRecord,
    now: &str,
) -> Result<(), StoreError> {
    let node = node(conn, job).await?;
    payload::update(conn, job, |p: &mut NodeProvisionPayload| {
        p.node_status_at_start.get_or_insert(node.status);
    })
    .await?;
    transition(conn, &node, NodeStatus::Provisioning, now).await
}

async fn on_success(
    conn: &mut AnyConnection,
    job: &JobRecord,
    result: &Value,
    now: &str,
) -> Result<(), StoreError> {
    let node = node(conn, job).await?;
    transition(conn, &node, NodeStatus::Active, now).await?;
    let firewall = result["firewall"]["status"].as_str();
    let mut warnings: Vec<String> = ["firewall", "fail2ban"]
        .iter()
        .filter(|k| result[**k]["status"] == "unavailable")
        .filter_map(|k| result[*k]["message"].as_str().map(str::to_string))
        .collect();
    // The dashboard without its certificate (issue 15): why, from the control-plane vhost.
    warnings.extend(crate::control_plane_tls::result_warning(result));
    let warning = (!warnings.is_empty()).then(|| warnings.join(" "));
    let fact = serde_json::from_value(result["preview_certificate"].clone()).ok();
    payload::update_stored(conn, job, |p: &mut NodeProvisionPayload| {
        p.preview_certificate = fact;
    })
    .await?;
    if let Some(w) = &warning {
        tracing::warn!(node = %node.id, warning = %w, "node provisioned with warnings");
    }
    record_node_provisioned(conn, &node.id, firewall, warning.as_deref(), now).await
}

/// Final failure: unreachable when SSH failed or the run was refused; otherwise a node that
/// was `active` when this job started keeps serving (`active`), and any other (never
/// provisioned, or `unreachable` before) stays `provisioning`, ineligible for sites.
async fn on_final_failure(
    conn: &mut AnyConnection,
    job: &JobRecord,
    code: JobErrorCode,
    started: bool,
    now: &str,
) -> Result<(), StoreError> {
    let node = node(conn, job).await?;
    if node.status != NodeStatus::Provisioning {
        return Ok(());
    }
    let to = if !started || code == JobErrorCode::AnsibleHostUnreachable {
        NodeStatus::Unreachable
    } else if was_active_at_start(conn, job).await? {
        NodeStatus::Active
    } else {
        NodeStatus::Provisioning
    };
    transition(conn, &node, to, now).await
}

/// Whether the node was `active` when this job first started. Jobs claimed before the field
/// existed fall back to "a provision of this node ever succeeded".
async fn was_active_at_start(
    conn: &mut AnyConnection,
    job: &JobRecord,
) -> Result<bool, StoreError> {
    match payload::read::<NodeProvisionPayload>(job).node_status_at_start {
        Some(status) => Ok(status == NodeStatus::Active),
        None => job_succeeded_for_node(conn, &job.node_id, JobType::NodeProvision).await,
    }
}

/// Cancelled (queued or running): a node still `provisioning` becomes `unreachable`.
async fn on_cancel(
    conn: &mut AnyConnection,
    job: &JobRecord,
    _was_running: bool,
    now: &str,
) -> Result<(), StoreError> {
    let node = node(conn, job).await?;
    if node.status == NodeStatus::Provisioning {
        transition(conn, &node, NodeStatus::Unreachable, now).await?;
    }
    Ok(())
}

/// Variables of `node-provision.yml` (ansible/README.md).
async fn extra_vars(cx: &VarsContext<'_>, _job: &JobRecord) -> Result<ResolvedVars, VarsError> {
    let (store, config, node) = (cx.store, cx.config, cx.node);
    let binary = config
        .node_binary
        .clone()
        .or_else(|| std::env::current_exe().ok())
        .map(|p| p.display().to_string())
        .unwrap_or_default();
    let domain = store
        .get_setting("control_plane_domain")
        .await?
        .unwrap_or_default();
    let mut vars = serde_json::Map::new();
    vars.insert(
        "node_public_ip".into(),
        node.public_ip.clone().unwrap_or_default().into(),
    );
    vars.insert("manage_firewall".into(), config.manage_firewall.into());
    vars.insert("is_local_node".into(), node.is_local.into());
    vars.insert(
        "control_plane_port".into(),
        config.listen_addr.port().into(),
    );
    vars.insert("control_plane_domain".into(), domain.into());
    vars.insert(
        "control_plane_socket".into(),
        config
            .proxy_socket
            .as_deref()
            .map(|p| p.display().to_string())
            .unwrap_or_default()
            .into(),
    );
    // The dashboard on HTTPS (issue 15): the sslip.io name and whether the port stays open.
    vars.extend(crate::control_plane_tls::provision_vars(
        config,
        node.public_ip.as_deref(),
    ));
    vars.insert("pressluft_binary_path".into(), binary.into());
    let mut resolved = ResolvedVars {
        vars,
        secrets: Vec::new(),
    };
    // Settings (issue 15): the ACME account and directory (the control plane's certificate).
    resolved
        .vars
        .extend(crate::settings::acme::vars(store).await?);
    // The wildcard preview certificate (its own module: credentials, plugin, ACME account).
    let preview = super::preview_certificate::provision_vars(cx).await?;
    resolved.vars.extend(preview.vars);
    resolved.secrets.extend(preview.secrets);
    Ok(resolved)
}
