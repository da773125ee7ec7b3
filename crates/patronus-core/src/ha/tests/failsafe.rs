//! Failsafe mode: a leader without DCS, replicas that heard from it, the `failsafe` key and
//! the race among its members (docs/patroni-behaviour.md §2.8;
//! upstream: patroni/ha.py `_handle_dcs_error`,
//! `check_failsafe_topology`, `Failsafe`).

use super::*;
use crate::ha::failsafe::{self, CONTINUE};
use crate::ha::*;
use serde_json::json;
use std::collections::BTreeMap;

const DEMOTED: &str = "demoted self because DCS is not accessible and I was a leader";

/// A primary `p1` whose DCS read failed, with failsafe mode on and this cycle's answers.
fn leader_without_dcs(outcome: Option<FailsafeOutcome>) -> B {
    B::new("p1").primary().with(|o| {
        o.cluster = None;
        o.config.failsafe_mode = true;
        o.failsafe.outcome = outcome;
    })
}

fn with_api(b: B, names: &[&str]) -> B {
    let names: Vec<String> = names.iter().map(|n| n.to_string()).collect();
    b.cluster(move |c| {
        for n in names {
            let mut m = member(&n, "running", "replica");
            m.data.api_url = format!("http://{n}:8008/patroni");
            c.members.retain(|x| x.name != n);
            c.members.push(m);
        }
    })
}

fn topology(names: &[&str]) -> BTreeMap<String, String> {
    names
        .iter()
        .map(|n| (n.to_string(), format!("http://{n}:8008/patroni")))
        .collect()
}

fn failsafe_key(names: &[&str]) -> Versioned<serde_json::Value> {
    Versioned {
        value: serde_json::to_value(topology(names)).unwrap(),
        version: 12,
    }
}

#[test]
fn all_members_confirmed_keeps_the_primary() {
    let b = leader_without_dcs(Some(FailsafeOutcome::Confirmed));
    assert!(failsafe::must_confirm(&b.0));
    let d = b.decide();
    assert_eq!(d.message, CONTINUE);
    assert!(d.actions.is_empty(), "{:?}", d.actions);
    assert_eq!(fence_step(&b.0), FenceStep::Feed, "the fence is fed");
}

#[test]
fn one_member_not_confirming_demotes() {
    let b = leader_without_dcs(Some(FailsafeOutcome::Refused(vec!["p3".into()])));
    let d = b.decide();
    assert_eq!(d.message, DEMOTED);
    assert_eq!(
        d.actions,
        vec![Action::Demote {
            mode: DemoteMode::Offline
        }]
    );
    assert_eq!(fence_step(&b.0), FenceStep::Keep, "the old deadline stands");
    let d = leader_without_dcs(Some(FailsafeOutcome::NoTopology)).decide();
    assert_eq!(d.message, DEMOTED);
}

#[test]
fn failsafe_off_demotes_as_before() {
    let b = leader_without_dcs(Some(FailsafeOutcome::Confirmed))
        .with(|o| o.config.failsafe_mode = false);
    assert!(!failsafe::must_confirm(&b.0));
    let d = b.decide();
    assert_eq!(d.message, DEMOTED);
    assert_eq!(fence_step(&b.0), FenceStep::Keep);
    let d = leader_without_dcs(None).decide();
    assert_eq!(d.message, DEMOTED, "not asked: demote");
}

#[test]
fn a_failed_lock_update_consults_failsafe_too() {
    let b = B::new("p1")
        .initialized()
        .led_by("p1")
        .primary()
        .lock(LockState::RefreshFailed)
        .with(|o| o.config.failsafe_mode = true);
    assert!(failsafe::must_confirm(&b.0));
    let kept = b
        .with(|o| o.failsafe.outcome = Some(FailsafeOutcome::Confirmed))
        .decide();
    assert_eq!(kept.message, CONTINUE);
    let d = B::new("p1")
        .initialized()
        .led_by("p1")
        .primary()
        .lock(LockState::RefreshFailed)
        .with(|o| {
            o.config.failsafe_mode = true;
            o.failsafe.outcome = Some(FailsafeOutcome::Refused(vec!["p2".into()]));
        })
        .decide();
    assert_eq!(
        d.message,
        "demoted self because failed to update leader lock in DCS"
    );
}

#[test]
fn nobody_is_asked_in_pause_or_by_a_replica() {
    let paused = leader_without_dcs(None).with(|o| o.config.pause = true);
    assert!(!failsafe::must_confirm(&paused.0));
    let replica = B::new("p2").replica(Some("p1"), 5).with(|o| {
        o.cluster = None;
        o.config.failsafe_mode = true;
    });
    assert!(!failsafe::must_confirm(&replica.0));
    let healthy = B::new("p1")
        .initialized()
        .led_by("p1")
        .primary()
        .lock(LockState::Held)
        .with(|o| o.config.failsafe_mode = true);
    assert!(!failsafe::must_confirm(&healthy.0));
}

fn heard_from_p1(b: B, ago_ms: u64) -> B {
    b.with(|o| {
        o.config.failsafe_mode = true;
        o.failsafe.last_call = Some(FailsafeCall {
            leader: "p1".into(),
            at_ms: o.now_ms - ago_ms,
        });
    })
}

#[test]
fn replica_without_dcs_that_heard_from_the_leader_takes_no_action() {
    let d = heard_from_p1(B::new("p2").replica(Some("p1"), 5), 2_000)
        .with(|o| o.cluster = None)
        .decide();
    assert_eq!(d.message, "DCS is not accessible");
    assert!(d.actions.is_empty());
}

#[test]
fn replica_that_heard_from_the_leader_within_ttl_does_not_race() {
    // The leader key expired while the DCS was away; p1 called us 5 s ago (ttl 30).
    let b = heard_from_p1(
        with_api(B::new("p2").initialized().replica(Some("p1"), 5), &["p2"]),
        5_000,
    );
    let d = b.decide();
    assert_eq!(
        d.message,
        "no action. I am (p2), a secondary, and following a leader (p1)"
    );
    assert_eq!(d.actions, vec![Action::SyncSlots]);
    let points_elsewhere = heard_from_p1(B::new("p2").initialized().replica(None, 5), 5_000);
    assert_eq!(
        points_elsewhere.decide().actions,
        vec![
            Action::Follow {
                leader: "p1".into()
            },
            Action::SyncSlots
        ]
    );
}

#[test]
fn an_old_call_or_failsafe_off_lets_the_replica_race() {
    let old = heard_from_p1(B::new("p2").initialized().replica(Some("p1"), 5), 31_000);
    assert_eq!(old.decide().message, "trying to acquire the leader lock");
    let off = heard_from_p1(B::new("p2").initialized().replica(Some("p1"), 5), 1_000)
        .with(|o| o.config.failsafe_mode = false);
    assert_eq!(off.decide().message, "trying to acquire the leader lock");
}

#[test]
fn a_primary_ignores_a_stale_call_and_retakes_the_lock() {
    let d = heard_from_p1(B::new("p2").initialized().primary(), 1_000).decide();
    assert_eq!(d.actions, vec![Action::AcquireLock { promote: false }]);
}

#[test]
fn only_members_of_the_failsafe_key_race() {
    let outsider = B::new("p4")
        .initialized()
        .replica(Some("p1"), 5)
        .with(|o| o.config.failsafe_mode = true)
        .cluster(|c| c.failsafe = Some(failsafe_key(&["p1", "p2"])));
    let d = outsider.decide();
    assert_eq!(
        d.message,
        "following a different leader because i am not the healthiest node (I am not a member of the failsafe topology)"
    );
    let listed = B::new("p2")
        .initialized()
        .replica(Some("p1"), 5)
        .with(|o| o.config.failsafe_mode = true)
        .cluster(|c| c.failsafe = Some(failsafe_key(&["p1", "p2"])));
    assert_eq!(listed.decide().message, "trying to acquire the leader lock");
    let empty_key = B::new("p4")
        .initialized()
        .replica(Some("p1"), 5)
        .with(|o| o.config.failsafe_mode = true)
        .cluster(|c| c.failsafe = Some(failsafe_key(&[])));
    assert_eq!(
        empty_key.decide().message,
        "trying to acquire the leader lock"
    );
}

fn healthy_leader_with(members: &[&str]) -> B {
    with_api(
        B::new("p1")
            .initialized()
            .led_by("p1")
            .primary()
            .lock(LockState::Held)
            .with(|o| {
                o.config.failsafe_mode = true;
                o.failsafe.api_url = "http://p1:8008/patroni".into();
            }),
        members,
    )
}

#[test]
fn the_leader_writes_the_failsafe_key_when_it_changes() {
    let d = healthy_leader_with(&["p2", "p3"]).decide();
    assert!(d.has(&Action::WriteFailsafe {
        topology: Some(topology(&["p1", "p2", "p3"]))
    }));
    let unchanged = healthy_leader_with(&["p2", "p3"])
        .cluster(|c| c.failsafe = Some(failsafe_key(&["p1", "p2", "p3"])))
        .decide();
    assert!(
        !unchanged
            .actions
            .iter()
            .any(|a| matches!(a, Action::WriteFailsafe { .. })),
        "{:?}",
        unchanged.actions
    );
    let garbage = healthy_leader_with(&["p2"])
        .cluster(|c| {
            c.failsafe = Some(Versioned {
                value: json!([1]),
                version: 3,
            })
        })
        .decide();
    assert!(garbage.has(&Action::WriteFailsafe {
        topology: Some(topology(&["p1", "p2"]))
    }));
}

#[test]
fn the_leader_deletes_the_key_when_failsafe_mode_is_off() {
    let b = healthy_leader_with(&["p2"])
        .with(|o| o.config.failsafe_mode = false)
        .cluster(|c| c.failsafe = Some(failsafe_key(&["p1", "p2"])));
    assert!(b.decide().has(&Action::WriteFailsafe { topology: None }));
    let no_key = healthy_leader_with(&["p2"]).with(|o| o.config.failsafe_mode = false);
    assert!(!no_key
        .decide()
        .actions
        .iter()
        .any(|a| matches!(a, Action::WriteFailsafe { .. })));
}

#[test]
fn targets_and_outcome() {
    let t = topology(&["p1", "p2", "p3"]);
    let asked = failsafe::targets(Some(&t), "p1").unwrap();
    let names: Vec<&str> = asked.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, vec!["p2", "p3"]);
    assert!(failsafe::targets(Some(&t), "p9").is_none(), "not listed");
    assert!(failsafe::targets(None, "p1").is_none());
    assert_eq!(
        failsafe::targets(Some(&topology(&["p1"])), "p1"),
        Some(vec![]),
        "a single member confirms itself"
    );
    assert_eq!(failsafe::outcome(&[]), FailsafeOutcome::Confirmed);
    assert_eq!(
        failsafe::outcome(&[("p2".into(), true), ("p3".into(), false)]),
        FailsafeOutcome::Refused(vec!["p3".into()])
    );
}
