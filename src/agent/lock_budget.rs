//! How long a leader may spend confirming its lock in one cycle.
//!
//! Patroni retries DCS calls within `retry_timeout` and demotes when the leader lock cannot
//! be updated in that time. patronus does the same, and also never lets the retries run
//! past the point where the lease could expire before the demotion is done: the lease was
//! renewed no earlier than when the last successful refresh *started*, so it lives at least
//! until that instant plus `ttl`; retries stop `retry_timeout` before it, which leaves that
//! much time to stop accepting writes.

use std::time::Duration;
use tokio::time::Instant;

/// The deadline for this cycle's cluster read and lock update: `retry_timeout` from `now`,
/// but never later than `retry_timeout` before the earliest possible lease expiry
/// (`renewed_at + ttl`). `renewed_at` is when the last successful refresh started (None
/// when we did not hold the lock).
pub(crate) fn lock_deadline(
    now: Instant,
    renewed_at: Option<Instant>,
    ttl: Duration,
    retry_timeout: Duration,
) -> Instant {
    let by_budget = now + retry_timeout;
    match renewed_at {
        None => by_budget,
        Some(t) => {
            let safe_end = (t + ttl).checked_sub(retry_timeout).unwrap_or(t);
            by_budget.min(safe_end.max(now))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: fn(u64) -> Duration = Duration::from_secs;

    #[test]
    fn a_non_leader_gets_the_whole_retry_timeout() {
        let now = Instant::now();
        assert_eq!(lock_deadline(now, None, S(30), S(10)), now + S(10));
    }

    #[test]
    fn a_leader_on_time_gets_the_whole_retry_timeout() {
        // Renewed 10 s ago (loop_wait 10): the lease lives 20 s more; 10 s of retries
        // still leave 10 s to demote.
        let now = Instant::now() + S(100);
        let renewed = now - S(10);
        assert_eq!(lock_deadline(now, Some(renewed), S(30), S(10)), now + S(10));
    }

    #[test]
    fn a_late_leader_stops_retrying_retry_timeout_before_the_lease_could_expire() {
        // Renewed 15 s ago (the last cycle was slow): retries end at renewed + 20 s.
        let now = Instant::now() + S(100);
        let renewed = now - S(15);
        assert_eq!(
            lock_deadline(now, Some(renewed), S(30), S(10)),
            renewed + S(20)
        );
    }

    #[test]
    fn past_the_safe_point_there_is_no_time_left() {
        let now = Instant::now() + S(100);
        let renewed = now - S(25);
        assert_eq!(lock_deadline(now, Some(renewed), S(30), S(10)), now);
    }

    #[test]
    fn retry_timeout_longer_than_ttl_does_not_overflow() {
        let now = Instant::now() + S(100);
        let renewed = now - S(1);
        assert_eq!(lock_deadline(now, Some(renewed), S(10), S(60)), now);
    }
}
