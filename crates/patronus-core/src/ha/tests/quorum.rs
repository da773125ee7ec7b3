//! Quorum commit (`synchronous_mode: quorum`): the leader's steps, `maximum_lag_on_syncnode`
//! and the race rule (docs/patroni-behaviour.md §2.15, §2.5;
//! upstream: patroni/ha.py `_process_quorum_replication`,
//! `_is_healthiest_node`).

use super::*;
use crate::config::dynamic::SyncMode;
use crate::dcs::{Cluster, SyncState};
use crate::ha::eligibility::Ineligible;
use crate::ha::observation::StandbyConn;
use crate::ha::quorum_step::SyncNames;

fn standby(name: &str, sync_state: &str, flush: u64) -> StandbyConn {
    StandbyConn {
        name: name.into(),
        streaming: true,
        sync_state: sync_state.into(),
        flush_lsn: flush,
    }
}

fn key(leader: &str, quorum: u64, voters: &[&str]) -> impl FnOnce(&mut Cluster) {
    let value = SyncState {
        leader: Some(leader.into()),
        quorum,
        sync_standby: (!voters.is_empty()).then(|| voters.join(",")),
        unreadable: false,
    };
    move |c| c.sync = Some(Versioned { value, version: 11 })
}

/// p1 leads in quorum mode; p2 and p3 stream.
fn leader() -> B {
    B::new("p1")
        .initialized()
        .led_by("p1")
        .primary()
        .lock(LockState::Held)
        .cluster(|c| {
            c.members.push(member("p2", "running", "replica"));
            c.members.push(member("p3", "running", "replica"));
        })
        .with(|o| {
            o.config.synchronous_mode = SyncMode::Quorum;
            o.pg.standbys = vec![standby("p2", "async", 1000), standby("p3", "async", 1000)];
        })
}

fn sync_steps(d: &Decision) -> Vec<Action> {
    d.actions
        .iter()
        .filter(|a| {
            matches!(
                a,
                Action::WriteSync { .. } | Action::WriteQuorum { .. } | Action::SetSyncNames { .. }
            )
        })
        .cloned()
        .collect()
}

fn quorum(q: u64, voters: &[&str]) -> Action {
    Action::WriteQuorum {
        quorum: q,
        voters: voters.iter().map(|s| s.to_string()).collect(),
    }
}

fn names(v: &str) -> Action {
    Action::SetSyncNames {
        value: Some(v.into()),
    }
}

#[test]
fn quorum_mode_enables_the_key_then_lists_any_k_then_records_voters() {
    // No key yet: the leader records itself with no voters.
    assert_eq!(sync_steps(&leader().decide()), vec![quorum(0, &[])]);
    // Then PostgreSQL waits for ANY 1 of both standbys…
    let d = leader().cluster(key("p1", 0, &[])).decide();
    assert_eq!(sync_steps(&d), vec![names("ANY 1 (p2,p3)")]);
    // …which are voters once PostgreSQL reports them `quorum` and caught up.
    let listed = || {
        leader().cluster(key("p1", 0, &[])).with(|o| {
            o.sync_names_applied = Some("ANY 1 (p2,p3)".into());
            o.sync_names_since_lsn = Some(1000);
            for s in &mut o.pg.standbys {
                s.sync_state = "quorum".into();
            }
        })
    };
    assert_eq!(
        sync_steps(&listed().decide()),
        vec![quorum(1, &["p2", "p3"])]
    );
    // Listed but not caught up: nothing is written yet.
    let d = listed().with(|o| o.sync_names_since_lsn = None).decide();
    assert_eq!(sync_steps(&d), vec![]);
    // Steady state.
    let d = listed().cluster(key("p1", 1, &["p2", "p3"])).decide();
    assert_eq!(sync_steps(&d), vec![]);
}

#[test]
fn quorum_mode_turns_a_priority_value_into_any() {
    let d = leader()
        .cluster(key("p1", 1, &["p2", "p3"]))
        .with(|o| {
            o.sync_names_applied = Some("1 (p2,p3)".into());
            o.sync_names_since_lsn = Some(1000);
        })
        .decide();
    assert_eq!(sync_steps(&d), vec![names("ANY 1 (p2,p3)")]);
}

#[test]
fn quorum_mode_strict_with_nobody_keeps_commits_waiting() {
    let d = leader()
        .cluster(key("p1", 0, &[]))
        .with(|o| {
            o.config.synchronous_mode_strict = true;
            o.pg.standbys.clear();
        })
        .decide();
    assert_eq!(
        sync_steps(&d),
        vec![names("ANY 1 (__patroni_strict_sync_replica_placeholder__)")]
    );
}

#[test]
fn a_lagging_standby_is_not_eligible_under_maximum_lag_on_syncnode() {
    let base = || {
        leader().cluster(key("p1", 0, &[])).with(|o| {
            o.pg.standbys[1].flush_lsn = 10;
        })
    };
    let d = base()
        .with(|o| o.config.maximum_lag_on_syncnode = 100)
        .decide();
    assert_eq!(sync_steps(&d), vec![names("ANY 1 (p2)")]);
    // Disabled (the default -1): both are listed.
    let d = base().decide();
    assert_eq!(sync_steps(&d), vec![names("ANY 1 (p2,p3)")]);
}

#[test]
fn priority_mode_replaces_a_lagging_sync_standby_and_lists_k_of_them() {
    let base = || {
        leader().cluster(key("p1", 0, &[])).with(|o| {
            o.config.synchronous_mode = SyncMode::On;
            o.config.synchronous_node_count = 2;
            o.pg.standbys.push(standby("p4", "async", 1000));
        })
    };
    let base = move || base().cluster(|c| c.members.push(member("p4", "running", "replica")));
    assert_eq!(sync_steps(&base().decide()), vec![names("2 (p2,p3)")]);
    let d = base()
        .with(|o| {
            o.config.maximum_lag_on_syncnode = 100;
            o.pg.standbys[0].flush_lsn = 500;
        })
        .decide();
    assert_eq!(sync_steps(&d), vec![names("2 (p3,p4)")]);
}

#[test]
fn sync_names_parse_what_sync_mode_renders() {
    let p = SyncNames::parse("ANY 2 (a,\"B x\",c)");
    assert!(p.any);
    assert_eq!(p.num, 2);
    assert_eq!(
        p.names.iter().cloned().collect::<Vec<_>>(),
        ["B x", "a", "c"]
    );
    let p = SyncNames::parse("p2");
    assert_eq!((p.any, p.num, p.names.len()), (false, 1, 1));
    assert_eq!(SyncNames::parse(""), SyncNames::default());
    let p = SyncNames::parse("2 (p2,p3)");
    assert_eq!((p.any, p.num, p.names.len()), (false, 2, 2));
}

/// p1 (the leader in the key) is gone; the key says ANY of p2, p3 with quorum 1.
fn race(me: &str, voters: &[&str]) -> B {
    B::new(me)
        .initialized()
        .replica(Some("p1"), 100)
        .cluster(key("p1", 1, voters))
        .with(|o| o.config.synchronous_mode = SyncMode::Quorum)
}

fn won(d: &Decision) -> bool {
    d.has(&Action::AcquireLock { promote: true })
}

#[test]
fn quorum_race_a_voter_needs_quorum_votes_from_other_voters() {
    // p2 is a voter and p3 (a voter, not ahead) vouches for it: 1 vote >= quorum 1.
    let d = race("p2", &["p2", "p3"])
        .with(|o| o.peers = vec![peer("p3", 100, 1, false)])
        .decide();
    assert!(won(&d), "{d:?}");
    // Without p3's answer p2 cannot prove it has every acknowledged commit.
    let d = race("p2", &["p2", "p3"]).decide();
    assert!(!won(&d), "{d:?}");
    let alone = race("p2", &["p2", "p3"]).0;
    assert_eq!(
        eligibility::is_healthiest(&alone, alone.cluster.as_ref().unwrap()),
        Err(Ineligible::NoQuorum {
            votes: 0,
            needed: 1
        })
    );
    // A voter ahead of us disqualifies us.
    let d = race("p2", &["p2", "p3"])
        .with(|o| o.peers = vec![peer("p3", 200, 1, false)])
        .decide();
    assert!(!won(&d), "{d:?}");
    assert!(d.message.contains("p3 has a higher WAL position"), "{d:?}");
}

#[test]
fn quorum_race_a_non_voter_needs_one_more_vote() {
    // p4 is not a voter: starting at -1 it needs both p2 and p3 to vouch.
    let three = race("p4", &["p2", "p3"])
        .with(|o| o.peers = vec![peer("p2", 100, 1, false), peer("p3", 100, 1, false)]);
    assert!(won(&three.decide()));
    let one = race("p4", &["p2", "p3"]).with(|o| o.peers = vec![peer("p2", 100, 1, false)]);
    let d = one.decide();
    assert!(!won(&d), "{d:?}");
    assert!(d.message.contains("Quorum requirement 1"), "{d:?}");
    // A non-voter's answer is no vote; a nofailover voter is not compared at all.
    let d = race("p2", &["p2", "p3"])
        .with(|o| o.peers = vec![peer("p4", 100, 1, false), peer("p3", 100, 0, false)])
        .decide();
    assert!(!won(&d), "{d:?}");
}

#[test]
fn quorum_race_the_former_leader_ahead_does_not_stop_a_voter() {
    let d = race("p2", &["p2", "p3"])
        .with(|o| o.peers = vec![peer("p1", 500, 1, false), peer("p3", 100, 1, false)])
        .decide();
    assert!(won(&d), "{d:?}");
}

#[test]
fn quorum_race_the_former_leader_back_as_a_replica_votes() {
    // p1 restarted as a replica with the same WAL: it belongs to the voting set.
    let d = race("p2", &["p2", "p3"])
        .with(|o| o.peers = vec![peer("p1", 100, 1, false)])
        .decide();
    assert!(won(&d), "{d:?}");
}

#[test]
fn a_promoting_member_waits_for_the_former_quorum_at_once() {
    use crate::ha::sync::prepromote_names;
    let mut config = crate::config::DynamicConfig {
        synchronous_mode: SyncMode::Quorum,
        ..Default::default()
    };
    let cluster = |quorum: u64, voters: &[&str]| {
        let mut c = Cluster::default();
        key("p1", quorum, voters)(&mut c);
        c
    };
    // A voter: ANY (members - quorum - 1) of the others, the old leader included.
    let c = cluster(1, &["p2", "p3"]);
    assert_eq!(
        prepromote_names(&config, Some(&c), "p2").as_deref(),
        Some("ANY 1 (p1,p3)")
    );
    // A non-voter waits for one more.
    assert_eq!(
        prepromote_names(&config, Some(&c), "p4").as_deref(),
        Some("ANY 2 (p1,p2,p3)")
    );
    // No key: nothing to wait for, unless strict.
    assert_eq!(prepromote_names(&config, None, "p2").as_deref(), Some(""));
    config.synchronous_mode_strict = true;
    assert_eq!(
        prepromote_names(&config, None, "p2").as_deref(),
        Some("ANY 1 (__patroni_strict_sync_replica_placeholder__)")
    );
    config.synchronous_mode = SyncMode::On;
    assert_eq!(
        prepromote_names(&config, Some(&c), "p2").as_deref(),
        Some(crate::ha::sync::STRICT_PLACEHOLDER)
    );
    config.synchronous_mode = SyncMode::Off;
    assert_eq!(prepromote_names(&config, Some(&c), "p2"), None);
}

#[test]
fn a_crashed_quorum_leader_fails_over_only_when_the_quorum_can_be_reached() {
    let crashed = |quorum_key: u64, stopped_peer: bool| {
        leader()
            .cluster(key("p1", quorum_key, &["p2", "p3"]))
            .cluster(move |c| {
                if stopped_peer {
                    c.members[2].data.state = "stopped".into();
                }
            })
            .stopped("in production")
            .with(|o| o.config.primary_start_timeout = 0)
    };
    let d = crashed(1, false).decide();
    assert_eq!(d.message, "stopped PostgreSQL to fail over after a crash");
    // One candidate left cannot gather the one vote the key asks for: restart instead.
    let d = crashed(1, true).decide();
    assert_ne!(
        d.message, "stopped PostgreSQL to fail over after a crash",
        "{d:?}"
    );
    // With quorum 0 the one candidate suffices.
    let d = crashed(0, true).decide();
    assert_eq!(d.message, "stopped PostgreSQL to fail over after a crash");
}

#[test]
fn leaving_quorum_mode_empties_the_key_before_priority_names() {
    let on = || {
        leader().cluster(key("p1", 1, &["p2", "p3"])).with(|o| {
            o.config.synchronous_mode = SyncMode::On;
            o.sync_names_applied = Some("ANY 1 (p2,p3)".into());
            for s in &mut o.pg.standbys {
                s.sync_state = "quorum".into();
            }
        })
    };
    // Either voter alone may lack a commit the other acknowledged: nobody stays promotable…
    assert_eq!(
        sync_steps(&on().decide()),
        vec![Action::WriteSync {
            standbys: Some(vec![])
        }]
    );
    // …then PostgreSQL waits for the picked standby first.
    let d = on().cluster(key("p1", 0, &[])).decide();
    assert_eq!(sync_steps(&d), vec![names("p2")]);
}

#[test]
fn an_unreadable_key_lets_nobody_race_in_quorum_mode() {
    let b = race("p2", &["p2", "p3"])
        .cluster(|c| {
            c.sync = Some(Versioned {
                value: SyncState::unreadable(),
                version: 12,
            })
        })
        .with(|o| o.peers = vec![peer("p3", 100, 1, false)]);
    let d = b.decide();
    assert!(!won(&d), "{d:?}");
    assert!(
        d.message.contains("I am not a synchronous standby"),
        "{d:?}"
    );
}

#[test]
fn a_repaired_quorum_state_is_a_warning_the_driver_logs() {
    // The key says quorum 0 of p2, p3 while PostgreSQL waits for ANY 1 of them: a commit
    // acknowledged by one voter might not be on the one a failover picks. The plan repairs
    // the quorum and says why, as an action (the core does not log).
    let d = leader()
        .cluster(key("p1", 0, &["p2", "p3"]))
        .with(|o| o.sync_names_applied = Some("ANY 1 (p2,p3)".into()))
        .decide();
    let warnings: Vec<&Action> = d
        .actions
        .iter()
        .filter(|a| matches!(a, Action::Warn { .. }))
        .collect();
    assert!(
        matches!(warnings.as_slice(), [Action::Warn { message }] if message.contains("not guaranteed to overlap")),
        "{:?}",
        d.actions
    );
    let steps = sync_steps(&d);
    assert!(
        matches!(steps.as_slice(), [Action::WriteQuorum { .. }]),
        "and repairs it: {steps:?}"
    );
}
