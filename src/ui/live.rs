//! `GET /ui/events`: the dashboard's live stream. A job or resource change that concerns the
//! page re-renders the fragments the page shows (metrics cards, job rows for its filters, a
//! job's status badge), sent as named SSE events that htmx swaps in place. Changes elsewhere
//! (another site's job, a node the page does not show) render nothing.

use std::collections::HashSet;
use std::convert::Infallible;
use std::time::Duration;

use askama::Template;
use axum::extract::State;
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures_util::{stream, Stream, StreamExt};
use serde::Deserialize;
use tokio::sync::broadcast;

use super::jobs::views::{recent_jobs, EMPTY_JOBS, JOBS_PAGE};
use super::views::{metric_cards, JobRow, MetricCard};
use crate::domain::{JobType, ResourceType};
use crate::events::Event;
use crate::http::error::ApiError;
use crate::http::error::OrNotFound;
use crate::http::extract::{parse_uuid, AppQuery};
use crate::http::query::JobsQuery;
use crate::http::session::UiSession;
use crate::http::streams::StreamPermit;
use crate::state::AppState;
use crate::store::JobFilter;

/// Changes arriving within this window are rendered once.
const DEBOUNCE: Duration = Duration::from_millis(150);

#[derive(Template)]
#[template(path = "partials/metrics.html")]
struct MetricsFragment {
    cards: Vec<MetricCard>,
}

#[derive(Template)]
#[template(path = "partials/job_rows.html")]
struct JobRowsFragment {
    jobs: Vec<JobRow>,
    empty_message: &'static str,
}

/// Which page is listening.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LiveQuery {
    view: String,
    id: Option<String>,
    status: Option<String>,
    job_type: Option<String>,
    site_id: Option<String>,
    before: Option<String>,
    /// Job view: output lines the page already shows.
    after: Option<u64>,
}

enum View {
    Overview,
    Jobs(JobFilter),
    /// The nodes page; rows carry the session's CSRF token for their buttons.
    Nodes(String),
    /// The sites page; `true`: with deleted sites (its "Show deleted" toggle, `status=all`).
    Sites(bool),
    /// A site page: its environment cards and jobs.
    Site(String),
    /// An environment page (id, the session's CSRF token for its backups' buttons).
    Environment(String, String),
    /// A node page (id, the session's CSRF token for its button).
    Node(String, String),
}

/// The live stream's route.
pub fn router() -> axum::Router<AppState> {
    axum::Router::new().route("/ui/events", axum::routing::get(events))
}

/// `GET /ui/events?view=overview|jobs|job&…`.
pub async fn events(
    State(state): State<AppState>,
    UiSession(session): UiSession,
    AppQuery(q): AppQuery<LiveQuery>,
) -> Result<Response, ApiError> {
    let permit = state.streams.admit(&session)?;
    if q.view == "job" {
        let id =
            q.id.as_deref()
                .and_then(parse_uuid)
                .ok_or_else(|| ApiError::field("id", "must be a UUID"))?;
        return job_stream(
            state,
            session.csrf_token(),
            id,
            q.after.unwrap_or(0),
            permit,
        )
        .await;
    }
    let view = match q.view.as_str() {
        "overview" => View::Overview,
        "jobs" => {
            let mut filter = JobsQuery {
                status: q.status,
                job_type: q.job_type,
                site_id: q.site_id,
                before: q.before,
                ..Default::default()
            }
            .into_filter(&state.store)
            .await?;
            filter.limit = JOBS_PAGE;
            View::Jobs(filter)
        }
        "nodes" => View::Nodes(session.csrf_token()),
        "sites" => View::Sites(q.status.as_deref() == Some("all")),
        "site" | "environment" | "node" => {
            let id =
                q.id.as_deref()
                    .and_then(parse_uuid)
                    .ok_or_else(|| ApiError::field("id", "must be a UUID"))?;
            match q.view.as_str() {
                "site" => View::Site(id),
                "node" => View::Node(id, session.csrf_token()),
                _ => View::Environment(id, session.csrf_token()),
            }
        }
        _ => {
            return Err(ApiError::field(
                "view",
                "must be one of: overview, jobs, job, nodes, node, sites, site, environment",
            ))
        }
    };
    let rx = state.events.subscribe();
    // Subscribed first: a change made while the scope loads is still in `rx`.
    let scope = Scope::load(&state, &view).await?;
    let mut shutdown = state.shutdown.clone();
    let bound_state = state.clone();
    let init = (rx, state, view, scope);
    let updates = stream::unfold(init, |(mut rx, state, view, mut scope)| async move {
        loop {
            match rx.recv().await {
                Ok(event) if !scope.concerns(&view, &event) => continue,
                Ok(_) => {}
                // Missed events may have concerned the page: render.
                Err(broadcast::error::RecvError::Lagged(_)) => {}
                Err(broadcast::error::RecvError::Closed) => return None,
            }
            // Let a burst of changes settle, then render once.
            tokio::time::sleep(DEBOUNCE).await;
            while let Ok(_) | Err(broadcast::error::TryRecvError::Lagged(_)) = rx.try_recv() {}
            match render(&state, &view).await {
                Ok(events) => {
                    // Loaded after rendering, so it holds at least every id just rendered.
                    match Scope::load(&state, &view).await {
                        Ok(s) => scope = s,
                        Err(e) => tracing::warn!(error = %e, "live scope loading failed"),
                    }
                    return Some((events, (rx, state, view, scope)));
                }
                Err(e) => tracing::warn!(error = %e, "live fragment rendering failed"),
            }
        }
    })
    .flat_map(stream::iter)
    .map(Ok::<_, Infallible>)
    .take_until(async move {
        let _ = shutdown.wait_for(|stop| *stop).await;
    });
    Ok(sse(permit.bind(&bound_state, updates)))
}

/// The ids of the rows a site or environment page shows (the site, its environments, their
/// nodes and the releases listed); empty for the other views, which filter by kind.
#[derive(Debug, Default)]
struct Scope {
    ids: HashSet<String>,
}

impl Scope {
    async fn load(state: &AppState, view: &View) -> Result<Self, crate::store::StoreError> {
        let store = &state.store;
        let mut ids = HashSet::new();
        match view {
            View::Site(id) => {
                ids.insert(id.clone());
                for e in store.list_environments(id).await? {
                    ids.extend([e.id, e.node_id]);
                    ids.extend(e.current_release_id);
                }
                let releases = store
                    .list_site_releases(id, super::sites::views::SITE_RELEASES)
                    .await?;
                ids.extend(releases.into_iter().map(|(r, _, _)| r.id));
            }
            View::Environment(id, _) => {
                ids.insert(id.clone());
                ids.extend(store.list_backups(id).await?.into_iter().map(|b| b.id));
                if let Some(e) = store.get_environment(id).await? {
                    ids.extend([e.site_id, e.node_id]);
                    ids.extend(e.source_environment_id);
                    ids.extend(e.current_release_id);
                }
                ids.extend(store.list_releases(id).await?.into_iter().map(|r| r.id));
            }
            _ => {}
        }
        Ok(Scope { ids })
    }

    /// Whether `event` can change what `view` shows.
    fn concerns(&self, view: &View, event: &Event) -> bool {
        let shown = |id: &Option<String>| id.as_ref().is_some_and(|id| self.ids.contains(id));
        match (view, event) {
            // Metrics count running and queued jobs, active nodes and sites.
            (View::Overview, Event::Job(_)) => true,
            (View::Overview, Event::Resource(r)) => {
                matches!(r.resource_type, ResourceType::Site | ResourceType::Node)
            }
            // A job's type, site, environment, node and parent never change; its status does,
            // so a status filter cannot exclude it (it may be leaving the list).
            (View::Jobs(f), Event::Job(j)) => {
                f.job_type.is_none_or(|t| t == j.job_type)
                    && [
                        (&f.site_id, &j.site_id),
                        (&f.environment_id, &j.environment_id),
                        (&f.parent_job_id, &j.parent_job_id),
                    ]
                    .iter()
                    .all(|(want, got)| want.is_none() || want == got)
                    && f.node_id.as_ref().is_none_or(|n| *n == j.node_id)
            }
            (View::Jobs(_), Event::Resource(_)) => false,
            (View::Nodes(_), Event::Job(j)) => j.job_type == JobType::NodeProvision,
            (View::Nodes(_), Event::Resource(r)) => r.resource_type == ResourceType::Node,
            (View::Sites(_), Event::Job(_)) => false,
            (View::Sites(_), Event::Resource(r)) => {
                matches!(
                    r.resource_type,
                    ResourceType::Site | ResourceType::Environment
                )
            }
            (View::Site(id), Event::Job(j)) => {
                j.site_id.as_ref() == Some(id) || shown(&j.environment_id)
            }
            (View::Environment(id, _), Event::Job(j)) => j.environment_id.as_ref() == Some(id),
            (View::Site(_) | View::Environment(..), Event::Resource(r)) => self.ids.contains(&r.id),
            (View::Node(id, _), Event::Job(j)) => j.node_id == *id,
            (View::Node(id, _), Event::Resource(r)) => r.id == *id,
        }
    }
}

fn sse(s: impl Stream<Item = Result<SseEvent, Infallible>> + Send + 'static) -> Response {
    Sse::new(s)
        .keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
        .into_response()
}

async fn render(
    state: &AppState,
    view: &View,
) -> Result<Vec<SseEvent>, Box<dyn std::error::Error + Send + Sync>> {
    let mut out = Vec::new();
    match view {
        View::Overview => {
            let metrics = state.store.metrics().await?;
            out.push(fragment(
                "metrics",
                &MetricsFragment {
                    cards: metric_cards(&metrics),
                },
            )?);
            let jobs = recent_jobs(&state.store).await?;
            out.push(fragment("jobs", &rows(&jobs, EMPTY_JOBS))?);
        }
        View::Jobs(filter) => {
            let jobs = state.store.list_jobs(filter).await?;
            out.push(fragment("jobs", &rows(&jobs, EMPTY_JOBS))?);
        }
        View::Sites(include_deleted) => {
            out.push(fragment(
                "sites",
                &super::sites::views::SiteRows::load(&state.store, *include_deleted).await?,
            )?);
        }
        View::Site(id) => {
            out.push(fragment(
                "environments",
                &super::sites::views::EnvCards::load(&state.store, id).await?,
            )?);
            let jobs = super::sites::views::site_jobs(&state.store, id).await?;
            out.push(fragment(
                "jobs",
                &JobRowsFragment {
                    jobs,
                    empty_message: super::sites::views::EMPTY_SITE_JOBS,
                },
            )?);
        }
        View::Environment(id, csrf_token) => {
            if let Some(panel) =
                super::sites::views::EnvironmentPanel::load(&state.store, id).await?
            {
                out.push(fragment("environment", &panel)?);
            }
            if let Some(env) = state.store.get_environment(id).await? {
                let now = state.clock.now();
                let backups = super::backups::views::BackupsPanel::load(
                    &state.store,
                    &env,
                    csrf_token.clone(),
                    now,
                )
                .await?;
                out.push(fragment("backups", &backups)?);
                let timeline =
                    super::deploys::views::Timeline::load(&state.store, &env, csrf_token.clone())
                        .await?;
                out.push(fragment("timeline", &timeline)?);
            }
        }
        View::Node(id, csrf_token) => {
            if let Some(panel) =
                super::nodes::views::NodePanel::load(&state.store, id, csrf_token.clone()).await?
            {
                out.push(fragment("node", &panel)?);
            }
        }
        View::Nodes(csrf_token) => {
            let nodes = state.store.list_nodes().await?;
            out.push(fragment(
                "nodes",
                &super::nodes::views::NodeRows {
                    nodes,
                    csrf_token: csrf_token.clone(),
                },
            )?);
        }
    }
    Ok(out)
}

fn rows(jobs: &[crate::store::JobRecord], empty_message: &'static str) -> JobRowsFragment {
    JobRowsFragment {
        jobs: jobs.iter().map(JobRow::from).collect(),
        empty_message,
    }
}

fn fragment(name: &str, t: &impl Template) -> Result<SseEvent, askama::Error> {
    Ok(SseEvent::default().event(name).data(t.render()?))
}

/// Escapes text for HTML.
fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            _ => out.push(c),
        }
    }
    out
}

fn output_fragment(lines: &[String]) -> SseEvent {
    let mut html = String::new();
    for l in lines {
        html.push_str(&escape(l));
        html.push('\n');
    }
    SseEvent::default().event("job-output").data(html)
}

/// The job page's stream: `job-panel` (details and Cancel button) on every change of the job,
/// `job-output` with the lines the page does not show yet, then live lines.
async fn job_stream(
    state: AppState,
    csrf: String,
    id: String,
    after: u64,
    permit: StreamPermit,
) -> Result<Response, ApiError> {
    let jobs = state.events.subscribe();
    let output = state.events.subscribe_output();
    state.store.get_job(&id).await?.or_not_found("job")?;
    let log = crate::jobs::output::job_log_path(&state.config.log_dir, &id);
    let text = crate::jobs::output::read_log_file(&log)
        .await
        .unwrap_or_default();
    let in_file = text.lines().count() as u64;
    let missed: Vec<String> = text
        .lines()
        .skip(after as usize)
        .map(str::to_string)
        .collect();
    let first: Vec<SseEvent> = if missed.is_empty() {
        Vec::new()
    } else {
        vec![output_fragment(&missed)]
    };

    let panel_id = id.clone();
    let panels = stream::unfold((jobs, csrf, panel_id), |(mut jobs, csrf, id)| async move {
        loop {
            match jobs.recv().await {
                Ok(Event::Job(job)) if job.id == id => {
                    match super::jobs::views::JobPanel::new(&job, csrf.clone()).render() {
                        Ok(html) => {
                            let ev = SseEvent::default().event("job-panel").data(html);
                            return Some((ev, (jobs, csrf, id)));
                        }
                        Err(e) => tracing::warn!(error = %e, "job panel rendering failed"),
                    }
                }
                Ok(_) | Err(broadcast::error::RecvError::Lagged(_)) => {}
                Err(broadcast::error::RecvError::Closed) => return None,
            }
        }
    });
    let lines = tokio_stream::wrappers::BroadcastStream::new(output).filter_map(move |item| {
        let keep = match item {
            Ok(l) if *l.job_id == *id && l.seq > in_file => {
                Some(output_fragment(&[l.line.to_string()]))
            }
            _ => None,
        };
        async move { keep }
    });
    let mut shutdown = state.shutdown.clone();
    let merged = stream::iter(first)
        .chain(stream::select(panels, lines))
        .map(Ok::<_, Infallible>)
        .take_until(async move {
            let _ = shutdown.wait_for(|stop| *stop).await;
        });
    Ok(sse(permit.bind(&state, merged)))
}
