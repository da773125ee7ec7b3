//! Bootstrap, leader, follower, DCS-loss and race branches.

use super::*;
use crate::ha::*;
use serde_json::json;

#[test]
fn new_cluster_races_for_initialize() {
    let d = B::new("p1").decide();
    assert_eq!(d.message, "trying to bootstrap a new cluster");
    assert_eq!(d.actions, vec![Action::Bootstrap]);
}

#[test]
fn nofailover_or_no_bootstrap_section_waits() {
    let d = B::new("p1").with(|o| o.node.nofailover = true).decide();
    assert_eq!(d.message, "waiting for leader to bootstrap");
    assert!(d.actions.is_empty());
    let d = B::new("p1").with(|o| o.node.can_bootstrap = false).decide();
    assert!(d.actions.is_empty());
}

#[test]
fn bootstrap_in_progress_elsewhere_waits() {
    let d = B::new("p2")
        .cluster(|c| c.initialize = Some(String::new()))
        .decide();
    assert_eq!(d.message, "waiting for leader to bootstrap");
    assert!(d.actions.is_empty());
}

#[test]
fn empty_member_clones_from_running_leader() {
    let d = B::new("p2").initialized().led_by("p1").decide();
    assert_eq!(d.message, "trying to bootstrap from leader 'p1'");
    assert_eq!(
        d.actions,
        vec![Action::CreateReplica {
            source: "p1".into()
        }]
    );
}

#[test]
fn empty_member_waits_while_leader_not_running() {
    let d = B::new("p2")
        .initialized()
        .led_by("p1")
        .cluster(|c| c.members[0].data.state = "starting".into())
        .decide();
    assert_eq!(d.message, "waiting for leader to bootstrap");
}

#[test]
fn leader_with_empty_data_dir_releases_lock() {
    let d = B::new("p1")
        .initialized()
        .led_by("p1")
        .lock(LockState::Held)
        .decide();
    assert_eq!(d.actions, vec![Action::ReleaseLock]);
}

#[test]
fn task_in_progress_keeps_lock_or_waits() {
    let d = B::new("p1")
        .initialized()
        .led_by("p1")
        .lock(LockState::Held)
        .with(|o| o.task = Some(TaskKind::Bootstrap))
        .decide();
    assert_eq!(d.message, "updated leader lock during bootstrap");
    let d = B::new("p2")
        .with(|o| o.task = Some(TaskKind::CreateReplica))
        .decide();
    assert_eq!(d.message, "replica bootstrap in progress");
    assert!(d.actions.is_empty());
}

#[test]
fn leader_with_lock_refreshes_and_publishes() {
    let d = B::new("p1")
        .initialized()
        .led_by("p1")
        .primary()
        .lock(LockState::Held)
        .decide();
    assert_eq!(d.message, "no action. I am (p1), the leader with the lock");
    assert!(d.has(&Action::PublishStatus));
    assert!(d.has(&Action::SyncSlots));
    assert!(!d.has(&Action::ApplyConfig));
}

#[test]
fn leader_writes_initialize_and_seeds_config_when_missing() {
    let d = B::new("p1")
        .led_by("p1")
        .primary()
        .lock(LockState::Held)
        .with(|o| o.applied_config_version = None)
        .decide();
    assert!(d.has(&Action::WriteInitialize {
        sysid: "7000".into(),
        create_new: false
    }));
    assert!(d.has(&Action::SeedConfig));
}

#[test]
fn leader_records_new_timeline_in_history() {
    let d = B::new("p1")
        .initialized()
        .led_by("p1")
        .primary()
        .lock(LockState::Held)
        .with(|o| o.pg.timeline = Some(2))
        .decide();
    assert!(d.has(&Action::UpdateHistory));
}

#[test]
fn lock_holder_running_as_replica_promotes() {
    let d = B::new("p1")
        .initialized()
        .led_by("p1")
        .replica(None, 10)
        .lock(LockState::Held)
        .decide();
    assert_eq!(
        d.message,
        "promoted self to leader because I had the session lock"
    );
    assert!(d.has(&Action::Promote));
}

#[test]
fn a_failed_promote_comes_back_as_input_and_is_retried_with_its_reason() {
    let failed = |kind| {
        B::new("p1")
            .initialized()
            .led_by("p1")
            .replica(None, 10)
            .lock(LockState::Held)
            .with(move |o| {
                o.last_failure = Some(TaskFailure {
                    kind,
                    message: "pg_ctl promote failed: exit status 1".into(),
                    at_ms: 999_000,
                })
            })
            .decide()
    };
    let d = failed(TaskKind::Promote);
    assert_eq!(
        d.message,
        "retrying promote because I have the session lock; last attempt failed: pg_ctl promote failed: exit status 1"
    );
    assert!(d.has(&Action::Promote));
    // Another task's failure says nothing about promoting.
    let d = failed(TaskKind::Start);
    assert_eq!(
        d.message,
        "promoted self to leader because I had the session lock"
    );
}

#[test]
fn replica_follows_leader() {
    let d = B::new("p2")
        .initialized()
        .led_by("p1")
        .replica(Some("p1"), 10)
        .decide();
    assert_eq!(
        d.message,
        "no action. I am (p2), a secondary, and following a leader (p1)"
    );
    // A running replica keeps its slots in order (stale ones dropped, permanent kept).
    assert_eq!(d.actions, vec![Action::SyncSlots]);
}

#[test]
fn replica_repoints_to_new_leader() {
    let d = B::new("p2")
        .initialized()
        .led_by("p3")
        .replica(Some("p1"), 10)
        .decide();
    assert_eq!(
        d.actions,
        vec![
            Action::Follow {
                leader: "p3".into()
            },
            Action::SyncSlots
        ]
    );
}

#[test]
fn config_change_is_applied_whatever_the_role() {
    let d = B::new("p2")
        .initialized()
        .led_by("p1")
        .replica(Some("p1"), 10)
        .with(|o| o.applied_config_version = Some(2))
        .decide();
    assert!(d.has(&Action::ApplyConfig));
}

#[test]
fn primary_without_lock_demotes() {
    let d = B::new("p2").initialized().led_by("p1").primary().decide();
    assert_eq!(
        d.message,
        "demoting self because I do not have the lock and I was a leader"
    );
    assert_eq!(
        d.actions,
        vec![Action::Demote {
            mode: DemoteMode::ImmediateNolock
        }]
    );
}

#[test]
fn lock_refresh_failure_demotes_primary() {
    let d = B::new("p1")
        .initialized()
        .led_by("p1")
        .primary()
        .lock(LockState::RefreshFailed)
        .decide();
    assert_eq!(
        d.message,
        "demoted self because failed to update leader lock in DCS"
    );
    assert_eq!(
        d.actions,
        vec![Action::Demote {
            mode: DemoteMode::ImmediateNolock
        }]
    );
}

#[test]
fn dcs_unavailable_demotes_primary_but_not_replica() {
    let d = B::new("p1").primary().with(|o| o.cluster = None).decide();
    assert_eq!(
        d.actions,
        vec![Action::Demote {
            mode: DemoteMode::Offline
        }]
    );
    let d = B::new("p2")
        .replica(Some("p1"), 1)
        .with(|o| o.cluster = None)
        .decide();
    assert_eq!(d.message, "DCS is not accessible");
    assert!(d.actions.is_empty());
}

#[test]
fn stopped_replica_starts_following_leader() {
    let d = B::new("p2")
        .initialized()
        .led_by("p1")
        .replica(Some("p1"), 1)
        .stopped("shut down in recovery")
        .decide();
    assert_eq!(d.message, "starting as a secondary");
    assert_eq!(
        d.actions,
        vec![Action::StartReplica {
            leader: Some("p1".into())
        }]
    );
}

#[test]
fn crashed_leader_restarts_as_primary_while_holding_lock() {
    let d = B::new("p1")
        .initialized()
        .led_by("p1")
        .primary()
        .stopped("in production")
        .lock(LockState::Held)
        .decide();
    assert_eq!(d.message, "starting primary after failure");
    assert_eq!(d.actions, vec![Action::StartPrimary]);
}

#[test]
fn sysid_mismatch_is_fatal() {
    let d = B::new("p1")
        .initialized()
        .led_by("p2")
        .replica(Some("p2"), 1)
        .with(|o| {
            o.pg.data = DataDir::Initialized {
                sysid: "9999".into(),
            }
        })
        .decide();
    assert!(matches!(d.actions[0], Action::Fatal { .. }));
    assert!(d.message.contains("system ID mismatch"));
}

#[test]
fn race_healthiest_replica_takes_lock_and_promotes() {
    let d = B::new("p2")
        .initialized()
        .replica(Some("p1"), 100)
        .with(|o| o.peers = vec![peer("p3", 90, 1, false)])
        .decide();
    assert_eq!(d.actions, vec![Action::AcquireLock { promote: true }]);
}

#[test]
fn race_defers_to_peer_with_more_wal_or_priority_or_alive_primary() {
    let base = || B::new("p2").initialized().replica(Some("p1"), 100);
    let d = base()
        .with(|o| o.peers = vec![peer("p3", 101, 1, false)])
        .decide();
    assert!(d.actions.is_empty());
    assert!(d.message.contains("not the healthiest node"));
    let d = base()
        .with(|o| o.peers = vec![peer("p3", 100, 2, false)])
        .decide();
    assert!(d.actions.is_empty());
    let d = base()
        .with(|o| o.peers = vec![peer("p1", 50, 1, true)])
        .decide();
    assert!(d.message.contains("Primary (p1) is still alive"));
    // A nofailover peer with more WAL does not block us; an unreachable one neither.
    let d = base()
        .with(|o| {
            o.peers = vec![
                peer("p3", 500, 0, false),
                PeerStatus {
                    reachable: false,
                    ..peer("p4", 900, 1, false)
                },
            ]
        })
        .decide();
    assert_eq!(d.actions, vec![Action::AcquireLock { promote: true }]);
}

#[test]
fn race_respects_maximum_lag_and_nofailover() {
    let d = B::new("p2")
        .initialized()
        .replica(Some("p1"), 100)
        .cluster(|c| c.status.optime = 100 + 2 * 1_048_576)
        .decide();
    assert!(d.actions.is_empty());
    assert!(d.message.contains("exceeds maximum replication lag"));
    let d = B::new("p2")
        .initialized()
        .replica(Some("p1"), 100)
        .with(|o| o.node.nofailover = true)
        .decide();
    assert_eq!(
        d.message,
        "following a different leader because I am not allowed to promote"
    );
}

/// Patroni's `nofailover: false, failover_priority: 0`: the member races (the boolean
/// decides) but ranks below a peer of priority 1 with the same WAL position.
#[test]
fn explicit_nofailover_false_with_priority_zero_races_at_lowest_rank() {
    let base = || {
        B::new("p2")
            .initialized()
            .replica(Some("p1"), 100)
            .with(|o| o.node.failover_priority = 0)
    };
    let d = base().decide();
    assert_eq!(d.actions, vec![Action::AcquireLock { promote: true }]);
    let d = base()
        .with(|o| o.peers = vec![peer("p3", 100, 1, false)])
        .decide();
    assert!(d.actions.is_empty(), "{}", d.message);
}

#[test]
fn running_primary_retakes_free_lock() {
    let d = B::new("p1").initialized().primary().decide();
    assert_eq!(d.actions, vec![Action::AcquireLock { promote: false }]);
}

#[test]
fn live_postmaster_that_does_not_answer_is_left_alone() {
    let d = B::new("p2")
        .initialized()
        .led_by("p1")
        .replica(Some("p1"), 1)
        .with(|o| o.pg.running = false)
        .decide();
    assert_eq!(
        d.message,
        "Error communicating with PostgreSQL. Will try again later"
    );
    assert!(d.actions.is_empty());
}

#[test]
fn leader_writes_empty_history_on_timeline_one() {
    let d = B::new("p1")
        .initialized()
        .led_by("p1")
        .primary()
        .lock(LockState::Held)
        .decide();
    assert!(d.has(&Action::UpdateHistory));
    let d = B::new("p1")
        .initialized()
        .led_by("p1")
        .primary()
        .lock(LockState::Held)
        .cluster(|c| c.history_raw = Some(json!([])))
        .decide();
    assert!(!d.has(&Action::UpdateHistory));
}

#[test]
fn a_failed_pre_promote_keeps_the_member_out_of_the_race_for_ttl() {
    // ttl is 30 s in `initialized()`; now is 1_000_000 ms.
    let base = |failed_at: Option<u64>| {
        B::new("p2")
            .initialized()
            .replica(Some("p1"), 100)
            .with(|o| {
                o.config.ttl = 30;
                o.node.pre_promote_failed_ms = failed_at;
            })
            .decide()
    };
    let d = base(Some(1_000_000 - 29_000));
    assert!(d.actions.is_empty(), "{:?}", d.actions);
    assert!(
        d.message.contains("not the healthiest node"),
        "{}",
        d.message
    );
    let d = base(Some(1_000_000 - 30_000));
    assert_eq!(d.actions, vec![Action::AcquireLock { promote: true }]);
    let d = base(None);
    assert_eq!(d.actions, vec![Action::AcquireLock { promote: true }]);
}

#[test]
fn a_stale_view_of_our_own_lock_does_not_promote_again_after_a_failed_pre_promote() {
    // The view still shows the lock this member released after its script failed.
    let held = |failed_at: Option<u64>| {
        B::new("p2")
            .initialized()
            .led_by("p2")
            .replica(Some("p1"), 100)
            .lock(LockState::Held)
            .with(|o| {
                o.config.ttl = 30;
                o.node.pre_promote_failed_ms = failed_at;
            })
            .decide()
    };
    let d = held(Some(1_000_000 - 1_000));
    assert_eq!(d.actions, vec![Action::ReleaseLock]);
    assert!(
        d.message.contains("pre-promote script failed"),
        "{}",
        d.message
    );
    let d = held(Some(1_000_000 - 30_000));
    assert!(d.has(&Action::Promote), "{:?}", d.actions);
    assert_eq!(
        d.message,
        "promoted self to leader because I had the session lock"
    );
}

#[test]
fn no_leader_method_creates_the_data_without_a_leader() {
    let with = |o: &mut Observation| o.node.clone_without_leader = true;
    // Initialized cluster, no leader, a `no_leader` method: Patroni's bootstrap without leader.
    let d = B::new("p2").initialized().with(with).decide();
    assert_eq!(d.message, "trying to bootstrap (without leader)");
    assert_eq!(d.actions, vec![Action::CreateReplicaWithoutLeader]);
    // Not while another member bootstraps (`initialize` is ""), not without such a method,
    // and a running leader is cloned as usual.
    let d = B::new("p2")
        .cluster(|c| c.initialize = Some(String::new()))
        .with(with)
        .decide();
    assert_eq!(d.message, "waiting for leader to bootstrap");
    let d = B::new("p2").initialized().decide();
    assert_eq!(d.message, "waiting for leader to bootstrap");
    let d = B::new("p2").initialized().led_by("p1").with(with).decide();
    assert_eq!(
        d.actions,
        vec![Action::CreateReplica {
            source: "p1".into()
        }]
    );
}
