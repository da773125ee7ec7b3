//! Manual failover / switchover (docs/patroni-behaviour.md §2.6), leader side and race side.
//!
//! Reference: patroni/ha.py `process_manual_failover_from_leader`,
//! `manual_failover_process_no_leader`, `is_failover_possible`.

use super::action::{Action, Decision};
use super::observation::Observation;
use super::sync;
use crate::config::timing::secs_to_ms;
use crate::dcs::{Cluster, Failover};

/// Parses an ISO 8601 time with zone into ms since the epoch (seconds optional).
pub fn parse_time_ms(s: &str) -> Option<u64> {
    let s = s.trim();
    let parsed = chrono::DateTime::parse_from_rfc3339(s).ok().or_else(|| {
        [
            "%Y-%m-%dT%H:%M:%S%.f%z",
            "%Y-%m-%dT%H:%M%:z",
            "%Y-%m-%dT%H:%M%z",
            "%Y-%m-%d %H:%M%:z",
            "%Y-%m-%d %H:%M:%S%:z",
        ]
        .iter()
        .find_map(|f| chrono::DateTime::parse_from_str(s, f).ok())
    });
    parsed.and_then(|t| u64::try_from(t.timestamp_millis()).ok())
}

/// True if `name` is a member that could take over: running and allowed to fail over.
pub(crate) fn is_viable_candidate(cluster: &Cluster, name: &str) -> bool {
    cluster
        .member(name)
        .is_some_and(|m| m.data.is_running() && !m.data.nofailover())
}

/// A viable candidate whose last published WAL position is within `max_lag` of the leader's
/// optime (Patroni's `is_failover_possible`).
pub(crate) fn is_caught_up_candidate(cluster: &Cluster, name: &str, max_lag: u64) -> bool {
    is_viable_candidate(cluster, name)
        && cluster.member(name).is_some_and(|m| {
            let pos = m.data.xlog_location.unwrap_or(0);
            cluster.status.optime.saturating_sub(pos) <= max_lag
        })
}

/// Leader side: what to do about a `failover` key while we hold the lock and run as primary.
/// None when the key does not concern us (the normal leader path continues).
pub fn from_leader(o: &Observation, cluster: &Cluster) -> Option<Decision> {
    let f: &Failover = &cluster.failover.as_ref()?.value;
    let me = o.name();
    if f.member.as_deref() == Some(me) {
        // We are the requested candidate and already lead: the request is fulfilled.
        return Some(Decision::new(
            format!("no action. I am ({me}), the leader with the lock"),
            vec![Action::ClearFailover],
        ));
    }
    if let Some(leader) = f.leader.as_deref() {
        if leader != me {
            return Some(Decision::new(
                format!("manual failover: leader name does not match: {leader} != {me}"),
                vec![Action::ClearFailover],
            ));
        }
    }
    if let Some(at) = f.scheduled_at.as_deref() {
        let Some(at_ms) = parse_time_ms(at) else {
            return Some(Decision::new(
                format!("Unable to parse scheduled_at timestamp {at}, cleaning up"),
                vec![Action::ClearFailover],
            ));
        };
        let loop_ms = secs_to_ms(o.config.loop_wait);
        if at_ms > o.now_ms {
            let mut d = Decision::new(
                format!(
                    "Awaiting failover at {at} (in {:.0} seconds)",
                    (at_ms - o.now_ms) as f64 / 1000.0
                ),
                vec![],
            );
            d.wake_at_ms = Some(at_ms);
            return Some(d);
        }
        if o.now_ms - at_ms > loop_ms * 3 / 2 + 1000 {
            return Some(Decision::new(
                "Found a stale failover value, cleaning up",
                vec![Action::ClearFailover],
            ));
        }
    }
    if o.config.pause && f.member.is_none() {
        return Some(Decision::new(
            "Switchover is possible only to a specific candidate in a paused state",
            vec![Action::ClearFailover],
        ));
    }
    let kind = if f.leader.is_some() {
        "switchover"
    } else {
        "manual failover"
    };
    let max_lag = o.config.maximum_lag_on_failover;
    // A switchover in active sync mode only goes to a synchronous standby; a manual
    // failover (no leader named) may go to any caught-up member.
    let sync_ok = |n: &str| f.leader.is_none() || sync::may_promote(o, cluster, n);
    let ok = |n: &str| is_caught_up_candidate(cluster, n, max_lag) && sync_ok(n);
    let possible = match f.member.as_deref() {
        Some(c) => ok(c),
        None => cluster.members.iter().any(|m| m.name != me && ok(&m.name)),
    };
    if !possible {
        return Some(Decision::new(
            format!("{kind}: no healthy members found, failover is not possible"),
            vec![Action::ClearFailover],
        ));
    }
    Some(Decision::new(
        format!("{kind}: demoting myself"),
        vec![Action::HandOver {
            candidate: f.member.clone(),
        }],
    ))
}

/// Race side with a `failover` key present: Some(true) = I may take the lock regardless of
/// the usual health comparison, Some(false) = I must defer, None = race normally.
pub(crate) fn race_with_failover_key(o: &Observation, cluster: &Cluster) -> Option<bool> {
    let f = &cluster.failover.as_ref()?.value;
    let due = f
        .scheduled_at
        .as_deref()
        .and_then(parse_time_ms)
        .is_some_and(|at| at <= o.now_ms);
    if f.scheduled_at.is_some() && f.leader.is_some() && !due {
        // A scheduled switchover whose leader vanished before its time is void: race
        // normally. Once due, the leader handed over: the candidate is preferred as in any
        // switchover.
        return None;
    }
    let me = o.name();
    let other_healthy = o
        .peers
        .iter()
        .any(|p| p.name != me && p.reachable && !p.nofailover && !p.is_primary);
    if f.leader.as_deref() == Some(me) && f.member.as_deref() != Some(me) && other_healthy {
        // The former leader of a switchover steps aside while another candidate exists.
        return Some(false);
    }
    match f.member.as_deref() {
        Some(c) if c == me => Some(true),
        _ if !sync::may_promote(o, cluster, me) => Some(false),
        Some(c) => {
            let healthy = o
                .peers
                .iter()
                .any(|p| p.name == c && p.reachable && !p.nofailover);
            if healthy {
                Some(false)
            } else {
                None
            }
        }
        None => None,
    }
}
