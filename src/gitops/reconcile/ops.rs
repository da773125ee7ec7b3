//! Declared operations (`clusters/<scope>/ops/*.yaml`), run exactly once: the id is claimed in
//! our `gitops` DCS key with compare-and-swap before anything happens, so neither a second
//! reconciler nor a restarted one runs it again. Preconditions are re-checked while the
//! operation is due; it expires when they keep failing past its deadline.

use crate::config::yaml::kind;
use crate::dcs::{Cluster, Dcs};
use crate::gitops::desired::Operation;
use crate::gitops::window::open_at;
use crate::gitops::GitopsError;
use chrono::{DateTime, Utc};
use serde_json::{json, Map, Value};

/// How long a due operation may keep failing its preconditions before it expires.
pub const EXPIRY_SECS: i64 = 3600;

/// Why an operation does not run now (pure).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Readiness {
    /// Run it.
    Ready,
    /// Not yet (not_before in the future, or outside its window).
    Waiting(String),
    /// Due, but a precondition fails.
    Blocked(String),
}

fn corrupt(field: &str, found: &Value, expected: &str) -> GitopsError {
    GitopsError::CorruptKey {
        key: crate::dcs::keys::GITOPS.to_string(),
        field: field.to_string(),
        reason: format!("is {}, expected {expected}", kind(found)),
    }
}

/// The operation records (`ops`) of our `gitops` key: `Ok(None)` when the key or the field
/// is absent, an error naming the key and the field when either is not an object. With a
/// corrupt record nobody can tell which operations already ran, so none may run.
pub fn op_records(gitops: Option<&Value>) -> Result<Option<&Map<String, Value>>, GitopsError> {
    let root = match gitops {
        None | Some(Value::Null) => return Ok(None),
        Some(Value::Object(root)) => root,
        Some(other) => return Err(corrupt("(root)", other, "a JSON object")),
    };
    match root.get("ops") {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Object(ops)) => Ok(Some(ops)),
        Some(other) => Err(corrupt("ops", other, "an object of operation records")),
    }
}

/// Recorded state of operation `id` in the `gitops` key, if any (errors as [`op_records`]).
pub fn recorded(gitops: Option<&Value>, id: &str) -> Result<Option<Value>, GitopsError> {
    Ok(op_records(gitops)?.and_then(|ops| ops.get(id)).cloned())
}

/// The `gitops` key value with `record` stored for operation `id` (pure).
pub fn with_record(gitops: Option<&Value>, id: &str, record: Value) -> Result<Value, GitopsError> {
    let mut ops = op_records(gitops)?.cloned().unwrap_or_default();
    ops.insert(id.to_string(), record);
    let mut root = gitops
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    root.insert("ops".into(), Value::Object(ops));
    Ok(Value::Object(root))
}

/// The switchover target: the named candidate, else the streaming replica with the most WAL
/// (the same member the preconditions are checked on and the request names).
pub fn choose_candidate(op: &Operation, c: &Cluster) -> Option<String> {
    if let Some(cand) = op.spec.get("candidate").and_then(Value::as_str) {
        return Some(cand.to_string());
    }
    let leader = c.leader_name();
    c.members
        .iter()
        .filter(|m| Some(m.name.as_str()) != leader && !m.data.nofailover())
        .max_by_key(|m| {
            (
                m.data.replication_state.as_deref() == Some("streaming"),
                m.data.xlog_location.unwrap_or(0),
            )
        })
        .map(|m| m.name.clone())
}

/// Decides whether `op` can run at `now` against the cluster (pure).
pub fn readiness(op: &Operation, c: &Cluster, now: DateTime<Utc>) -> Readiness {
    let spec = &op.spec;
    if let Some(nb) = spec.get("not_before").and_then(Value::as_str) {
        if let Ok(t) = DateTime::parse_from_rfc3339(nb) {
            if t.with_timezone(&Utc) > now {
                return Readiness::Waiting(format!("not before {nb}"));
            }
        }
    }
    if let Some(w) = spec.get("window").and_then(Value::as_str) {
        if !open_at(&[w.to_string()], now) {
            return Readiness::Waiting(format!("outside its window {w}"));
        }
    }
    let Some(leader) = c.leader_name() else {
        return Readiness::Blocked("the cluster has no leader".into());
    };
    if op.kind != "switchover" {
        return Readiness::Ready;
    }
    let pre = spec.get("preconditions").cloned().unwrap_or(json!({}));
    let Some(cand) = choose_candidate(op, c) else {
        return Readiness::Blocked("no other member to switch over to".into());
    };
    let cand = cand.as_str();
    let Some(m) = c.member(cand) else {
        return Readiness::Blocked(format!("candidate {cand} is not a member"));
    };
    if cand == leader {
        return Readiness::Blocked(format!("{cand} is already the leader"));
    }
    if pre
        .get("candidate_streaming")
        .and_then(Value::as_bool)
        .unwrap_or(true)
        && m.data.replication_state.as_deref() != Some("streaming")
    {
        return Readiness::Blocked(format!("candidate {cand} is not streaming"));
    }
    if let Some(max) = pre.get("max_lag_bytes").and_then(Value::as_u64) {
        let lag = c
            .status
            .optime
            .saturating_sub(m.data.xlog_location.unwrap_or(0));
        if lag > max {
            return Readiness::Blocked(format!("candidate {cand} lags {lag} bytes (max {max})"));
        }
    }
    if pre
        .get("no_pending_restart_on_candidate")
        .and_then(Value::as_bool)
        .unwrap_or(false)
        && m.data.pending_restart == Some(true)
    {
        return Readiness::Blocked(format!("candidate {cand} has a pending restart"));
    }
    Readiness::Ready
}

/// Claims `id` in the gitops key (CAS on its version); false when somebody else was first.
/// A corrupt key is an error (see [`op_records`]), never overwritten.
pub async fn claim(
    dcs: &dyn Dcs,
    c: &Cluster,
    id: &str,
    record: Value,
) -> Result<bool, GitopsError> {
    let g = with_record(c.gitops.as_ref().map(|v| &v.value), id, record)?;
    let version = c.gitops.as_ref().map_or(0, |v| v.version);
    Ok(dcs
        .cas_many(&[(crate::dcs::keys::GITOPS.to_string(), g.to_string(), version)])
        .await?)
}

/// Records the final state of `id` (retrying the CAS against fresh reads).
pub async fn finish(dcs: &dyn Dcs, id: &str, record: Value) -> Result<(), GitopsError> {
    for _ in 0..10 {
        let c = dcs.fresh_cluster().await?;
        if claim(dcs, &c, id, record.clone()).await? {
            return Ok(());
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dcs::cluster::{Leader, MemberEntry};
    use crate::dcs::Member;

    fn cluster() -> Cluster {
        let m = |n: &str, rs: Option<&str>, x: u64| MemberEntry {
            name: n.into(),
            data: Member {
                state: "running".into(),
                replication_state: rs.map(str::to_string),
                xlog_location: Some(x),
                ..Member::default()
            },
            version: 1,
            lease: 1,
        };
        Cluster {
            leader: Some(Leader {
                name: "a".into(),
                lease: 1,
                version: 1,
            }),
            members: vec![
                m("a", None, 1000),
                m("b", Some("streaming"), 1000),
                m("c", None, 10),
            ],
            status: crate::dcs::Status {
                optime: 1000,
                ..Default::default()
            },
            ..Cluster::default()
        }
    }

    fn op(spec: Value) -> Operation {
        Operation {
            id: "x".into(),
            kind: spec["type"].as_str().unwrap_or("").into(),
            file: "f".into(),
            spec,
        }
    }

    #[test]
    fn readiness_rules() {
        let now = DateTime::parse_from_rfc3339("2026-11-21T03:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        let c = cluster();
        assert_eq!(
            readiness(
                &op(json!({"type": "switchover", "candidate": "b"})),
                &c,
                now
            ),
            Readiness::Ready
        );
        assert!(matches!(
            readiness(
                &op(
                    json!({"type": "switchover", "candidate": "b", "not_before": "2026-11-21T04:00:00Z"})
                ),
                &c,
                now
            ),
            Readiness::Waiting(_)
        ));
        assert!(matches!(
            readiness(
                &op(json!({"type": "switchover", "window": "Sun 02:00-04:00 UTC"})),
                &c,
                now
            ),
            Readiness::Waiting(_)
        ));
        assert_eq!(
            readiness(
                &op(json!({"type": "switchover", "candidate": "c"})),
                &c,
                now
            ),
            Readiness::Blocked("candidate c is not streaming".into())
        );
        assert!(matches!(
            readiness(
                &op(
                    json!({"type": "switchover", "candidate": "b", "preconditions": {"max_lag_bytes": 0}})
                ),
                &c,
                now
            ),
            Readiness::Ready
        ));
        assert!(matches!(
            readiness(
                &op(json!({"type": "switchover", "candidate": "nosuch"})),
                &c,
                now
            ),
            Readiness::Blocked(_)
        ));
        assert_eq!(
            readiness(&op(json!({"type": "restart"})), &c, now),
            Readiness::Ready
        );
    }

    #[test]
    fn records_are_read_and_written_without_index_panics() {
        assert_eq!(recorded(None, "a").ok(), Some(None));
        let g = json!({"tags": {}, "ops": {"a": {"state": "done"}, "x/y": {"state": "running"}}});
        assert_eq!(
            recorded(Some(&g), "a").ok().flatten(),
            Some(json!({"state": "done"}))
        );
        assert!(
            recorded(Some(&g), "x/y").is_ok_and(|r| r.is_some()),
            "ids are keys, not paths"
        );
        let g = with_record(Some(&json!({"tags": {"m": {}}})), "b", json!(1)).ok();
        assert_eq!(g, Some(json!({"tags": {"m": {}}, "ops": {"b": 1}})));
        let g = with_record(None, "b", json!(1)).ok();
        assert_eq!(g, Some(json!({"ops": {"b": 1}})));
    }

    #[test]
    fn corrupt_ops_field_is_an_error_naming_key_and_field() {
        for bad in [json!("oops"), json!([1, 2]), json!(7), json!(true)] {
            let g = json!({"tags": {}, "ops": bad});
            let err = recorded(Some(&g), "a").err().map(|e| e.to_string());
            let text = err.unwrap_or_default();
            assert!(
                text.contains("'gitops'") && text.contains("'ops'"),
                "{text}"
            );
            assert!(with_record(Some(&g), "a", json!({})).is_err(), "{g}");
        }
        let err = op_records(Some(&json!("not an object"))).err();
        assert_eq!(
            err.map(|e| e.to_string()).as_deref(),
            Some("DCS key 'gitops' is corrupt: field '(root)' is a string, expected a JSON object")
        );
    }
}
