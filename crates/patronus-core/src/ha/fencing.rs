//! When the fence (and the watchdog) must guard this member: armed and fed while it holds
//! the leader lock and runs — or is about to run — a writable primary, left alone while a
//! primary's lock is unconfirmed (the deadline already given stands), disarmed otherwise.
//!
//! Reference: Patroni activates the watchdog before promoting, keeps it alive after each
//! successful leader-lock update and disables it on demotion, pause and shutdown.

use super::observation::{Observation, TaskKind};

/// What to tell the fence this cycle.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FenceStep {
    /// Arm or re-arm it with a deadline derived from this cycle's lock renewal.
    Feed,
    /// Tell it nothing: the deadline already given stands.
    Keep,
    /// Disarm it: this member runs no primary.
    Disarm,
}

/// The fence step for this cycle's observation (lock state after the refresh).
pub fn fence_step(o: &Observation) -> FenceStep {
    if o.config.pause {
        // As Patroni's watchdog: an operator who paused the cluster runs it by hand.
        return FenceStep::Disarm;
    }
    // PostgreSQL may be writable: a primary, one being promoted or started as primary, or a
    // postmaster that does not answer (its role is unknown).
    let unknown = o.pg.postmaster_alive && !o.pg.running;
    let promoting = matches!(o.task, Some(TaskKind::Promote));
    let may_write = o.pg.is_primary() || promoting || unknown;
    if o.has_lock() && (may_write || o.task == Some(TaskKind::Start)) {
        return FenceStep::Feed;
    }
    if super::failsafe::confirmed(o) {
        // Every member confirmed us without the DCS: they grant us `ttl` from this cycle.
        return FenceStep::Feed;
    }
    if may_write {
        return FenceStep::Keep;
    }
    FenceStep::Disarm
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ha::tests::{member, B};
    use crate::ha::LockState;

    fn step(b: B) -> FenceStep {
        fence_step(&b.0)
    }

    #[test]
    fn a_leader_running_a_primary_feeds_the_fence() {
        let b = B::new("p1")
            .initialized()
            .led_by("p1")
            .primary()
            .lock(LockState::Held);
        assert_eq!(step(b), FenceStep::Feed);
    }

    #[test]
    fn a_primary_whose_lock_is_unconfirmed_keeps_the_old_deadline() {
        let b = B::new("p1")
            .initialized()
            .led_by("p1")
            .primary()
            .lock(LockState::RefreshFailed);
        assert_eq!(step(b), FenceStep::Keep);
        let no_dcs = B::new("p1").primary().with(|o| o.cluster = None);
        assert_eq!(step(no_dcs), FenceStep::Keep);
    }

    #[test]
    fn promotion_is_guarded_from_the_start() {
        let b = B::new("p2")
            .initialized()
            .led_by("p2")
            .replica(None, 5)
            .lock(LockState::Held)
            .with(|o| o.task = Some(TaskKind::Promote));
        assert_eq!(step(b), FenceStep::Feed);
        let start = B::new("p2")
            .initialized()
            .led_by("p2")
            .stopped("shut down")
            .lock(LockState::Held)
            .with(|o| o.task = Some(TaskKind::Start));
        assert_eq!(step(start), FenceStep::Feed);
    }

    #[test]
    fn a_replica_or_a_stopped_member_disarms() {
        let b = B::new("p2")
            .initialized()
            .led_by("p1")
            .replica(Some("p1"), 5);
        assert_eq!(step(b), FenceStep::Disarm);
        let stopped = B::new("p1")
            .initialized()
            .led_by("p1")
            .primary()
            .stopped("shut down")
            .lock(LockState::Held);
        assert_eq!(step(stopped), FenceStep::Disarm);
    }

    #[test]
    fn an_unanswering_postmaster_is_treated_as_writable() {
        let b = B::new("p1")
            .initialized()
            .led_by("p1")
            .primary()
            .with(|o| o.pg.running = false)
            .lock(LockState::RefreshFailed);
        assert_eq!(step(b), FenceStep::Keep);
    }

    #[test]
    fn a_member_that_cannot_fence_never_takes_the_lock() {
        let why = || Some("watchdog required but /dev/watchdog cannot be opened".to_string());
        // The leader race.
        let d = B::new("p2")
            .initialized()
            .replica(None, 5)
            .with(|o| o.node.fence_problem = why())
            .decide();
        assert!(d.actions.is_empty(), "{d:?}");
        assert!(d.message.contains("I cannot fence a primary"), "{d:?}");
        // Bootstrap.
        let d = B::new("p1").with(|o| o.node.fence_problem = why()).decide();
        assert!(!d.actions.contains(&crate::ha::Action::Bootstrap), "{d:?}");
        assert_eq!(d.message, "waiting for leader to bootstrap");
    }

    #[test]
    fn a_primary_that_cannot_be_fenced_demotes_and_releases_the_lock() {
        let d = B::new("p1")
            .initialized()
            .led_by("p1")
            .primary()
            .lock(LockState::Held)
            .with(|o| o.node.fence_problem = Some("the fence does not answer".into()))
            .decide();
        assert_eq!(
            d.actions,
            vec![crate::ha::Action::Demote {
                mode: crate::ha::DemoteMode::Immediate
            }]
        );
        assert!(d
            .message
            .starts_with("demoting self because the primary cannot be fenced"));
        // Paused: the operator runs the cluster by hand; nothing is demoted.
        let d = B::new("p1")
            .initialized()
            .led_by("p1")
            .primary()
            .lock(LockState::Held)
            .with(|o| {
                o.node.fence_problem = Some("x".into());
                o.config.pause = true;
            })
            .decide();
        assert!(!d
            .actions
            .iter()
            .any(|a| matches!(a, crate::ha::Action::Demote { .. })));
    }

    #[test]
    fn pause_disarms() {
        let b = B::new("p1")
            .initialized()
            .led_by("p1")
            .primary()
            .lock(LockState::Held)
            .with(|o| o.config.pause = true)
            .cluster(|c| c.members.push(member("p2", "running", "replica")));
        assert_eq!(step(b), FenceStep::Disarm);
    }
}
