use super::*;
use serde_json::json;

fn phys(name: &str, pos: Option<Lsn>) -> LocalSlot {
    LocalSlot {
        name: name.into(),
        kind: SlotKind::Physical,
        position: pos,
        active: false,
    }
}

fn logical_kind(db: &str, plugin: &str) -> SlotKind {
    SlotKind::Logical {
        database: db.into(),
        plugin: plugin.into(),
    }
}

fn logi(name: &str, db: &str, pos: Option<Lsn>) -> LocalSlot {
    LocalSlot {
        name: name.into(),
        kind: logical_kind(db, "test_decoding"),
        position: pos,
        active: false,
    }
}

fn spec(name: &str, kind: SlotKind) -> SlotSpec {
    SlotSpec {
        name: name.into(),
        kind,
    }
}

fn names(v: &[(LocalSlot, DropReason)]) -> Vec<&str> {
    v.iter().map(|(s, _)| s.name.as_str()).collect()
}

fn facts<'a>(
    role: SlotRole,
    members: &'a [String],
    permanent: &'a [SlotSpec],
    ignore: &'a [IgnoreRule],
    local: &'a [LocalSlot],
    leader: &'a BTreeMap<String, Lsn>,
) -> SlotFacts<'a> {
    SlotFacts {
        role,
        member_slots: members,
        permanent,
        ignore,
        local,
        leader_positions: leader,
        replay_lsn: Some(1000),
        own_slot: "me",
    }
}

#[test]
fn parses_permanent_slots_and_rejects_bad_ones() {
    let m = json!({
        "p1": {"type": "physical"},
        "p2": null,
        "l1": {"type": "logical", "database": "db", "plugin": "pgoutput"},
        "l2": {"database": "db", "plugin": "pgoutput"},
        "Bad-Name": {"type": "physical"},
        "l3": {"type": "logical", "database": "db"},
        "x": {"type": "other"},
    });
    let (specs, errors) = permanent_slots(m.as_object().unwrap());
    let got: Vec<(&str, &str)> = specs
        .iter()
        .map(|s| (s.name.as_str(), s.kind.type_name()))
        .collect();
    assert_eq!(
        got,
        vec![
            ("p1", "physical"),
            ("p2", "physical"),
            ("l1", "logical"),
            ("l2", "logical")
        ]
    );
    assert_eq!(errors.len(), 3, "{errors:?}");
    assert!(errors
        .iter()
        .any(|e| e.starts_with("slots.Bad-Name: invalid slot name")));
    assert!(errors
        .iter()
        .any(|e| e.contains("l3") && e.contains("database and plugin")));
}

#[test]
fn slot_names() {
    for (name, ok) in [
        ("a_1", true),
        ("", false),
        ("A", false),
        ("a-b", false),
        (&"a".repeat(63), true),
        (&"a".repeat(64), false),
    ] {
        assert_eq!(valid_slot_name(name), ok, "{name}");
    }
}

#[test]
fn ignore_rules_match_every_given_field() {
    let rules = ignore_rules(&[
        json!({"name": "keep"}),
        json!({"type": "logical", "database": "app"}),
        json!({"plugin": "pgoutput", "name": "x"}),
        json!("not a mapping"),
    ]);
    assert_eq!(rules.len(), 3);
    let cases = [
        (phys("keep", None), true),
        (phys("other", None), false),
        (logi("any", "app", None), true),
        (logi("any", "other", None), false),
        (logi("x", "other", None), false), // plugin test_decoding ≠ pgoutput
    ];
    for (slot, ignored) in cases {
        assert_eq!(rules.iter().any(|r| r.matches(&slot)), ignored, "{slot:?}");
    }
}

#[test]
fn primary_table() {
    let members = vec!["m2".to_string(), "m3".to_string()];
    let permanent = vec![
        spec("perm_p", SlotKind::Physical),
        spec("perm_l", logical_kind("db", "test_decoding")),
    ];
    let ignore = ignore_rules(&[json!({"name": "hand_kept"})]);
    let leader = BTreeMap::new();
    // (local slots, created, dropped)
    let cases: Vec<(Vec<LocalSlot>, Vec<&str>, Vec<&str>)> = vec![
        (vec![], vec!["m2", "m3", "perm_l", "perm_p"], vec![]),
        (
            vec![phys("m2", None), phys("m3", None), phys("stale", None)],
            vec!["perm_l", "perm_p"],
            vec!["stale"],
        ),
        (
            vec![phys("hand_kept", None), logi("hand", "db", None)],
            vec!["m2", "m3", "perm_l", "perm_p"],
            vec!["hand"],
        ),
        // Wrong database: dropped and created again.
        (
            vec![logi("perm_l", "other", None), phys("me", None)],
            vec!["m2", "m3", "perm_l", "perm_p"],
            vec!["perm_l", "me"],
        ),
    ];
    for (local, created, dropped) in cases {
        let f = facts(
            SlotRole::Primary,
            &members,
            &permanent,
            &ignore,
            &local,
            &leader,
        );
        let p = plan(&f);
        let c: Vec<&str> = p.create.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(c, created, "{local:?}");
        assert_eq!(names(&p.drop), dropped, "{local:?}");
        assert!(p.copy.is_empty() && p.advance.is_empty());
    }
}

#[test]
fn demoted_primary_drops_member_slots() {
    // The defect of issue #15: after a switchover the old primary kept m2/m3.
    let local = vec![
        phys("m2", Some(5)),
        phys("m3", Some(5)),
        phys("perm_p", Some(5)),
    ];
    let permanent = vec![spec("perm_p", SlotKind::Physical)];
    let leader = BTreeMap::from([("perm_p".to_string(), 900)]);
    let f = facts(SlotRole::Replica, &[], &permanent, &[], &local, &leader);
    let p = plan(&f);
    assert_eq!(names(&p.drop), vec!["m2", "m3"]);
    assert!(p.drop.iter().all(|(_, r)| *r == DropReason::Unknown));
    assert_eq!(p.advance, vec![(permanent[0].clone(), 900)]);
}

#[test]
fn replica_table() {
    let permanent = vec![
        spec("perm_p", SlotKind::Physical),
        spec("perm_l", logical_kind("db", "test_decoding")),
        spec("unpublished", logical_kind("db", "test_decoding")),
    ];
    let cascading = vec!["m4".to_string()];
    let leader = BTreeMap::from([("perm_p".to_string(), 2000), ("perm_l".to_string(), 500)]);
    // (local, created, copied, advanced, dropped)
    type Case = (
        Vec<LocalSlot>,
        Vec<&'static str>,
        Vec<&'static str>,
        Vec<(&'static str, Lsn)>,
        Vec<&'static str>,
    );
    let cases: Vec<Case> = vec![
        (vec![], vec!["m4", "perm_p"], vec!["perm_l"], vec![], vec![]),
        (
            vec![
                phys("perm_p", Some(10)),
                logi("perm_l", "db", Some(400)),
                phys("m4", None),
            ],
            vec![],
            vec![],
            // Bounded by the replay position (1000).
            vec![("perm_l", 500), ("perm_p", 1000)],
            vec![],
        ),
        (
            vec![
                phys("perm_p", Some(1000)),
                logi("perm_l", "db", Some(500)),
                phys("m4", None),
            ],
            vec![],
            vec![],
            vec![],
            vec![],
        ),
        (
            vec![
                phys("m4", None),
                phys("perm_p", Some(1000)),
                logi("unpublished", "db", None),
            ],
            vec![],
            vec!["perm_l"],
            vec![],
            vec!["unpublished"],
        ),
    ];
    for (local, created, copied, advanced, dropped) in cases {
        let f = facts(
            SlotRole::Replica,
            &cascading,
            &permanent,
            &[],
            &local,
            &leader,
        );
        let p = plan(&f);
        let c: Vec<&str> = p.create.iter().map(|s| s.name.as_str()).collect();
        let k: Vec<&str> = p.copy.iter().map(|s| s.name.as_str()).collect();
        let a: Vec<(&str, Lsn)> = p
            .advance
            .iter()
            .map(|(s, l)| (s.name.as_str(), *l))
            .collect();
        assert_eq!(c, created, "{local:?}");
        assert_eq!(k, copied, "{local:?}");
        assert_eq!(a, advanced, "{local:?}");
        assert_eq!(names(&p.drop), dropped, "{local:?}");
    }
}

#[test]
fn published_positions_are_the_permanent_slots() {
    let permanent = vec![spec("perm_p", SlotKind::Physical)];
    let local = vec![phys("perm_p", Some(7)), phys("m2", Some(9))];
    assert_eq!(
        published_positions(&permanent, &local),
        BTreeMap::from([("perm_p".to_string(), 7)])
    );
}

#[test]
fn retention_table() {
    let seen = BTreeMap::from([("gone".to_string(), 1_000), ("old".to_string(), 0)]);
    let cur = vec!["m2".to_string()];
    // ttl 0: only current members.
    let r = retain(&seen, &cur, &["prev".into()], 10_000, 0);
    assert_eq!(r.keys().collect::<Vec<_>>(), vec!["m2"]);
    // ttl 5 s at t=10 s: "gone" (seen at 1 s) expired, "old" too; "prev" adopted now.
    let r = retain(&seen, &cur, &["prev".into()], 10_000, 5);
    assert_eq!(r.keys().collect::<Vec<_>>(), vec!["m2", "prev"]);
    // ttl 30 min keeps everybody.
    let r = retain(&seen, &cur, &[], 10_000, 1800);
    assert_eq!(r.keys().collect::<Vec<_>>(), vec!["gone", "m2", "old"]);
    assert_eq!(r["gone"], 1_000);
}

#[test]
fn an_active_slot_is_never_dropped() {
    let mut busy = phys("walsender_uses_it", Some(1));
    busy.active = true;
    let local = vec![busy, phys("idle", Some(1))];
    let leader = BTreeMap::new();
    let f = facts(SlotRole::Replica, &[], &[], &[], &local, &leader);
    assert_eq!(names(&plan(&f).drop), vec!["idle"]);
}
