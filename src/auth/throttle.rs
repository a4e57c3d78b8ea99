//! The login throttling rule (api.md §2).
//!
//! Five failed logins for the same e-mail, or from the same IP, within 15 minutes block further
//! attempts until 15 minutes after the last failure. Failures before the key's last successful
//! login do not count. Refused (throttled) attempts are not recorded as failures, so an attacker
//! hammering a blocked account cannot extend the block forever.

use time::{Duration, OffsetDateTime};

/// Failures that trigger the block.
pub const MAX_FAILURES: usize = 5;
/// The window the failures must fall in, and how long the block lasts after the last one.
pub const WINDOW: Duration = Duration::minutes(15);

/// When the block for one key ends, if it is blocked now. `failures` are newest first.
pub fn blocked_until(failures: &[OffsetDateTime], now: OffsetDateTime) -> Option<OffsetDateTime> {
    if failures.len() < MAX_FAILURES {
        return None;
    }
    let newest = failures[0];
    let fifth = failures[MAX_FAILURES - 1];
    let until = newest + WINDOW;
    (newest - fifth <= WINDOW && now < until).then_some(until)
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    fn at(mins: i64) -> OffsetDateTime {
        datetime!(2026-01-01 00:00 UTC) + Duration::minutes(mins)
    }

    #[test]
    fn four_failures_do_not_block() {
        let f = [at(4), at(3), at(2), at(1)];
        assert_eq!(blocked_until(&f, at(5)), None);
    }

    #[test]
    fn five_failures_block_until_fifteen_minutes_after_the_last() {
        let f = [at(14), at(3), at(2), at(1), at(0)];
        assert_eq!(blocked_until(&f, at(15)), Some(at(29)));
        assert_eq!(blocked_until(&f, at(28)), Some(at(29)));
        assert_eq!(blocked_until(&f, at(29)), None);
    }

    #[test]
    fn failures_spread_wider_than_the_window_do_not_block() {
        let f = [at(20), at(3), at(2), at(1), at(0)];
        assert_eq!(blocked_until(&f, at(21)), None);
    }
}
