//! The `nostream`, `replicatefrom` and `clonefrom` tags in the decision (issue #15 item 3).

use super::*;
use crate::ha::upstream::StreamTags;

/// A running replica `name` with an address and these tags.
fn tagged(name: &str, state: &str, tags: serde_json::Value) -> MemberEntry {
    let mut m = member(name, state, "replica");
    m.data.conn_url = format!("postgres://127.0.0.1:5433/{name}");
    m.data.tags = tags.as_object().cloned().unwrap_or_default();
    m
}

fn stream(nostream: bool, replicatefrom: Option<&str>) -> StreamTags {
    StreamTags {
        nostream,
        replicatefrom: replicatefrom.map(str::to_string),
    }
}

#[test]
fn nostream_replica_follows_nobody() {
    // Running without an upstream: nothing to change.
    let d = B::new("p2")
        .initialized()
        .led_by("p1")
        .replica(None, 10)
        .with(|o| o.node.stream = stream(true, None))
        .decide();
    assert_eq!(d.actions, vec![Action::SyncSlots], "{d:?}");
    assert_eq!(
        d.message,
        "no action. I am (p2), a secondary, and following a leader (p1)"
    );
    // Tagged while it streams: it stops streaming.
    let d = B::new("p2")
        .initialized()
        .led_by("p1")
        .replica(Some("p1"), 10)
        .with(|o| o.node.stream = stream(true, None))
        .decide();
    assert_eq!(d.actions, vec![Action::StopStreaming, Action::SyncSlots]);
}

#[test]
fn nostream_replica_starts_without_upstream() {
    let d = B::new("p2")
        .initialized()
        .led_by("p1")
        .replica(None, 10)
        .stopped("shut down in recovery")
        .with(|o| o.node.stream = stream(true, None))
        .decide();
    assert_eq!(d.actions, vec![Action::StartReplica { leader: None }]);
}

#[test]
fn nostream_replica_stays_a_failover_candidate() {
    let d = B::new("p2")
        .initialized()
        .replica(None, 10)
        .with(|o| o.node.stream = stream(true, None))
        .decide();
    assert_eq!(d.actions, vec![Action::AcquireLock { promote: true }]);
}

#[test]
fn replicatefrom_replica_streams_from_the_named_member() {
    let d = B::new("p3")
        .initialized()
        .led_by("p1")
        .cluster(|c| c.members.push(tagged("p2", "running", json!({}))))
        .replica(Some("p1"), 10)
        .with(|o| o.node.stream = stream(false, Some("p2")))
        .decide();
    assert_eq!(
        d.actions,
        vec![
            Action::Follow {
                leader: "p2".into()
            },
            Action::SyncSlots
        ]
    );
    // Already there: nothing to do.
    let d = B::new("p3")
        .initialized()
        .led_by("p1")
        .cluster(|c| c.members.push(tagged("p2", "running", json!({}))))
        .replica(Some("p2"), 10)
        .with(|o| o.node.stream = stream(false, Some("p2")))
        .decide();
    assert_eq!(d.actions, vec![Action::SyncSlots]);
}

#[test]
fn replicatefrom_replica_moves_to_the_leader_when_its_upstream_stops() {
    for upstream in [Some("stopped"), None] {
        let d = B::new("p3")
            .initialized()
            .led_by("p1")
            .cluster(|c| {
                if let Some(state) = upstream {
                    c.members.push(tagged("p2", state, json!({})));
                }
            })
            .replica(Some("p2"), 10)
            .with(|o| o.node.stream = stream(false, Some("p2")))
            .decide();
        assert_eq!(
            d.actions,
            vec![
                Action::Follow {
                    leader: "p1".into()
                },
                Action::SyncSlots
            ],
            "upstream {upstream:?}"
        );
    }
}

#[test]
fn replicatefrom_replica_starts_from_its_upstream() {
    let d = B::new("p3")
        .initialized()
        .led_by("p1")
        .cluster(|c| c.members.push(tagged("p2", "running", json!({}))))
        .replica(None, 10)
        .stopped("shut down in recovery")
        .with(|o| o.node.stream = stream(false, Some("p2")))
        .decide();
    assert_eq!(
        d.actions,
        vec![Action::StartReplica {
            leader: Some("p2".into())
        }]
    );
}

#[test]
fn empty_member_clones_from_a_clonefrom_replica() {
    let d = B::new("p3")
        .initialized()
        .led_by("p1")
        .cluster(|c| {
            c.members
                .push(tagged("p2", "running", json!({"clonefrom": true})))
        })
        .decide();
    assert_eq!(d.message, "trying to bootstrap from replica 'p2'");
    assert_eq!(
        d.actions,
        vec![Action::CreateReplica {
            source: "p2".into()
        }]
    );
    // A clonefrom replica that does not run is no source: the leader is.
    let d = B::new("p3")
        .initialized()
        .led_by("p1")
        .cluster(|c| {
            c.members
                .push(tagged("p2", "stopped", json!({"clonefrom": true})))
        })
        .decide();
    assert_eq!(d.message, "trying to bootstrap from leader 'p1'");
}

#[test]
fn reinitialize_prefers_clonefrom_unless_from_leader() {
    let run = |from_leader: bool| {
        B::new("p3")
            .initialized()
            .led_by("p1")
            .cluster(|c| {
                c.members
                    .push(tagged("p2", "running", json!({"clonefrom": true})))
            })
            .replica(Some("p1"), 1)
            .with(|o| {
                o.request = Some(Request::Reinitialize {
                    from_leader,
                    force: false,
                })
            })
            .decide()
    };
    let d = run(false);
    assert_eq!(d.message, "reinitializing from replica 'p2'");
    assert_eq!(
        d.actions,
        vec![Action::Reinitialize {
            leader: "p2".into()
        }]
    );
    let d = run(true);
    assert_eq!(d.message, "reinitializing from leader 'p1'");
    assert_eq!(
        d.actions,
        vec![Action::Reinitialize {
            leader: "p1".into()
        }]
    );
}
