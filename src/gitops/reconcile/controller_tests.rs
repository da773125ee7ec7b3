//! The per-cluster controller in virtual time: one observation, at most one step per pass.

use super::*;
use crate::dcs::cluster::{Leader, Versioned};
use crate::dcs::Member;
use crate::gitops::desired::Operation;
use serde_json::json;

fn at(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s)
        .map(|t| t.with_timezone(&Utc))
        .unwrap_or_default()
}

fn params(p: Value) -> Value {
    json!({"postgresql": {"parameters": p}})
}

fn desired_cluster(config: Value) -> DesiredCluster {
    DesiredCluster {
        scope: "a".into(),
        file: "clusters/a/cluster.yaml".into(),
        config,
        tags: Default::default(),
        prune: false,
        restart_policy: "manual".into(),
        windows: vec![],
        ops: vec![],
        dcs: None,
    }
}

/// A leader `p` and a streaming replica `r` (pending restarts as given), the live config, and
/// the `gitops` key.
fn live(config: Value, gitops: Option<Value>, pending: bool) -> ClusterObservation {
    let m = |n: &str, streaming: bool| MemberEntry {
        name: n.into(),
        data: Member {
            state: "running".into(),
            replication_state: streaming.then(|| "streaming".to_string()),
            pending_restart: pending.then_some(true),
            xlog_location: Some(100),
            ..Member::default()
        },
        version: 1,
        lease: 1,
    };
    ClusterObservation {
        live: Cluster {
            initialize: Some("7".into()),
            config: Some(Versioned {
                value: config,
                version: 3,
            }),
            leader: Some(Leader {
                name: "p".into(),
                lease: 1,
                version: 1,
            }),
            members: vec![m("p", false), m("r", true)],
            gitops: gitops.map(|value| Versioned { value, version: 4 }),
            ..Cluster::default()
        },
    }
}

/// The `gitops` key after `c` was applied by commit `sha`.
fn applied(c: &DesiredCluster, sha: &str) -> Value {
    json!({"applied": {"commit": sha, "desired": c.applied_form()}})
}

fn alert(_: &str) -> String {
    "alert".into()
}

fn revert(_: &str) -> String {
    "revert".into()
}

fn desired<'a>(c: &'a DesiredCluster, policy: &'a (dyn Fn(&str) -> String + Sync)) -> Desired<'a> {
    Desired {
        cluster: c,
        sha: "new",
        ignore: &[],
        policy,
    }
}

fn switchover(id: &str) -> Operation {
    Operation {
        id: id.into(),
        kind: "switchover".into(),
        file: format!("clusters/a/ops/{id}.yaml"),
        spec: json!({"type": "switchover", "candidate": "r"}),
    }
}

const T0: &str = "2026-11-29T03:00:00Z";

#[test]
fn a_commit_records_the_drift_it_would_hide_then_applies_keeping_untouched_keys() {
    let old = desired_cluster(params(json!({"work_mem": "8MB", "temp_buffers": "16MB"})));
    let new = desired_cluster(params(json!({"work_mem": "8MB", "temp_buffers": "32MB"})));
    let obs = live(
        params(json!({"work_mem": "64MB", "temp_buffers": "16MB"})),
        Some(applied(&old, "old")),
        false,
    );
    let mem = Memory {
        commit_due: true,
        check_drift: true,
        steps_due: true,
        ..Memory::default()
    };
    let d = decide_cluster(&desired(&new, &alert), &obs, &mem, at(T0));
    assert_eq!(d.drift.len(), 1);
    assert_eq!(d.drift[0].key, "postgresql.parameters.work_mem");
    let ClusterStep::Apply { plan, kept } = d.step else {
        panic!("expected an apply, got {:?}", d.step);
    };
    assert_eq!(kept, ["postgresql.parameters.work_mem"]);
    let names: Vec<&str> = plan.params.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(
        names,
        ["temp_buffers"],
        "only the commit's own change is written"
    );
}

#[test]
fn a_commit_that_leaves_the_cluster_unchanged_writes_nothing_and_the_drift_check_runs() {
    let c = desired_cluster(params(json!({"work_mem": "8MB"})));
    let obs = live(
        params(json!({"work_mem": "64MB"})),
        Some(applied(&c, "old")),
        false,
    );
    let mem = Memory {
        commit_due: true,
        check_drift: true,
        ..Memory::default()
    };
    let d = decide_cluster(&desired(&c, &alert), &obs, &mem, at(T0));
    assert_eq!(d.step, ClusterStep::Unchanged);
    assert_eq!(
        d.drift.len(),
        1,
        "alert drift is reported, never overwritten"
    );
    // The same commit already applied (by a previous active reconciler).
    let obs = live(
        params(json!({"work_mem": "8MB"})),
        Some(applied(&c, "new")),
        false,
    );
    let d = decide_cluster(&desired(&c, &alert), &obs, &mem, at(T0));
    assert_eq!((d.step, d.drift.len()), (ClusterStep::Unchanged, 0));
}

#[test]
fn a_cluster_missing_from_the_dcs_is_retried() {
    let c = desired_cluster(params(json!({"work_mem": "8MB"})));
    let obs = ClusterObservation {
        live: Cluster::default(),
    };
    let mem = Memory {
        commit_due: true,
        ..Memory::default()
    };
    let d = decide_cluster(&desired(&c, &alert), &obs, &mem, at(T0));
    assert_eq!(d.step, ClusterStep::Missing);
}

#[test]
fn revert_drift_is_recorded_and_reverted_in_one_step_alert_drift_only_recorded() {
    let c = desired_cluster(params(json!({"work_mem": "8MB", "temp_buffers": "8MB"})));
    let obs = live(
        params(json!({"work_mem": "64MB", "temp_buffers": "9MB"})),
        Some(applied(&c, "new")),
        false,
    );
    let mem = Memory {
        check_drift: true,
        ..Memory::default()
    };
    let d = decide_cluster(&desired(&c, &revert), &obs, &mem, at(T0));
    assert_eq!(d.drift.len(), 2);
    assert_eq!(
        d.step,
        ClusterStep::Revert(vec![
            ("postgresql.parameters.temp_buffers".into(), json!("8MB")),
            ("postgresql.parameters.work_mem".into(), json!("8MB")),
        ])
    );
    let d = decide_cluster(&desired(&c, &alert), &obs, &mem, at(T0));
    assert_eq!((d.drift.len(), d.step), (2, ClusterStep::Nothing));
    // Not a drift pass: nothing looked at.
    let d = decide_cluster(&desired(&c, &revert), &obs, &Memory::default(), at(T0));
    assert!(d.drift.is_empty() && d.step == ClusterStep::Nothing);
}

#[test]
fn a_secret_bearing_drift_is_never_reported() {
    let c = desired_cluster(params(json!({"work_mem": "8MB"})));
    let mut cfg = params(json!({"work_mem": "8MB"}));
    cfg["postgresql"]["parameters"]["work_mem"] = json!("host=x password=MARKER");
    let obs = live(cfg, Some(applied(&c, "new")), false);
    let mem = Memory {
        check_drift: true,
        ..Memory::default()
    };
    let d = decide_cluster(&desired(&c, &alert), &obs, &mem, at(T0));
    assert!(d.drift.is_empty(), "{:?}", d.drift);
}

#[test]
fn at_most_one_step_a_pass_the_apply_first_then_the_operation() {
    let old = desired_cluster(params(json!({"work_mem": "8MB"})));
    let mut new = desired_cluster(params(json!({"work_mem": "16MB"})));
    new.ops = vec![switchover("s1")];
    let obs = live(
        params(json!({"work_mem": "8MB"})),
        Some(applied(&old, "old")),
        false,
    );
    let mem = Memory {
        commit_due: true,
        check_drift: true,
        steps_due: true,
        ..Memory::default()
    };
    let d = decide_cluster(&desired(&new, &alert), &obs, &mem, at(T0));
    assert!(matches!(d.step, ClusterStep::Apply { .. }), "{:?}", d.step);
    // Next pass: the apply is observed; the operation's turn.
    let obs = live(
        params(json!({"work_mem": "16MB"})),
        Some(applied(&new, "new")),
        false,
    );
    let mem = Memory {
        check_drift: true,
        steps_due: true,
        ..Memory::default()
    };
    let d = decide_cluster(&desired(&new, &alert), &obs, &mem, at(T0));
    assert_eq!(d.step, ClusterStep::OpClaim("s1".into()));
    assert!(d.drift.is_empty());
    // Steps are looked at once a second only.
    let off = Memory {
        steps_due: false,
        ..mem
    };
    let d = decide_cluster(&desired(&new, &alert), &obs, &off, at(T0));
    assert_eq!(d.step, ClusterStep::Nothing);
}

#[test]
fn a_claimed_operation_is_finished_from_its_task_or_reclaimed_never_claimed_again() {
    let mut c = desired_cluster(json!({}));
    c.ops = vec![switchover("s1")];
    let running = json!({"applied": {"commit": "new", "desired": c.applied_form()},
        "ops": {"s1": {"state": "running", "at": T0, "leader": "p"}}});
    let obs = live(json!({}), Some(running), false);
    let mut mem = Memory {
        steps_due: true,
        op_running: vec!["s1".into()],
        ..Memory::default()
    };
    let t = at(T0) + chrono::Duration::seconds(5);
    let d = decide_cluster(&desired(&c, &alert), &obs, &mem, t);
    assert_eq!(d.step, ClusterStep::Nothing, "its request is in flight");
    mem.op_outcomes
        .insert("s1".into(), Ok("switched over to r".into()));
    let d = decide_cluster(&desired(&c, &alert), &obs, &mem, t);
    assert_eq!(
        d.step,
        ClusterStep::OpFinish {
            id: "s1".into(),
            state: "done",
            outcome: "switched over to r".into()
        }
    );
    // No request here (the claiming reconciler died): the leader never moved.
    let fresh = Memory {
        steps_due: true,
        ..Memory::default()
    };
    let d = decide_cluster(&desired(&c, &alert), &obs, &fresh, t);
    assert_eq!(d.notes, [Note::OpReclaimWait("s1".into())]);
    let late = at(T0) + chrono::Duration::seconds(3600);
    let d = decide_cluster(&desired(&c, &alert), &obs, &fresh, late);
    assert!(
        matches!(&d.step, ClusterStep::OpFinish { state: "failed", outcome, .. } if outcome.starts_with("reclaimed")),
        "{:?}",
        d.step
    );
}

#[test]
fn a_blocked_operation_expires_after_its_deadline_in_virtual_time() {
    let mut c = desired_cluster(json!({}));
    let mut op = switchover("s1");
    op.spec["candidate"] = json!("nosuch");
    c.ops = vec![op];
    let obs = live(json!({}), Some(applied(&c, "new")), false);
    let mut mem = Memory {
        steps_due: true,
        ..Memory::default()
    };
    let d = decide_cluster(&desired(&c, &alert), &obs, &mem, at(T0));
    assert!(matches!(&d.notes[..], [Note::OpBlocked { id, .. }] if id == "s1"));
    assert_eq!(d.step, ClusterStep::Nothing);
    mem.first_blocked.insert("s1".into(), at(T0));
    let later = at(T0) + chrono::Duration::seconds(EXPIRY_SECS + 1);
    let d = decide_cluster(&desired(&c, &alert), &obs, &mem, later);
    assert!(
        matches!(d.step, ClusterStep::OpExpire { .. }),
        "{:?}",
        d.step
    );
}

#[test]
fn a_corrupt_ops_record_runs_no_operation() {
    let mut c = desired_cluster(json!({}));
    c.ops = vec![switchover("s1")];
    let obs = live(json!({}), Some(json!({"ops": "oops"})), false);
    let mem = Memory {
        steps_due: true,
        ..Memory::default()
    };
    let d = decide_cluster(&desired(&c, &alert), &obs, &mem, at(T0));
    assert_eq!(d.step, ClusterStep::Nothing);
    assert!(matches!(&d.notes[..], [Note::OpsUnreadable(e)] if e.contains("'ops'")));
}

#[test]
fn a_restart_wave_starts_inside_its_window_and_parks_outside() {
    let mut c = desired_cluster(json!({}));
    c.restart_policy = "rolling".into();
    c.windows = vec!["Sun 02:00-04:00 UTC".into()];
    let obs = live(json!({}), Some(applied(&c, "new")), true);
    let mem = Memory {
        steps_due: true,
        ..Memory::default()
    };
    // 2026-11-29 is a Sunday.
    let d = decide_cluster(&desired(&c, &alert), &obs, &mem, at(T0));
    let ClusterStep::Wave(WaveDecision::Start(s)) = d.step else {
        panic!("expected a wave start, got {:?}", d.step);
    };
    assert_eq!((s.member.as_str(), s.started_ms), ("r", 1_795_921_200_000));
    let monday = at("2026-11-30T03:00:00Z");
    let d = decide_cluster(&desired(&c, &alert), &obs, &mem, monday);
    assert_eq!(d.step, ClusterStep::Nothing);
    assert_eq!(d.notes, [Note::WaveParked(vec!["r".into(), "p".into()])]);
    c.restart_policy = "manual".into();
    let d = decide_cluster(&desired(&c, &alert), &obs, &mem, at(T0));
    assert!(d.step == ClusterStep::Nothing && d.notes.is_empty());
}
