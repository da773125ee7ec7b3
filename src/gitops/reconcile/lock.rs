//! Several reconcilers on one repository: per cluster, the one holding the `gitops-lock` key
//! (its `--id`, on an etcd lease of `--lock-ttl` seconds it keeps alive) is the active one. Only
//! it applies, runs operations and restart waves, records drift and history, and commits the
//! cluster's status back; the others observe and serve `/status` read-only. When the active one
//! dies its lease expires and a survivor creates the key (see docs/architecture.md).

use super::daemon::Reconciler;
use crate::dcs::keys::GITOPS_LOCK;
use std::time::{Duration, Instant};

/// What this reconciler knows of one cluster's lock.
#[derive(Debug, Clone, Default)]
pub(super) struct LockState {
    /// When the last successful hold started (the lease lives at least `ttl` after it).
    pub(super) confirmed: Option<Instant>,
    /// Not before this instant is the lock tried again.
    pub(super) next_try: Option<Instant>,
}

/// Whether a hold confirmed at `confirmed` still counts: the lease lives `ttl` after it, and
/// we stop acting a third of `ttl` earlier, so a holder that stalls stops before a survivor
/// can take over (pure).
pub(super) fn still_held(confirmed: Option<Instant>, ttl: Duration, now: Instant) -> bool {
    confirmed.is_some_and(|t| now.saturating_duration_since(t) < ttl - ttl / 3)
}

/// The pause before the next attempt: a holder renews every third of `ttl`; a standby tries
/// every second at most (so it takes over within `ttl` + 1 s of the holder's death) (pure).
pub(super) fn retry_after(held: bool, ttl: Duration) -> Duration {
    if held {
        ttl / 3
    } else {
        (ttl / 3).min(Duration::from_secs(1))
    }
}

/// The default `--id`: host name and process id (unique per process).
pub fn default_id() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_else(|_| "localhost".into());
    format!("{host}-{}", std::process::id())
}

impl Reconciler {
    /// The lock TTL.
    pub(super) fn lock_ttl(&self) -> Duration {
        Duration::from_secs(self.opts.lock_ttl.max(2))
    }

    /// Whether this reconciler is the active one for `scope` now.
    pub(super) fn holds(&self, scope: &str) -> bool {
        self.clusters
            .get(scope)
            .is_some_and(|cs| still_held(cs.lock.confirmed, self.lock_ttl(), Instant::now()))
    }

    /// Renews or tries every connected cluster's lock that is due. True when a lock was
    /// gained: the caller then fetches the remote (the history base written by the previous
    /// holder) and the current commit is applied again to the clusters it has not reached.
    pub(super) async fn refresh_locks(&mut self) -> bool {
        use futures::stream::{self, StreamExt};
        let now = Instant::now();
        let due: Vec<(String, std::sync::Arc<crate::dcs::etcd::EtcdDcs>)> = self
            .clusters
            .iter()
            .filter(|(_, cs)| cs.lock.next_try.is_none_or(|t| now >= t))
            .map(|(s, cs)| (s.clone(), cs.dcs.clone()))
            .collect();
        // `concurrency` at a time: the clusters connected together fall due together, and
        // renewing hundreds one after the other held the loop (and a commit) for a second.
        let id = self.opts.id.as_str();
        let results: Vec<_> = stream::iter(due)
            .map(|(scope, dcs)| async move {
                let r = dcs.hold_lock(GITOPS_LOCK, id).await;
                (scope, r)
            })
            .buffer_unordered(self.opts.concurrency.max(1))
            .collect()
            .await;
        let mut gained = false;
        for (scope, r) in results {
            gained |= self.lock_outcome(&scope, r, now);
        }
        if gained {
            self.seen = None;
        }
        gained
    }

    /// One cluster's lock now, whether due or not (a newly connected cluster). True when
    /// gained.
    pub(super) async fn refresh_lock(&mut self, scope: &str) -> bool {
        let Some(cs) = self.clusters.get(scope) else {
            return false;
        };
        let now = Instant::now();
        let r = cs.dcs.hold_lock(GITOPS_LOCK, &self.opts.id).await;
        self.lock_outcome(scope, r, now)
    }

    /// Records the outcome of a hold tried at `now`; logs a change. True when gained.
    fn lock_outcome(
        &mut self,
        scope: &str,
        r: Result<bool, crate::dcs::DcsError>,
        now: Instant,
    ) -> bool {
        let (ttl, id) = (self.lock_ttl(), self.opts.id.clone());
        let was = self.holds(scope);
        let Some(cs) = self.clusters.get_mut(scope) else {
            return false;
        };
        let held = matches!(r, Ok(true));
        cs.lock.next_try = Some(now + retry_after(held, ttl));
        match r {
            Ok(true) => cs.lock.confirmed = Some(now),
            Ok(false) => cs.lock.confirmed = None,
            Err(e) => tracing::warn!("cluster {scope}: cannot renew the reconciler lock: {e}"),
        }
        let is = self.holds(scope);
        if is && !was {
            tracing::info!("cluster {scope}: this reconciler ({id}) is now the active reconciler");
            if let Some(cs) = self.clusters.get_mut(scope) {
                // Timelines are read again from the history the previous holder committed.
                cs.recorded_timelines = None;
                cs.reported.clear();
            }
        } else if was && !is {
            tracing::warn!("cluster {scope}: no longer the active reconciler; observing only");
        }
        is && !was
    }

    /// On a clean stop: gives up every lock we hold.
    pub(super) async fn release_locks(&mut self) {
        for (scope, cs) in &self.clusters {
            if cs.lock.confirmed.is_none() {
                continue;
            }
            match cs.dcs.release_lock(GITOPS_LOCK, &self.opts.id).await {
                Ok(true) => tracing::info!("cluster {scope}: reconciler lock released"),
                Ok(false) => {}
                Err(e) => tracing::warn!("cluster {scope}: cannot release the lock: {e}"),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_hold_counts_for_two_thirds_of_the_ttl() {
        let ttl = Duration::from_secs(9);
        let t = Instant::now();
        assert!(!still_held(None, ttl, t));
        assert!(still_held(Some(t), ttl, t + Duration::from_secs(5)));
        assert!(!still_held(Some(t), ttl, t + Duration::from_secs(6)));
    }

    #[test]
    fn a_standby_tries_at_least_every_second() {
        let ttl = Duration::from_secs(30);
        assert_eq!(retry_after(true, ttl), Duration::from_secs(10));
        assert_eq!(retry_after(false, ttl), Duration::from_secs(1));
        let short = Duration::from_millis(2400);
        assert_eq!(retry_after(false, short), Duration::from_millis(800));
    }
}
