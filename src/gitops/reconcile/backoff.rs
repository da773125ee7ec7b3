//! Exponential backoff for retries against an unavailable etcd or git remote.

use std::time::{Duration, Instant};

/// Doubling delay between attempts, from `base` up to `max`; reset by a success.
#[derive(Debug, Clone)]
pub struct Backoff {
    base: Duration,
    max: Duration,
    failures: u32,
    until: Option<Instant>,
}

impl Backoff {
    /// A backoff starting at `base` and capped at `max`.
    pub fn new(base: Duration, max: Duration) -> Backoff {
        Backoff {
            base,
            max,
            failures: 0,
            until: None,
        }
    }

    /// True when the next attempt may run.
    pub fn ready(&self, now: Instant) -> bool {
        self.until.is_none_or(|u| now >= u)
    }

    /// Records a failure at `now`; returns the delay before the next attempt.
    pub fn failed(&mut self, now: Instant) -> Duration {
        let factor = 1u32 << self.failures.min(16);
        let delay = self.base.saturating_mul(factor).min(self.max);
        self.failures = self.failures.saturating_add(1);
        self.until = Some(now + delay);
        delay
    }

    /// Records a success: the next failure starts from `base` again.
    pub fn succeeded(&mut self) {
        self.failures = 0;
        self.until = None;
    }

    /// Consecutive failures so far.
    #[cfg(test)]
    pub fn failures(&self) -> u32 {
        self.failures
    }
}

impl Default for Backoff {
    /// 200 ms doubling up to 30 s.
    fn default() -> Backoff {
        Backoff::new(Duration::from_millis(200), Duration::from_secs(30))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_double_up_to_the_cap_and_reset_on_success() {
        let mut b = Backoff::default();
        let t0 = Instant::now();
        assert!(b.ready(t0));
        let delays: Vec<u128> = (0..10).map(|_| b.failed(t0).as_millis()).collect();
        assert_eq!(
            delays,
            vec![200, 400, 800, 1600, 3200, 6400, 12800, 25600, 30000, 30000]
        );
        assert!(!b.ready(t0 + Duration::from_secs(29)));
        assert!(b.ready(t0 + Duration::from_secs(30)));
        assert_eq!(b.failures(), 10);
        b.succeeded();
        assert!(b.ready(t0));
        assert_eq!(b.failed(t0), Duration::from_millis(200));
    }

    #[test]
    fn many_failures_do_not_overflow() {
        let mut b = Backoff::default();
        let t0 = Instant::now();
        for _ in 0..100 {
            b.failed(t0);
        }
        assert_eq!(b.failed(t0), Duration::from_secs(30));
    }
}
