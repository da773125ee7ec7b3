//! Declared operations (`clusters/<scope>/ops/*.yaml`), run exactly once: the id is claimed in
//! our `gitops` DCS key with compare-and-swap before anything happens, so neither a second
//! reconciler nor a restarted one runs it again. Preconditions are re-checked while the
//! operation is due; it expires when they keep failing past its deadline.

use crate::dcs::{Cluster, Dcs};
use crate::gitops::desired::Operation;
use crate::gitops::window::open_at;
use chrono::{DateTime, Utc};
use serde_json::{json, Value};

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

/// Recorded state of an operation in the `gitops` key, if any.
pub fn recorded(gitops: Option<&Value>, id: &str) -> Option<Value> {
    gitops
        .and_then(|g| g.pointer(&format!("/ops/{id}")))
        .cloned()
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
        .filter(|m| Some(m.name.as_str()) != leader && m.data.failover_priority() > 0)
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
pub async fn claim(
    dcs: &dyn Dcs,
    c: &Cluster,
    id: &str,
    record: Value,
) -> crate::dcs::DcsResult<bool> {
    let mut g = c
        .gitops
        .as_ref()
        .map(|v| v.value.clone())
        .filter(Value::is_object)
        .unwrap_or_else(|| json!({}));
    let version = c.gitops.as_ref().map_or(0, |v| v.version);
    if g.get("ops").is_none() {
        g["ops"] = json!({});
    }
    g["ops"][id] = record;
    dcs.cas_many(&[(crate::dcs::keys::GITOPS.to_string(), g.to_string(), version)])
        .await
}

/// Records the final state of `id` (retrying the CAS against fresh reads).
pub async fn finish(dcs: &dyn Dcs, id: &str, record: Value) -> crate::dcs::DcsResult<()> {
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
}
