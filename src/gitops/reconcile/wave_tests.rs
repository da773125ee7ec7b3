//! The wave controller with virtual time: one decision per pass, never a wait inside.

use super::*;
use crate::dcs::cluster::{Leader, MemberEntry};
use crate::dcs::Member;

/// Members (name, running, streaming, pending restart); the first one leads.
fn cluster(members: &[(&str, bool, bool, bool)]) -> Cluster {
    let m = |&(n, running, streaming, pending): &(&str, bool, bool, bool)| MemberEntry {
        name: n.into(),
        data: Member {
            state: if running { "running" } else { "stopped" }.into(),
            replication_state: streaming.then(|| "streaming".to_string()),
            pending_restart: pending.then_some(true),
            ..Member::default()
        },
        version: 1,
        lease: 1,
    };
    Cluster {
        leader: Some(Leader {
            name: members[0].0.into(),
            lease: 1,
            version: 1,
        }),
        members: members.iter().map(m).collect(),
        ..Cluster::default()
    }
}

fn started(d: WaveDecision) -> WaveStep {
    match d {
        WaveDecision::Start(s) => s,
        other => panic!("expected a start, got {other:?}"),
    }
}

#[test]
fn a_rolling_wave_restarts_replicas_one_by_one_then_switches_the_primary_over() {
    let mut t = 1_000;
    let all_pending = [
        ("p", true, false, true),
        ("r1", true, true, true),
        ("r2", true, true, true),
    ];
    let c = cluster(&all_pending);
    assert_eq!(
        decide(&c, true, false, None, None, t),
        WaveDecision::Parked(vec!["r1".into(), "r2".into(), "p".into()])
    );
    let s = started(decide(&c, true, true, None, None, t));
    assert_eq!((s.member.as_str(), s.action), ("r1", WaveAction::Restart));
    // r1 is down: the pass waits without blocking, again and again.
    t += 5_000;
    let down = cluster(&[
        ("p", true, false, true),
        ("r1", false, false, true),
        ("r2", true, true, true),
    ]);
    assert_eq!(
        decide(&down, true, true, Some(&s), None, t),
        WaveDecision::Wait(s.clone())
    );
    // Back and streaming without a pending restart: finished, then r2 starts.
    t += 5_000;
    let c = cluster(&[
        ("p", true, false, true),
        ("r1", true, true, false),
        ("r2", true, true, true),
    ]);
    assert!(matches!(
        decide(&c, true, true, Some(&s), None, t),
        WaveDecision::Finished { ok: true, .. }
    ));
    let s = started(decide(&c, true, true, None, None, t));
    assert_eq!(s.member, "r2");
    let c = cluster(&[
        ("p", true, false, true),
        ("r1", true, true, false),
        ("r2", true, true, false),
    ]);
    assert!(matches!(
        decide(&c, true, true, Some(&s), None, t),
        WaveDecision::Finished { ok: true, .. }
    ));
    // The primary last: switched over first under `rolling`, restarted in place otherwise.
    let s = started(decide(&c, true, true, None, None, t));
    assert_eq!((s.member.as_str(), s.action), ("p", WaveAction::Switchover));
    assert_eq!(
        started(decide(&c, false, true, None, None, t)).action,
        WaveAction::Restart
    );
    // The leader moved but p has not published as a streaming replica yet (demoting):
    // wait, its pending flag is still the one from before its demotion restart.
    let demoting = cluster(&[
        ("r1", true, false, false),
        ("p", true, false, true),
        ("r2", true, true, false),
    ]);
    assert_eq!(
        decide(&demoting, true, true, Some(&s), None, t),
        WaveDecision::Wait(s.clone())
    );
    let moved = cluster(&[
        ("r1", true, false, false),
        ("p", true, true, true),
        ("r2", true, true, false),
    ]);
    let WaveDecision::Finished {
        ok, outcome, then, ..
    } = decide(&moved, true, true, Some(&s), None, t)
    else {
        panic!("the switchover concluded");
    };
    assert!(ok, "{outcome}");
    // Its agent publishes no postmaster start time (Patroni): it is restarted now, its agent
    // restarting it only if a restart is still pending.
    let then = then.expect("the old primary's restart follows");
    assert_eq!(
        (then.member.as_str(), then.action),
        ("p", WaveAction::Restart),
        "the old primary is a replica now"
    );
}

/// Members with their published postmaster start time (our member-key extension).
fn with_starts(mut c: Cluster, starts: &[(&str, &str)]) -> Cluster {
    for (name, t) in starts {
        let m = c.members.iter_mut().find(|m| m.name == *name).unwrap();
        let key = crate::dcs::model::POSTMASTER_START_KEY.to_string();
        m.data.extra.insert(key, serde_json::json!(t));
    }
    c
}

#[test]
fn a_primary_restarted_by_its_demotion_is_not_restarted_again() {
    let mut t = 50_000;
    let before = with_starts(
        cluster(&[
            ("p", true, false, true),
            ("r1", true, true, false),
            ("r2", true, true, false),
        ]),
        &[("p", "t1"), ("r1", "t5"), ("r2", "t6")],
    );
    let s = started(decide(&before, true, true, None, None, t));
    assert_eq!(s.action, WaveAction::Switchover);
    assert_eq!(
        s.postmaster_start.as_deref(),
        Some("t1"),
        "recorded with the step"
    );
    // The leader moved; p streams from it on a new postmaster (its demotion), but the key
    // read still carries a pending flag from before the demotion.
    t += 8_000;
    let demoted = with_starts(
        cluster(&[
            ("r1", true, false, false),
            ("p", true, true, true),
            ("r2", true, true, false),
        ]),
        &[("p", "t9"), ("r1", "t5"), ("r2", "t6")],
    );
    let WaveDecision::Finished {
        ok, outcome, then, ..
    } = decide(&demoted, true, true, Some(&s), None, t)
    else {
        panic!("the switchover concluded");
    };
    assert!(
        ok && outcome.contains("its demotion restarted it"),
        "{outcome}"
    );
    assert_eq!(then, None, "no second restart of p");
    // Same postmaster as when the switchover was asked (no demotion restart seen): restart.
    let same = with_starts(demoted, &[("p", "t1")]);
    let WaveDecision::Finished { then: Some(r), .. } = decide(&same, true, true, Some(&s), None, t)
    else {
        panic!("the old primary's restart follows");
    };
    assert_eq!((r.member.as_str(), r.action), ("p", WaveAction::Restart));
    assert_eq!(
        (r.started_ms, r.postmaster_start.as_deref()),
        (t, Some("t1"))
    );
}

#[test]
fn steps_time_out_and_request_failures_conclude_them() {
    let c = cluster(&[("p", true, false, false), ("r1", false, false, true)]);
    let s = WaveStep {
        member: "r1".into(),
        action: WaveAction::Restart,
        started_ms: 0,
        postmaster_start: None,
    };
    assert_eq!(
        decide(&c, true, true, Some(&s), None, RESTART_TIMEOUT_MS),
        WaveDecision::Wait(s.clone())
    );
    let WaveDecision::Finished { ok, outcome, .. } =
        decide(&c, true, true, Some(&s), None, RESTART_TIMEOUT_MS + 1)
    else {
        panic!("timed out");
    };
    assert!(
        !ok && outcome.contains("did not come back within 180 s"),
        "{outcome}"
    );
    let refused = decide(
        &c,
        true,
        true,
        Some(&s),
        Some("restart of r1 failed (status 503)"),
        10,
    );
    assert!(
        matches!(refused, WaveDecision::Finished { ok: false, outcome, .. } if outcome.contains("503"))
    );
    let sw = WaveStep {
        member: "p".into(),
        action: WaveAction::Switchover,
        started_ms: 0,
        postmaster_start: None,
    };
    assert_eq!(
        decide(&c, true, true, Some(&sw), None, SWITCHOVER_TIMEOUT_MS),
        WaveDecision::Wait(sw.clone())
    );
    assert!(matches!(
        decide(&c, true, true, Some(&sw), None, SWITCHOVER_TIMEOUT_MS + 1),
        WaveDecision::Finished { ok: false, .. }
    ));
}

#[test]
fn a_lone_primary_is_restarted_in_place_and_nothing_owed_is_idle() {
    let c = cluster(&[("p", true, false, true)]);
    let s = started(decide(&c, true, true, None, None, 0));
    assert_eq!(
        s.action,
        WaveAction::Restart,
        "no replica to switch over to"
    );
    assert_eq!(
        decide(
            &cluster(&[("p", true, false, false)]),
            true,
            true,
            None,
            None,
            0
        ),
        WaveDecision::Idle
    );
}

#[test]
fn the_persisted_step_round_trips() {
    let s = WaveStep {
        member: "r1".into(),
        action: WaveAction::Switchover,
        started_ms: 42,
        postmaster_start: None,
    };
    let v = serde_json::to_value(&s).unwrap();
    assert_eq!(
        v,
        serde_json::json!({"member": "r1", "action": "switchover", "started_ms": 42})
    );
    assert_eq!(serde_json::from_value::<WaveStep>(v).unwrap(), s);
    let with = WaveStep {
        postmaster_start: Some("t1".into()),
        ..s
    };
    let v = serde_json::to_value(&with).unwrap();
    assert_eq!(v["postmaster_start"], "t1");
    assert_eq!(serde_json::from_value::<WaveStep>(v).unwrap(), with);
}
