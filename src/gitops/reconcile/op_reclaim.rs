//! A `running` operation record with no request in flight in this process: the reconciler
//! that claimed it stopped (crash, kill, restart) before recording the outcome. It is never run
//! again (operations run at most once); what happened is read from the DCS (pure).

use crate::dcs::Cluster;
use chrono::{DateTime, Utc};
use serde_json::Value;

/// How long a claimed switchover may take before an unchanged leader means it did not happen.
pub const SWITCHOVER_GRACE_SECS: i64 = 300;
/// Per member, how long a claimed restart operation may take before it is given up.
pub const RESTART_GRACE_SECS: i64 = 240;

/// What to do with a stale `running` record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reclaim {
    /// It may still be going on (the member's own action outlives the reconciler): look again.
    Wait,
    /// Record this final state (`done` or `failed`) and outcome.
    Finish {
        /// `done` or `failed`.
        state: &'static str,
        /// What the DCS shows.
        outcome: String,
    },
}

/// Decides a stale `running` record of an operation of type `kind`, claimed as `record`.
pub fn reclaim(kind: &str, record: &Value, live: &Cluster, now: DateTime<Utc>) -> Reclaim {
    let age = record
        .get("at")
        .and_then(Value::as_str)
        .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
        .map_or(i64::MAX, |t| (now - t.with_timezone(&Utc)).num_seconds());
    let failed = |why: String| Reclaim::Finish {
        state: "failed",
        outcome: format!("{why}; not run again (declare a new operation to retry)"),
    };
    match kind {
        "switchover" => {
            let before = record.get("leader").and_then(Value::as_str);
            match (before, live.leader_name()) {
                (Some(b), Some(now_leader)) if b != now_leader => Reclaim::Finish {
                    state: "done",
                    outcome: format!(
                        "the leader moved from {b} to {now_leader} while no reconciler watched"
                    ),
                },
                _ if age <= SWITCHOVER_GRACE_SECS => Reclaim::Wait,
                (Some(b), _) => failed(format!(
                    "interrupted: {b} is still the leader {age} s after the claim"
                )),
                (None, _) => failed("interrupted before its outcome was recorded".into()),
            }
        }
        "restart" => {
            let members = i64::try_from(live.members.len()).unwrap_or(i64::MAX);
            if age <= RESTART_GRACE_SECS.saturating_mul(members.max(1)) {
                return Reclaim::Wait;
            }
            let pending: Vec<&str> = live
                .members
                .iter()
                .filter(|m| m.data.pending_restart == Some(true))
                .map(|m| m.name.as_str())
                .collect();
            failed(format!(
                "interrupted before its outcome was recorded (members with a pending restart \
                 now: {pending:?})"
            ))
        }
        other => failed(format!("unknown operation type {other}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dcs::cluster::{Leader, MemberEntry};
    use serde_json::json;

    fn cluster(leader: &str) -> Cluster {
        let m = |n: &str| MemberEntry {
            name: n.into(),
            version: 1,
            lease: 1,
            data: Default::default(),
        };
        Cluster {
            leader: Some(Leader {
                name: leader.into(),
                lease: 1,
                version: 1,
            }),
            members: vec![m("a"), m("b")],
            ..Cluster::default()
        }
    }

    fn at(secs: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_800_000_000 + secs, 0).unwrap()
    }

    #[test]
    fn a_stale_switchover_is_judged_by_the_leader_key_never_rerun() {
        let rec = json!({"state": "running", "at": at(0).to_rfc3339(), "leader": "a"});
        let done = reclaim("switchover", &rec, &cluster("b"), at(10));
        assert!(
            matches!(&done, Reclaim::Finish { state: "done", outcome } if outcome.contains("from a to b")),
            "{done:?}"
        );
        assert_eq!(
            reclaim("switchover", &rec, &cluster("a"), at(10)),
            Reclaim::Wait
        );
        let late = reclaim(
            "switchover",
            &rec,
            &cluster("a"),
            at(SWITCHOVER_GRACE_SECS + 1),
        );
        assert!(
            matches!(&late, Reclaim::Finish { state: "failed", outcome } if outcome.contains("not run again")),
            "{late:?}"
        );
    }

    #[test]
    fn a_stale_restart_waits_then_fails_naming_what_is_pending() {
        let rec = json!({"state": "running", "at": at(0).to_rfc3339()});
        assert_eq!(
            reclaim("restart", &rec, &cluster("a"), at(100)),
            Reclaim::Wait
        );
        let r = reclaim(
            "restart",
            &rec,
            &cluster("a"),
            at(2 * RESTART_GRACE_SECS + 1),
        );
        assert!(
            matches!(
                r,
                Reclaim::Finish {
                    state: "failed",
                    ..
                }
            ),
            "{r:?}"
        );
        let unreadable = reclaim(
            "restart",
            &json!({"state": "running"}),
            &cluster("a"),
            at(0),
        );
        assert!(matches!(
            unreadable,
            Reclaim::Finish {
                state: "failed",
                ..
            }
        ));
    }

    #[test]
    fn a_stale_record_without_its_claim_details_is_judged_safely() {
        // No leader recorded at claim time: nothing tells whether it happened; wait, then
        // give it up without running it again.
        let rec = json!({"state": "running", "at": at(0).to_rfc3339()});
        assert_eq!(
            reclaim("switchover", &rec, &cluster("b"), at(10)),
            Reclaim::Wait
        );
        let late = reclaim(
            "switchover",
            &rec,
            &cluster("b"),
            at(SWITCHOVER_GRACE_SECS + 1),
        );
        assert!(
            matches!(&late, Reclaim::Finish { state: "failed", outcome } if outcome.contains("before its outcome")),
            "{late:?}"
        );
        // An unreadable claim time: the moved leader still says it happened.
        let moved = reclaim(
            "switchover",
            &json!({"state": "running", "at": "yesterday", "leader": "a"}),
            &cluster("b"),
            at(0),
        );
        assert!(
            matches!(moved, Reclaim::Finish { state: "done", .. }),
            "{moved:?}"
        );
        let unknown = reclaim("vacuum", &rec, &cluster("a"), at(0));
        assert!(
            matches!(&unknown, Reclaim::Finish { state: "failed", outcome } if outcome.contains("unknown operation type vacuum")),
            "{unknown:?}"
        );
    }

    #[test]
    fn a_given_up_restart_names_the_members_still_pending() {
        let mut c = cluster("a");
        c.members[1].data.pending_restart = Some(true);
        let rec = json!({"state": "running", "at": at(0).to_rfc3339()});
        let r = reclaim("restart", &rec, &c, at(2 * RESTART_GRACE_SECS + 1));
        assert!(
            matches!(&r, Reclaim::Finish { state: "failed", outcome } if outcome.contains(r#"["b"]"#)),
            "{r:?}"
        );
    }
}
