//! The Drift panel of a non-production environment's page (ui.md, environment page:
//! Promotion): the environment's drift status (unknown / clean / drifted) with when it was
//! checked and for which preset, a "Run drift check" button, the latest `drift_check` job
//! live, and the differences of the latest check listed exactly — table name with rows at the
//! baseline → now and "checksum changed", path with "digest changed". `drifted` shows a
//! blocking red warning: promotion is refused until a fresh clone replaces the environment.
//! And a page for one drift check (`/drift-checks/{id}`).
//!
//! Self-contained so the promotion page can include it: `partials/drift_section.html` needs
//! only `env` (anything with `id` and `environment_type`) and loads the panel fragment lazily,
//! reloading it on the environment's live `environment` event (as the Caching panel does).

use askama::Template;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::Router;

use crate::deploys::drift::DriftCheckView;
use crate::domain::drift::{Difference, DifferenceKind, DriftValue};
use crate::domain::{JobStatus, JobType};
use crate::http::error::{ApiError, OrNotFound};
use crate::http::extract::PathId;
use crate::http::session::{CurrentSession, UiSession};
use crate::sites::Actor;
use crate::state::AppState;
use crate::store::environments::EnvironmentRecord;
use crate::ui::form_errors::form_error;
use crate::ui::forms::{CsrfForm, NoFields};
use crate::ui::render;
use crate::ui::views::{short_ts_str, Layout};

/// The Drift routes.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/environments/{id}/drift", get(panel))
        .route("/environments/{id}/drift-check", post(run_check))
        .route("/drift-checks/{id}", get(check_page))
}

/// One difference as a line of the list.
pub struct DiffRow {
    /// `table` or `path`.
    pub kind: &'static str,
    pub name: String,
    /// `3 → 4 rows, checksum changed`, `absent → 1 row`, `listing digest changed`.
    pub detail: String,
}

fn rows_text(rows: Option<u64>) -> String {
    match rows {
        None => "absent".into(),
        Some(1) => "1 row".into(),
        Some(n) => format!("{n} rows"),
    }
}

impl From<&Difference> for DiffRow {
    fn from(d: &Difference) -> Self {
        let detail = match d.kind {
            DifferenceKind::Table => {
                let (b, c) = d.rows();
                let checksum = match (&d.baseline, &d.current) {
                    (Some(DriftValue::Table(x)), Some(DriftValue::Table(y)))
                        if x.checksum != y.checksum =>
                    {
                        ", checksum changed"
                    }
                    _ => "",
                };
                format!("{} → {}{checksum}", rows_text(b), rows_text(c))
            }
            DifferenceKind::Path => match (&d.baseline, &d.current) {
                (Some(_), Some(_)) => {
                    "listing digest changed (files added, removed or rewritten)".into()
                }
                (None, _) => "not in the baseline".into(),
                (_, None) => "not checked now".into(),
            },
        };
        DiffRow {
            kind: match d.kind {
                DifferenceKind::Table => "table",
                DifferenceKind::Path => "path",
            },
            name: d.name.clone(),
            detail,
        }
    }
}

/// The environment's latest drift check job.
pub struct DriftJob {
    pub job_id: String,
    pub status: String,
    pub created: String,
    /// `CODE: message` of a failed one.
    pub error: String,
    pub busy: bool,
}

/// The panel fragment.
#[derive(Template)]
#[template(path = "partials/drift_panel.html")]
pub struct DriftPanel {
    pub environment_id: String,
    pub csrf_token: String,
    /// `unknown`, `clean` or `drifted`.
    pub status: String,
    pub checked_at: String,
    /// The preset of the latest check, else the environment's.
    pub preset: String,
    pub check_id: Option<String>,
    pub differences: Vec<DiffRow>,
    pub last: Option<DriftJob>,
    pub notice: Option<String>,
}

impl DriftPanel {
    pub async fn load(
        state: &AppState,
        env: &EnvironmentRecord,
        csrf_token: String,
    ) -> Result<Self, ApiError> {
        let view = match &env.last_drift_check_id {
            Some(id) => Some(state.deploys.get_drift_check(id).await?),
            None => None,
        };
        let last = state
            .store
            .latest_environment_job(&env.id, &[JobType::DriftCheck])
            .await?
            .map(|j| DriftJob {
                busy: matches!(j.status, JobStatus::Queued | JobStatus::Running),
                error: if j.status == JobStatus::Failed {
                    let line: String = j
                        .error_message
                        .as_deref()
                        .unwrap_or("")
                        .lines()
                        .next()
                        .unwrap_or("")
                        .chars()
                        .take(300)
                        .collect();
                    match j.error_code.as_deref() {
                        Some(c) => format!("{c}: {line}"),
                        None => line,
                    }
                } else {
                    String::new()
                },
                status: j.status.to_string(),
                created: short_ts_str(&j.created_at),
                job_id: j.id,
            });
        Ok(DriftPanel {
            environment_id: env.id.clone(),
            csrf_token,
            status: env.drift_status.to_string(),
            checked_at: env
                .drift_checked_at
                .as_deref()
                .map(short_ts_str)
                .unwrap_or_default(),
            preset: view
                .as_ref()
                .map(|v| v.record.promotion_preset.clone())
                .unwrap_or_else(|| env.promotion_preset.clone()),
            check_id: view.as_ref().map(|v| v.record.id.clone()),
            differences: view
                .as_ref()
                .map(|v| v.differences.iter().map(DiffRow::from).collect())
                .unwrap_or_default(),
            last,
            notice: None,
        })
    }
}

async fn load_panel(
    state: &AppState,
    session: &CurrentSession,
    id: &str,
) -> Result<DriftPanel, ApiError> {
    let env = state
        .store
        .get_environment(id)
        .await?
        .or_not_found("environment")?;
    DriftPanel::load(state, &env, session.csrf_token()).await
}

/// `GET /environments/{id}/drift` (an htmx fragment).
pub async fn panel(
    State(state): State<AppState>,
    UiSession(session): UiSession,
    PathId(id): PathId,
) -> Result<Response, ApiError> {
    Ok(render(&load_panel(&state, &session, &id).await?).into_response())
}

/// `POST /environments/{id}/drift-check`: with htmx the panel (a refusal as a sentence in
/// it), else back to the environment page.
pub async fn run_check(
    State(state): State<AppState>,
    UiSession(session): UiSession,
    PathId(id): PathId,
    headers: HeaderMap,
    _: CsrfForm<NoFields>,
) -> Result<Response, ApiError> {
    let outcome = state.deploys.drift_check(&Actor::from(&session), &id).await;
    let htmx = headers.contains_key("hx-request");
    match outcome {
        Ok(_) if !htmx => Ok(Redirect::to(&format!("/environments/{id}#drift")).into_response()),
        Err(e) if !htmx => Err(e.into()),
        Ok(_) => Ok(render(&load_panel(&state, &session, &id).await?).into_response()),
        Err(e) => {
            let refused = form_error(e)?;
            let mut panel = load_panel(&state, &session, &id).await?;
            panel.notice = refused
                .notice
                .or_else(|| refused.errors.into_values().next());
            Ok(render(&panel).into_response())
        }
    }
}

/// One drift check's page.
#[derive(Template)]
#[template(path = "drift_check.html")]
struct CheckPage {
    layout: Layout,
    id: String,
    environment_id: String,
    environment_name: String,
    preset: String,
    status: String,
    checked_at: String,
    is_baseline: bool,
    differences: Vec<DiffRow>,
}

/// `GET /drift-checks/{id}`.
pub async fn check_page(
    State(state): State<AppState>,
    UiSession(session): UiSession,
    PathId(id): PathId,
) -> Result<Response, ApiError> {
    let DriftCheckView {
        record,
        differences,
    } = state.deploys.get_drift_check(&id).await?;
    let env = state.store.get_environment(&record.environment_id).await?;
    let page = CheckPage {
        layout: Layout::new("Drift check", "sites", &session),
        environment_name: env.map(|e| e.name).unwrap_or_default(),
        environment_id: record.environment_id,
        preset: record.promotion_preset,
        status: record.status.to_string(),
        checked_at: short_ts_str(&record.checked_at),
        is_baseline: record.is_baseline,
        differences: differences.iter().map(DiffRow::from).collect(),
        id: record.id,
    };
    Ok(render(&page).into_response())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::drift::TableChecksum;

    #[test]
    fn differences_read_as_rows_and_digests() {
        let t = |rows, c: &str| {
            Some(DriftValue::Table(TableChecksum {
                rows,
                checksum: c.into(),
            }))
        };
        let row = DiffRow::from(&Difference {
            kind: DifferenceKind::Table,
            name: "wp_posts".into(),
            baseline: t(3, "1"),
            current: t(4, "2"),
        });
        assert_eq!(row.detail, "3 rows → 4 rows, checksum changed");
        let row = DiffRow::from(&Difference {
            kind: DifferenceKind::Table,
            name: "wp_wc_orders".into(),
            baseline: None,
            current: t(1, "2"),
        });
        assert_eq!(row.detail, "absent → 1 row");
        let row = DiffRow::from(&Difference {
            kind: DifferenceKind::Path,
            name: "wp-content/uploads".into(),
            baseline: Some(DriftValue::Path("sha256:a".into())),
            current: Some(DriftValue::Path("sha256:b".into())),
        });
        assert_eq!(row.kind, "path");
        assert!(row.detail.starts_with("listing digest changed"));
    }
}
