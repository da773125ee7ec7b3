//! Quorum commit transitions: every step keeps "any acknowledging set overlaps any electing
//! set", and the sequence converges to the optimal state (reference: patroni/quorum.py).

use super::quorum::{plan, Names, QuorumFacts, Step};

fn names(list: &[&str]) -> Names {
    list.iter().map(|s| s.to_string()).collect()
}

/// The leader's view, advanced one applied step per cycle as the agent does.
#[derive(Debug, Clone)]
struct World {
    leader: String,
    quorum: usize,
    voters: Names,
    numsync: usize,
    sync: Names,
    /// Listed standbys that had one cycle to catch up.
    caught_up: Names,
    active: Names,
    wanted: usize,
    me: String,
}

impl World {
    fn steady(me: &str, voters: &[&str], numsync: usize, wanted: usize) -> World {
        let v = names(voters);
        World {
            leader: me.into(),
            quorum: v.len().saturating_sub(numsync),
            voters: v.clone(),
            numsync,
            sync: v.clone(),
            caught_up: v.clone(),
            active: v,
            wanted,
            me: me.into(),
        }
    }

    fn facts(&self) -> QuorumFacts {
        let confirmed = self
            .caught_up
            .intersection(&self.sync)
            .filter(|n| self.active.contains(*n))
            .count();
        QuorumFacts {
            leader: self.leader.clone(),
            quorum: self.quorum,
            voters: self.voters.clone(),
            numsync: self.numsync,
            sync: self.sync.clone(),
            numsync_confirmed: confirmed,
            active: self.active.clone(),
            wanted: self.wanted,
            me: self.me.clone(),
        }
    }

    /// Applies the first planned step; None when nothing is left to do.
    fn cycle(&mut self) -> Option<Step> {
        let step = plan(&self.facts()).expect("plan").into_iter().next()?;
        // Standbys listed last cycle have caught up by now.
        self.caught_up = self.sync.clone();
        match &step {
            Step::Sync { num, names } => {
                self.numsync = *num;
                self.sync = names.clone();
            }
            Step::Quorum {
                leader,
                quorum,
                voters,
            } => {
                self.leader = leader.clone();
                self.quorum = *quorum;
                self.voters = voters.clone();
            }
            Step::Wait => {}
        }
        Some(step)
    }

    /// Runs cycles until the plan is empty, checking the invariant after every step.
    fn converge(&mut self) -> Vec<Step> {
        let mut steps = vec![];
        for _ in 0..20 {
            let Some(step) = self.cycle() else {
                return steps;
            };
            self.assert_overlap(&step);
            steps.push(step);
        }
        panic!("no convergence: {self:?} after {steps:?}");
    }

    /// Any `numsync` standbys of `sync` that acknowledged a commit intersect any
    /// `quorum + 1` voters a candidate could hear from (checked exhaustively); a set that
    /// includes us, the running primary, holds every commit anyway.
    fn assert_overlap(&self, step: &Step) {
        if self.voters.is_empty() || self.numsync == 0 {
            return;
        }
        let sync: Vec<&String> = self.sync.iter().collect();
        let voters: Vec<&String> = self.voters.iter().collect();
        for ack in subsets(&sync, self.numsync) {
            for elect in subsets(&voters, (self.quorum + 1).min(voters.len())) {
                assert!(
                    ack.iter().any(|a| elect.contains(a)) || elect.contains(&&self.me),
                    "after {step:?}: acks {ack:?} miss electors {elect:?} in {self:?}"
                );
            }
        }
    }

    fn assert_optimal(&self) {
        let numsync = self.wanted.min(self.active.len());
        assert_eq!(self.sync, self.active, "{self:?}");
        assert_eq!(self.voters, self.active, "{self:?}");
        assert_eq!(self.numsync, numsync, "{self:?}");
        assert_eq!(self.quorum, self.active.len() - numsync, "{self:?}");
        assert_eq!(self.leader, self.me, "{self:?}");
    }
}

fn subsets<'a>(items: &[&'a String], k: usize) -> Vec<Vec<&'a String>> {
    if k == 0 {
        return vec![vec![]];
    }
    if items.len() < k {
        return vec![];
    }
    let mut with: Vec<Vec<&String>> = subsets(&items[1..], k - 1)
        .into_iter()
        .map(|mut s| {
            s.push(items[0]);
            s
        })
        .collect();
    with.extend(subsets(&items[1..], k));
    with
}

fn kind(s: &Step) -> &'static str {
    match s {
        Step::Sync { .. } => "sync",
        Step::Quorum { .. } => "quorum",
        Step::Wait => "wait",
    }
}

#[test]
fn enabling_lists_the_standbys_in_postgres_first_then_the_key() {
    let mut w = World::steady("m1", &[], 0, 1);
    w.active = names(&["m2", "m3"]);
    let steps = w.converge();
    assert_eq!(
        steps[0],
        Step::Sync {
            num: 1,
            names: names(&["m2", "m3"])
        }
    );
    assert!(steps.iter().any(|s| kind(s) == "quorum"), "{steps:?}");
    w.assert_optimal();
    assert_eq!((w.quorum, w.numsync), (1, 1));
}

#[test]
fn a_new_standby_becomes_a_voter_before_it_is_listed() {
    let mut w = World::steady("m1", &["m2", "m3"], 1, 1);
    w.active.insert("m4".into());
    let steps = w.converge();
    assert_eq!(
        steps[0],
        Step::Quorum {
            leader: "m1".into(),
            quorum: 2,
            voters: names(&["m2", "m3", "m4"])
        }
    );
    assert_eq!(kind(&steps[1]), "sync");
    w.assert_optimal();
}

#[test]
fn a_gone_standby_leaves_postgres_and_the_key_safely() {
    let mut w = World::steady("m1", &["m2", "m3", "m4"], 1, 1);
    w.active.remove("m3");
    w.converge();
    w.assert_optimal();
    assert_eq!((w.quorum, w.numsync), (1, 1));
    // Every standby gone: the key's voters are emptied before PostgreSQL stops waiting.
    w.active.clear();
    let steps = w.converge();
    assert_eq!(kind(&steps[0]), "quorum", "{steps:?}");
    assert_eq!((w.quorum, w.numsync), (0, 0));
    assert!(w.voters.is_empty() && w.sync.is_empty());
}

#[test]
fn raising_k_raises_numsync_before_lowering_quorum() {
    let mut w = World::steady("m1", &["m2", "m3", "m4"], 1, 2);
    let steps = w.converge();
    assert_eq!(
        steps[0],
        Step::Sync {
            num: 2,
            names: names(&["m2", "m3", "m4"])
        }
    );
    w.assert_optimal();
    assert_eq!((w.quorum, w.numsync), (1, 2));
}

#[test]
fn lowering_k_raises_quorum_before_lowering_numsync() {
    let mut w = World::steady("m1", &["m2", "m3", "m4"], 2, 1);
    let steps = w.converge();
    assert_eq!(
        steps[0],
        Step::Quorum {
            leader: "m1".into(),
            quorum: 2,
            voters: names(&["m2", "m3", "m4"])
        }
    );
    w.assert_optimal();
    assert_eq!((w.quorum, w.numsync), (2, 1));
}

#[test]
fn after_a_failover_the_new_leader_takes_the_key_and_drops_the_dead_leader() {
    // m1 led with voters m2, m3 (quorum 1); m2 won the race, m1 is dead.
    let mut w = World::steady("m2", &["m2", "m3"], 1, 1);
    w.leader = "m1".into();
    w.sync.clear();
    w.numsync = 0;
    w.caught_up.clear();
    w.active = names(&["m3"]);
    let steps = w.converge();
    // PostgreSQL waits for the old voters first, then the key names us.
    assert_eq!(
        steps[0],
        Step::Sync {
            num: 1,
            names: names(&["m1", "m3"])
        }
    );
    assert_eq!(
        steps[1],
        Step::Quorum {
            leader: "m2".into(),
            quorum: 1,
            voters: names(&["m1", "m3"])
        }
    );
    w.assert_optimal();
    assert_eq!(w.voters, names(&["m3"]));
}

#[test]
fn no_replica_back_yet_after_a_failover_waits() {
    let mut w = World::steady("m2", &["m2", "m3"], 1, 1);
    w.leader = "m1".into();
    w.sync.clear();
    w.numsync = 0;
    w.active.clear();
    let steps = plan(&w.facts()).unwrap();
    // PostgreSQL waits for the former voters, the key names us, and nothing is removed
    // before the standbys had a cycle to reconnect.
    assert_eq!(steps.len(), 2, "{steps:?}");
    assert_eq!(kind(&steps[0]), "sync");
    assert!(
        matches!(&steps[1], Step::Quorum { leader, .. } if leader == "m2"),
        "{steps:?}"
    );
}

/// Every combination of starting size, k and membership change converges safely.
#[test]
fn every_membership_and_k_change_keeps_the_overlap() {
    let all = ["m2", "m3", "m4", "m5"];
    for n in 0..=all.len() {
        for k in 1..=3 {
            let numsync = k.min(n);
            for target in 0..(1 << all.len()) {
                let mut w = World::steady("m1", &all[..n], numsync, k);
                w.converge();
                w.active = (0..all.len())
                    .filter(|i| target & (1 << i) != 0)
                    .map(|i| all[i].to_string())
                    .collect();
                for wanted in 1..=3 {
                    w.wanted = wanted;
                    w.converge();
                    w.assert_optimal();
                }
            }
        }
    }
}

#[test]
fn an_interrupted_sequence_resumes() {
    // Crash after the key got m4 but before PostgreSQL listed it.
    let mut w = World::steady("m1", &["m2", "m3"], 1, 1);
    w.voters.insert("m4".into());
    w.quorum = 2;
    w.active.insert("m4".into());
    let steps = w.converge();
    assert_eq!(kind(&steps[0]), "sync", "{steps:?}");
    w.assert_optimal();
}

/// From any state (a key or a setting written by hand, a crash half-way), planning never
/// panics, and a state it accepts converges to the optimum with the overlap kept.
#[test]
fn any_observed_state_is_planned_without_panic() {
    let all = ["m2", "m3", "m4"];
    let set = |bits: usize| -> Names {
        (0..all.len())
            .filter(|i| bits & (1 << i) != 0)
            .map(|i| all[i].to_string())
            .collect()
    };
    let mut accepted = 0;
    for leader in ["m1", "m9"] {
        for quorum in 0..4 {
            for voters in 0..8 {
                for numsync in 0..4 {
                    for sync in 0..8 {
                        for active in 0..8 {
                            let mut w = World {
                                leader: leader.into(),
                                quorum,
                                voters: set(voters),
                                numsync,
                                sync: set(sync),
                                caught_up: set(sync),
                                active: set(active),
                                wanted: 1,
                                me: "m1".into(),
                            };
                            if plan(&w.facts()).is_err() {
                                continue;
                            }
                            accepted += 1;
                            for _ in 0..20 {
                                match plan(&w.facts()) {
                                    Ok(steps) if steps.is_empty() => break,
                                    Ok(_) => {
                                        w.cycle();
                                    }
                                    Err(_) => break,
                                }
                            }
                        }
                    }
                }
            }
        }
    }
    assert!(accepted > 1000, "{accepted}");
}
