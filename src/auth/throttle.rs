//! The login throttling rule (api.md §2, revised by the issue-9 review).
//!
//! Three limits, each over a 15-minute window; a key that reaches its limit is blocked until
//! 15 minutes after its last failure:
//! - 5 failures for the same (e-mail, IP) pair: one guesser, one account;
//! - 20 failures from the same IP, any e-mail: one guesser, many accounts;
//! - 100 failures for the same e-mail from anywhere: the ceiling against distributed guessing.
//!   It does not apply to an IP the e-mail logged in from successfully within the last 24 hours,
//!   so strangers cannot lock the admin out of their usual address.
//!
//! Failures before the key's last successful login do not count. Refused (throttled) attempts
//! are not recorded as failures, so an attacker hammering a blocked key cannot extend the block.

use time::{Duration, OffsetDateTime};

/// Failures for one (e-mail, IP) pair that trigger the block.
pub const MAX_FAILURES_PER_EMAIL_AND_IP: usize = 5;
/// Failures from one IP, any e-mail, that trigger the block.
pub const MAX_FAILURES_PER_IP: usize = 20;
/// Failures for one e-mail from anywhere that trigger the block (except for known IPs).
pub const MAX_FAILURES_PER_EMAIL: usize = 100;
/// The window the failures must fall in, and how long the block lasts after the last one.
pub const WINDOW: Duration = Duration::minutes(15);
/// How long a successful login makes its IP exempt from the per-e-mail ceiling.
pub const KNOWN_IP_FOR: Duration = Duration::hours(24);
/// Password verifications (argon2id, 19 MiB each) that may run at the same time.
pub const MAX_CONCURRENT_VERIFICATIONS: usize = 4;
/// How long a login waits for a verification slot before it is refused (`429`).
pub const VERIFICATION_WAIT: std::time::Duration = std::time::Duration::from_secs(1);

/// When the block for one key ends, if `max` failures block it now. `failures` are newest first.
pub fn blocked_until(
    failures: &[OffsetDateTime],
    max: usize,
    now: OffsetDateTime,
) -> Option<OffsetDateTime> {
    if max == 0 || failures.len() < max {
        return None;
    }
    let newest = failures[0];
    let oldest = failures[max - 1];
    let until = newest + WINDOW;
    (newest - oldest <= WINDOW && now < until).then_some(until)
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
        assert_eq!(blocked_until(&f, 5, at(5)), None);
    }

    #[test]
    fn five_failures_block_until_fifteen_minutes_after_the_last() {
        let f = [at(14), at(3), at(2), at(1), at(0)];
        assert_eq!(blocked_until(&f, 5, at(15)), Some(at(29)));
        assert_eq!(blocked_until(&f, 5, at(28)), Some(at(29)));
        assert_eq!(blocked_until(&f, 5, at(29)), None);
    }

    #[test]
    fn failures_spread_wider_than_the_window_do_not_block() {
        let f = [at(20), at(3), at(2), at(1), at(0)];
        assert_eq!(blocked_until(&f, 5, at(21)), None);
    }

    #[test]
    fn the_limit_is_per_key() {
        let f: Vec<_> = (0..20).rev().map(|m| at(m / 2)).collect();
        assert_eq!(blocked_until(&f[..19], MAX_FAILURES_PER_IP, at(10)), None);
        assert_eq!(blocked_until(&f, MAX_FAILURES_PER_IP, at(10)), Some(at(24)));
    }
}
