//! `AgentMachine::step`: the agent's state between cycles and how effects' results come back.

use super::B;
use crate::ha::machine::{AgentMachine, Effect, Input, Output, TaskResult};
use crate::ha::reply::RequestError;
use crate::ha::*;

/// The lock holder still running as a replica: the decision is to promote.
fn lock_holder_replica() -> B {
    B::new("p1")
        .initialized()
        .led_by("p1")
        .replica(None, 10)
        .lock(LockState::Held)
}

fn observe(m: &mut AgentMachine, b: B) -> Output {
    m.step(Input::Observed(Box::new(b.0)))
}

fn acts(out: &Output) -> Vec<Action> {
    let acts = out.effects.iter().filter_map(|e| match e {
        Effect::Act(a) => Some(a.clone()),
        _ => None,
    });
    acts.collect()
}

#[test]
fn a_failed_promote_reaches_the_core_through_the_machine() {
    let mut m = AgentMachine::new();
    let out = observe(&mut m, lock_holder_replica());
    assert_eq!(acts(&out), vec![Action::Promote]);
    m.step(Input::TaskStarted {
        kind: TaskKind::Promote,
        at_ms: 1_000_000,
    });
    assert_eq!(m.task(), Some(TaskKind::Promote));
    let done = m.step(Input::TaskFinished {
        kind: TaskKind::Promote,
        result: TaskResult::Failed {
            message: "pg_ctl promote failed: exit status 1".into(),
            fatal: false,
        },
        at_ms: 1_002_000,
    });
    assert!(done.cycle_due, "a finished task wakes the loop");
    assert_eq!(m.task(), None);
    let failure = m.last_failure().cloned();
    assert_eq!(
        failure.map(|f| (f.kind, f.at_ms)),
        Some((TaskKind::Promote, 1_002_000))
    );
    // The next decision sees the failure: it retries and says why.
    let out = observe(&mut m, lock_holder_replica());
    assert_eq!(
        out.message.as_deref(),
        Some("retrying promote because I have the session lock; last attempt failed: pg_ctl promote failed: exit status 1")
    );
    assert_eq!(acts(&out), vec![Action::Promote]);
    // A promote that works clears the failure.
    m.step(Input::TaskFinished {
        kind: TaskKind::Promote,
        result: TaskResult::Succeeded("promoted".into()),
        at_ms: 1_004_000,
    });
    assert_eq!(m.last_failure(), None);
}

#[test]
fn the_running_task_is_part_of_the_observation() {
    let mut m = AgentMachine::new();
    m.step(Input::TaskStarted {
        kind: TaskKind::Promote,
        at_ms: 999_000,
    });
    let out = observe(&mut m, lock_holder_replica());
    assert!(
        !acts(&out).contains(&Action::Promote),
        "no second promote while one runs: {out:?}"
    );
}

#[test]
fn a_fatal_task_failure_stops_the_agent() {
    let mut m = AgentMachine::new();
    let out = m.step(Input::TaskFinished {
        kind: TaskKind::Bootstrap,
        result: TaskResult::Failed {
            message: "initdb failed".into(),
            fatal: true,
        },
        at_ms: 5,
    });
    assert_eq!(out.effects, vec![Effect::Stop("initdb failed".into())]);
}

#[test]
fn failed_rewinds_are_counted_until_one_works_or_a_clone() {
    let mut m = AgentMachine::new();
    let finish = |m: &mut AgentMachine, kind, ok: bool| {
        let result = if ok {
            TaskResult::Succeeded("ok".into())
        } else {
            TaskResult::Failed {
                message: "pg_rewind failed".into(),
                fatal: false,
            }
        };
        m.step(Input::TaskFinished {
            kind,
            result,
            at_ms: 1,
        });
    };
    let diverged = || {
        B::new("p1")
            .initialized()
            .led_by("p2")
            .primary()
            .stopped("in production")
            .cluster(super::failover::promoted_p2)
    };
    finish(&mut m, TaskKind::Rewind, false);
    let out = observe(&mut m, diverged());
    assert!(matches!(acts(&out)[..], [Action::Rewind { .. }]), "{out:?}");
    finish(&mut m, TaskKind::Rewind, false);
    finish(&mut m, TaskKind::Start, false);
    assert_eq!(m.rewind_failures(), 2);
    // The count reaches the decision: it stops retrying.
    let out = observe(&mut m, diverged());
    assert!(
        out.message
            .as_deref()
            .is_some_and(|t| t.contains("not retrying")),
        "{out:?}"
    );
    finish(&mut m, TaskKind::CreateReplica, true);
    assert_eq!(m.rewind_failures(), 0);
}

fn restart_request(m: &mut AgentMachine, id: u64, reply_on_start: bool) -> Output {
    m.step(Input::Request {
        id,
        request: Request::Restart,
        reply_on_start,
    })
}

fn running_primary() -> B {
    B::new("p1")
        .initialized()
        .led_by("p1")
        .primary()
        .lock(LockState::Held)
}

#[test]
fn a_request_is_decided_by_the_next_cycle_and_answered_when_its_task_ends() {
    let mut m = AgentMachine::new();
    let out = restart_request(&mut m, 7, false);
    assert!(out.cycle_due && out.replies.is_empty());
    let out = observe(&mut m, running_primary());
    assert_eq!(acts(&out), vec![Action::Restart]);
    assert!(out.replies.is_empty(), "answered when the restart ends");
    m.step(Input::TaskStarted {
        kind: TaskKind::Restart,
        at_ms: 1,
    });
    // Another request while the restart runs is refused at once.
    let busy = restart_request(&mut m, 8, false);
    assert_eq!(busy.replies, vec![(8, Err(RequestError::Busy("restart")))]);
    let done = m.step(Input::TaskFinished {
        kind: TaskKind::Restart,
        result: TaskResult::Failed {
            message: "postgres did not start".into(),
            fatal: false,
        },
        at_ms: 2,
    });
    assert_eq!(
        done.replies,
        vec![(
            7,
            Err(RequestError::Failed("postgres did not start".into()))
        )]
    );
}

#[test]
fn a_request_answered_on_start_or_declined() {
    let mut m = AgentMachine::new();
    restart_request(&mut m, 1, true);
    let out = observe(&mut m, running_primary());
    assert_eq!(out.replies.len(), 1);
    assert_eq!(out.replies[0].0, 1);
    assert!(out.replies[0].1.is_ok());
    // A second waiting request is refused; the first is declined by a cycle that does not act.
    let mut m = AgentMachine::new();
    m.step(Input::Request {
        id: 2,
        request: Request::Reinitialize {
            from_leader: false,
            force: false,
        },
        reply_on_start: false,
    });
    let other = restart_request(&mut m, 3, false);
    assert_eq!(other.replies, vec![(3, Err(RequestError::AnotherRequest))]);
    let out = observe(&mut m, running_primary());
    assert_eq!(
        out.replies,
        vec![(
            2,
            Err(RequestError::Declined(
                "I am the leader, can not reinitialize".into()
            ))
        )]
    );
}

#[test]
fn a_forced_reinitialize_cancels_the_running_task() {
    let mut m = AgentMachine::new();
    restart_request(&mut m, 1, false);
    observe(&mut m, running_primary());
    m.step(Input::TaskStarted {
        kind: TaskKind::Restart,
        at_ms: 1,
    });
    let out = m.step(Input::Request {
        id: 2,
        request: Request::Reinitialize {
            from_leader: false,
            force: true,
        },
        reply_on_start: false,
    });
    assert_eq!(out.effects, vec![Effect::CancelTask(TaskKind::Restart)]);
    assert_eq!(out.replies, vec![(1, Err(RequestError::Cancelled))]);
    assert_eq!(m.task(), None);
    assert!(out.cycle_due);
}

#[test]
fn the_next_cycle_is_due_after_loop_wait_or_the_decisions_wake_up() {
    let mut m = AgentMachine::new();
    let b = running_primary().with(|o| o.config.loop_wait = 10);
    let now = b.0.now_ms;
    let out = observe(&mut m, b);
    assert_eq!(out.wake_at_ms, None, "no earlier wake-up asked for");
    let tick = |m: &mut AgentMachine, at| m.step(Input::Tick { now_ms: at }).cycle_due;
    assert!(!tick(&mut m, now + 9_999));
    assert!(tick(&mut m, now + 10_000));
    // A finished task makes the next cycle due at once.
    m.step(Input::TaskFinished {
        kind: TaskKind::Start,
        result: TaskResult::Succeeded("started".into()),
        at_ms: now + 1,
    });
    assert!(tick(&mut m, now + 2));
}
