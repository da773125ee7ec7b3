//! Synchronous mode (priority): the leader's steps and the promotion gate.

use super::*;
use crate::config::dynamic::SyncMode;
use crate::dcs::cluster::Versioned;
use crate::dcs::{Cluster, SyncState};
use crate::ha::observation::StandbyConn;
use crate::ha::sync::STRICT_PLACEHOLDER;

fn standby(name: &str, sync_state: &str, flush: u64) -> StandbyConn {
    StandbyConn {
        name: name.into(),
        streaming: true,
        sync_state: sync_state.into(),
        flush_lsn: flush,
    }
}

fn sync_key(leader: &str, standbys: &[&str]) -> impl FnOnce(&mut Cluster) {
    let value = SyncState {
        leader: Some(leader.into()),
        quorum: 0,
        sync_standby: (!standbys.is_empty()).then(|| standbys.join(",")),
        unreadable: false,
    };
    move |c| c.sync = Some(Versioned { value, version: 11 })
}

/// p1 leads with the lock, p2 and p3 are running replicas, sync mode on.
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
        .with(|o| o.config.synchronous_mode = SyncMode::On)
}

fn sync_steps(d: &Decision) -> Vec<Action> {
    d.actions
        .iter()
        .filter(|a| matches!(a, Action::WriteSync { .. } | Action::SetSyncNames { .. }))
        .cloned()
        .collect()
}

fn write(names: &[&str]) -> Action {
    Action::WriteSync {
        standbys: Some(names.iter().map(|s| s.to_string()).collect()),
    }
}

fn names(v: &str) -> Action {
    Action::SetSyncNames {
        value: Some(v.into()),
    }
}

#[test]
fn sync_leader_records_itself_in_the_key_first() {
    let d = leader().decide();
    assert_eq!(sync_steps(&d), vec![write(&[])]);
    // A key written by the former leader is taken over the same way.
    let d = leader().cluster(sync_key("p2", &["p1"])).decide();
    assert_eq!(sync_steps(&d), vec![write(&[])]);
}

#[test]
fn sync_standby_enters_the_guc_before_the_key() {
    let base = || {
        leader().cluster(sync_key("p1", &[])).with(|o| {
            o.pg.standbys = vec![standby("p2", "async", 900), standby("p3", "async", 800)];
        })
    };
    // Step 1: the best standby (most WAL) goes into synchronous_standby_names.
    assert_eq!(sync_steps(&base().decide()), vec![names("p2")]);
    // Step 2: not yet acknowledging as sync → the key waits.
    let d = base()
        .with(|o| o.sync_names_applied = Some("p2".into()))
        .decide();
    assert_eq!(sync_steps(&d), vec![]);
    // Step 3: PostgreSQL reports it sync → now it may be named in the key.
    let d = base()
        .with(|o| {
            o.sync_names_applied = Some("p2".into());
            o.pg.standbys[0].sync_state = "sync".into();
        })
        .decide();
    assert_eq!(sync_steps(&d), vec![write(&["p2"])]);
    // Steady state: nothing to do.
    let d = base()
        .cluster(sync_key("p1", &["p2"]))
        .with(|o| {
            o.sync_names_applied = Some("p2".into());
            o.pg.standbys[0].sync_state = "sync".into();
        })
        .decide();
    assert_eq!(sync_steps(&d), vec![]);
}

#[test]
fn sync_priority_nosync_and_node_count_choose_the_standbys() {
    let base = || {
        leader().cluster(sync_key("p1", &[])).with(|o| {
            o.pg.standbys = vec![standby("p2", "async", 900), standby("p3", "async", 800)];
        })
    };
    let tag = |n: usize, k: &'static str, v: serde_json::Value| {
        move |c: &mut Cluster| {
            c.members[n].data.tags.insert(k.into(), v);
        }
    };
    let d = base().cluster(tag(2, "sync_priority", json!(2))).decide();
    assert_eq!(sync_steps(&d), vec![names("p3")]);
    let d = base().cluster(tag(1, "nosync", json!(true))).decide();
    assert_eq!(sync_steps(&d), vec![names("p3")]);
    let d = base()
        .with(|o| o.config.synchronous_node_count = 2)
        .decide();
    assert_eq!(sync_steps(&d), vec![names("2 (p2,p3)")]);
    // A standby that is not streaming, or not a running member, is never picked.
    let d = base()
        .with(|o| o.pg.standbys[0].streaming = false)
        .cluster(|c| c.members[2].data.state = "stopped".into())
        .decide();
    assert_eq!(
        sync_steps(&d),
        vec![Action::SetSyncNames {
            value: Some(String::new())
        }]
    );
}

#[test]
fn sync_standby_leaves_the_key_before_the_guc() {
    let base = || {
        leader().cluster(sync_key("p1", &["p2"])).with(|o| {
            o.sync_names_applied = Some("p2".into());
            o.pg.standbys = vec![standby("p3", "async", 800)];
        })
    };
    // p2 stopped streaming: first it loses its promotion right…
    assert_eq!(sync_steps(&base().decide()), vec![write(&[])]);
    // …then PostgreSQL waits for p3 instead.
    let d = base().cluster(sync_key("p1", &[])).decide();
    assert_eq!(sync_steps(&d), vec![names("p3")]);
}

#[test]
fn strict_sync_mode_keeps_commits_blocked_without_standbys() {
    let strict = |key: &'static [&'static str]| {
        leader()
            .cluster(sync_key("p1", key))
            .with(|o| o.config.synchronous_mode_strict = true)
    };
    assert_eq!(
        sync_steps(&strict(&[]).decide()),
        vec![names(STRICT_PLACEHOLDER)]
    );
    // The last sync standby is gone: the key keeps it and PostgreSQL keeps waiting for it.
    let d = strict(&["p2"])
        .with(|o| o.sync_names_applied = Some("p2".into()))
        .decide();
    assert_eq!(sync_steps(&d), vec![]);
    // A new leader in strict mode keeps the former standbys (minus itself) in the key.
    let d = strict(&[]).cluster(sync_key("p3", &["p1", "p2"])).decide();
    assert_eq!(sync_steps(&d), vec![write(&["p2"])]);
}

#[test]
fn sync_mode_off_deletes_the_key_then_restores_the_guc() {
    let off = || {
        leader()
            .cluster(sync_key("p1", &["p2"]))
            .with(|o| o.config.synchronous_mode = SyncMode::Off)
    };
    assert_eq!(
        sync_steps(&off().decide()),
        vec![Action::WriteSync { standbys: None }]
    );
    let d = off()
        .cluster(|c| c.sync = None)
        .with(|o| o.sync_names_applied = Some("p2".into()))
        .decide();
    assert_eq!(sync_steps(&d), vec![Action::SetSyncNames { value: None }]);
    let d = off().cluster(|c| c.sync = None).decide();
    assert_eq!(sync_steps(&d), vec![]);
}

#[test]
fn only_a_synchronous_standby_races_in_sync_mode() {
    let race = |me: &str| {
        B::new(me)
            .initialized()
            .replica(Some("p1"), 100)
            .cluster(sync_key("p1", &["p2"]))
            .with(|o| o.config.synchronous_mode = SyncMode::On)
    };
    // p3 has as much WAL as anyone, but it is not in the key.
    let d = race("p3")
        .with(|o| o.peers = vec![peer("p2", 100, 1, false)])
        .decide();
    assert!(d.actions.is_empty(), "{d:?}");
    assert!(
        d.message.contains("I am not a synchronous standby"),
        "{d:?}"
    );
    // p2 is; an asynchronous peer ahead of it does not stop it.
    let d = race("p2")
        .with(|o| o.peers = vec![peer("p3", 500, 1, false)])
        .decide();
    assert_eq!(d.actions, vec![Action::AcquireLock { promote: true }]);
    // With sync mode switched off the key no longer restricts the race.
    let d = race("p3")
        .with(|o| {
            o.config.synchronous_mode = SyncMode::Off;
            o.peers = vec![peer("p2", 100, 1, false)];
        })
        .decide();
    assert_eq!(d.actions, vec![Action::AcquireLock { promote: true }]);
}

#[test]
fn switchover_in_sync_mode_goes_only_to_a_synchronous_standby() {
    let request = |candidate: &str, leader: Option<&str>| {
        let failover = crate::dcs::Failover {
            leader: leader.map(str::to_string),
            member: Some(candidate.into()),
            scheduled_at: None,
        };
        leader_with_key(&["p2"]).cluster(move |c| {
            c.failover = Some(Versioned {
                value: failover,
                version: 7,
            })
        })
    };
    let d = request("p3", Some("p1")).decide();
    assert!(d.message.contains("no healthy members found"), "{d:?}");
    let d = request("p2", Some("p1")).decide();
    assert_eq!(d.message, "switchover: demoting myself");
    // A manual failover (no leader named) may pick an asynchronous member.
    let d = request("p3", None).decide();
    assert_eq!(d.message, "manual failover: demoting myself");
    // In the race, a manually named asynchronous candidate still takes over; others defer.
    let d = B::new("p3")
        .initialized()
        .replica(Some("p1"), 100)
        .cluster(sync_key("p1", &["p2"]))
        .cluster(|c| {
            c.failover = Some(Versioned {
                value: crate::dcs::Failover {
                    leader: None,
                    member: Some("p3".into()),
                    scheduled_at: None,
                },
                version: 7,
            })
        })
        .with(|o| o.config.synchronous_mode = SyncMode::On)
        .decide();
    assert_eq!(d.actions, vec![Action::AcquireLock { promote: true }]);
}

fn leader_with_key(standbys: &'static [&'static str]) -> B {
    leader().cluster(sync_key("p1", standbys))
}

#[test]
fn crashed_sync_leader_fails_over_only_to_a_synchronous_standby() {
    let crashed = |standbys: &'static [&'static str]| {
        leader_with_key(standbys)
            .stopped("in production")
            .with(|o| o.config.primary_start_timeout = 0)
    };
    let d = crashed(&["p2"]).decide();
    assert_eq!(d.message, "stopped PostgreSQL to fail over after a crash");
    // No synchronous standby: nobody could take over, so restart in place.
    let d = crashed(&[]).decide();
    assert_eq!(d.message, "starting primary after failure");
    assert_eq!(d.actions, vec![Action::StartPrimary]);
}

/// The cluster as read from raw keys, with this `sync` value written by someone else.
fn with_raw_sync(raw: &'static str) -> impl FnOnce(&mut Cluster) {
    move |c| {
        let keys = crate::dcs::keys::Keys::new("/service", "t");
        let kv = crate::dcs::cluster::RawKv {
            value: raw.into(),
            mod_revision: 12,
            create_revision: 12,
            lease: 0,
        };
        let read = Cluster::from_kvs(&keys, [(&keys.key("sync"), &kv)], 12);
        c.sync = read.sync;
        c.warnings = read.warnings;
    }
}

const CORRUPT_SYNC: [&str; 6] = [
    "{not json",
    "[\"p2\"]",
    "\"p2\"",
    r#"{"leader": "p1", "sync_standby": ["p2"]}"#,
    r#"{"leader": 7, "sync_standby": "p2"}"#,
    r#"{"leader": "p1", "sync_standby": "p2", "quorum": "one"}"#,
];

#[test]
fn a_corrupt_sync_key_in_sync_mode_makes_no_replica_eligible() {
    for raw in CORRUPT_SYNC {
        let race = |me: &str| {
            B::new(me)
                .initialized()
                .replica(Some("p1"), 100)
                .cluster(with_raw_sync(raw))
                .with(|o| o.config.synchronous_mode = SyncMode::On)
        };
        let c = race("p2").0.cluster.clone().unwrap_or_default();
        assert!(
            c.warnings.iter().any(|w| w.starts_with("sync: ")),
            "{raw}: {c:?}"
        );
        // p2 has the most WAL and would have been the sync standby: it still may not race.
        let d = race("p2")
            .with(|o| o.peers = vec![peer("p3", 50, 1, false)])
            .decide();
        assert!(d.actions.is_empty(), "{raw}: {d:?}");
        assert!(
            d.message.contains("I am not a synchronous standby"),
            "{raw}: {d:?}"
        );
        // Without sync mode the unreadable key restricts nothing.
        let d = race("p2")
            .with(|o| o.config.synchronous_mode = SyncMode::Off)
            .decide();
        assert_eq!(
            d.actions,
            vec![Action::AcquireLock { promote: true }],
            "{raw}"
        );
    }
}

#[test]
fn the_leader_rewrites_or_deletes_a_corrupt_sync_key() {
    for raw in CORRUPT_SYNC {
        let d = leader().cluster(with_raw_sync(raw)).decide();
        assert_eq!(sync_steps(&d), vec![write(&[])], "{raw}");
        let d = leader()
            .cluster(with_raw_sync(raw))
            .with(|o| o.config.synchronous_mode_strict = true)
            .decide();
        assert_eq!(sync_steps(&d), vec![write(&[])], "{raw}");
        let d = leader()
            .cluster(with_raw_sync(raw))
            .with(|o| o.config.synchronous_mode = SyncMode::Off)
            .decide();
        assert_eq!(
            sync_steps(&d),
            vec![Action::WriteSync { standbys: None }],
            "{raw}"
        );
    }
}
