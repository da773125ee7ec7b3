//! Multi-member scenarios of the real agents in the simulator (`crate::sim`).

use crate::ha::{Action, PgRole, TaskKind};
use crate::sim::*;

const TTL_MS: u64 = 30_000;
const LOOP_MS: u64 = 10_000;

fn sim(specs: &[MemberSpec]) -> Sim {
    Sim::new(SimConfig::default(), specs)
}

fn three() -> Sim {
    sim(&[
        MemberSpec::new("m1"),
        MemberSpec::new("m2"),
        MemberSpec::new("m3"),
    ])
}

fn assert_safe(s: &Sim) {
    assert!(
        s.violation().is_none(),
        "{:#?}\n--- trace ---\n{}",
        s.violation(),
        s.dump()
    );
}

fn pg<'a>(s: &'a Sim, name: &str) -> &'a SimPg {
    match s.member(name) {
        Some(m) => &m.pg,
        None => panic!("no member {name}"),
    }
}

/// Events of `member` matching `f`, with their times.
fn events_of<'a>(
    s: &'a Sim,
    member: &str,
    f: impl Fn(&EventKind) -> bool + 'a,
) -> Vec<(u64, &'a EventKind)> {
    let member = member.to_string();
    s.events()
        .iter()
        .filter(|e| e.member == member && f(&e.kind))
        .map(|e| (e.at, &e.kind))
        .collect()
}

fn lock_winners(s: &Sim, since: u64) -> Vec<String> {
    let e = s.events().iter().filter(|e| e.at >= since);
    e.filter(|e| e.kind == EventKind::LockAcquired)
        .map(|e| e.member.clone())
        .collect()
}

fn is_replica_of(s: &Sim, name: &str, leader: &str) -> bool {
    let p = pg(s, name);
    p.running && p.role == PgRole::Replica && p.following.as_deref() == Some(leader)
}

fn said(s: &Sim, name: &str, text: &str) -> bool {
    s.trace_of(name).iter().any(|t| t.message.contains(text))
}

#[test]
fn steady_state_keeps_the_leader() {
    let mut s = three();
    s.run_for(60_000);
    assert_safe(&s);
    assert_eq!(s.leader().as_deref(), Some("m1"));
    assert_eq!(s.writable_primaries(), vec!["m1"]);
    let leader_lines = s.trace_of("m1");
    assert!(leader_lines.len() >= 5, "{}", s.dump());
    assert!(leader_lines
        .iter()
        .all(|t| t.message == "no action. I am (m1), the leader with the lock"));
    let primary_lsn = pg(&s, "m1").lsn;
    assert!(primary_lsn > SimConfig::default().initial_lsn);
    for r in ["m2", "m3"] {
        assert!(is_replica_of(&s, r, "m1"), "{}", s.dump());
        assert_eq!(pg(&s, r).lsn, primary_lsn, "{r} streams without lag");
        assert!(said(&s, r, "a secondary, and following a leader (m1)"));
    }
    assert!(lock_winners(&s, 0).is_empty());
    assert!(!s.events().iter().any(|e| e.kind == EventKind::LeaseExpired));
    // The leader publishes its WAL position at least every loop_wait.
    assert!(primary_lsn - s.dcs().status.optime <= 101 * 1_000);
}

fn seeded(seed: u64, specs: &[MemberSpec]) -> Sim {
    let cfg = SimConfig {
        seed,
        ..SimConfig::default()
    };
    Sim::new(cfg, specs)
}

fn attempted_lock(s: &Sim, name: &str) -> bool {
    let acquire = |a: &Action| matches!(a, Action::AcquireLock { .. });
    s.trace_of(name)
        .iter()
        .any(|t| t.actions.iter().any(acquire))
}

fn dead_leader_run(seed: u64) -> Sim {
    let mut s = seeded(
        seed,
        &[
            MemberSpec::new("m1"),
            MemberSpec::new("m2").lag(1_000),
            MemberSpec::new("m3").lag(5_000),
        ],
    );
    s.run_for(15_000);
    let killed = s.now();
    s.kill("m1");
    let m3_end = pg(&s, "m3").lsn;
    let elected = s.run_until(TTL_MS + 3 * LOOP_MS, |s| !s.writable_primaries().is_empty());
    let Some(elected) = elected else {
        panic!("seed {seed}: no new leader:\n{}", s.dump())
    };
    assert!(elected - killed <= TTL_MS + 3 * LOOP_MS);
    assert_eq!(s.leader().as_deref(), Some("m2"));
    assert_eq!(s.writable_primaries(), vec!["m2"]);
    assert_eq!(lock_winners(&s, killed), vec!["m2"], "{}", s.dump());
    let expired = events_of(&s, "m1", |k| *k == EventKind::LeaseExpired);
    assert_eq!(expired.len(), 1, "the dead leader's lease expired once");
    assert!(expired[0].0 <= elected, "before the new leader took over");
    let promoted = events_of(&s, "m2", |k| matches!(k, EventKind::Promoted { .. }));
    let [(_, EventKind::Promoted { timeline, lsn })] = promoted.as_slice() else {
        panic!("one promotion expected: {promoted:?}")
    };
    assert_eq!(*timeline, 2);
    let switch = *lsn;
    assert!(switch > m3_end, "m2 had the most WAL");
    // History records the switch once the new leader's next cycle ran; m3 moves over.
    s.run_for(3 * LOOP_MS);
    let h = &s.dcs().history;
    assert_eq!(h.len(), 1, "{h:?}");
    assert_eq!((h[0].timeline, h[0].lsn), (1, switch));
    assert_eq!(h[0].new_leader.as_deref(), Some("m2"));
    assert!(is_replica_of(&s, "m3", "m2"), "{}", s.dump());
    assert_eq!(pg(&s, "m3").timeline, 2);
    assert_eq!(lock_winners(&s, killed), vec!["m2"]);
    assert!(!attempted_lock(&s, "m3"));
    assert_safe(&s);
    s
}

#[test]
fn dead_leader_is_replaced_by_the_most_advanced_replica() {
    let mut compared = false;
    for seed in 1..=8 {
        let s = dead_leader_run(seed);
        compared |= said(&s, "m3", "m2 has a higher WAL position");
    }
    assert!(compared, "no seed let m3 race before m2 took the lock");
}

#[test]
fn lagging_survivor_does_not_promote() {
    let mut s = sim(&[MemberSpec::new("m1"), MemberSpec::new("m2").lag(2 << 20)]);
    s.run_for(15_000);
    s.kill("m1");
    s.run_for(TTL_MS + 6 * LOOP_MS);
    assert_safe(&s);
    assert_eq!(s.leader(), None, "{}", s.dump());
    assert!(s.writable_primaries().is_empty());
    assert!(lock_winners(&s, 0).is_empty());
    assert!(is_replica_of(&s, "m2", "m1"));
    assert!(
        said(&s, "m2", "exceeds maximum replication lag"),
        "{}",
        s.dump()
    );
}

fn priority_run(seed: u64) -> Sim {
    // m4 (nofailover) has the most WAL; m2 and m3 are level, m3 has the higher priority.
    let mut s = seeded(
        seed,
        &[
            MemberSpec::new("m1"),
            MemberSpec::new("m2").lag(1_000),
            MemberSpec::new("m3").lag(1_000).priority(2),
            MemberSpec::new("m4").nofailover(),
        ],
    );
    s.run_for(15_000);
    let killed = s.now();
    s.kill("m1");
    let (l2, l3, l4) = (pg(&s, "m2").lsn, pg(&s, "m3").lsn, pg(&s, "m4").lsn);
    assert!(l2 == l3 && l4 > l3);
    let elected = s.run_until(TTL_MS + 3 * LOOP_MS, |s| !s.writable_primaries().is_empty());
    assert!(elected.is_some(), "{}", s.dump());
    assert_eq!(s.leader().as_deref(), Some("m3"));
    s.run_for(6 * LOOP_MS);
    assert_eq!(lock_winners(&s, killed), vec!["m3"], "{}", s.dump());
    assert!(!attempted_lock(&s, "m4"));
    assert!(!attempted_lock(&s, "m2"));
    assert!(is_replica_of(&s, "m2", "m3"), "{}", s.dump());
    // m4 got WAL past the switch point: rewound, then streams on the new timeline.
    let rewound = events_of(&s, "m4", |k| matches!(k, EventKind::Resynced { .. }));
    assert_eq!(rewound.len(), 1, "{}", s.dump());
    assert!(is_replica_of(&s, "m4", "m3"), "{}", s.dump());
    assert_eq!(pg(&s, "m4").timeline, 2);
    assert_eq!(pg(&s, "m4").lsn, pg(&s, "m3").lsn);
    assert_safe(&s);
    s
}

#[test]
fn failover_priority_decides_ties_and_nofailover_never_leads() {
    let (mut tie, mut refused) = (false, false);
    for seed in 1..=8 {
        let s = priority_run(seed);
        tie |= said(
            &s,
            "m2",
            "m3 has the same WAL position and a higher priority",
        );
        refused |= said(&s, "m4", "I am not allowed to promote");
    }
    assert!(
        tie && refused,
        "the rules were not exercised: {tie} {refused}"
    );
}

/// The partitioned leader stops accepting writes before its lease can expire, and the new
/// leader takes over only after that.
fn partitioned_leader_steps_down(view: PartitionView) {
    let mut s = three();
    s.run_for(15_000);
    s.partition("m1", view);
    let Some(expiry) = s.lease_expiry("m1") else {
        panic!("m1 has no lease")
    };
    assert!(expiry <= s.now() + TTL_MS, "{expiry} {}", s.now());
    s.run_for(TTL_MS + 3 * LOOP_MS);
    assert_safe(&s);
    let stopped = events_of(&s, "m1", |k| {
        matches!(
            k,
            EventKind::Stopped {
                was_primary: true,
                ..
            }
        )
    });
    let Some(&(stopped_at, _)) = stopped.first() else {
        panic!("m1 never stopped:\n{}", s.dump())
    };
    assert!(
        stopped_at < expiry,
        "stopped {stopped_at} >= expiry {expiry}"
    );
    let Some(new) = s.leader().filter(|l| l != "m1") else {
        panic!("no new leader:\n{}", s.dump())
    };
    let promoted = events_of(&s, &new, |k| matches!(k, EventKind::Promoted { .. }));
    let Some(&(promoted_at, _)) = promoted.first() else {
        panic!("{new} never promoted")
    };
    assert!(promoted_at >= expiry && promoted_at > stopped_at);
    assert_eq!(s.writable_primaries(), vec![new.clone()]);
    // Back on the DCS, the old leader follows the new one.
    s.heal("m1");
    s.run_for(2 * LOOP_MS);
    assert!(is_replica_of(&s, "m1", &new), "{}", s.dump());
    assert_eq!(pg(&s, "m1").timeline, 2);
    assert_safe(&s);
}

#[test]
fn partitioned_leader_demotes_before_its_lease_expires() {
    partitioned_leader_steps_down(PartitionView::Unreachable);
}

#[test]
fn partitioned_leader_with_stale_cache_demotes_before_its_lease_expires() {
    partitioned_leader_steps_down(PartitionView::StaleCache);
}

#[test]
fn switchover_hands_over_without_losing_wal() {
    let mut s = three();
    s.run_for(15_000);
    let asked = s.now();
    s.request_failover(Some("m1"), Some("m2"));
    let done = s.run_until(LOOP_MS, |s| {
        s.writable_primaries() == ["m2"] && is_replica_of(s, "m1", "m2")
    });
    assert!(done.is_some(), "{}", s.dump());
    assert_eq!(s.leader().as_deref(), Some("m2"));
    let stop = events_of(&s, "m1", |k| matches!(k, EventKind::Stopped { .. }));
    let [(
        stopped_at,
        EventKind::Stopped {
            clean: true,
            lsn: old_end,
            ..
        },
    )] = stop.as_slice()
    else {
        panic!("one clean stop expected: {stop:?}")
    };
    let prom = events_of(&s, "m2", |k| matches!(k, EventKind::Promoted { .. }));
    let [(promoted_at, EventKind::Promoted { lsn: switch, .. })] = prom.as_slice() else {
        panic!("one promotion expected: {prom:?}")
    };
    assert!(promoted_at > stopped_at);
    assert!(switch >= old_end, "lsn regression: {switch} < {old_end}");
    // The hand-over task confirmed the candidate had the shutdown checkpoint.
    let handed = events_of(&s, "m1", |k| {
        matches!(k, EventKind::TaskEnded { kind: TaskKind::Demote, ok: true, message }
            if message.contains("m2 takes over"))
    });
    assert_eq!(handed.len(), 1, "{}", s.dump());
    assert!(s.dcs().failover.is_none());
    assert_eq!(lock_winners(&s, asked), vec!["m2"]);
    s.run_for(2 * LOOP_MS);
    for r in ["m1", "m3"] {
        assert!(is_replica_of(&s, r, "m2"), "{}", s.dump());
        assert_eq!(pg(&s, r).timeline, 2);
    }
    assert!(said(&s, "m1", "switchover: demoting myself"));
    assert_safe(&s);
}

#[test]
fn switchover_to_a_stuck_replica_resumes_the_old_primary() {
    let mut s = three();
    s.run_for(15_000);
    s.set_streaming("m2", false);
    s.run_for(2_000);
    let asked = s.now();
    s.request_failover(Some("m1"), Some("m2"));
    s.run_for(TTL_MS);
    assert_safe(&s);
    assert_eq!(s.leader().as_deref(), Some("m1"), "{}", s.dump());
    assert_eq!(s.writable_primaries(), vec!["m1"]);
    assert!(s.dcs().failover.is_none());
    let gave_up = events_of(&s, "m1", |k| {
        matches!(k, EventKind::TaskEnded { ok: false, message, .. }
            if message.starts_with("switchover failed"))
    });
    assert!(!gave_up.is_empty(), "{}", s.dump());
    assert!(lock_winners(&s, asked).is_empty());
    assert!(pg(&s, "m2").running && pg(&s, "m2").role == PgRole::Replica);
    assert_eq!(pg(&s, "m1").timeline, 1);
    assert!(is_replica_of(&s, "m3", "m1"));
    assert!(said(&s, "m1", "updated leader lock during demote"));
}

#[test]
fn crashed_old_leader_is_rewound_and_follows() {
    let mut s = sim(&[
        MemberSpec::new("m1"),
        MemberSpec::new("m2").lag(2_000),
        MemberSpec::new("m3").lag(8_000),
    ]);
    s.run_for(15_000);
    s.kill("m1");
    let crash_end = pg(&s, "m1").lsn;
    let ready = s.run_until(TTL_MS + 3 * LOOP_MS, |s| {
        s.writable_primaries() == ["m2"] && !s.dcs().history.is_empty()
    });
    assert!(ready.is_some(), "{}", s.dump());
    let switch = s.dcs().history[0].lsn;
    assert!(crash_end > switch, "m1 has WAL past the switch point");
    let revived = s.now();
    s.revive("m1");
    let back = s.run_until(3 * LOOP_MS, |s| is_replica_of(s, "m1", "m2"));
    assert!(back.is_some(), "{}", s.dump());
    let rewinds: Vec<_> = s
        .trace_of("m1")
        .into_iter()
        .filter(|t| t.at >= revived)
        .filter(|t| {
            t.actions.contains(&Action::Rewind {
                leader: "m2".into(),
            })
        })
        .collect();
    assert_eq!(rewinds.len(), 1, "{}", s.dump());
    assert!(!events_of(&s, "m1", |k| matches!(k, EventKind::Resynced { .. })).is_empty());
    let before = pg(&s, "m1").lsn;
    s.run_for(5_000);
    assert_eq!(pg(&s, "m1").timeline, 2);
    assert!(pg(&s, "m1").lsn > before, "m1 streams from m2");
    assert!(is_replica_of(&s, "m1", "m2"));
    assert_eq!(s.writable_primaries(), vec!["m2"]);
    assert_safe(&s);
}

/// Self-test of the checker: a frozen leader agent keeps PostgreSQL writable while its lease
/// expires and another member promotes (why Patroni wants a watchdog). Once resumed, the old
/// leader sees the new one and demotes.
#[test]
fn checker_reports_split_brain_of_a_frozen_leader_without_a_fence() {
    let cfg = SimConfig {
        fence_margin_ms: None,
        ..SimConfig::default()
    };
    let mut s = Sim::new(
        cfg,
        &[
            MemberSpec::new("m1"),
            MemberSpec::new("m2"),
            MemberSpec::new("m3"),
        ],
    );
    s.run_for(15_000);
    s.freeze("m1");
    s.run_for(TTL_MS + 2 * LOOP_MS);
    let Some(v) = s.violation().cloned() else {
        panic!("no violation recorded:\n{}", s.dump())
    };
    assert_eq!(v.primaries.len(), 2);
    assert!(v.primaries.contains(&"m1".to_string()));
    assert!(v.states.contains("agent=Frozen"));
    let thawed = s.now();
    s.thaw("m1");
    s.run_for(2_000);
    // The cycle it was frozen in resumes past its DCS deadline (or, a cycle later, finds
    // another leader): either way it demotes at once.
    let demoted = s
        .trace_of("m1")
        .into_iter()
        .any(|t| t.at >= thawed && t.actions.iter().any(|a| matches!(a, Action::Demote { .. })));
    assert!(demoted, "{}", s.dump());
    assert_eq!(s.writable_primaries().len(), 1);
    assert!(!s.writable_primaries().contains(&"m1".to_string()));
}

#[test]
fn the_fence_stops_a_frozen_leader_before_its_lease_can_expire() {
    let mut s = three();
    s.run_for(15_000);
    s.freeze("m1");
    let frozen_at = s.now();
    let new_leader = s.run_until(TTL_MS + 4 * LOOP_MS, |s| {
        s.writable_primaries().iter().any(|p| p != "m1")
    });
    assert!(new_leader.is_some(), "nobody took over:\n{}", s.dump());
    assert!(s.violation().is_none(), "split brain:\n{}", s.dump());
    let fenced = s
        .events()
        .iter()
        .find(|e| e.kind == EventKind::Fault("fence killed postgres".into()))
        .map(|e| e.at)
        .expect("the fence fired");
    assert!(
        fenced > frozen_at && fenced < frozen_at + TTL_MS,
        "fenced at {fenced}"
    );
    s.thaw("m1");
    s.run_for(20_000);
    assert_eq!(s.writable_primaries().len(), 1);
    assert!(s.violation().is_none(), "{}", s.dump());
}

#[test]
fn same_seed_same_run() {
    let run = |seed| {
        let cfg = SimConfig {
            seed,
            ..SimConfig::default()
        };
        let mut s = Sim::new(cfg, &[MemberSpec::new("m1"), MemberSpec::new("m2")]);
        s.run_for(15_000);
        s.kill("m1");
        s.run_for(TTL_MS + 2 * LOOP_MS);
        s.trace().to_vec()
    };
    assert_eq!(run(7), run(7));
    assert_ne!(run(7), run(8));
}

/// The failover key is written directly (a scheduled switchover skips the REST pre-check,
/// and a candidate can fall behind after it) to a replica whose WAL receiver is stuck more
/// than `maximum_lag_on_failover` behind. Patroni's leader re-checks the lag at execution
/// (`is_failover_possible`) and refuses; if the leader then dies, the caught-up m3 wins.
#[test]
fn switchover_to_a_lagging_candidate_cannot_lose_more_than_the_lag_limit() {
    let cfg = SimConfig {
        write_bytes_per_step: 20_000,
        ..SimConfig::default()
    };
    let max_lag = cfg.maximum_lag_on_failover;
    let mut s = Sim::new(
        cfg,
        &[
            MemberSpec::new("m1"),
            MemberSpec::new("m2"),
            MemberSpec::new("m3"),
        ],
    );
    s.run_for(15_000);
    s.set_streaming("m2", false);
    s.run_for(25_000);
    // Behind by more than the limit even against the last published optime.
    assert!(s.dcs().status.optime - pg(&s, "m2").lsn > max_lag);
    s.request_failover(Some("m1"), Some("m2"));
    s.run_for(1_000);
    s.kill("m1");
    let last_write = pg(&s, "m1").lsn;
    let elected = s.run_until(TTL_MS + 3 * LOOP_MS, |s| !s.writable_primaries().is_empty());
    assert!(elected.is_some(), "{}", s.dump());
    assert_safe(&s);
    let new = s.writable_primaries().remove(0);
    let promoted = events_of(&s, &new, |k| matches!(k, EventKind::Promoted { .. }));
    let Some((_, EventKind::Promoted { lsn, .. })) = promoted.first() else {
        panic!("{new} did not promote")
    };
    let lost = last_write.saturating_sub(*lsn);
    assert!(
        lost <= max_lag,
        "{new} promoted {lost} bytes behind the old leader (m3 had everything)\n{}",
        s.dump()
    );
}

#[test]
fn a_failed_promote_comes_back_as_input_and_the_lock_holder_retries() {
    for seed in 1..=4 {
        let mut s = seeded(
            seed,
            &[
                MemberSpec::new("m1"),
                MemberSpec::new("m2").lag(1_000),
                MemberSpec::new("m3").lag(5_000),
            ],
        );
        s.run_for(15_000);
        s.fail_promotes("m2", 1);
        s.kill("m1");
        let elected = s.run_until(TTL_MS + 6 * LOOP_MS, |s| !s.writable_primaries().is_empty());
        assert!(
            elected.is_some(),
            "seed {seed}: no new leader:\n{}",
            s.dump()
        );
        let failed = events_of(&s, "m2", |k| {
            matches!(k, EventKind::TaskEnded { ok: false, .. })
        });
        assert_eq!(
            failed.len(),
            1,
            "seed {seed}: one failed promote: {failed:?}"
        );
        assert!(
            said(
                &s,
                "m2",
                "last attempt failed: promote failed: pg_ctl promote failed"
            ),
            "seed {seed}: the retry names the failure:\n{}",
            s.dump()
        );
        assert_eq!(s.writable_primaries(), vec!["m2"]);
        assert_eq!(s.leader().as_deref(), Some("m2"));
        assert_safe(&s);
    }
}

/// The leader's real slot code runs in the simulator: it keeps a physical slot for every
/// member streaming from it, and after a failover the new leader has the slots of the
/// members that follow it (created before its promotion, so they reconnect at once).
#[test]
fn the_leader_keeps_a_physical_slot_for_each_member() {
    let mut s = three();
    s.run_for(15_000);
    let mut slots = pg(&s, "m1").slots.clone();
    slots.sort();
    assert_eq!(slots, ["m2", "m3"], "{}", s.dump());
    s.kill("m1");
    let elected = s.run_until(TTL_MS + 3 * LOOP_MS, |s| !s.writable_primaries().is_empty());
    assert!(elected.is_some(), "{}", s.dump());
    let new = s.writable_primaries().remove(0);
    let other = if new == "m2" { "m3" } else { "m2" };
    assert!(
        pg(&s, &new).slots.iter().any(|n| n == other),
        "{new} keeps a slot for {other}: {:?}\n{}",
        pg(&s, &new).slots,
        s.dump()
    );
    assert_safe(&s);
}
