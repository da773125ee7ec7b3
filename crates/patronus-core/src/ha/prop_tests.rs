//! Property test of the pure decision: whatever the DCS holds (any raw key values, written
//! by anyone) and whatever the dynamic configuration says (any types, `u64::MAX`
//! durations), `decide` returns a decision with a message, never a panic (debug builds
//! check every overflow).

use super::observation::{LockState, Request, TaskKind};
use super::tests::{peer, B};
use crate::config::dynamic::DynamicConfig;
use crate::dcs::{Cluster, Keys, RawKv};
use crate::prop_support::{config, raw_text, scalar};
use proptest::prelude::*;
use serde_json::{Map, Value};
use std::collections::BTreeMap;

const KEYS: &[&str] = &[
    "initialize",
    "leader",
    "config",
    "status",
    "history",
    "failover",
    "sync",
    "members/p1",
    "members/p2",
    "members/p3",
];

const CONFIG_KEYS: &[&str] = &[
    "ttl",
    "loop_wait",
    "retry_timeout",
    "maximum_lag_on_failover",
    "primary_start_timeout",
    "primary_stop_timeout",
    "check_timeline",
    "pause",
    "synchronous_mode",
    "synchronous_mode_strict",
    "synchronous_node_count",
];

fn cluster_from(values: Vec<(&'static str, String)>) -> Cluster {
    let keys = Keys::new("/service", "t");
    let kvs: BTreeMap<String, RawKv> = values
        .into_iter()
        .enumerate()
        .map(|(i, (rel, value))| {
            let rev = i as i64 + 1;
            let kv = RawKv {
                value,
                mod_revision: rev,
                create_revision: rev,
                lease: rev,
            };
            (keys.key(rel), kv)
        })
        .collect();
    Cluster::from_kvs(&keys, &kvs, 99)
}

fn local_state() -> impl Strategy<Value = u8> {
    0u8..5
}

fn task() -> impl Strategy<Value = Option<TaskKind>> {
    prop::option::of(prop::sample::select(vec![
        TaskKind::Bootstrap,
        TaskKind::CreateReplica,
        TaskKind::Start,
        TaskKind::Restart,
        TaskKind::Promote,
        TaskKind::Demote,
        TaskKind::Rewind,
        TaskKind::Reinitialize,
    ]))
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn decide_never_panics(
        me in prop::sample::select(vec!["p1", "p2", "p3"]),
        raw in prop::collection::vec((prop::sample::select(KEYS), raw_text()), 0..10),
        settings in prop::collection::vec((prop::sample::select(CONFIG_KEYS), scalar()), 0..8),
        state in local_state(),
        lsn in any::<u64>(),
        now_ms in any::<u64>(),
        started in prop::option::of(any::<u64>()),
        task in task(),
        lock in prop::sample::select(vec![LockState::NotHeld, LockState::Held, LockState::RefreshFailed]),
        peers in prop::collection::vec((prop::sample::select(vec!["p1", "p2", "p3"]), any::<u64>(), any::<i64>(), any::<bool>()), 0..3),
        restart in any::<bool>(),
    ) {
        let cluster = cluster_from(raw);
        let settings: Map<String, Value> = settings.into_iter().map(|(k, v)| (k.to_string(), v)).collect();
        let dynamic = DynamicConfig::from_value(&Value::Object(settings));
        let b = match state {
            0 => B::new(me),
            1 => B::new(me).initialized().primary(),
            2 => B::new(me).initialized().replica(Some("p1"), lsn),
            3 => B::new(me).initialized().replica(None, lsn).stopped("in archive recovery"),
            _ => B::new(me).initialized().primary().stopped("in production"),
        };
        let d = b
            .cluster(|c| *c = cluster)
            .lock(lock)
            .with(|o| {
                o.config = dynamic;
                o.now_ms = now_ms;
                o.task = task;
                o.task_started_ms = started;
                o.peers = peers.iter().map(|(n, w, p, primary)| peer(n, *w, *p, *primary)).collect();
                o.request = restart.then_some(Request::Restart);
            })
            .decide();
        prop_assert!(!d.message.is_empty());
    }
}
