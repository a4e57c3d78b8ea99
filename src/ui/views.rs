//! View models: how rows look on a page (labels, dates, badges), kept out of the templates.

use crate::domain::JobStatus;
use crate::store::{JobRecord, Metrics};

/// What every full page needs for its frame.
pub struct Layout {
    pub title: String,
    /// The navigation entry to highlight.
    pub nav: &'static str,
    pub user_email: String,
    pub csrf_token: String,
    pub version: &'static str,
}

impl Layout {
    pub fn new(
        title: &str,
        nav: &'static str,
        session: &crate::http::session::CurrentSession,
    ) -> Self {
        Layout {
            title: title.to_string(),
            nav,
            user_email: session.user.email.clone(),
            csrf_token: session.csrf_token(),
            version: env!("CARGO_PKG_VERSION"),
        }
    }
}

/// One job in a table.
pub struct JobRow {
    pub id: String,
    pub short_id: String,
    pub job_type: String,
    pub status: String,
    pub target: String,
    pub attempts: String,
    pub created: String,
    pub started: String,
    pub finished: String,
    pub error_code: String,
    pub stopping: bool,
}

impl From<&JobRecord> for JobRow {
    fn from(j: &JobRecord) -> Self {
        JobRow {
            id: j.id.clone(),
            short_id: j.id.chars().take(8).collect(),
            job_type: j.job_type.to_string(),
            status: j.status.to_string(),
            target: target_label(j),
            attempts: format!("{}/{}", j.attempt_count, j.max_attempts),
            created: short_ts(Some(&j.created_at)),
            started: short_ts(j.started_at.as_deref()),
            finished: short_ts(j.finished_at.as_deref()),
            error_code: j.error_code.clone().unwrap_or_default(),
            stopping: j.status == JobStatus::Running && j.cancel_requested_at.is_some(),
        }
    }
}

/// "Site · Environment", or the node for global jobs.
fn target_label(j: &JobRecord) -> String {
    match (&j.site_name, &j.environment_name) {
        (Some(site), Some(env)) => format!("{site} · {env}"),
        (Some(site), None) => site.clone(),
        _ => format!("node {}", j.node_name.as_deref().unwrap_or(&j.node_id)),
    }
}

/// `2026-11-26T03:04:05.678Z` → `2026-11-26 03:04:05`; absent → `—`.
pub fn short_ts(ts: Option<&str>) -> String {
    match ts {
        Some(t) if t.len() >= 19 => t[..19].replacen('T', " ", 1),
        Some(t) => t.to_string(),
        None => "—".to_string(),
    }
}

/// [`short_ts`] of a present timestamp.
pub fn short_ts_str(ts: &str) -> String {
    short_ts(Some(ts))
}

/// Badge colour class of an audit result.
pub fn audit_badge(result: &str) -> &'static str {
    match result {
        "succeeded" => "succeeded",
        "failed" => "failed",
        "cancelled" => "cancelled",
        "rejected" => "unreachable",
        _ => "running",
    }
}

/// The four overview cards.
pub struct MetricCard {
    pub label: &'static str,
    pub value: i64,
    pub hint: &'static str,
}

pub fn metric_cards(m: &Metrics) -> Vec<MetricCard> {
    vec![
        MetricCard {
            label: "Running jobs",
            value: m.jobs_running,
            hint: "executing on a node now",
        },
        MetricCard {
            label: "Queued jobs",
            value: m.jobs_queued,
            hint: "waiting for a worker or a lock",
        },
        MetricCard {
            label: "Active nodes",
            value: m.nodes_active,
            hint: "provisioned and reachable",
        },
        MetricCard {
            label: "Sites",
            value: m.sites_total,
            hint: "WordPress sites managed",
        },
    ]
}

/// `—` for an empty value in templates.
pub fn or_dash(s: &str) -> &str {
    if s.is_empty() {
        "—"
    } else {
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_ts_drops_millis_and_t() {
        assert_eq!(
            short_ts(Some("2026-11-26T03:04:05.678Z")),
            "2026-11-26 03:04:05"
        );
        assert_eq!(short_ts(None), "—");
    }
}
