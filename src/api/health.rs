//! Health-check evaluation (pure): which status code a check path answers, docs/patroni-behaviour.md §3.1.

use crate::agent::shared::NodeStatus;
use crate::postgres::params::value_in_setting_units;
use serde_json::Value;
use std::collections::BTreeMap;

/// The health checks Patroni routes by path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Check {
    /// `/`, `/primary`, `/master`, `/read-write`.
    Primary,
    /// `/leader`.
    Leader,
    /// `/standby-leader`.
    StandbyLeader,
    /// `/replica`.
    Replica,
    /// `/read-only`.
    ReadOnly,
    /// `/health`.
    Health,
    /// `/liveness`.
    Liveness,
    /// `/readiness`.
    Readiness,
    /// `/sync`, `/synchronous`.
    Sync,
    /// `/async`, `/asynchronous`.
    Async,
    /// `/read-only-sync`.
    ReadOnlySync,
    /// `/quorum`: a quorum standby (a voter in quorum mode).
    Quorum,
    /// `/read-only-quorum`: the leader or a quorum standby.
    ReadOnlyQuorum,
    /// Anything else: 503.
    Unknown,
}

impl Check {
    /// Maps a request path to a check.
    pub fn from_path(path: &str) -> Check {
        let first = path.trim_start_matches('/').split('/').next().unwrap_or("");
        match first {
            "" | "primary" | "master" | "read-write" => Check::Primary,
            "leader" => Check::Leader,
            "standby-leader" | "standby_leader" => Check::StandbyLeader,
            "replica" => Check::Replica,
            "read-only" => Check::ReadOnly,
            "health" => Check::Health,
            "liveness" => Check::Liveness,
            "readiness" => Check::Readiness,
            "sync" | "synchronous" => Check::Sync,
            "async" | "asynchronous" => Check::Async,
            "read-only-sync" | "read-only-synchronous" => Check::ReadOnlySync,
            "quorum" => Check::Quorum,
            "read-only-quorum" => Check::ReadOnlyQuorum,
            _ => Check::Unknown,
        }
    }

    /// True when the check answers without a body.
    pub fn bodyless(self) -> bool {
        matches!(self, Check::Liveness | Check::Readiness)
    }
}

/// Parses a `lag=` value: bytes or with a unit (`16kB`, `64MB`, `1GB`).
pub fn parse_lag(v: &str) -> Option<u64> {
    v.trim()
        .parse::<u64>()
        .ok()
        .or_else(|| value_in_setting_units(v.trim(), Some("B")).map(|f| f as u64))
}

fn tag_matches(tags: &serde_json::Map<String, Value>, key: &str, want: &str) -> bool {
    match tags.get(key) {
        Some(Value::String(s)) => s == want,
        Some(Value::Bool(b)) => want.eq_ignore_ascii_case(if *b { "true" } else { "false" }),
        Some(other) => other.to_string().to_lowercase() == want.to_lowercase(),
        None => false,
    }
}

/// Evaluates a check against the node status; returns the HTTP status code.
pub fn evaluate(
    check: Check,
    st: &NodeStatus,
    name: &str,
    query: &BTreeMap<String, String>,
    now_ms: u64,
) -> u16 {
    let ok = |b: bool| if b { 200 } else { 503 };
    let holds_lock = st.has_lock && now_ms < st.lock_expires_ms;
    let running = st.state == "running";
    let is_sync = st.is_sync_standby(name);
    let is_quorum = st.is_quorum_standby(name);
    let replica_ok = || {
        if !(running && st.role == "replica") || crate::config::Tags::of(&st.tags).noloadbalance() {
            return false;
        }
        if let Some(max) = query.get("lag").and_then(|l| parse_lag(l)) {
            let optime = st.cluster.as_ref().map_or(0, |c| c.status.optime);
            let replayed = st.replayed.or(st.received).unwrap_or(0);
            if optime.saturating_sub(replayed) > max {
                return false;
            }
        }
        if let Some(rs) = query.get("replication_state") {
            if st.replication_state.as_deref() != Some(rs.as_str()) {
                return false;
            }
        }
        query
            .iter()
            .filter_map(|(k, v)| k.strip_prefix("tag_").map(|t| (t, v)))
            .all(|(t, v)| tag_matches(&st.tags, t, v))
    };
    match check {
        Check::Primary => {
            let paused_no_dcs = st.dynamic.pause && st.cluster.is_none() && st.role == "primary";
            ok((holds_lock && running && st.role == "primary") || paused_no_dcs)
        }
        Check::Leader => ok(holds_lock),
        Check::StandbyLeader => ok(holds_lock && st.role == "standby_leader"),
        Check::Replica => ok(replica_ok()),
        Check::ReadOnly => ok(replica_ok() || (holds_lock && running)),
        Check::Health => ok(running),
        Check::Liveness => {
            let ttl = crate::config::timing::secs_to_ms(st.dynamic.ttl);
            let grace = if st.role == "primary" { ttl } else { 2 * ttl };
            ok(st.dynamic.pause || now_ms < st.next_cycle_ms.saturating_add(grace))
        }
        Check::Readiness => {
            if holds_lock {
                return 200;
            }
            let max = query
                .get("lag")
                .and_then(|l| parse_lag(l))
                .unwrap_or(st.dynamic.maximum_lag_on_failover);
            let optime = st.cluster.as_ref().map_or(0, |c| c.status.optime);
            let pos = if query.get("mode").map(String::as_str) == Some("write") {
                st.received
            } else {
                st.replayed
            };
            ok(running
                && st.replication_state.as_deref() == Some("streaming")
                && st.cluster.is_some()
                && optime.saturating_sub(pos.unwrap_or(0)) <= max)
        }
        Check::Sync => ok(replica_ok() && is_sync),
        Check::Async => ok(replica_ok() && !is_sync && !is_quorum),
        Check::ReadOnlySync => ok((holds_lock && running) || (replica_ok() && is_sync)),
        Check::Quorum => ok(replica_ok() && is_quorum),
        Check::ReadOnlyQuorum => ok((holds_lock && running) || (replica_ok() && is_quorum)),
        Check::Unknown => 503,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn replica() -> NodeStatus {
        NodeStatus {
            state: "running".into(),
            role: "replica".into(),
            replication_state: Some("streaming".into()),
            replayed: Some(1000),
            received: Some(1000),
            tags: json!({"dc": "east", "nofailover": true})
                .as_object()
                .unwrap()
                .clone(),
            cluster: Some(crate::dcs::Cluster {
                status: crate::dcs::Status {
                    optime: 5000,
                    ..Default::default()
                },
                ..Default::default()
            }),
            ..NodeStatus::default()
        }
    }

    fn q(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn paths_map_to_checks() {
        assert_eq!(Check::from_path("/"), Check::Primary);
        assert_eq!(Check::from_path("/master"), Check::Primary);
        assert_eq!(Check::from_path("/read-only"), Check::ReadOnly);
        assert_eq!(Check::from_path("/whatever"), Check::Unknown);
    }

    #[test]
    fn replica_check_with_lag_and_tags() {
        let st = replica();
        assert_eq!(evaluate(Check::Replica, &st, "p2", &q(&[]), 0), 200);
        assert_eq!(evaluate(Check::Primary, &st, "p2", &q(&[]), 0), 503);
        assert_eq!(
            evaluate(Check::Replica, &st, "p2", &q(&[("lag", "1kB")]), 0),
            503
        );
        assert_eq!(
            evaluate(Check::Replica, &st, "p2", &q(&[("lag", "16kB")]), 0),
            200
        );
        assert_eq!(
            evaluate(Check::Replica, &st, "p2", &q(&[("lag", "4000")]), 0),
            200
        );
        assert_eq!(
            evaluate(Check::Replica, &st, "p2", &q(&[("tag_dc", "east")]), 0),
            200
        );
        assert_eq!(
            evaluate(Check::Replica, &st, "p2", &q(&[("tag_dc", "west")]), 0),
            503
        );
        assert_eq!(
            evaluate(
                Check::Replica,
                &st,
                "p2",
                &q(&[("tag_nofailover", "True")]),
                0
            ),
            200
        );
        assert_eq!(evaluate(Check::Health, &st, "p2", &q(&[]), 0), 200);
    }

    #[test]
    fn primary_needs_unexpired_lock() {
        let mut st = NodeStatus {
            state: "running".into(),
            role: "primary".into(),
            has_lock: true,
            lock_expires_ms: 10_000,
            ..NodeStatus::default()
        };
        assert_eq!(evaluate(Check::Primary, &st, "p1", &q(&[]), 5_000), 200);
        assert_eq!(evaluate(Check::Primary, &st, "p1", &q(&[]), 20_000), 503);
        assert_eq!(evaluate(Check::Replica, &st, "p1", &q(&[]), 5_000), 503);
        assert_eq!(evaluate(Check::ReadOnly, &st, "p1", &q(&[]), 5_000), 200);
        st.state = "starting".into();
        assert_eq!(evaluate(Check::Primary, &st, "p1", &q(&[]), 5_000), 503);
    }

    #[test]
    fn noloadbalance_excludes_replica() {
        let mut st = replica();
        st.tags.insert("noloadbalance".into(), json!(true));
        assert_eq!(evaluate(Check::Replica, &st, "p2", &q(&[]), 0), 503);
    }

    #[test]
    fn quorum_checks_follow_the_mode() {
        let mut st = replica();
        if let Some(c) = st.cluster.as_mut() {
            c.sync = Some(crate::dcs::cluster::Versioned {
                value: crate::dcs::SyncState {
                    leader: Some("p1".into()),
                    quorum: 1,
                    sync_standby: Some("p2,p3".into()),
                    unreadable: false,
                },
                version: 1,
            });
        }
        let code = |c: Check, st: &NodeStatus| evaluate(c, st, "p2", &q(&[]), 0);
        st.dynamic.synchronous_mode = crate::config::SyncMode::Quorum;
        assert_eq!(Check::from_path("/read-only-quorum"), Check::ReadOnlyQuorum);
        assert_eq!(code(Check::Quorum, &st), 200);
        assert_eq!(code(Check::ReadOnlyQuorum, &st), 200);
        assert_eq!(code(Check::Sync, &st), 503);
        assert_eq!(code(Check::Async, &st), 503);
        assert_eq!(evaluate(Check::Quorum, &st, "p4", &q(&[]), 0), 503);
        assert_eq!(evaluate(Check::Async, &st, "p4", &q(&[]), 0), 200);
        st.dynamic.synchronous_mode = crate::config::SyncMode::On;
        assert_eq!(code(Check::Quorum, &st), 503);
        assert_eq!(code(Check::ReadOnlyQuorum, &st), 503);
        assert_eq!(code(Check::Sync, &st), 200);
    }
}
