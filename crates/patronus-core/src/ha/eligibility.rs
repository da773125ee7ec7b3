//! Whether this member may take the leader lock (Patroni's `is_healthiest_node`).
//!
//! Reference: patroni/ha.py `is_healthiest_node`, `_is_healthiest_node`.

use super::failsafe;
use super::observation::{Observation, PgRole};
use super::sync;
use crate::config::dynamic::SyncMode;
use crate::dcs::Cluster;

/// Why a member is not eligible in the leader race.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Ineligible {
    /// nofailover / failover_priority 0, or paused.
    NotAllowed,
    /// Lag against the last known leader optime exceeds `maximum_lag_on_failover`.
    TooMuchLag {
        /// Bytes behind.
        lag: u64,
    },
    /// A running primary on an older timeline than the cluster's.
    StaleTimeline,
    /// Another member still runs as primary.
    PrimaryAlive(String),
    /// Another member has more WAL.
    BehindPeer(String),
    /// Same WAL, but a peer has a higher failover priority.
    LowerPriority(String),
    /// Synchronous mode is active and we are not a synchronous standby.
    NotSynchronous,
    /// Not running / no WAL position known.
    Unknown,
    /// This member cannot fence a primary it would run (watchdog or fence unusable).
    CannotFence(String),
    /// Failsafe mode is on and the `failsafe` key does not list this member.
    NotInFailsafe,
    /// `pre_promote` failed less than `ttl` ago.
    PrePromoteFailed,
    /// Quorum commit: fewer voters than the `sync` key's `quorum` confirmed that they are
    /// not ahead of us, so we cannot prove we hold every acknowledged commit.
    NoQuorum {
        /// Votes gathered (-1 + confirmations when we are not a voter ourselves).
        votes: i64,
        /// The key's `quorum`.
        needed: u64,
    },
}

impl Ineligible {
    /// Patroni-style reason text.
    pub fn reason(&self) -> String {
        match self {
            Ineligible::NotAllowed => "not allowed to promote".into(),
            Ineligible::TooMuchLag { lag } => {
                format!("My wal position exceeds maximum replication lag ({lag} bytes)")
            }
            Ineligible::StaleTimeline => "my timeline is behind the cluster timeline".into(),
            Ineligible::PrimaryAlive(n) => format!("Primary ({n}) is still alive"),
            Ineligible::BehindPeer(n) => format!("{n} has a higher WAL position"),
            Ineligible::LowerPriority(n) => {
                format!("{n} has the same WAL position and a higher priority")
            }
            Ineligible::NotSynchronous => "I am not a synchronous standby".into(),
            Ineligible::Unknown => "my WAL position is unknown".into(),
            Ineligible::CannotFence(why) => format!("I cannot fence a primary: {why}"),
            Ineligible::NotInFailsafe => "I am not a member of the failsafe topology".into(),
            Ineligible::PrePromoteFailed => {
                "the pre_promote script failed less than ttl seconds ago".into()
            }
            Ineligible::NoQuorum { votes, needed } => {
                format!("Quorum requirement {needed} can not be reached ({votes} votes)")
            }
        }
    }
}

/// Checks every rule of the race; Ok when we should try to take the lock.
pub(crate) fn is_healthiest(o: &Observation, cluster: &Cluster) -> Result<(), Ineligible> {
    if pre_promote_backoff(o) {
        return Err(Ineligible::PrePromoteFailed);
    }
    if let Some(why) = &o.node.fence_problem {
        return Err(Ineligible::CannotFence(why.clone()));
    }
    if o.pg.role == Some(PgRole::Primary) {
        // A running primary may re-take the lock unless it is on an older timeline.
        if o.config.pause {
            return Ok(());
        }
        if o.pg.timeline.is_some_and(|tl| tl < cluster.timeline()) {
            return Err(Ineligible::StaleTimeline);
        }
        return Ok(());
    }
    if o.config.pause || o.node.nofailover {
        return Err(Ineligible::NotAllowed);
    }
    if failsafe::excluded_from_race(o, cluster) {
        return Err(Ineligible::NotInFailsafe);
    }
    if !sync::may_promote(o, cluster, o.name()) {
        return Err(Ineligible::NotSynchronous);
    }
    let my_lsn = o.pg.lsn.ok_or(Ineligible::Unknown)?;
    let optime = cluster.status.optime;
    if optime > my_lsn && optime - my_lsn > o.config.maximum_lag_on_failover {
        return Err(Ineligible::TooMuchLag {
            lag: optime - my_lsn,
        });
    }
    if o.config.check_timeline && o.pg.timeline.is_none_or(|tl| tl < cluster.timeline()) {
        return Err(Ineligible::StaleTimeline);
    }
    if o.config.synchronous_mode == SyncMode::Quorum && sync::active(o, cluster) {
        return quorum_votes(o, cluster, my_lsn);
    }
    for p in o.peers.iter().filter(|p| p.reachable && p.name != o.name()) {
        if p.is_primary {
            return Err(Ineligible::PrimaryAlive(p.name.clone()));
        }
        if p.nofailover || !sync::may_promote(o, cluster, &p.name) {
            // In sync mode only the synchronous standbys are compared.
            continue;
        }
        if p.wal_position > my_lsn {
            return Err(Ineligible::BehindPeer(p.name.clone()));
        }
        if p.wal_position == my_lsn && p.failover_priority > o.node.failover_priority {
            return Err(Ineligible::LowerPriority(p.name.clone()));
        }
    }
    Ok(())
}

/// Whether a failed `pre_promote` keeps this member out of the race: for `ttl` after it,
/// as Patroni's `_released_leader_key_timestamp`.
pub(crate) fn pre_promote_backoff(o: &Observation) -> bool {
    o.node
        .pre_promote_failed_ms
        .is_some_and(|at| o.now_ms < at.saturating_add(o.config.ttl.saturating_mul(1000)))
}

/// The race under quorum commit (Patroni ≥ 4 `_is_healthiest_node`): we must prove we hold
/// every acknowledged commit. Each commit was flushed by `numsync` standbys, and any
/// `quorum + 1` of the voting set (the key's leader and `sync_standby`) include one of
/// them; so we need `quorum` members of that set that answer and are not ahead of us. A
/// voter counts itself, a non-voter starts at -1 and needs one more vote. Only the key's leader
/// and voters are compared; a peer ahead of us disqualifies us unless it is the former
/// leader. The former leader (restarting) may take over when nobody is ahead of it.
pub(crate) fn quorum_votes(
    o: &Observation,
    cluster: &Cluster,
    my_lsn: u64,
) -> Result<(), Ineligible> {
    let Some(key) = cluster.sync.as_ref().map(|s| &s.value) else {
        return Ok(());
    };
    if key.unreadable {
        // Nobody is known to hold the acknowledged commits until the leader rewrites it.
        return Err(Ineligible::NotSynchronous);
    }
    let voters = key.members();
    let key_leader = key.leader.as_deref().unwrap_or("");
    // Patroni's voting set is the key's members: its leader and its voters.
    let is_voter = |n: &str| {
        voters.iter().any(|v| v.eq_ignore_ascii_case(n))
            || (!key_leader.is_empty() && n.eq_ignore_ascii_case(key_leader))
    };
    let mut votes: i64 = if is_voter(o.name()) { 0 } else { -1 };
    let mut ahead = 0;
    let peers = o
        .peers
        .iter()
        .filter(|p| p.reachable && p.name != o.name() && !p.nofailover && is_voter(&p.name));
    for p in peers {
        if p.is_primary {
            return Err(Ineligible::PrimaryAlive(p.name.clone()));
        }
        let former_leader = p.name.eq_ignore_ascii_case(key_leader);
        if p.wal_position > my_lsn {
            ahead += 1;
            if !former_leader {
                return Err(Ineligible::BehindPeer(p.name.clone()));
            }
            continue;
        }
        if p.wal_position == 0 {
            continue;
        }
        let outranks = p.wal_position == my_lsn && p.failover_priority > o.node.failover_priority;
        if outranks && !former_leader && is_voter(&p.name) {
            return Err(Ineligible::LowerPriority(p.name.clone()));
        }
        if is_voter(&p.name) {
            votes += 1;
        }
    }
    if votes >= key.quorum as i64 || (ahead == 0 && key_leader == o.name()) {
        return Ok(());
    }
    Err(Ineligible::NoQuorum {
        votes,
        needed: key.quorum,
    })
}
