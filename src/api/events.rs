//! `GET /api/events`: Server-Sent Events with every job change (api.md §5).

use std::convert::Infallible;
use std::time::Duration;

use axum::extract::State;
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use futures_util::{Stream, StreamExt};
use tokio_stream::wrappers::BroadcastStream;

use super::error::ErrorBody;
use super::jobs::JobStatusResponse;
use crate::events::Event;
use crate::http::session::CurrentSession;
use crate::state::AppState;

/// Live stream: `job` events carry a `JobStatusResponse` on every change; a keep-alive comment
/// every 15 s.
#[utoipa::path(
    get, path = "/events", tag = "jobs",
    responses(
        (status = 200, description = "`text/event-stream` of `job` events", content_type = "text/event-stream", body = String),
        (status = 401, body = ErrorBody),
    )
)]
pub async fn events(
    State(state): State<AppState>,
    _session: CurrentSession,
) -> Sse<impl Stream<Item = Result<SseEvent, Infallible>>> {
    let mut shutdown = state.shutdown.clone();
    let stream = BroadcastStream::new(state.events.subscribe())
        .filter_map(|item| async move {
            match item {
                Ok(Event::Job(job)) => SseEvent::default()
                    .event("job")
                    .json_data(JobStatusResponse::from(job.as_ref()))
                    .ok()
                    .map(Ok),
                // A slow client missed events; it keeps the stream and sees the next ones.
                Err(_) => None,
            }
        })
        .take_until(async move {
            let _ = shutdown.wait_for(|stop| *stop).await;
        });
    Sse::new(stream).keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
}
