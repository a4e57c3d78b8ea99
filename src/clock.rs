//! Time as the control plane sees it.
//!
//! Every rule with a time window (session expiry, login throttling, job backoff, heartbeats) reads
//! the time through [`Clock`], so tests can move time forward instead of sleeping. Timestamps are
//! stored as `YYYY-MM-DDTHH:MM:SS.sssZ` strings: millisecond precision keeps string order equal to
//! time order, in SQLite and PostgreSQL alike.

use std::sync::{Arc, Mutex};
use time::format_description::well_known::Rfc3339;
use time::macros::format_description;
use time::{Duration, OffsetDateTime, UtcOffset};

/// The source of "now" for every time-dependent rule.
pub trait Clock: Send + Sync + 'static {
    fn now(&self) -> OffsetDateTime;
}

/// The real wall clock (UTC).
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> OffsetDateTime {
        OffsetDateTime::now_utc()
    }
}

/// A clock that only moves when told to; for tests.
#[derive(Debug, Clone)]
pub struct ManualClock {
    now: Arc<Mutex<OffsetDateTime>>,
}

impl ManualClock {
    pub fn new(start: OffsetDateTime) -> Self {
        Self {
            now: Arc::new(Mutex::new(start)),
        }
    }

    /// Starts at the real current time.
    pub fn starting_now() -> Self {
        Self::new(OffsetDateTime::now_utc())
    }

    pub fn advance(&self, by: Duration) {
        let mut now = self.now.lock().expect("clock lock poisoned");
        *now += by;
    }
}

impl Clock for ManualClock {
    fn now(&self) -> OffsetDateTime {
        *self.now.lock().expect("clock lock poisoned")
    }
}

/// Shared handle to the clock in use.
pub type SharedClock = Arc<dyn Clock>;

/// Formats an instant as the stored timestamp form `YYYY-MM-DDTHH:MM:SS.sssZ`.
pub fn format_ts(t: OffsetDateTime) -> String {
    let t = t.to_offset(UtcOffset::UTC);
    let fmt =
        format_description!("[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z");
    t.format(&fmt).expect("timestamp formatting cannot fail")
}

/// Parses a stored timestamp (any RFC 3339 form is accepted).
pub fn parse_ts(s: &str) -> Option<OffsetDateTime> {
    OffsetDateTime::parse(s, &Rfc3339).ok()
}

/// `format_ts(clock.now())`.
pub fn now_ts(clock: &dyn Clock) -> String {
    format_ts(clock.now())
}

/// Human-friendly relative age ("12 s ago", "3 min ago", "2 h ago", "4 d ago").
pub fn ago(then: OffsetDateTime, now: OffsetDateTime) -> String {
    let secs = (now - then).whole_seconds().max(0);
    match secs {
        0..=59 => format!("{secs} s ago"),
        60..=3599 => format!("{} min ago", secs / 60),
        3600..=86_399 => format!("{} h ago", secs / 3600),
        _ => format!("{} d ago", secs / 86_400),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn formats_with_milliseconds_and_z() {
        let t = datetime!(2026-11-26 03:04:05.678_9 UTC);
        assert_eq!(format_ts(t), "2026-11-26T03:04:05.678Z");
        assert_eq!(
            parse_ts("2026-11-26T03:04:05.678Z").unwrap(),
            datetime!(2026-11-26 03:04:05.678 UTC)
        );
    }

    #[test]
    fn string_order_is_time_order() {
        let a = format_ts(datetime!(2026-01-01 00:00:00.999 UTC));
        let b = format_ts(datetime!(2026-01-01 00:00:01.000 UTC));
        assert!(a < b);
    }

    #[test]
    fn manual_clock_moves_only_when_told() {
        let c = ManualClock::new(datetime!(2026-01-01 00:00:00 UTC));
        assert_eq!(c.now(), datetime!(2026-01-01 00:00:00 UTC));
        c.advance(Duration::minutes(16));
        assert_eq!(c.now(), datetime!(2026-01-01 00:16:00 UTC));
    }

    #[test]
    fn ago_is_readable() {
        let now = datetime!(2026-01-01 12:00:00 UTC);
        assert_eq!(ago(now - Duration::seconds(5), now), "5 s ago");
        assert_eq!(ago(now - Duration::minutes(3), now), "3 min ago");
        assert_eq!(ago(now - Duration::hours(2), now), "2 h ago");
    }
}
