//! A sweep of fault scenarios over many seeds (each seed moves the faults and the members'
//! cycles in time): the real agents never leave two writable primaries, and once the faults
//! are over exactly one primary runs — or none while nobody can reach the DCS.

use crate::sim::*;

const SEEDS: u64 = 20;

fn three() -> Vec<MemberSpec> {
    vec![
        MemberSpec::new("m1"),
        MemberSpec::new("m2").lag(1_000),
        MemberSpec::new("m3").lag(3_000),
    ]
}

fn five() -> Vec<MemberSpec> {
    (1..=5u64)
        .map(|i| MemberSpec::new(&format!("m{i}")).lag(i * 500))
        .collect()
}

fn seeded(seed: u64, specs: &[MemberSpec]) -> Sim {
    let cfg = SimConfig {
        seed,
        synchronous_mode: seed.is_multiple_of(2),
        ..SimConfig::default()
    };
    Sim::new(cfg, specs)
}

/// No split brain so far, and `primaries` writable primaries now.
fn settled(s: &Sim, what: &str, seed: u64, primaries: usize) {
    assert!(
        s.violation().is_none(),
        "{what}, seed {seed}: {:#?}\n{}",
        s.violation(),
        s.dump()
    );
    assert_eq!(
        s.writable_primaries().len(),
        primaries,
        "{what}, seed {seed}\n{}",
        s.dump()
    );
}

#[test]
fn a_killed_leader_is_replaced_and_rejoins() {
    for seed in 1..=SEEDS {
        let mut s = seeded(seed, &three());
        s.run_for(12_000 + seed * 37);
        s.kill("m1");
        s.run_for(50_000);
        s.revive("m1");
        s.run_for(30_000);
        settled(&s, "kill and revive", seed, 1);
    }
}

#[test]
fn a_partitioned_or_frozen_leader_never_overlaps_its_successor() {
    for seed in 1..=SEEDS {
        for view in [PartitionView::Unreachable, PartitionView::StaleCache] {
            let mut s = seeded(seed, &three());
            s.run_for(12_000 + seed * 53);
            s.partition("m1", view);
            s.run_for(45_000);
            s.heal("m1");
            s.run_for(30_000);
            settled(&s, "partitioned leader", seed, 1);
        }
        let mut s = seeded(seed, &three());
        s.run_for(12_000 + seed * 71);
        s.freeze("m1");
        s.run_for(45_000);
        s.thaw("m1");
        s.run_for(30_000);
        settled(&s, "frozen leader", seed, 1);
    }
}

#[test]
fn faults_during_and_after_a_switchover() {
    for seed in 1..=SEEDS {
        let mut s = seeded(seed, &three());
        s.run_for(12_000 + seed * 11);
        s.request_failover(Some("m1"), Some("m2"));
        s.run_for(2_000 + seed * 13);
        s.kill("m2");
        s.run_for(60_000);
        settled(&s, "switchover, then the candidate killed", seed, 1);
        let mut s = seeded(seed, &three());
        s.run_for(12_000 + seed * 7);
        s.partition("m2", PartitionView::StaleCache);
        s.freeze("m1");
        s.run_for(40_000);
        s.heal("m2");
        s.thaw("m1");
        s.run_for(40_000);
        settled(&s, "frozen leader, partitioned replica", seed, 1);
    }
}

#[test]
fn a_dcs_outage_leaves_no_primary_and_one_after_it() {
    for seed in 1..=SEEDS {
        let mut s = seeded(seed, &five());
        s.run_for(12_000 + seed * 17);
        for i in 1..=5u32 {
            let view = if i.is_multiple_of(2) {
                PartitionView::StaleCache
            } else {
                PartitionView::Unreachable
            };
            s.partition(&format!("m{i}"), view);
        }
        s.run_for(50_000);
        settled(&s, "DCS outage (no failsafe mode)", seed, 0);
        for i in 1..=5 {
            s.heal(&format!("m{i}"));
        }
        s.run_for(60_000);
        settled(&s, "after the outage", seed, 1);
    }
}

#[test]
fn leaders_killed_one_after_another() {
    for seed in 1..=SEEDS {
        let mut s = seeded(seed, &five());
        s.run_for(12_000);
        for round in 0..3 {
            if let Some(l) = s.leader() {
                s.kill(&l);
                s.run_for(45_000 + seed * 100 + round * 1_000);
                s.revive(&l);
            }
            s.run_for(20_000);
        }
        s.run_for(30_000);
        settled(&s, "rolling kills", seed, 1);
    }
}
