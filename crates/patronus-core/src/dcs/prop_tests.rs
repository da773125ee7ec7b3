//! Property tests of every DCS value read from others (member, leader, sync, failover,
//! history, status, config, failsafe and gitops keys): any bytes give a value or an error
//! naming the key and the reason, never a panic, and the cluster view stays usable.

use super::cluster::{Cluster, RawKv};
use super::keys::Keys;
use super::model::{Failover, HistoryLine, Member, Status, SyncState};
use crate::prop_support::{config, json_value, raw_text, scalar};
use proptest::prelude::*;
use serde_json::json;
use std::collections::BTreeMap;

/// Every key of a cluster that holds a value (relative to the cluster prefix).
const KEYS: &[&str] = &[
    "initialize",
    "leader",
    "config",
    "status",
    "history",
    "failover",
    "sync",
    "failsafe",
    "gitops",
    "members/p1",
    "members/p2",
    "optime/leader",
];

fn kv(value: String, rev: i64) -> RawKv {
    RawKv {
        value,
        mod_revision: rev,
        create_revision: rev,
        lease: rev,
    }
}

/// Uses every accessor of a cluster view (they must not panic either).
fn exercise(c: &Cluster) {
    let _ = (
        c.timeline(),
        c.is_paused(),
        c.is_initialized(),
        c.leader_name(),
        c.failsafe_topology(),
    );
    for m in &c.members {
        let d = &m.data;
        let _ = (d.host_port(), d.failover_priority(), d.sync_priority());
        let _ = (d.tag_bool("nofailover"), d.is_primary_role(), d.to_json());
    }
    if let Some(s) = &c.sync {
        let _ = s.value.members();
    }
    for h in &c.history {
        assert!(HistoryLine::from_value(&h.to_value()).is_some());
    }
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn each_parser_gives_a_value_or_a_reason(raw in raw_text()) {
        let reasons = [
            Member::parse(&raw).err(),
            Status::parse(&raw).err(),
            Failover::parse(&raw).err(),
            SyncState::parse(&raw).err(),
        ];
        for r in reasons.into_iter().flatten() {
            prop_assert!(!r.to_string().is_empty());
        }
        if let Ok(v) = serde_json::from_str(&raw) {
            let _ = HistoryLine::from_value(&v);
        }
    }

    #[test]
    fn a_wrong_sync_field_is_named(
        field in prop::sample::select(vec!["leader", "sync_standby", "quorum"]),
        value in scalar(),
    ) {
        let mut v = json!({"leader": "p1", "quorum": 0, "sync_standby": "p2"});
        v[field] = value;
        if let Err(e) = SyncState::parse(&v.to_string()) {
            prop_assert!(e.to_string().contains(&format!("'{field}'")), "{e}");
        }
    }

    #[test]
    fn any_keys_give_a_usable_cluster(
        values in prop::collection::vec((prop::sample::select(KEYS), raw_text()), 0..12),
    ) {
        let keys = Keys::new("/service", "t");
        let kvs: BTreeMap<String, RawKv> = values
            .into_iter()
            .enumerate()
            .map(|(i, (rel, raw))| (keys.key(rel), kv(raw, i as i64 + 1)))
            .collect();
        let c = Cluster::from_kvs(&keys, &kvs, 99);
        exercise(&c);
        for w in &c.warnings {
            let named = KEYS.iter().any(|k| w.starts_with(&format!("{k}: ")));
            prop_assert!(named && w.len() > 10, "{w}");
        }
        if let Some(raw) = kvs.get(&keys.key("sync")) {
            // A sync key is never dropped: readable, or kept as unreadable with a warning.
            let s = c.sync.as_ref().map(|s| (s.version, s.value.unreadable));
            prop_assert_eq!(s.map(|s| s.0), Some(raw.mod_revision));
            if s.is_some_and(|s| s.1) {
                prop_assert!(c.warnings.iter().any(|w| w.starts_with("sync: ")));
            }
        }
    }

    #[test]
    fn history_of_any_shape_keeps_a_valid_timeline(lines in json_value()) {
        let keys = Keys::new("/service", "t");
        let kvs = BTreeMap::from([(keys.key("history"), kv(lines.to_string(), 1))]);
        let c = Cluster::from_kvs(&keys, &kvs, 1);
        prop_assert!(c.timeline() >= 1);
        exercise(&c);
    }
}

#[test]
fn extreme_numbers_in_dcs_values() {
    let keys = Keys::new("/service", "t");
    let max = u64::MAX;
    let kvs = BTreeMap::from([
        (keys.key("history"), kv(format!("[[{max}, {max}, \"x\"]]"), 1)),
        (keys.key("status"), kv(format!("{{\"optime\": {max}}}"), 2)),
        (
            keys.key("members/p1"),
            kv(format!("{{\"xlog_location\": {max}, \"timeline\": {max}, \"tags\": {{\"failover_priority\": {}}}}}", i64::MIN), 3),
        ),
    ]);
    let c = Cluster::from_kvs(&keys, &kvs, 3);
    assert_eq!(c.timeline(), u64::MAX);
    assert_eq!(c.status.optime, u64::MAX);
    exercise(&c);
}
