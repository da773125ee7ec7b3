//! Retrying etcd calls inside a budget, as Patroni's etcd client does within `retry_timeout`:
//! a connection refused, a reset stream or an etcd leader change is retried (the client
//! reconnects, possibly to another endpoint) until the budget is spent; an error that a retry
//! cannot fix (bad credentials, permission, invalid request) is returned at once.

use super::error::DcsError;
use super::etcd::describe;
use std::future::Future;
use std::time::Duration;
use tokio::time::Instant;

/// First pause between two attempts; doubled after each failure up to [`MAX_PAUSE`].
const FIRST_PAUSE: Duration = Duration::from_millis(100);
/// Longest pause between two attempts.
const MAX_PAUSE: Duration = Duration::from_secs(1);
/// Shortest deadline of one attempt (a frozen etcd answers nothing: an attempt must end so
/// that the next one can go to a fresh connection or another endpoint).
const MIN_ATTEMPT: Duration = Duration::from_millis(1000);

/// How long one attempt may take when `remaining` of a `budget` is left: a third of the
/// budget (so at least three attempts fit), never less than [`MIN_ATTEMPT`], never past the
/// budget's end.
pub(crate) fn attempt_deadline(budget: Duration, remaining: Duration) -> Duration {
    (budget / 3).max(MIN_ATTEMPT).min(remaining)
}

/// The pause after `failures` failed attempts.
pub(crate) fn pause_after(failures: u32) -> Duration {
    FIRST_PAUSE
        .saturating_mul(1u32 << failures.min(10))
        .min(MAX_PAUSE)
}

/// True when retrying the same call may succeed: the server or the connection was not
/// available, the call was cut or timed out, or etcd changed leaders.
pub(crate) fn is_transient(e: &etcd_client::Error) -> bool {
    use etcd_client::Error as E;
    use tonic::Code;
    match e {
        E::GRpcStatus(s) => matches!(
            s.code(),
            Code::Unavailable
                | Code::DeadlineExceeded
                | Code::Cancelled
                | Code::Unknown
                | Code::Internal
                | Code::Aborted
                | Code::ResourceExhausted
        ),
        E::TransportError(_) | E::IoError(_) | E::WatchError(_) => true,
        _ => false,
    }
}

/// Runs `op` until it succeeds, fails with an error a retry cannot fix, or `budget` is spent.
/// Each attempt gets a fresh future (`op` clones the client it needs) and its own deadline.
pub(crate) async fn retry<T, F, Fut>(what: &str, budget: Duration, mut op: F) -> Result<T, DcsError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, etcd_client::Error>>,
{
    let start = Instant::now();
    let mut failures = 0u32;
    loop {
        let remaining = budget.saturating_sub(start.elapsed());
        let last = match tokio::time::timeout(attempt_deadline(budget, remaining), op()).await {
            Ok(Ok(v)) => return Ok(v),
            Ok(Err(e)) => match super::etcd::settings_problem(&e) {
                Some(problem) => return Err(DcsError::Refused(format!("{what}: {problem}"))),
                None if !is_transient(&e) => {
                    return Err(DcsError::Refused(format!("{what}: {}", describe(&e))))
                }
                None => DcsError::Unavailable(format!("{what}: {}", describe(&e))),
            },
            Err(_) => DcsError::Timeout(what.to_string()),
        };
        let pause = pause_after(failures);
        failures += 1;
        if start.elapsed() + pause >= budget {
            if failures > 1 {
                tracing::debug!("{what}: giving up after {failures} attempts");
            }
            return Err(last);
        }
        tracing::debug!("{what}: attempt {failures} failed ({last}), retrying");
        tokio::time::sleep(pause).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU32, Ordering};

    #[test]
    fn attempts_fit_the_budget() {
        let b = Duration::from_secs(10);
        assert_eq!(attempt_deadline(b, b), b / 3);
        assert_eq!(
            attempt_deadline(b, Duration::from_millis(200)),
            Duration::from_millis(200)
        );
        let small = Duration::from_secs(2);
        assert_eq!(attempt_deadline(small, small), MIN_ATTEMPT);
    }

    #[test]
    fn pauses_double_up_to_a_second() {
        assert_eq!(pause_after(0), Duration::from_millis(100));
        assert_eq!(pause_after(1), Duration::from_millis(200));
        assert_eq!(pause_after(3), Duration::from_millis(800));
        assert_eq!(pause_after(4), MAX_PAUSE);
        assert_eq!(pause_after(u32::MAX), MAX_PAUSE);
    }

    #[test]
    fn classifies_errors() {
        let status = |c| etcd_client::Error::GRpcStatus(tonic::Status::new(c, "x"));
        assert!(is_transient(&status(tonic::Code::Unavailable)));
        assert!(is_transient(&status(tonic::Code::Cancelled)));
        assert!(!is_transient(&status(tonic::Code::PermissionDenied)));
        assert!(!is_transient(&status(tonic::Code::Unauthenticated)));
        assert!(!is_transient(&status(tonic::Code::InvalidArgument)));
        assert!(!is_transient(&etcd_client::Error::LeaseKeepAliveError(
            "lease not found".into()
        )));
    }

    #[tokio::test]
    async fn retries_transient_errors_until_success() {
        let calls = AtomicU32::new(0);
        let r = retry("op", Duration::from_secs(3), || {
            let n = calls.fetch_add(1, Ordering::SeqCst);
            async move {
                if n < 3 {
                    Err(etcd_client::Error::GRpcStatus(tonic::Status::unavailable(
                        "connection closed",
                    )))
                } else {
                    Ok(n)
                }
            }
        })
        .await;
        assert_eq!(r.unwrap(), 3);
    }

    #[tokio::test]
    async fn gives_up_within_the_budget() {
        let start = Instant::now();
        let r: Result<(), _> = retry("op", Duration::from_millis(500), || async {
            Err(etcd_client::Error::GRpcStatus(tonic::Status::unavailable(
                "down",
            )))
        })
        .await;
        assert!(matches!(r, Err(DcsError::Unavailable(_))));
        assert!(start.elapsed() <= Duration::from_millis(500));
    }

    #[tokio::test]
    async fn a_hanging_call_is_cut_and_retried() {
        let calls = AtomicU32::new(0);
        let r = retry("op", Duration::from_secs(2), || {
            let n = calls.fetch_add(1, Ordering::SeqCst);
            async move {
                if n == 0 {
                    std::future::pending::<()>().await;
                }
                Ok(n)
            }
        })
        .await;
        assert_eq!(r.unwrap(), 1);
    }

    #[tokio::test]
    async fn permanent_errors_are_not_retried() {
        let calls = AtomicU32::new(0);
        let r: Result<(), _> = retry("op", Duration::from_secs(10), || {
            calls.fetch_add(1, Ordering::SeqCst);
            async {
                Err(etcd_client::Error::GRpcStatus(
                    tonic::Status::permission_denied("no"),
                ))
            }
        })
        .await;
        assert!(matches!(r, Err(DcsError::Refused(_))));
        assert_eq!(calls.load(Ordering::SeqCst), 1);
    }
}
