//! How long a leader may spend confirming its lock in one cycle.
//!
//! Patroni retries DCS calls within `retry_timeout` and demotes when the leader lock cannot
//! be updated in that time. patronus keeps retrying as long as the lease is certainly alive
//! and there is still time to demote: the lease was renewed no earlier than when the last
//! successful refresh *started*, so it lives at least until that instant plus `ttl`;
//! retries stop `retry_timeout` before it, which leaves that much time to stop accepting
//! writes (and the fence fires `fence.safety_margin` before it if that fails). An etcd
//! restart of a few seconds therefore never demotes a leader that renewed on time.

use crate::dcs::{DcsError, DcsResult};
use std::time::Duration;
use tokio::time::Instant;

/// The deadline for this cycle's cluster read and lock update: for a leader,
/// `retry_timeout` before the earliest possible lease expiry (`renewed_at + ttl`, where
/// `renewed_at` is when the last successful refresh started); for others (None),
/// `retry_timeout` from `now`.
pub(crate) fn lock_deadline(
    now: Instant,
    renewed_at: Option<Instant>,
    ttl: Duration,
    retry_timeout: Duration,
) -> Instant {
    match renewed_at {
        None => now + retry_timeout,
        Some(t) => {
            let safe_end = (t + ttl).checked_sub(retry_timeout).unwrap_or(t);
            safe_end.max(now)
        }
    }
}

/// Retries `op` (each call retries inside its own budget) until it succeeds, fails in a way
/// a retry cannot fix, or `deadline` passes.
pub(crate) async fn until_deadline<T, F, Fut>(deadline: Instant, mut op: F) -> DcsResult<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = DcsResult<T>>,
{
    loop {
        match tokio::time::timeout_at(deadline, op()).await {
            Ok(Ok(v)) => return Ok(v),
            Ok(Err(e)) if !e.is_retryable() || Instant::now() + RETRY_PAUSE >= deadline => {
                return Err(e)
            }
            Ok(Err(_)) => tokio::time::sleep(RETRY_PAUSE).await,
            Err(_) => return Err(DcsError::Timeout("retry budget spent".into())),
        }
    }
}

/// Pause between two rounds of [`until_deadline`].
const RETRY_PAUSE: Duration = Duration::from_millis(200);

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
    fn a_leader_retries_until_retry_timeout_before_its_lease_can_expire() {
        // Renewed 10 s ago (loop_wait 10): the lease lives 20 s more; 10 s of retries
        // still leave 10 s to demote.
        let now = Instant::now() + S(100);
        let renewed = now - S(10);
        assert_eq!(lock_deadline(now, Some(renewed), S(30), S(10)), now + S(10));
        // ttl 10, loop_wait 1, retry_timeout 3, renewed 1 s ago: 6 s of retries, not 3 —
        // an etcd restart of 3 s does not demote.
        let renewed = now - S(1);
        assert_eq!(lock_deadline(now, Some(renewed), S(10), S(3)), now + S(6));
    }

    #[tokio::test]
    async fn until_deadline_retries_transient_errors_and_stops_on_refusals() {
        let calls = std::sync::atomic::AtomicU32::new(0);
        let deadline = Instant::now() + S(5);
        let r = until_deadline(deadline, || {
            let n = calls.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            async move {
                if n < 2 {
                    Err(DcsError::Unavailable("down".into()))
                } else {
                    Ok(n)
                }
            }
        })
        .await;
        assert_eq!(r.unwrap(), 2);
        let r: DcsResult<()> = until_deadline(deadline, || async {
            Err(DcsError::Refused("permission denied".into()))
        })
        .await;
        assert!(matches!(r, Err(DcsError::Refused(_))));
        let r: DcsResult<()> =
            until_deadline(Instant::now() + Duration::from_millis(300), || async {
                Err(DcsError::Unavailable("down".into()))
            })
            .await;
        assert!(r.is_err());
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
