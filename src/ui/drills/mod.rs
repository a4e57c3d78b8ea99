//! The dashboard side of restore drills (issue 14): on the site page a panel with the last
//! drill (status badge, when, how long, which backup, why it failed), "Run drill", the drill
//! schedule and the drill history; on the overview and the Sites page an alert for every site
//! whose last drill failed — red like a failed job, so a backup that does not restore is
//! never missed. The fragments are loaded by htmx and reloaded on the page's live events
//! (`sse:jobs` / `sse:sites`), as the magic-login controls are. The forms act through the same
//! service as the API ([`crate::drills::Drills`]); a refusal is the dashboard's error page with
//! the API's code and message.

use askama::Template;
use axum::extract::State;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::Router;
use serde::Deserialize;

use crate::domain::{DrillSchedule, DrillStatus};
use crate::http::error::{ApiError, OrNotFound};
use crate::http::extract::PathId;
use crate::http::session::UiSession;
use crate::sites::Actor;
use crate::state::AppState;
use crate::store::drills::DrillRecord;
use crate::ui::forms::{CsrfForm, NoFields};
use crate::ui::render;
use crate::ui::views::short_ts;

/// How many drills the history lists.
const HISTORY: usize = 10;

/// The drill routes.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/sites/{id}/drills", post(run_drill))
        .route("/sites/{id}/drill-schedule", post(set_schedule))
        .route("/ui/sites/{id}/drills", get(panel))
        .route("/ui/drills/alerts", get(alerts))
}

/// One drill as the dashboard shows it.
pub struct DrillRow {
    pub id: String,
    pub status: String,
    pub failed: bool,
    pub started: String,
    pub finished: String,
    pub duration: String,
    pub backup_id: String,
    pub job_id: String,
    pub reason: String,
}

/// `1.2 s`, `3 min 4 s`; `—` while running.
fn duration(ms: Option<i64>) -> String {
    match ms {
        None => "—".into(),
        Some(ms) if ms < 60_000 => format!("{:.1} s", ms as f64 / 1000.0),
        Some(ms) => format!("{} min {} s", ms / 60_000, (ms % 60_000) / 1000),
    }
}

impl From<&DrillRecord> for DrillRow {
    fn from(d: &DrillRecord) -> Self {
        DrillRow {
            id: d.id.clone(),
            status: d.status.to_string(),
            failed: d.status == DrillStatus::Failed,
            started: short_ts(Some(&d.started_at)),
            finished: short_ts(d.finished_at.as_deref()),
            duration: duration(d.duration_ms),
            backup_id: d.backup_id.clone(),
            job_id: d.job_id.clone(),
            reason: d.reason.clone().unwrap_or_default(),
        }
    }
}

/// The site page's drill panel.
#[derive(Template)]
#[template(path = "partials/drills_panel.html")]
pub struct DrillsPanel {
    pub site_id: String,
    pub csrf_token: String,
    pub schedule: String,
    pub schedules: &'static [&'static str],
    pub last: Option<DrillRow>,
    pub history: Vec<DrillRow>,
}

/// `GET /ui/sites/{id}/drills`.
pub async fn panel(
    State(state): State<AppState>,
    UiSession(session): UiSession,
    PathId(id): PathId,
) -> Result<Response, ApiError> {
    let site = state.store.get_site(&id).await?.or_not_found("site")?;
    let drills = state.store.list_drills(&site.id).await?;
    let history: Vec<DrillRow> = drills.iter().take(HISTORY).map(DrillRow::from).collect();
    Ok(render(&DrillsPanel {
        site_id: site.id,
        csrf_token: session.csrf_token(),
        schedule: site.drill_schedule.to_string(),
        schedules: DrillSchedule::VALUES,
        last: drills.first().map(DrillRow::from),
        history,
    }))
}

/// A site whose last drill failed.
pub struct FailedDrill {
    pub site_id: String,
    pub site_name: String,
    pub drill: DrillRow,
}

/// The overview's and Sites page's alerts.
#[derive(Template)]
#[template(path = "partials/drills_alerts.html")]
pub struct DrillAlerts {
    pub failed: Vec<FailedDrill>,
}

/// `GET /ui/drills/alerts`: the sites (not deleted) whose last drill failed.
pub async fn alerts(
    State(state): State<AppState>,
    UiSession(_session): UiSession,
) -> Result<Response, ApiError> {
    let sites = state.store.list_sites(false).await?;
    let mut failed = Vec::new();
    for d in state.store.latest_drills().await? {
        if d.status != DrillStatus::Failed {
            continue;
        }
        if let Some(s) = sites.iter().find(|s| s.site.id == d.site_id) {
            failed.push(FailedDrill {
                site_id: s.site.id.clone(),
                site_name: s.site.name.clone(),
                drill: DrillRow::from(&d),
            });
        }
    }
    Ok(render(&DrillAlerts { failed }))
}

/// `POST /sites/{id}/drills` (dashboard form): to the drill's job page.
pub async fn run_drill(
    State(state): State<AppState>,
    UiSession(session): UiSession,
    PathId(id): PathId,
    _: CsrfForm<NoFields>,
) -> Result<Response, ApiError> {
    let started = state
        .drills
        .start(Some(&Actor::from(&session)), &id)
        .await?;
    Ok(Redirect::to(&format!("/jobs/{}", started.job_id)).into_response())
}

/// The schedule form's field.
#[derive(Debug, Deserialize)]
pub struct ScheduleForm {
    #[serde(default)]
    pub drill_schedule: String,
}

/// `POST /sites/{id}/drill-schedule` (dashboard form): back to the site page.
pub async fn set_schedule(
    State(state): State<AppState>,
    UiSession(session): UiSession,
    PathId(id): PathId,
    CsrfForm(form): CsrfForm<ScheduleForm>,
) -> Result<Response, ApiError> {
    state
        .drills
        .set_schedule(&Actor::from(&session), &id, form.drill_schedule.trim())
        .await?;
    Ok(Redirect::to(&format!("/sites/{id}")).into_response())
}

#[cfg(test)]
mod tests {
    use super::duration;

    #[test]
    fn durations_read_well() {
        assert_eq!(duration(None), "—");
        assert_eq!(duration(Some(1234)), "1.2 s");
        assert_eq!(duration(Some(184_000)), "3 min 4 s");
    }
}
