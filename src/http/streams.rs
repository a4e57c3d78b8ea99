//! Limits on live streams (Server-Sent Events): at most [`MAX_STREAMS_PER_SESSION`] per session
//! and [`MAX_STREAMS`] in all (excess: `429 too_many_streams`), and every stream ends when its
//! session does (logout, password change, expiry) or the server shuts down.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::{Stream, StreamExt};

use crate::auth::Auth;
use crate::http::error::{ApiError, ErrorCode};
use crate::http::session::CurrentSession;
use crate::state::AppState;

/// Open streams one session may hold (a few dashboard tabs and an API client).
pub const MAX_STREAMS_PER_SESSION: usize = 8;
/// Open streams the server holds in all.
pub const MAX_STREAMS: usize = 256;
/// How often an open stream re-reads its session (revocations by another process, expiry);
/// revocations in this process end streams at once.
pub const SESSION_CHECK_EVERY: Duration = Duration::from_secs(2);

/// The open-stream counters; cheap to clone.
#[derive(Clone, Default)]
pub struct StreamLimits {
    inner: Arc<Mutex<Counts>>,
}

#[derive(Default)]
struct Counts {
    total: usize,
    per_session: HashMap<String, usize>,
}

impl StreamLimits {
    /// Admits one more stream for `session`, or refuses with `429 too_many_streams`.
    pub fn admit(&self, session: &CurrentSession) -> Result<StreamPermit, ApiError> {
        let id = session.user.session_id.clone();
        let mut c = self.inner.lock().expect("stream counters");
        let mine = c.per_session.get(&id).copied().unwrap_or(0);
        if mine >= MAX_STREAMS_PER_SESSION {
            tracing::warn!(open = mine, "live stream refused: too many for one session");
            return Err(ApiError::new(
                ErrorCode::TooManyStreams,
                format!(
                    "this session already has {MAX_STREAMS_PER_SESSION} live streams open; close one first"
                ),
            ));
        }
        if c.total >= MAX_STREAMS {
            tracing::warn!(open = c.total, "live stream refused: server limit reached");
            return Err(ApiError::new(
                ErrorCode::TooManyStreams,
                format!("the server already holds {MAX_STREAMS} live streams; try again later"),
            ));
        }
        c.total += 1;
        *c.per_session.entry(id.clone()).or_default() += 1;
        Ok(StreamPermit {
            limits: self.clone(),
            session_id: id,
        })
    }

    /// Streams open now (all sessions).
    pub fn open(&self) -> usize {
        self.inner.lock().expect("stream counters").total
    }
}

/// One admitted stream; releases its place when dropped.
pub struct StreamPermit {
    limits: StreamLimits,
    session_id: String,
}

impl Drop for StreamPermit {
    fn drop(&mut self) {
        let mut c = self.limits.inner.lock().expect("stream counters");
        c.total = c.total.saturating_sub(1);
        if let Some(n) = c.per_session.get_mut(&self.session_id) {
            *n -= 1;
            if *n == 0 {
                c.per_session.remove(&self.session_id);
            }
        }
    }
}

impl StreamPermit {
    /// The stream, holding this permit until it is dropped and ending when the session ends.
    pub fn bind<S>(self, state: &AppState, stream: S) -> impl Stream<Item = S::Item> + Send
    where
        S: Stream + Send + 'static,
    {
        let ended = session_ended(state.auth.clone(), self.session_id.clone());
        stream.take_until(ended).map(move |item| {
            let _held = &self;
            item
        })
    }
}

/// Completes when the session is no longer live.
async fn session_ended(auth: Auth, session_id: String) {
    let revocations = auth.revocations();
    loop {
        // Registered before the check, so a revocation between check and wait is not missed.
        let notified = revocations.notified();
        tokio::pin!(notified);
        notified.as_mut().enable();
        match auth.session_is_live(&session_id).await {
            Ok(false) => {
                tracing::debug!("live stream ended: its session ended");
                return;
            }
            Ok(true) => {}
            Err(e) => tracing::warn!(error = %e, "live stream: session check failed"),
        }
        tokio::select! {
            _ = &mut notified => {}
            _ = tokio::time::sleep(SESSION_CHECK_EVERY) => {}
        }
    }
}
