//! Seconds read from configuration (`ttl`, `loop_wait`, `retry_timeout`,
//! `primary_start_timeout`, `pg_ctl_timeout`, ...) turned into milliseconds, durations and
//! deadlines. One rule for all of them: a value is capped at [`MAX_SECS`] (100 years), so a
//! huge value written by someone else means "practically never" and no sum or product of a
//! few capped values can overflow.

use std::time::{Duration, Instant};

/// Longest duration any configured value yields: 100 years, in seconds.
pub const MAX_SECS: u64 = 100 * 365 * 24 * 3600;

/// `secs` in milliseconds, capped at [`MAX_SECS`].
pub fn secs_to_ms(secs: u64) -> u64 {
    secs.min(MAX_SECS) * 1000
}

/// The time in milliseconds `secs` after `now_ms` (saturating).
pub fn ms_after(now_ms: u64, secs: u64) -> u64 {
    now_ms.saturating_add(secs_to_ms(secs))
}

/// `secs` as a [`Duration`], capped at [`MAX_SECS`].
pub fn duration(secs: u64) -> Duration {
    Duration::from_secs(secs.min(MAX_SECS))
}

/// The instant `secs` after `start`; a deadline that cannot be represented is 100 years away
/// at most, never a panic.
pub fn deadline(start: Instant, secs: u64) -> Instant {
    let d = duration(secs);
    start
        .checked_add(d)
        .or_else(|| start.checked_add(Duration::from_secs(86_400)))
        .unwrap_or(start)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn huge_values_saturate_instead_of_overflowing() {
        assert_eq!(secs_to_ms(30), 30_000);
        assert_eq!(secs_to_ms(u64::MAX), MAX_SECS * 1000);
        assert_eq!(secs_to_ms(i64::MAX as u64), MAX_SECS * 1000);
        assert_eq!(ms_after(u64::MAX - 5, 10), u64::MAX);
        assert_eq!(ms_after(1_000, 2), 3_000);
        assert_eq!(duration(u64::MAX), Duration::from_secs(MAX_SECS));
        // Sums and products of a few capped values stay far from u64::MAX.
        assert!(secs_to_ms(u64::MAX).checked_mul(1000).is_some());
        let now = Instant::now();
        assert!(deadline(now, u64::MAX) > now);
        assert_eq!(deadline(now, 5), now + Duration::from_secs(5));
        let _ = duration(u64::MAX) + Duration::from_secs(5);
    }
}
