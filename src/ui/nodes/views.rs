//! Nodes as the pages show them: the rows of the list and the node page's panel (details,
//! firewall state, last failure, provisioning history), also sent live by `ui::live`.

use askama::Template;

use crate::domain::JobType;
use crate::store::nodes::NodeRecord;
use crate::store::{JobFilter, JobRecord, Store, StoreError};
use crate::ui::views::JobRow;

/// The node rows fragment, also sent live.
#[derive(Template)]
#[template(path = "partials/node_rows.html")]
pub struct NodeRows {
    pub nodes: Vec<NodeRecord>,
    pub csrf_token: String,
}

/// Provisioning jobs the node page lists.
pub const NODE_JOBS: i64 = 50;

/// What the node page's jobs table says when empty.
const EMPTY_NODE_JOBS: &str = "No provisioning job for this node yet.";

/// The node page's content, re-rendered live: details, firewall state, the last failure and the
/// provisioning history (its `node_provision` jobs).
#[derive(Template)]
#[template(path = "partials/node_panel.html")]
pub struct NodePanel {
    pub node: NodeRecord,
    pub csrf_token: String,
    pub firewall: &'static str,
    pub last_failure: Option<JobRecord>,
    pub jobs: Vec<JobRow>,
    pub empty_message: &'static str,
    /// The wildcard preview certificate as the newest successful provisioning reported it
    /// (partials/wildcard_node.html).
    pub preview_certificate: Option<crate::jobs::preview_certificate::PreviewCertificateFact>,
    /// The sites and environments this node holds (issue 17: which node holds what).
    pub environments: Vec<crate::store::nodes::NodeEnvironment>,
}

impl NodePanel {
    /// The panel of node `id`; `None` when there is no such node.
    pub async fn load(
        store: &Store,
        id: &str,
        csrf_token: String,
    ) -> Result<Option<Self>, StoreError> {
        let Some(node) = store.get_node(id).await? else {
            return Ok(None);
        };
        let jobs = store
            .list_jobs(&JobFilter {
                node_id: Some(id.to_string()),
                job_type: Some(JobType::NodeProvision),
                limit: NODE_JOBS,
                ..Default::default()
            })
            .await?;
        let last_failure = jobs
            .iter()
            .find(|j| j.status == crate::domain::JobStatus::Failed)
            .cloned();
        let firewall = match node.firewall_status.as_deref() {
            Some("active") => "active: Pressluft manages the node's firewall",
            Some("unavailable") => "unavailable: the kernel refused the firewall",
            Some("skipped") => "not managed (PRESSLUFT_MANAGE_FIREWALL=false)",
            _ => "unknown until the first successful provisioning",
        };
        let mut conn = store.pool().acquire().await?;
        let preview_certificate = crate::jobs::preview_certificate::fact_of(&mut conn, id).await?;
        drop(conn);
        let environments = store.environments_on_node(id).await?;
        Ok(Some(NodePanel {
            environments,
            preview_certificate,
            node,
            csrf_token,
            firewall,
            last_failure,
            jobs: jobs.iter().map(JobRow::from).collect(),
            empty_message: EMPTY_NODE_JOBS,
        }))
    }
}
