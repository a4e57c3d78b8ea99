//! `GET /api/events`: Server-Sent Events with every job change (api.md §5).

use std::convert::Infallible;
use std::time::Duration;

use axum::extract::State;
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use futures_util::{Stream, StreamExt};
use tokio_stream::wrappers::BroadcastStream;

use serde::Serialize;
use utoipa::ToSchema;

use super::error::ErrorBody;
use super::jobs::JobStatusResponse;
use crate::domain::ResourceType;
use crate::events::Event;
use crate::http::error::OrNotFound;
use crate::http::session::CurrentSession;
use crate::state::AppState;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// This resource's routes (relative to `/api`), each registered with its OpenAPI entry.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(job_events))
        .routes(routes!(events))
}

/// A site, environment, node, backup, domain or release changed.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ResourceEvent {
    #[serde(rename = "type")]
    #[schema(value_type = ResourceType)]
    pub resource_type: ResourceType,
    #[schema(format = "uuid")]
    pub id: String,
    /// The resource's status (its type's status values).
    pub status: String,
    pub state_version: i64,
}

/// One line of a job's output.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct OutputEvent {
    pub line: String,
}

/// The job is terminal and its output drained: `{}`.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct EndEvent {}

/// One message of `GET /api/events`: the SSE `event:` field is `event`, the `data:` field is
/// `data` as JSON.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(tag = "event", content = "data", rename_all = "snake_case")]
pub enum EventsMessage {
    Job(Box<JobStatusResponse>),
    Resource(ResourceEvent),
}

/// One message of `GET /api/jobs/{id}/events`: the SSE `event:` field is `event`, the `data:`
/// field is `data` as JSON.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(tag = "event", content = "data", rename_all = "snake_case")]
pub enum JobEventsMessage {
    Job(Box<JobStatusResponse>),
    Output(OutputEvent),
    End(EndEvent),
}

/// Frames a message as the schema above says: the tag becomes the SSE event name, the content
/// its JSON data. The documented types are the ones sent, so the two cannot drift apart.
fn frame(message: &impl Serialize) -> SseEvent {
    let mut value = serde_json::to_value(message).expect("event messages serialize");
    let event = value["event"].as_str().expect("tagged").to_string();
    SseEvent::default()
        .event(event)
        .json_data(value["data"].take())
        .expect("serializes")
}

/// Live stream: `job` events carry a `JobStatusResponse` on every change; `resource` events
/// `{"type", "id", "status", "state_version"}` on every site, environment, node and release
/// change (a release's status is its health); a keep-alive comment every 15 s.
#[utoipa::path(
    get, path = "/events", tag = "jobs",
    responses(
        (status = 200, description = "`text/event-stream`; each message is one `EventsMessage` (SSE `event:` = `event`, `data:` = `data` as JSON)", content_type = "text/event-stream", body = EventsMessage),
        (status = 401, body = ErrorBody),
        (status = 429, description = "`too_many_streams`: the session or the server holds the most live streams allowed", body = ErrorBody),
    )
)]
pub async fn events(
    State(state): State<AppState>,
    session: CurrentSession,
) -> Result<Sse<impl Stream<Item = Result<SseEvent, Infallible>>>, crate::api::error::ApiError> {
    let permit = state.streams.admit(&session)?;
    let mut shutdown = state.shutdown.clone();
    let stream = BroadcastStream::new(state.events.subscribe())
        .filter_map(|item| async move {
            match item {
                Ok(Event::Job(job)) => Some(Ok(frame(&EventsMessage::Job(Box::new(
                    JobStatusResponse::from(job.as_ref()),
                ))))),
                Ok(Event::Resource(r)) => {
                    Some(Ok(frame(&EventsMessage::Resource(ResourceEvent {
                        resource_type: r.resource_type,
                        id: r.id.clone(),
                        status: r.status.to_string(),
                        state_version: r.state_version,
                    }))))
                }
                // A slow client missed events; it keeps the stream and sees the next ones.
                Err(_) => None,
            }
        })
        .take_until(async move {
            let _ = shutdown.wait_for(|stop| *stop).await;
        });
    let stream = permit.bind(&state, stream);
    Ok(Sse::new(stream).keep_alive(KeepAlive::new().interval(Duration::from_secs(15))))
}

/// State of one `/api/jobs/{id}/events` stream.
struct JobStream {
    id: String,
    jobs: tokio::sync::broadcast::Receiver<Event>,
    output: tokio::sync::broadcast::Receiver<crate::events::OutputLine>,
    /// Lines already sent from the log file.
    replayed: u64,
    /// Queued events to send before reading more.
    pending: std::collections::VecDeque<SseEvent>,
    done: bool,
}

fn job_event(job: &crate::store::JobRecord) -> SseEvent {
    frame(&JobEventsMessage::Job(Box::new(JobStatusResponse::from(
        job,
    ))))
}

fn output_event(line: &str) -> SseEvent {
    frame(&JobEventsMessage::Output(OutputEvent {
        line: line.to_string(),
    }))
}

fn end_event() -> SseEvent {
    frame(&JobEventsMessage::End(EndEvent {}))
}

/// Live stream of one job: `job` (now, then on every change), `output` (`{"line"}`: the stored
/// log replayed, then live lines), `end` (the job is terminal and its output drained).
#[utoipa::path(
    get, path = "/jobs/{id}/events", tag = "jobs",
    params(crate::http::schema::IdPath),
    responses(
        (status = 200, description = "`text/event-stream`; each message is one `JobEventsMessage` (SSE `event:` = `event`, `data:` = `data` as JSON)", content_type = "text/event-stream", body = JobEventsMessage),
        crate::http::error::IdErrors,
        (status = 429, description = "`too_many_streams`: the session or the server holds the most live streams allowed", body = ErrorBody),
    )
)]
pub async fn job_events(
    State(state): State<AppState>,
    session: CurrentSession,
    crate::api::extract::PathId(id): crate::api::extract::PathId,
) -> Result<Sse<impl Stream<Item = Result<SseEvent, Infallible>>>, crate::api::error::ApiError> {
    let permit = state.streams.admit(&session)?;
    let jobs = state.events.subscribe();
    let output = state.events.subscribe_output();
    let job = state.store.get_job(&id).await?.or_not_found("job")?;
    let mut pending = std::collections::VecDeque::new();
    pending.push_back(job_event(&job));
    let text = crate::jobs::output::read_job_output(&state.config.log_dir, &job).await;
    let mut replayed = 0;
    for line in text.lines() {
        pending.push_back(output_event(line));
        replayed += 1;
    }
    let terminal = job.status.is_terminal();
    if terminal {
        pending.push_back(end_event());
    }
    let init = JobStream {
        id,
        jobs,
        output,
        replayed,
        pending,
        done: terminal,
    };
    let mut shutdown = state.shutdown.clone();
    let stream = futures_util::stream::unfold(init, |mut s| async move {
        loop {
            if let Some(ev) = s.pending.pop_front() {
                return Some((Ok(ev), s));
            }
            if s.done {
                return None;
            }
            tokio::select! {
                ev = s.jobs.recv() => match ev {
                    Ok(Event::Job(job)) if job.id == s.id => {
                        s.pending.push_back(job_event(&job));
                        if job.status.is_terminal() {
                            // Output written before the job ended is already buffered: drain it.
                            while let Ok(l) = s.output.try_recv() {
                                if *l.job_id == *s.id && l.seq > s.replayed {
                                    s.pending.push_back(output_event(&l.line));
                                }
                            }
                            s.pending.push_back(end_event());
                            s.done = true;
                        }
                    }
                    Ok(_) | Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {}
                    Err(tokio::sync::broadcast::error::RecvError::Closed) => return None,
                },
                line = s.output.recv() => match line {
                    Ok(l) if *l.job_id == *s.id && l.seq > s.replayed => {
                        s.pending.push_back(output_event(&l.line));
                    }
                    Ok(_) | Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {}
                    Err(tokio::sync::broadcast::error::RecvError::Closed) => return None,
                },
            }
        }
    })
    .take_until(async move {
        let _ = shutdown.wait_for(|stop| *stop).await;
    });
    let stream = permit.bind(&state, stream);
    Ok(Sse::new(stream).keep_alive(KeepAlive::new().interval(Duration::from_secs(15))))
}
