//! Simulator scenarios of operator requests: `POST /restart` and `POST /reinitialize` reach
//! the member's real agent machine, which refuses them while another request waits or a task
//! runs, cancels a task for a forced reinitialize, and answers when the task ends.

use crate::ha::reply::RequestError;
use crate::ha::{PgRole, Request};
use crate::sim::*;

fn three() -> Sim {
    let specs = [
        MemberSpec::new("m1"),
        MemberSpec::new("m2"),
        MemberSpec::new("m3"),
    ];
    Sim::new(SimConfig::default(), &specs)
}

fn reply_to(s: &Sim, id: u64) -> Option<&SimReply> {
    s.replies().iter().find(|r| r.id == id)
}

fn streams_from_m1(s: &Sim, name: &str) -> bool {
    let pg = s.member(name).map(|m| &m.pg);
    pg.is_some_and(|p| {
        p.running && p.role == PgRole::Replica && p.following.as_deref() == Some("m1")
    })
}

#[test]
fn a_restart_request_is_answered_when_the_restart_ends() {
    let mut s = three();
    s.run_for(15_000);
    let asked = s.now();
    let restart = s.request("m2", Request::Restart);
    let second = s.request("m2", Request::Restart);
    // The agent takes the first request and runs a cycle at once, which starts the
    // restart: the second is refused as busy, the first is answered when the restart ends.
    assert_eq!(
        reply_to(&s, second).map(|r| r.reply.clone()),
        Some(Err(RequestError::Busy("restart"))),
        "one request at a time"
    );
    assert_eq!(
        reply_to(&s, restart),
        None,
        "answered when the restart ends"
    );
    // The restart runs (stop, then start): a request meanwhile is refused as busy.
    s.run_until(1_000, |s| s.member("m2").is_some_and(|m| !m.pg.running));
    let busy = s.request(
        "m2",
        Request::Reinitialize {
            from_leader: false,
            force: false,
        },
    );
    assert_eq!(
        reply_to(&s, busy).map(|r| r.reply.clone()),
        Some(Err(RequestError::Busy("restart")))
    );
    let answered = s.run_until(5_000, |s| reply_to(s, restart).is_some());
    let reply = reply_to(&s, restart).cloned();
    assert!(
        matches!(&reply, Some(SimReply { reply: Ok(_), .. })),
        "{reply:?}\n{}",
        s.dump()
    );
    let started = s.events().iter().any(|e| {
        e.member == "m2" && e.at >= asked && e.kind == EventKind::Started { primary: false }
    });
    assert!(started, "m2 restarted\n{}", s.dump());
    assert!(answered.is_some_and(|at| at - asked <= 2_000));
    assert!(streams_from_m1(&s, "m2"), "{}", s.dump());
    assert!(s.violation().is_none());
}

#[test]
fn a_forced_reinitialize_cancels_a_running_restart() {
    let mut s = three();
    s.run_for(15_000);
    let restart = s.request("m3", Request::Restart);
    s.run_until(1_000, |s| s.member("m3").is_some_and(|m| !m.pg.running));
    let reinit = s.request(
        "m3",
        Request::Reinitialize {
            from_leader: false,
            force: true,
        },
    );
    assert_eq!(
        reply_to(&s, restart).map(|r| r.reply.clone()),
        Some(Err(RequestError::Cancelled))
    );
    s.run_until(10_000, |s| reply_to(s, reinit).is_some());
    let reply = reply_to(&s, reinit).cloned();
    assert!(
        matches!(&reply, Some(SimReply { reply: Ok(_), .. })),
        "{reply:?}\n{}",
        s.dump()
    );
    let resynced = s
        .events()
        .iter()
        .any(|e| e.member == "m3" && e.kind == EventKind::Resynced { from: "m1".into() });
    assert!(resynced, "m3 was cloned again\n{}", s.dump());
    assert!(streams_from_m1(&s, "m3"), "{}", s.dump());
    assert!(s.violation().is_none());
}
