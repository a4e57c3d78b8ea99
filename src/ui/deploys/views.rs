//! The release timeline as the environment page shows it: releases newest first with the
//! rollback jobs of the environment placed between them by time, each release's health, notes,
//! building job and whether it can be rolled back to (the service's own rule), and the error of
//! the last deploy or update when it failed, in one line. Sent live as the `timeline` fragment.

use askama::Template;

use crate::deploys::rollback_target_ok;
use crate::domain::{JobStatus, JobType};
use crate::jobs::ReleaseRollbackPayload;
use crate::store::environments::EnvironmentRecord;
use crate::store::JobFilter;
use crate::store::{Store, StoreError};
use crate::ui::sites::views::release_name;
use crate::ui::views::short_ts_str;

/// Rollback jobs shown at most.
const ROLLBACKS: i64 = 20;

/// A release in the timeline.
pub struct ReleaseItem {
    pub id: String,
    pub name: String,
    pub created: String,
    /// `git · <redacted ref>`.
    pub source: String,
    pub health: String,
    pub notes: String,
    pub job_id: String,
    pub current: bool,
    pub can_roll_back: bool,
}

/// A rollback job between releases.
pub struct RollbackItem {
    pub job_id: String,
    pub created: String,
    pub reason: String,
    pub status: String,
    /// `CODE: message` of a failed one.
    pub error: String,
}

/// One line of the timeline: a release or a rollback.
pub struct Entry {
    pub release: Option<ReleaseItem>,
    pub rollback: Option<RollbackItem>,
    created_at: String,
}

/// The last deploy or update, when it failed.
pub struct FailedJob {
    pub job_id: String,
    pub kind: &'static str,
    pub line: String,
}

/// The timeline fragment.
#[derive(Template)]
#[template(path = "partials/release_timeline.html")]
pub struct Timeline {
    pub environment_id: String,
    pub csrf_token: String,
    pub entries: Vec<Entry>,
    pub failed: Option<FailedJob>,
}

/// The first line of `text`, at most 300 characters.
fn one_line(text: &str) -> String {
    let line = text.lines().next().unwrap_or("");
    let mut out: String = line.chars().take(300).collect();
    if line.chars().count() > 300 {
        out.push('…');
    }
    out
}

fn job_error(code: Option<&str>, message: Option<&str>) -> String {
    let message = one_line(message.unwrap_or(""));
    match (code, message.is_empty()) {
        (Some(c), false) => format!("{c}: {message}"),
        (Some(c), true) => c.to_string(),
        (None, _) => message,
    }
}

impl Timeline {
    pub async fn load(
        store: &Store,
        env: &EnvironmentRecord,
        csrf_token: String,
    ) -> Result<Self, StoreError> {
        let releases = store.list_releases(&env.id).await?;
        let mut entries: Vec<Entry> = releases
            .iter()
            .map(|r| Entry {
                created_at: r.created_at.clone(),
                rollback: None,
                release: Some(ReleaseItem {
                    id: r.id.clone(),
                    name: release_name(&r.path),
                    created: short_ts_str(&r.created_at),
                    source: format!(
                        "{} · {}",
                        r.source_type,
                        crate::sites::redact_url_password(&r.source_ref)
                    ),
                    health: r.health_status.to_string(),
                    notes: r.notes.clone().unwrap_or_default(),
                    job_id: r.job_id.clone().unwrap_or_default(),
                    current: env.current_release_id.as_deref() == Some(r.id.as_str()),
                    can_roll_back: rollback_target_ok(env, r, &releases).is_ok(),
                }),
            })
            .collect();
        let filter = |job_type| JobFilter {
            environment_id: Some(env.id.clone()),
            job_type: Some(job_type),
            limit: ROLLBACKS,
            ..Default::default()
        };
        for j in store.list_jobs(&filter(JobType::ReleaseRollback)).await? {
            let reason = serde_json::from_str::<ReleaseRollbackPayload>(&j.payload_json)
                .map(|p| p.reason)
                .unwrap_or_default();
            let error = if j.status == JobStatus::Failed {
                job_error(j.error_code.as_deref(), j.error_message.as_deref())
            } else {
                String::new()
            };
            entries.push(Entry {
                release: None,
                rollback: Some(RollbackItem {
                    job_id: j.id.clone(),
                    created: short_ts_str(&j.created_at),
                    reason: one_line(&reason),
                    status: j.status.to_string(),
                    error,
                }),
                created_at: j.created_at.clone(),
            });
        }
        // Newest first; a rollback sits above the releases it came after.
        entries.sort_by(|a, b| b.created_at.cmp(&a.created_at));
        let mut last = store.list_jobs(&filter(JobType::EnvDeploy)).await?;
        last.extend(store.list_jobs(&filter(JobType::EnvUpdate)).await?);
        last.sort_by(|a, b| b.created_at.cmp(&a.created_at));
        let failed = last
            .into_iter()
            .next()
            .filter(|j| j.status == JobStatus::Failed)
            .map(|j| FailedJob {
                kind: if j.job_type == JobType::EnvDeploy {
                    "Deploy"
                } else {
                    "Update"
                },
                line: job_error(j.error_code.as_deref(), j.error_message.as_deref()),
                job_id: j.id,
            });
        Ok(Timeline {
            environment_id: env.id.clone(),
            csrf_token,
            entries,
            failed,
        })
    }
}
