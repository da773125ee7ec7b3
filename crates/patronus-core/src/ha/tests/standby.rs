//! Standby cluster branches (docs/patroni-behaviour.md §2.3, §2.13;
//! upstream: patroni/ha.py, standby cluster paths).

use super::*;
use crate::config::standby::StandbyCluster;

/// `b` in a standby cluster following 10.0.0.9:5432.
fn standby(b: B) -> B {
    b.with(|o| {
        o.config.standby_cluster = Some(StandbyCluster {
            host: Some("10.0.0.9".into()),
            port: Some(5432),
            ..Default::default()
        })
    })
}

#[test]
fn new_standby_cluster_bootstraps_a_standby_leader_from_the_remote() {
    let d = standby(B::new("s1")).decide();
    assert_eq!(d.message, "trying to bootstrap a new standby leader");
    assert_eq!(d.actions, vec![Action::BootstrapStandbyLeader]);
    let d = standby(B::new("s1"))
        .with(|o| o.node.can_bootstrap = false)
        .decide();
    assert_eq!(d.message, "waiting for standby_leader to bootstrap");
    assert!(d.actions.is_empty());
}

#[test]
fn replicas_of_a_standby_cluster_clone_from_the_standby_leader() {
    let d = standby(B::new("s2")).initialized().led_by("s1").decide();
    assert_eq!(
        d.actions,
        vec![Action::CreateReplica {
            source: "s1".into()
        }]
    );
}

#[test]
fn standby_leader_follows_the_remote_and_never_promotes() {
    let base = || {
        standby(B::new("s1"))
            .initialized()
            .led_by("s1")
            .replica(None, 10)
            .lock(LockState::Held)
    };
    let d = base().decide();
    assert_eq!(
        d.message,
        "promoted self to a standby leader because i had the session lock"
    );
    assert!(d.has(&Action::FollowRemote));
    assert!(!d.has(&Action::Promote));
    let d = base().with(|o| o.pg.following_remote = true).decide();
    assert_eq!(
        d.message,
        "no action. I am (s1), the standby leader with the lock"
    );
    assert!(!d.has(&Action::FollowRemote));
    assert!(!d.has(&Action::Promote));
    assert!(d.has(&Action::SyncSlots));
    assert!(d.has(&Action::PublishStatus));
    assert!(crate::ha::standby::is_standby_leader(&base().0));
}

#[test]
fn removing_standby_cluster_promotes_the_standby_leader() {
    let d = B::new("s1")
        .initialized()
        .led_by("s1")
        .replica(None, 10)
        .with(|o| o.pg.following_remote = true)
        .lock(LockState::Held)
        .decide();
    assert_eq!(
        d.message,
        "promoted self to leader because I had the session lock"
    );
    assert!(d.has(&Action::Promote));
}

#[test]
fn primary_with_lock_in_a_standby_cluster_demotes_the_cluster() {
    let base = || {
        standby(B::new("p1"))
            .initialized()
            .led_by("p1")
            .primary()
            .lock(LockState::Held)
    };
    let d = base().decide();
    assert_eq!(d.message, "cannot be a real primary in standby cluster");
    assert_eq!(
        d.actions,
        vec![Action::Demote {
            mode: DemoteMode::Cluster
        }]
    );
    let d = base().with(|o| o.config.pause = true).decide();
    assert!(d.actions.is_empty(), "{d:?}");
}

#[test]
fn replicas_follow_the_standby_leader() {
    let d = standby(B::new("s2"))
        .initialized()
        .led_by("s1")
        .replica(Some("s1"), 10)
        .decide();
    assert_eq!(
        d.message,
        "no action. I am (s2), a secondary, and following a standby leader (s1)"
    );
    let d = standby(B::new("s2"))
        .initialized()
        .led_by("s1")
        .primary()
        .decide();
    assert_eq!(d.message, "cannot be a real primary in a standby cluster");
    assert_eq!(
        d.actions,
        vec![Action::Demote {
            mode: DemoteMode::ImmediateNolock
        }]
    );
}

#[test]
fn stopped_members_of_a_standby_cluster_start_following_the_remote() {
    let d = standby(B::new("s1"))
        .initialized()
        .led_by("s1")
        .replica(None, 10)
        .stopped("shut down in recovery")
        .lock(LockState::Held)
        .decide();
    assert_eq!(
        d.message,
        "starting as a standby leader because i had the session lock"
    );
    assert_eq!(d.actions, vec![Action::StartFollowingRemote]);
    let d = standby(B::new("s2"))
        .initialized()
        .replica(None, 10)
        .stopped("shut down in recovery")
        .decide();
    assert_eq!(
        d.message,
        "trying to follow a remote member because standby cluster is unhealthy"
    );
    assert_eq!(d.actions, vec![Action::StartFollowingRemote]);
    let d = standby(B::new("s2"))
        .initialized()
        .led_by("s1")
        .replica(Some("s1"), 10)
        .stopped("shut down in recovery")
        .decide();
    assert_eq!(
        d.actions,
        vec![Action::StartReplica {
            leader: Some("s1".into())
        }]
    );
}

#[test]
fn leader_race_in_a_standby_cluster_takes_the_lock_without_promoting() {
    let d = standby(B::new("s2"))
        .initialized()
        .replica(Some("s1"), 100)
        .with(|o| o.peers = vec![peer("s3", 90, 1, false)])
        .decide();
    assert_eq!(d.actions, vec![Action::AcquireLock { promote: false }]);
    assert_eq!(
        crate::ha::standby::acquired_lock_message(true),
        "promoted self to a standby leader by acquiring session lock"
    );
}

#[test]
fn permanent_slots_follow_their_cluster_type() {
    let slots = json!({
        "both": {"type": "physical"},
        "dr_only": {"type": "physical", "cluster_type": "standby"},
        "main_only": {"type": "physical", "cluster_type": "primary"}
    });
    let slots = slots.as_object().unwrap();
    let names = |standby| {
        crate::ha::standby::slots_for_cluster(slots, standby)
            .keys()
            .cloned()
            .collect::<Vec<_>>()
    };
    assert_eq!(names(false), vec!["both", "main_only"]);
    assert_eq!(names(true), vec!["both", "dr_only"]);
}

#[test]
fn a_switchover_request_is_cleared_in_a_standby_cluster() {
    let d = standby(B::new("s1"))
        .initialized()
        .led_by("s1")
        .replica(None, 10)
        .with(|o| o.pg.following_remote = true)
        .lock(LockState::Held)
        .cluster(|c| {
            c.failover = Some(Versioned {
                value: crate::dcs::Failover {
                    leader: Some("s1".into()),
                    member: Some("s2".into()),
                    scheduled_at: None,
                },
                version: 4,
            })
        })
        .decide();
    assert!(d.has(&Action::ClearFailover), "{d:?}");
    assert!(
        !d.has(&Action::Promote)
            && !d
                .actions
                .iter()
                .any(|a| matches!(a, Action::HandOver { .. }))
    );
    assert!(
        d.message.contains("not possible in a standby cluster"),
        "{d:?}"
    );
}
