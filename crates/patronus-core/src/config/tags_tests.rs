//! Patroni's tag rules (`patroni/tags.py`, `patroni/utils.py`) as one table.

use super::*;
use serde_json::json;

fn tags(v: Value) -> Map<String, Value> {
    v.as_object().cloned().expect("a JSON object")
}

/// (tags, nofailover, failover_priority) — `Tags.nofailover` / `Tags.failover_priority`.
#[test]
fn failover_table() {
    let rows = [
        (json!({}), false, 1),
        (json!({"failover_priority": 3}), false, 3),
        (json!({"failover_priority": "2"}), false, 2),
        (json!({"failover_priority": 2.0}), false, 2),
        (json!({"failover_priority": "high"}), false, 1),
        (json!({"failover_priority": 0}), true, 0),
        (json!({"failover_priority": -1}), true, -1),
        (json!({"nofailover": true}), true, 0),
        (json!({"nofailover": "yes"}), true, 0),
        (json!({"nofailover": false}), false, 1),
        (json!({"nofailover": null, "failover_priority": 0}), true, 0),
        // Contradictions: the boolean decides whether the member may fail over; the
        // priority stays what the tag says (0 ranks below everyone) unless nofailover is set.
        (json!({"nofailover": true, "failover_priority": 5}), true, 0),
        (
            json!({"nofailover": false, "failover_priority": 0}),
            false,
            0,
        ),
        (
            json!({"nofailover": false, "failover_priority": 4}),
            false,
            4,
        ),
    ];
    for (t, nofailover, priority) in rows {
        let map = tags(t.clone());
        let tags = Tags::of(&map);
        assert_eq!(tags.nofailover(), nofailover, "nofailover of {t}");
        assert_eq!(
            tags.failover_priority(),
            priority,
            "failover_priority of {t}"
        );
    }
}

/// `nosync` / `sync_priority` follow the same rule.
#[test]
fn sync_table() {
    let rows = [
        (json!({}), false, 1),
        (json!({"sync_priority": 0}), true, 0),
        (json!({"nosync": true, "sync_priority": 3}), true, 0),
        (json!({"nosync": false, "sync_priority": 0}), false, 0),
        (json!({"sync_priority": "7"}), false, 7),
    ];
    for (t, nosync, priority) in rows {
        let map = tags(t.clone());
        assert_eq!(Tags::of(&map).nosync(), nosync, "nosync of {t}");
        assert_eq!(
            Tags::of(&map).sync_priority(),
            priority,
            "sync_priority of {t}"
        );
    }
}

/// Truthiness of boolean tags and flags.
#[test]
fn truthiness_table() {
    let rows = [
        (json!(true), Some(true), true),
        (json!(false), Some(false), false),
        (json!("true"), Some(true), true),
        (json!(" ON "), Some(true), true),
        (json!("Yes"), Some(true), true),
        (json!("1"), Some(true), true),
        (json!("off"), Some(false), false),
        (json!("no"), Some(false), false),
        (json!("0"), Some(false), false),
        (json!("maybe"), None, false),
        (json!(""), None, false),
        (json!(1), Some(true), true),
        (json!(0), Some(false), false),
        (json!(2), None, true),
        (json!(null), None, false),
        (json!([true]), None, false),
    ];
    for (v, parsed, truthy) in rows {
        assert_eq!(parse_bool(&v), parsed, "parse_bool({v})");
        assert_eq!(is_true(&v), truthy, "is_true({v})");
    }
}

#[test]
fn plain_flags_and_replicatefrom() {
    let map = tags(json!({
        "nostream": "on", "noloadbalance": true, "clonefrom": false, "replicatefrom": "m2"
    }));
    let t = Tags::of(&map);
    assert!(t.nostream() && t.noloadbalance() && !t.clonefrom());
    assert_eq!(t.replicatefrom(), Some("m2"));
    let map = tags(json!({"replicatefrom": ""}));
    assert_eq!(Tags::of(&map).replicatefrom(), None);
    let map = tags(json!({"replicatefrom": 3}));
    assert_eq!(Tags::of(&map).replicatefrom(), None);
}

#[test]
fn conflicts_are_named() {
    let map = tags(
        json!({"nofailover": false, "failover_priority": 0, "nosync": true,
        "sync_priority": 2}),
    );
    let c = Tags::of(&map).conflicts();
    assert_eq!(c.len(), 2);
    assert_eq!(
        (
            c[0].flag,
            c[0].flag_value,
            c[0].priority,
            c[0].priority_value
        ),
        ("nofailover", false, "failover_priority", 0)
    );
    assert_eq!((c[1].flag, c[1].priority_value), ("nosync", 2));
    let map = tags(json!({"nofailover": true, "failover_priority": 0}));
    assert!(Tags::of(&map).conflicts().is_empty());
    let map = tags(json!({"failover_priority": 0}));
    assert!(
        Tags::of(&map).conflicts().is_empty(),
        "no boolean tag: nothing to contradict"
    );
}

#[test]
fn published_as_patroni_does() {
    let map = tags(
        json!({"nofailover": false, "noloadbalance": true, "clonefrom": false,
        "failover_priority": 2, "dc": "east", "nosync": false, "nostream": "yes", "x": null}),
    );
    assert_eq!(
        Value::Object(Tags::of(&map).published()),
        json!({"nofailover": false, "noloadbalance": true, "failover_priority": 2,
            "dc": "east", "nostream": true})
    );
}
