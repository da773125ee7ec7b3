//! Rejoin, switchover and request branches.

use super::*;
use crate::dcs::cluster::Versioned;
use crate::dcs::Cluster;
use crate::ha::*;

#[test]
fn crashed_former_primary_waits_then_rewinds_or_reclones() {
    let base = || {
        B::new("p1")
            .initialized()
            .led_by("p2")
            .primary()
            .stopped("in production")
            .cluster(|c| c.members[0].data.timeline = Some(1))
    };
    // The new leader has not published timeline 2 yet: wait.
    let d = base().decide();
    assert!(d.actions.is_empty(), "{d:?}");
    assert!(d.message.contains("to record its timeline switch"));
    // Leader on timeline 2 with history: our WAL end is unknown → rewind.
    let promoted = |c: &mut Cluster| {
        c.members[0].data.timeline = Some(2);
        c.history = vec![crate::dcs::HistoryLine {
            timeline: 1,
            lsn: 5000,
            reason: "no recovery target specified".into(),
            timestamp: None,
            new_leader: None,
        }];
    };
    let d = base().cluster(promoted).decide();
    assert_eq!(
        d.actions,
        vec![Action::Rewind {
            leader: "p2".into()
        }]
    );
    // Without pg_rewind: re-clone.
    let d = base()
        .cluster(promoted)
        .with(|o| o.node.use_pg_rewind = false)
        .decide();
    assert_eq!(d.message, "reinitializing due to diverged timelines");
    assert_eq!(
        d.actions,
        vec![Action::Reinitialize {
            leader: "p2".into()
        }]
    );
    // wal_log_hints off and no checksums: re-clone too.
    let d = base()
        .cluster(promoted)
        .with(|o| o.pg.rewind_possible = false)
        .decide();
    assert!(matches!(d.actions[0], Action::Reinitialize { .. }));
}

#[test]
fn cleanly_stopped_former_primary_before_switch_point_just_follows() {
    let d = B::new("p1")
        .initialized()
        .led_by("p2")
        .primary()
        .stopped("shut down")
        .with(|o| o.pg.control_lsn = Some(4000))
        .cluster(promoted_at(4100))
        .decide();
    assert_eq!(
        d.actions,
        vec![Action::StartReplica {
            leader: Some("p2".into())
        }]
    );
}

#[test]
fn diverged_running_replica_is_rewound() {
    let d = B::new("p3")
        .initialized()
        .led_by("p2")
        .replica(Some("p2"), 6000)
        .cluster(promoted_p2)
        .decide();
    assert_eq!(
        d.actions,
        vec![Action::Rewind {
            leader: "p2".into()
        }]
    );
}

/// A demoted primary follows the new leader at once: its WAL receiver fetches timeline 3
/// from it before the leader's member key and history say 3 (they still say 2).
#[test]
fn a_replica_ahead_of_the_published_leader_timeline_by_its_receiver_is_not_rewound() {
    let ahead = |from_receiver: bool| {
        B::new("p3")
            .initialized()
            .led_by("p2")
            .replica(Some("p2"), 6000)
            .cluster(promoted_p2)
            .with(move |o| {
                o.pg.timeline = Some(3);
                o.pg.timeline_from_receiver = from_receiver;
            })
            .decide()
    };
    let d = ahead(true);
    assert!(
        !d.actions.iter().any(|a| matches!(a, Action::Rewind { .. })),
        "{d:?}"
    );
    assert!(d.message.contains("following a leader (p2)"), "{d:?}");
    // The same timeline read from our own files (no receiver) is a divergence: rewind.
    assert_eq!(
        ahead(false).actions,
        vec![Action::Rewind {
            leader: "p2".into()
        }]
    );
}

#[test]
fn switchover_request_on_leader_hands_over() {
    let d = B::new("p1")
        .initialized()
        .led_by("p1")
        .primary()
        .lock(LockState::Held)
        .cluster(|c| {
            c.members.push(member("p2", "running", "replica"));
            c.failover = Some(Versioned {
                value: crate::dcs::Failover {
                    leader: Some("p1".into()),
                    member: Some("p2".into()),
                    scheduled_at: None,
                },
                version: 7,
            });
        })
        .decide();
    assert_eq!(d.message, "switchover: demoting myself");
    assert_eq!(
        d.actions,
        vec![Action::HandOver {
            candidate: Some("p2".into())
        }]
    );
}

#[test]
fn switchover_to_unhealthy_candidate_is_dropped() {
    let d = B::new("p1")
        .initialized()
        .led_by("p1")
        .primary()
        .lock(LockState::Held)
        .cluster(|c| {
            c.members.push(member("p2", "stopped", "replica"));
            c.failover = Some(Versioned {
                value: crate::dcs::Failover {
                    leader: Some("p1".into()),
                    member: Some("p2".into()),
                    scheduled_at: None,
                },
                version: 7,
            });
        })
        .decide();
    assert_eq!(
        d.message,
        "switchover: no healthy members found, failover is not possible"
    );
    assert_eq!(d.actions, vec![Action::ClearFailover]);
}

#[test]
fn scheduled_switchover_waits_for_its_time_then_runs() {
    let at = "2026-11-22T10:00:00+00:00";
    let at_ms = crate::ha::switchover::parse_time_ms(at).unwrap();
    let obs = |now: u64| {
        B::new("p1")
            .initialized()
            .led_by("p1")
            .primary()
            .lock(LockState::Held)
            .with(move |o| o.now_ms = now)
            .cluster(|c| {
                c.members.push(member("p2", "running", "replica"));
                c.failover = Some(Versioned {
                    value: crate::dcs::Failover {
                        leader: Some("p1".into()),
                        member: None,
                        scheduled_at: Some(at.into()),
                    },
                    version: 7,
                });
            })
    };
    let d = obs(at_ms - 5_000).decide();
    assert!(d.actions.is_empty());
    assert_eq!(d.wake_at_ms, Some(at_ms));
    let d = obs(at_ms + 100).decide();
    assert_eq!(d.actions, vec![Action::HandOver { candidate: None }]);
    let d = obs(at_ms + 60_000).decide();
    assert_eq!(d.message, "Found a stale failover value, cleaning up");
}

#[test]
fn race_with_named_candidate() {
    let key = |c: &mut Cluster| {
        c.failover = Some(Versioned {
            value: crate::dcs::Failover {
                leader: Some("p1".into()),
                member: Some("p3".into()),
                scheduled_at: None,
            },
            version: 7,
        })
    };
    // The named candidate takes the lock even though a peer has more WAL.
    let d = B::new("p3")
        .initialized()
        .replica(Some("p1"), 10)
        .cluster(key)
        .with(|o| o.peers = vec![peer("p2", 99, 1, false)])
        .decide();
    assert_eq!(d.actions, vec![Action::AcquireLock { promote: true }]);
    // Others defer to a healthy named candidate.
    let d = B::new("p2")
        .initialized()
        .replica(Some("p1"), 99)
        .cluster(key)
        .with(|o| o.peers = vec![peer("p3", 10, 1, false)])
        .decide();
    assert!(d.actions.is_empty());
    // The former leader steps aside while another candidate is healthy.
    let d = B::new("p1")
        .initialized()
        .replica(Some("p3"), 99)
        .cluster(|c| {
            c.failover = Some(Versioned {
                value: crate::dcs::Failover {
                    leader: Some("p1".into()),
                    member: None,
                    scheduled_at: None,
                },
                version: 7,
            })
        })
        .with(|o| o.peers = vec![peer("p3", 99, 1, false)])
        .decide();
    assert!(d.actions.is_empty());
}

#[test]
fn a_due_scheduled_switchover_keeps_its_candidate_after_the_hand_over() {
    let now = B::new("p2").0.now_ms;
    let key = move |at_ms: u64| {
        move |c: &mut Cluster| {
            let at = chrono::DateTime::from_timestamp_millis(at_ms as i64)
                .unwrap()
                .to_rfc3339();
            c.failover = Some(Versioned {
                value: crate::dcs::Failover {
                    leader: Some("p1".into()),
                    member: Some("p3".into()),
                    scheduled_at: Some(at),
                },
                version: 7,
            })
        }
    };
    let decide = |at_ms: u64| {
        B::new("p2")
            .initialized()
            .replica(Some("p1"), 99)
            .cluster(key(at_ms))
            .with(|o| o.peers = vec![peer("p3", 10, 1, false)])
            .decide()
    };
    // Due (the leader released the lock to hand over): p2 defers to the named p3.
    let d = decide(now - 1000);
    assert!(d.actions.is_empty(), "{d:?}");
    assert!(d.message.contains("a failover candidate is named"), "{d:?}");
    // Not due yet and the leader is gone: the switchover is void, p2 races normally.
    let d = decide(now + 60_000);
    assert_eq!(d.actions, vec![Action::AcquireLock { promote: true }]);
}

#[test]
fn requests_restart_and_reinitialize() {
    let d = B::new("p2")
        .initialized()
        .led_by("p1")
        .replica(Some("p1"), 1)
        .with(|o| {
            o.request = Some(Request::Reinitialize {
                from_leader: false,
                force: false,
            })
        })
        .decide();
    assert_eq!(
        d.actions,
        vec![Action::Reinitialize {
            leader: "p1".into()
        }]
    );
    let d = B::new("p1")
        .initialized()
        .led_by("p1")
        .primary()
        .lock(LockState::Held)
        .with(|o| {
            o.request = Some(Request::Reinitialize {
                from_leader: false,
                force: false,
            })
        })
        .decide();
    assert_eq!(d.message, "I am the leader, can not reinitialize");
    assert!(d.actions.is_empty());
    let d = B::new("p1")
        .initialized()
        .led_by("p1")
        .primary()
        .lock(LockState::Held)
        .with(|o| o.request = Some(Request::Restart))
        .decide();
    assert_eq!(d.actions, vec![Action::Restart]);
}

#[test]
fn leader_start_beyond_primary_start_timeout_fails_over() {
    let base = |started: u64| {
        B::new("p1")
            .initialized()
            .led_by("p1")
            .primary()
            .stopped("in production")
            .lock(LockState::Held)
            .cluster(|c| c.members.push(member("p2", "running", "replica")))
            .with(move |o| {
                o.task = Some(TaskKind::Start);
                o.task_started_ms = Some(started);
                o.config.primary_start_timeout = 30;
            })
    };
    let d = base(1_000_000 - 10_000).decide();
    assert_eq!(d.message, "updated leader lock during starting");
    let d = base(1_000_000 - 31_000).decide();
    assert_eq!(d.message, "stopped PostgreSQL because of startup timeout");
    assert_eq!(
        d.actions,
        vec![Action::Demote {
            mode: DemoteMode::Immediate
        }]
    );
}

#[test]
fn scheduled_restart_runs_at_its_time_and_not_while_paused() {
    let base = |at: u64| {
        B::new("p2")
            .initialized()
            .led_by("p1")
            .replica(Some("p1"), 1)
            .with(move |o| o.scheduled_restart_ms = Some(at))
    };
    let d = base(1_000_000 + 60_000).decide();
    assert!(!d.has(&Action::Restart));
    let d = base(1_000_000 - 1).decide();
    assert_eq!(d.message, "restarting after a scheduled restart");
    assert_eq!(d.actions, vec![Action::Restart]);
    let d = base(1_000_000 - 1).with(|o| o.config.pause = true).decide();
    assert!(!d.has(&Action::Restart));
}

#[test]
fn paused_member_with_empty_data_dir_does_not_bootstrap() {
    let d = B::new("p1").with(|o| o.config.pause = true).decide();
    assert_eq!(d.message, "running with empty data directory");
    assert!(d.actions.is_empty());
    let d = B::new("p2")
        .initialized()
        .led_by("p1")
        .with(|o| o.config.pause = true)
        .decide();
    assert!(d.actions.is_empty());
}

#[test]
fn scheduled_times_parse_with_or_without_seconds() {
    let a = crate::ha::switchover::parse_time_ms("2026-12-01T02:00+00:00");
    let b = crate::ha::switchover::parse_time_ms("2026-12-01T02:00:00Z");
    assert!(a.is_some());
    assert_eq!(a, b);
    assert!(
        crate::ha::switchover::parse_time_ms("2026-12-01T02:00").is_none(),
        "a zone is required"
    );
}

/// The leader (first member) on timeline 2, forked from timeline 1 at `lsn`.
fn promoted_at(lsn: u64) -> impl Fn(&mut Cluster) {
    move |c: &mut Cluster| {
        c.members[0].data.timeline = Some(2);
        c.history = vec![crate::dcs::HistoryLine {
            timeline: 1,
            lsn,
            reason: String::new(),
            timestamp: None,
            new_leader: None,
        }];
    }
}

/// The leader `p2` on timeline 2, forked from timeline 1 at 5000.
pub(super) fn promoted_p2(c: &mut Cluster) {
    promoted_at(5000)(c)
}

#[test]
fn diverged_member_waits_while_the_leader_is_not_running() {
    let running = B::new("p3")
        .initialized()
        .led_by("p2")
        .replica(Some("p2"), 6000)
        .cluster(promoted_p2)
        .cluster(|c| c.members[0].data.state = "stopped".into())
        .decide();
    assert!(running.actions.is_empty(), "{running:?}");
    assert!(running.message.contains("waiting for it to run"));
    let stopped = B::new("p1")
        .initialized()
        .led_by("p2")
        .primary()
        .stopped("in production")
        .cluster(promoted_p2)
        .cluster(|c| c.members[0].data.state = "starting".into())
        .decide();
    assert!(stopped.actions.is_empty(), "{stopped:?}");
}

#[test]
fn a_replica_whose_timeline_is_unknown_is_never_rewound() {
    // No WAL receiver and IDENTIFY_SYSTEM failed: replay past the fork point proves nothing.
    let d = B::new("p3")
        .initialized()
        .led_by("p2")
        .replica(Some("p2"), 6000)
        .with(|o| o.pg.timeline = None)
        .cluster(promoted_p2)
        .decide();
    assert!(
        !d.actions
            .iter()
            .any(|a| matches!(a, Action::Rewind { .. } | Action::Reinitialize { .. })),
        "{d:?}"
    );
}

#[test]
fn a_rewound_member_that_crashed_starts_as_a_replica() {
    // pg_rewind brought it to timeline 2 (its minimum recovery point is there), then the
    // postmaster died before a restartpoint: start and stream, no second rewind.
    let d = B::new("p1")
        .initialized()
        .led_by("p2")
        .replica(None, 0)
        .stopped("in archive recovery")
        .with(|o| {
            o.pg.timeline = Some(2);
            o.pg.control_lsn = Some(7000);
        })
        .cluster(promoted_p2)
        .decide();
    assert_eq!(
        d.actions,
        vec![Action::StartReplica {
            leader: Some("p2".into())
        }]
    );
}

#[test]
fn a_rewind_that_keeps_failing_is_not_retried() {
    let diverged = |failures: u32| {
        B::new("p1")
            .initialized()
            .led_by("p2")
            .primary()
            .stopped("in production")
            .cluster(promoted_p2)
            .with(move |o| o.pg.rewind_failures = failures)
            .decide()
    };
    assert!(matches!(diverged(1).actions[..], [Action::Rewind { .. }]));
    let d = diverged(crate::ha::decide::MAX_REWIND_FAILURES);
    assert!(d.message.contains("not retrying"), "{d:?}");
    assert_eq!(
        d.actions,
        vec![Action::StartReplica {
            leader: Some("p2".into())
        }]
    );
    let running = B::new("p3")
        .initialized()
        .led_by("p2")
        .replica(Some("p2"), 6000)
        .cluster(promoted_p2)
        .with(|o| o.pg.rewind_failures = 2)
        .decide();
    assert!(running.actions.is_empty(), "{running:?}");
}
