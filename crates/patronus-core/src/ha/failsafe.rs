//! Failsafe mode (Patroni's `failsafe_mode`): a leader that cannot reach the DCS keeps its
//! primary only while every member of the `failsafe` key confirms it through
//! `POST /failsafe`; a replica that heard from that leader within `ttl` does not race for the
//! lock; the leader keeps the `failsafe` key; only members listed there may race.
//!
//! Reference: patroni/ha.py `_handle_dcs_error`, `check_failsafe_topology`,
//! `_failsafe_config`, `Failsafe.leader`, `is_healthiest_node`; docs/dcs_failsafe_mode.rst.

use super::action::{Action, Decision};
use super::observation::{FailsafeOutcome, LockState, Observation, PgRole};
use crate::config::timing::secs_to_ms;
use crate::dcs::Cluster;
use std::collections::BTreeMap;

/// Patroni's line when a leader that lost the DCS keeps its primary.
pub const CONTINUE: &str =
    "continue to run as a leader because failsafe mode is enabled and all members are accessible";

/// The driver must ask the members this cycle: failsafe mode is on, the DCS could not be read
/// or our lock not updated, and we run a primary outside pause.
pub fn must_confirm(o: &Observation) -> bool {
    let dcs_failed = o.cluster.is_none() || o.lock == LockState::RefreshFailed;
    dcs_failed && o.config.failsafe_mode && !o.config.pause && o.pg.is_primary()
}

/// Every member confirmed this cycle: the primary keeps running and its fence is fed.
pub fn confirmed(o: &Observation) -> bool {
    must_confirm(o) && o.failsafe.outcome == Some(FailsafeOutcome::Confirmed)
}

/// The branch of a leader whose DCS failed: it continues when every member confirmed.
pub(crate) fn keep_primary(o: &Observation) -> Option<Decision> {
    confirmed(o).then(|| Decision::new(CONTINUE, vec![]))
}

/// Whom to ask: the other members of the `failsafe` key with their URLs. None when the key
/// is not an object or does not list us (Patroni gives up at once).
pub fn targets(
    topology: Option<&BTreeMap<String, String>>,
    me: &str,
) -> Option<Vec<(String, String)>> {
    let t = topology?;
    if !t.contains_key(me) {
        return None;
    }
    Some(
        t.iter()
            .filter(|(name, _)| name.as_str() != me)
            .map(|(name, url)| (name.clone(), url.clone()))
            .collect(),
    )
}

/// The outcome of the members' answers (name, accepted): confirmed when all accepted.
pub fn outcome(answers: &[(String, bool)]) -> FailsafeOutcome {
    let refused: Vec<String> = answers
        .iter()
        .filter(|(_, accepted)| !accepted)
        .map(|(name, _)| name.clone())
        .collect();
    if refused.is_empty() {
        FailsafeOutcome::Confirmed
    } else {
        FailsafeOutcome::Refused(refused)
    }
}

/// Replica side, leader key absent: the leader that called `POST /failsafe` here within
/// `ttl`. We follow it instead of racing (Patroni puts it into the cluster view as leader).
pub(crate) fn heard_leader<'a>(o: &'a Observation, cluster: &Cluster) -> Option<&'a str> {
    let call = o.failsafe.last_call.as_ref()?;
    let fresh = o.now_ms < call.at_ms.saturating_add(secs_to_ms(o.config.ttl));
    let usable = o.config.failsafe_mode
        && cluster.leader.is_none()
        && o.pg.role != Some(PgRole::Primary)
        && !call.leader.is_empty()
        && call.leader != o.name();
    (fresh && usable).then_some(call.leader.as_str())
}

/// The topology the leader keeps in the `failsafe` key: every member with an API URL, and us.
pub fn topology(o: &Observation, cluster: &Cluster) -> BTreeMap<String, String> {
    let mut t: BTreeMap<String, String> = cluster
        .members
        .iter()
        .filter(|m| !m.data.api_url.is_empty())
        .map(|m| (m.name.clone(), m.data.api_url.clone()))
        .collect();
    t.entry(o.name().to_string())
        .or_insert_with(|| o.failsafe.api_url.clone());
    t
}

/// The leader's upkeep of the `failsafe` key: written when it differs from the topology,
/// deleted when failsafe mode is off (Patroni leaves a stale key; nobody reads it then).
pub(crate) fn key_action(o: &Observation, cluster: &Cluster) -> Option<Action> {
    if !o.config.failsafe_mode {
        return cluster
            .failsafe
            .as_ref()
            .map(|_| Action::WriteFailsafe { topology: None });
    }
    let want = topology(o, cluster);
    let same = cluster.failsafe_topology().is_some_and(|t| t == want);
    (!same).then_some(Action::WriteFailsafe {
        topology: Some(want),
    })
}

/// Patroni's race rule: with failsafe mode on and a non-empty `failsafe` key, only the
/// members it lists may take the lock.
pub(crate) fn excluded_from_race(o: &Observation, cluster: &Cluster) -> bool {
    o.config.failsafe_mode
        && cluster
            .failsafe_topology()
            .is_some_and(|t| !t.is_empty() && !t.contains_key(o.name()))
}
