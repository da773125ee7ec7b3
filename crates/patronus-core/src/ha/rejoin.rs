//! Has a stopped or demoted member diverged from the leader's timeline? (docs/patroni-behaviour.md §2.12)
//!
//! Reference: patroni/postgresql/rewind.py `_check_timeline_and_lsn`. The leader's timeline
//! history comes from the DCS `history` key the leader writes after promotion.

use crate::dcs::{Cluster, HistoryLine};

/// Outcome of the divergence check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Divergence {
    /// Same timeline, or our WAL ends before the leader's switch point: just follow.
    No,
    /// Our WAL goes past the point where the leader's timeline forked: rewind or re-clone.
    Yes,
    /// The leader has not recorded its timeline switch yet: wait.
    Unknown,
}

/// The leader's timeline: its member key's, or the one the history implies.
pub(crate) fn leader_timeline(cluster: &Cluster) -> Option<u64> {
    let from_member = cluster
        .leader_name()
        .and_then(|l| cluster.member(l))
        .and_then(|m| m.data.timeline);
    let from_history = (!cluster.history.is_empty()).then(|| cluster.timeline());
    from_member.max(from_history)
}

/// Compares our timeline/LSN with the leader's history. `lsn` None means the end of our WAL
/// is unknown (crashed primary): any timeline difference counts as divergence.
pub fn check(
    local_tl: u64,
    lsn: Option<u64>,
    leader_tl: u64,
    history: &[HistoryLine],
) -> Divergence {
    if local_tl == leader_tl {
        return Divergence::No;
    }
    if local_tl > leader_tl {
        return Divergence::Yes;
    }
    let Some(switch) = history.iter().find(|h| h.timeline == local_tl) else {
        return if history.last().is_some_and(|h| h.timeline >= local_tl) {
            Divergence::Yes
        } else {
            Divergence::Unknown
        };
    };
    match lsn {
        None => Divergence::Yes,
        Some(l) if l > switch.lsn => Divergence::Yes,
        Some(_) => Divergence::No,
    }
}

/// `local timeline 1 at 0/5021C00, leader timeline 2 forked from timeline 1 at 0/5021B98`:
/// what a divergence was decided on, for the log.
pub fn describe(local_tl: Option<u64>, lsn: Option<u64>, cluster: &Cluster) -> String {
    let lsn_text = |l: u64| format!("{:X}/{:X}", l >> 32, l & 0xffff_ffff);
    let local = match (local_tl, lsn) {
        (Some(t), Some(l)) => format!("local timeline {t} at {}", lsn_text(l)),
        (Some(t), None) => format!("local timeline {t}, end of WAL unknown"),
        (None, _) => "local timeline unknown".to_string(),
    };
    let fork = local_tl
        .and_then(|t| cluster.history.iter().find(|h| h.timeline == t))
        .map(|h| {
            format!(
                " forked from timeline {} at {}",
                h.timeline,
                lsn_text(h.lsn)
            )
        })
        .unwrap_or_default();
    match leader_timeline(cluster) {
        Some(t) => format!("{local}, leader timeline {t}{fork}"),
        None => local,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(tl: u64, lsn: u64) -> HistoryLine {
        HistoryLine {
            timeline: tl,
            lsn,
            reason: "no recovery target specified".into(),
            timestamp: None,
            new_leader: None,
        }
    }

    #[test]
    fn describes_what_was_compared() {
        let c = Cluster {
            history: vec![h(1, 0x5021B98)],
            ..Cluster::default()
        };
        assert_eq!(
            describe(Some(1), Some(0x5021C00), &c),
            "local timeline 1 at 0/5021C00, leader timeline 2 forked from timeline 1 at 0/5021B98"
        );
        assert_eq!(
            describe(None, None, &c),
            "local timeline unknown, leader timeline 2"
        );
    }

    #[test]
    fn divergence_rules() {
        let hist = vec![h(1, 1000)];
        assert_eq!(check(2, Some(5), 2, &hist), Divergence::No);
        assert_eq!(check(3, Some(5), 2, &hist), Divergence::Yes);
        // Clean switchover: old primary's shutdown checkpoint starts before the switch point.
        assert_eq!(check(1, Some(900), 2, &hist), Divergence::No);
        assert_eq!(check(1, Some(1000), 2, &hist), Divergence::No);
        // Crash with more WAL than the new leader received.
        assert_eq!(check(1, Some(1001), 2, &hist), Divergence::Yes);
        // Crashed primary: end of WAL unknown.
        assert_eq!(check(1, None, 2, &hist), Divergence::Yes);
        // Leader on tl 2 but history not written yet.
        assert_eq!(check(1, Some(5), 2, &[]), Divergence::Unknown);
    }
}
