//! Simulator scenarios of synchronous mode (priority): the leader's `sync` key and
//! `synchronous_standby_names`, written through the real machine's effects, decide who may
//! take over when the leader dies.

use crate::sim::*;

const TTL_MS: u64 = 30_000;
const LOOP_MS: u64 = 10_000;

fn pg<'a>(s: &'a Sim, name: &str) -> &'a SimPg {
    match s.member(name) {
        Some(m) => &m.pg,
        None => panic!("no member {name}"),
    }
}

fn lock_winners(s: &Sim, since: u64) -> Vec<String> {
    let e = s.events().iter().filter(|e| e.at >= since);
    e.filter(|e| e.kind == EventKind::LockAcquired)
        .map(|e| e.member.clone())
        .collect()
}

fn sync_standby(s: &Sim) -> Option<String> {
    s.dcs()
        .sync
        .as_ref()
        .and_then(|k| k.value.sync_standby.clone())
}

/// m2 becomes the synchronous standby while m3 does not stream; then m3 streams again and
/// gets ahead of m2 (which lags 2,000 bytes) before the leader dies.
fn run(seed: u64, synchronous_mode: bool) -> (Sim, u64) {
    let cfg = SimConfig {
        seed,
        synchronous_mode,
        ..SimConfig::default()
    };
    let specs = [
        MemberSpec::new("m1"),
        MemberSpec::new("m2").lag(2_000),
        MemberSpec::new("m3"),
    ];
    let mut s = Sim::new(cfg, &specs);
    s.set_streaming("m3", false);
    s.run_for(3 * LOOP_MS);
    s.set_streaming("m3", true);
    s.run_for(2 * LOOP_MS);
    assert!(
        pg(&s, "m3").lsn > pg(&s, "m2").lsn,
        "seed {seed}: m3 is ahead of m2\n{}",
        s.dump()
    );
    let killed = s.now();
    s.kill("m1");
    let elected = s.run_until(TTL_MS + 3 * LOOP_MS, |s| !s.writable_primaries().is_empty());
    assert!(
        elected.is_some(),
        "seed {seed}: no new leader\n{}",
        s.dump()
    );
    assert!(
        s.violation().is_none(),
        "{:#?}\n{}",
        s.violation(),
        s.dump()
    );
    (s, killed)
}

#[test]
fn sync_mode_failover_promotes_only_the_synchronous_standby() {
    let mut stood_back = false;
    for seed in 1..=6 {
        let (mut s, killed) = run(seed, true);
        assert_eq!(
            s.writable_primaries(),
            vec!["m2"],
            "seed {seed}\n{}",
            s.dump()
        );
        assert_eq!(lock_winners(&s, killed), vec!["m2"], "seed {seed}");
        // m1 had listed m2 in the key and in synchronous_standby_names.
        assert_eq!(
            pg(&s, "m1").sync_names.as_deref(),
            Some("m2"),
            "seed {seed}: the old primary waited for m2"
        );
        let acquire = |a: &crate::ha::Action| matches!(a, crate::ha::Action::AcquireLock { .. });
        let m3_raced = s
            .trace_of("m3")
            .iter()
            .any(|t| t.actions.iter().any(acquire));
        assert!(
            !m3_raced,
            "seed {seed}: m3 is not synchronous\n{}",
            s.dump()
        );
        stood_back |= s
            .trace_of("m3")
            .iter()
            .any(|t| t.at >= killed && t.message.contains("not a synchronous standby"));
        // The new leader takes the key over and picks m3, the only standby left.
        s.run_for(4 * LOOP_MS);
        let key = s.dcs().sync.clone().map(|k| k.value);
        assert_eq!(key.as_ref().and_then(|k| k.leader.as_deref()), Some("m2"));
        assert_eq!(sync_standby(&s).as_deref(), Some("m3"), "{}", s.dump());
        assert_eq!(pg(&s, "m2").sync_names.as_deref(), Some("m3"));
        assert!(s.violation().is_none(), "{}", s.dump());
    }
    assert!(
        stood_back,
        "no seed let m3 look at the race before m2 took the lock"
    );
}

#[test]
fn without_sync_mode_the_most_advanced_replica_wins_the_same_race() {
    // The control run of the scenario above: the sync key is what made m2 the leader.
    for seed in 1..=6 {
        let (s, killed) = run(seed, false);
        assert_eq!(
            s.writable_primaries(),
            vec!["m3"],
            "seed {seed}\n{}",
            s.dump()
        );
        assert_eq!(lock_winners(&s, killed), vec!["m3"]);
        assert!(s.dcs().sync.is_none());
    }
}
