use super::*;
use crate::dcs::cluster::Leader;
use serde_json::json;

fn entry(name: &str, state: &str, tags: Value) -> MemberEntry {
    MemberEntry {
        name: name.into(),
        data: Member {
            state: state.into(),
            conn_url: format!("postgres://127.0.0.1:54{}/postgres", name.len()),
            tags: tags.as_object().cloned().unwrap_or_default(),
            ..Member::default()
        },
        version: 1,
        lease: 1,
    }
}

/// Leader `a`; `b` and `c` running replicas with the given tags.
fn cluster(b_tags: Value, c_tags: Value) -> Cluster {
    Cluster {
        leader: Some(Leader {
            name: "a".into(),
            lease: 1,
            version: 1,
        }),
        members: vec![
            entry("a", "running", json!({})),
            entry("b", "running", b_tags),
            entry("c", "running", c_tags),
        ],
        ..Cluster::default()
    }
}

fn tags(v: Value) -> StreamTags {
    StreamTags::from_tags(v.as_object().unwrap())
}

#[test]
fn tags_are_read_as_patroni_reads_them() {
    assert_eq!(tags(json!({})), StreamTags::default());
    let t = tags(json!({"nostream": "true", "replicatefrom": "b"}));
    assert!(t.nostream);
    assert_eq!(t.replicatefrom.as_deref(), Some("b"));
    assert_eq!(tags(json!({"replicatefrom": ""})).replicatefrom, None);
    assert_eq!(tags(json!({"replicatefrom": 3})).replicatefrom, None);
}

#[test]
fn a_plain_replica_streams_from_the_leader() {
    let c = cluster(json!({}), json!({}));
    assert_eq!(
        upstream(&c, "b", &StreamTags::default(), Some("a")).as_deref(),
        Some("a")
    );
    assert_eq!(upstream(&c, "a", &StreamTags::default(), Some("a")), None);
    assert_eq!(upstream(&c, "b", &StreamTags::default(), None), None);
}

#[test]
fn nostream_streams_from_nobody_even_with_replicatefrom() {
    let c = cluster(json!({}), json!({}));
    let t = tags(json!({"nostream": true, "replicatefrom": "b"}));
    assert_eq!(upstream(&c, "c", &t, Some("a")), None);
}

#[test]
fn replicatefrom_streams_from_the_named_running_member() {
    let c = cluster(json!({}), json!({"replicatefrom": "b"}));
    let t = tags(json!({"replicatefrom": "b"}));
    assert_eq!(upstream(&c, "c", &t, Some("a")).as_deref(), Some("b"));
}

#[test]
fn replicatefrom_falls_back_to_the_leader() {
    let t = tags(json!({"replicatefrom": "b"}));
    // Gone from the DCS.
    let mut c = cluster(json!({}), json!({}));
    c.members.retain(|m| m.name != "b");
    assert_eq!(cascade_check(&c, "c", "b"), Err(Fallback::Gone));
    assert_eq!(upstream(&c, "c", &t, Some("a")).as_deref(), Some("a"));
    // Not running.
    let mut c = cluster(json!({}), json!({}));
    c.members[1].data.state = "stopped".into();
    assert_eq!(cascade_check(&c, "c", "b"), Err(Fallback::NotRunning));
    assert_eq!(upstream(&c, "c", &t, Some("a")).as_deref(), Some("a"));
    // No address.
    let mut c = cluster(json!({}), json!({}));
    c.members[1].data.conn_url.clear();
    assert_eq!(upstream(&c, "c", &t, Some("a")).as_deref(), Some("a"));
    // Naming itself or the leader.
    let c = cluster(json!({}), json!({}));
    let own = tags(json!({"replicatefrom": "c"}));
    assert_eq!(upstream(&c, "c", &own, Some("a")).as_deref(), Some("a"));
    let lead = tags(json!({"replicatefrom": "a"}));
    assert_eq!(upstream(&c, "c", &lead, Some("a")).as_deref(), Some("a"));
}

#[test]
fn a_replicatefrom_loop_falls_back_to_the_leader() {
    let c = cluster(json!({"replicatefrom": "c"}), json!({"replicatefrom": "b"}));
    assert_eq!(cascade_check(&c, "c", "b"), Err(Fallback::Loop));
    let t = tags(json!({"replicatefrom": "b"}));
    assert_eq!(upstream(&c, "c", &t, Some("a")).as_deref(), Some("a"));
}

#[test]
fn the_leader_keeps_slots_for_the_members_that_stream_from_it() {
    let c = cluster(json!({"nostream": true}), json!({}));
    assert!(!leader_keeps_slot_for(&c, "a", &c.members[1]), "nostream");
    assert!(leader_keeps_slot_for(&c, "a", &c.members[2]));
    assert!(!leader_keeps_slot_for(&c, "a", &c.members[0]), "itself");
    // A cascading member: its slot is on its upstream, not on the leader…
    let c = cluster(json!({}), json!({"replicatefrom": "b"}));
    assert!(!leader_keeps_slot_for(&c, "a", &c.members[2]));
    assert!(replica_keeps_slot_for(&c, "b", &c.members[2]));
    assert!(!replica_keeps_slot_for(&c, "b", &c.members[0]));
    // …until the upstream stops: then the leader serves it again.
    let mut c = c;
    c.members[1].data.state = "stopped".into();
    assert!(leader_keeps_slot_for(&c, "a", &c.members[2]));
    assert!(!replica_keeps_slot_for(&c, "b", &c.members[2]));
}

#[test]
fn slot_members_are_those_that_stream_from_me_and_only_with_use_slots() {
    let c = cluster(json!({"nostream": true}), json!({}));
    assert_eq!(slot_members(&c, "a", true, true), ["c"]);
    assert!(slot_members(&c, "a", true, false).is_empty());
    let c = cluster(json!({}), json!({"replicatefrom": "b"}));
    assert_eq!(slot_members(&c, "a", true, true), ["b"]);
    assert_eq!(slot_members(&c, "b", false, true), ["c"]);
    assert!(slot_members(&c, "b", false, false).is_empty());
    assert!(slot_members(&c, "c", false, true).is_empty());
}

#[test]
fn a_nostream_member_gets_no_slot_anywhere() {
    let c = cluster(json!({}), json!({"nostream": true, "replicatefrom": "b"}));
    assert!(!leader_keeps_slot_for(&c, "a", &c.members[2]));
    assert!(!replica_keeps_slot_for(&c, "b", &c.members[2]));
}

#[test]
fn clone_source_prefers_a_running_clonefrom_replica() {
    let c = cluster(json!({"clonefrom": true}), json!({}));
    assert_eq!(
        clone_source(&c, "d"),
        Some(CloneSource::Replica("b".into()))
    );
    assert_eq!(clone_source(&c, "d").unwrap().describe(), "replica 'b'");
    // Never itself.
    assert_eq!(clone_source(&c, "b"), Some(CloneSource::Leader("a".into())));
}

#[test]
fn clone_source_falls_back_to_the_leader() {
    let c = cluster(json!({}), json!({}));
    let s = clone_source(&c, "d").unwrap();
    assert_eq!(s, CloneSource::Leader("a".into()));
    assert_eq!(s.describe(), "leader 'a'");
    let mut c = cluster(json!({"clonefrom": true}), json!({}));
    c.members[1].data.state = "creating replica".into();
    assert_eq!(clone_source(&c, "d"), Some(CloneSource::Leader("a".into())));
    c.leader = None;
    assert_eq!(clone_source(&c, "d"), None);
}

#[test]
fn clone_source_spreads_new_members_over_the_candidates() {
    let c = cluster(json!({"clonefrom": true}), json!({"clonefrom": true}));
    let picks: std::collections::BTreeSet<String> = ["d", "e", "f", "g", "h", "i"]
        .iter()
        .map(|me| clone_source(&c, me).unwrap().name().to_string())
        .collect();
    assert_eq!(
        picks,
        ["b", "c"].iter().map(|s| s.to_string()).collect(),
        "both candidates are used"
    );
    assert_eq!(clone_source(&c, "d"), clone_source(&c, "d"), "stable");
}

#[test]
fn feedback_reaches_the_primary_only_through_streaming_members() {
    let none = StreamTags::default();
    let c = cluster(json!({}), json!({"replicatefrom": "b"}));
    assert!(streams_from_primary(&c, "b", &none));
    assert!(streams_from_primary(
        &c,
        "c",
        &tags(json!({"replicatefrom": "b"}))
    ));
    assert!(!streams_from_primary(
        &c,
        "c",
        &tags(json!({"nostream": true}))
    ));
    // Cascading from a nostream member: no feedback either.
    let c = cluster(json!({"nostream": true}), json!({"replicatefrom": "b"}));
    assert!(!streams_from_primary(
        &c,
        "c",
        &tags(json!({"replicatefrom": "b"}))
    ));
    // A loop.
    let c = cluster(json!({"replicatefrom": "c"}), json!({"replicatefrom": "b"}));
    assert!(!streams_from_primary(
        &c,
        "c",
        &tags(json!({"replicatefrom": "b"}))
    ));
    // A departed upstream: the member streams from the leader.
    let c = cluster(json!({}), json!({}));
    assert!(streams_from_primary(
        &c,
        "c",
        &tags(json!({"replicatefrom": "x"}))
    ));
}
