//! Standby cluster decisions: the leader of a cluster whose dynamic configuration has
//! `standby_cluster` is a *standby leader*. It holds the leader key but runs PostgreSQL in
//! recovery, following the remote primary (`host`/`port`) or replaying WAL with
//! `restore_command`; its replicas follow it as usual; it is never promoted while the
//! section is present. Removing the section promotes it through the normal leader path.
//!
//! Reference: patroni/ha.py `bootstrap_standby_leader`, `recover`, `_get_node_to_follow`,
//! `process_healthy_cluster`, `process_unhealthy_cluster`, `enforce_follow_remote_member`.

use super::action::{Action, Decision, DemoteMode};
use super::observation::{Observation, PgRole};
use crate::dcs::Cluster;
use serde_json::{Map, Value};

/// Why a switchover or manual failover is refused in a standby cluster.
pub const SWITCHOVER_REFUSED: &str =
    "switchover and failover are not possible in a standby cluster (promote-cluster first)";

/// True when this member is the standby leader this cycle: standby cluster, lock held,
/// PostgreSQL in recovery.
pub fn is_standby_leader(o: &Observation) -> bool {
    o.config.is_standby_cluster() && o.has_lock() && o.pg.role == Some(PgRole::Replica)
}

/// Empty data directory in a standby cluster that nobody initialized: the member allowed
/// to bootstrap clones the remote primary instead of running initdb. None when the normal
/// rules apply (a leader to clone from, or not a standby cluster).
pub fn empty_data_dir(o: &Observation, cluster: &Cluster) -> Option<Decision> {
    if !o.config.is_standby_cluster() || cluster.initialize.is_some() || cluster.leader.is_some() {
        return None;
    }
    if o.node.can_bootstrap && !o.node.nofailover && o.node.fence_problem.is_none() {
        return Some(Decision::new(
            "trying to bootstrap a new standby leader",
            vec![Action::BootstrapStandbyLeader],
        ));
    }
    Some(Decision::new(
        "waiting for standby_leader to bootstrap",
        vec![],
    ))
}

/// We hold the lock in a standby cluster: follow the remote primary, never promote. A
/// running primary (the section was just added: Patroni's `demote-cluster`) is stopped
/// cleanly and restarted as the standby leader, keeping the lock. A switchover cannot hand
/// the standby leader role over (a standby writes no shutdown checkpoint its replicas could
/// be checked against): a `failover` key is cleared.
pub fn leader(o: &Observation, cluster: &Cluster) -> Decision {
    match o.pg.role {
        Some(PgRole::Primary) if o.config.pause => Decision::new(
            "continue to run as primary in a standby cluster because of maintenance mode",
            vec![],
        ),
        Some(PgRole::Primary) => Decision::new(
            "cannot be a real primary in standby cluster",
            vec![Action::Demote {
                mode: DemoteMode::Cluster,
            }],
        ),
        _ => {
            let mut actions = vec![];
            let msg = if o.pg.following_remote {
                format!(
                    "no action. I am ({}), the standby leader with the lock",
                    o.name()
                )
            } else {
                actions.push(Action::FollowRemote);
                "promoted self to a standby leader because i had the session lock".to_string()
            };
            // Cascading replicas stream from us with their member slots; the optime lets
            // them judge their lag in the next leader race.
            actions.push(Action::SyncSlots);
            actions.push(Action::PublishStatus);
            if cluster.failover.is_some() {
                actions.push(Action::ClearFailover);
                return Decision::new(
                    format!("{SWITCHOVER_REFUSED}; cleaning up failover key"),
                    actions,
                );
            }
            Decision::new(msg, actions)
        }
    }
}

/// PostgreSQL is stopped in a standby cluster: the lock holder starts as the standby
/// leader; with no leader at all the member follows the remote until the race is decided.
/// None when a normal rule applies (somebody else leads: start as their replica).
pub(crate) fn recover(o: &Observation, cluster: &Cluster) -> Option<Decision> {
    if !o.config.is_standby_cluster() {
        return None;
    }
    if o.has_lock() {
        return Some(Decision::new(
            "starting as a standby leader because i had the session lock",
            vec![Action::StartFollowingRemote],
        ));
    }
    if cluster.leader.is_none() {
        return Some(Decision::new(
            "trying to follow a remote member because standby cluster is unhealthy",
            vec![Action::StartFollowingRemote],
        ));
    }
    None
}

/// The log line of a replica following the lock holder (Patroni says "standby leader" in a
/// standby cluster).
pub(crate) fn following_message(o: &Observation, leader: &str) -> String {
    let whom = if o.config.is_standby_cluster() {
        "a standby leader"
    } else {
        "a leader"
    };
    format!(
        "no action. I am ({}), a secondary, and following {whom} ({leader})",
        o.name()
    )
}

/// Why a primary that does not hold the lock demotes.
pub(crate) fn demote_without_lock_message(o: &Observation) -> &'static str {
    if o.config.is_standby_cluster() {
        "cannot be a real primary in a standby cluster"
    } else {
        "demoting self because I do not have the lock and I was a leader"
    }
}

/// The winner of a leader race promotes, except in a standby cluster, where it becomes the
/// standby leader and keeps replicating (Patroni: "promoted self to a standby leader by
/// acquiring session lock").
pub(crate) fn promote_after_race(o: &Observation) -> bool {
    o.pg.role == Some(PgRole::Replica) && !o.config.is_standby_cluster()
}

/// The permanent slots (dynamic `slots`) that apply to this cluster, by Patroni's
/// `cluster_type`: `primary` ones only in a normal cluster, `standby` ones only in a standby
/// cluster, the others in both. (A standby cluster further keeps only physical slots.)
pub fn slots_for_cluster(slots: &Map<String, Value>, standby_cluster: bool) -> Map<String, Value> {
    let excluded = if standby_cluster {
        "primary"
    } else {
        "standby"
    };
    slots
        .iter()
        .filter(|(_, def)| def.get("cluster_type").and_then(Value::as_str) != Some(excluded))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

/// The executor's line after winning the lock without promoting.
pub fn acquired_lock_message(standby_cluster: bool) -> &'static str {
    if standby_cluster {
        "promoted self to a standby leader by acquiring session lock"
    } else {
        "acquired session lock as a leader"
    }
}
