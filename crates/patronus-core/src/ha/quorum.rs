//! Quorum commit (`synchronous_mode: quorum`): the safe order of changes to the `sync` key
//! and to `synchronous_standby_names` (docs/patroni-behaviour.md §2.15;
//! upstream: Patroni ≥ 4.0, `patroni/quorum.py`).
//!
//! Two "ANY n of set" pairs describe the state:
//! * PostgreSQL's `synchronous_standby_names = 'ANY numsync (sync…)'`: a commit is
//!   acknowledged once `numsync` of `sync` have flushed it;
//! * the `sync` key's `quorum` and `sync_standby` (the *voters*): after losing the leader, a
//!   candidate must hear from `quorum` voters (besides itself, when it is one) that they are
//!   not ahead of it before it may take over.
//!
//! Zero loss requires every set that can acknowledge a commit to overlap every set that can
//! elect a leader: `|voters ∪ sync ∪ {leader}| <= quorum + numsync + 1`, and one of the two
//! sets contains the other while they change. So an *increase* of `numsync` or `quorum` is
//! applied before the matching *decrease* of the other, and nodes join and leave the two sets
//! in the order that keeps the overlap. The optimal steady state for the replicating,
//! eligible standbys `active` is `sync = voters = active`, `numsync = min(wanted, |active|)`,
//! `quorum = |active| - numsync`.
//!
//! [`plan`] returns the ordered steps from any observed state (including one left half-way
//! by a crash); the leader applies the first step per cycle and plans again from what it
//! then observes, so an interrupted sequence resumes safely.

use std::collections::BTreeSet;

/// A set of member names.
pub type Names = BTreeSet<String>;

/// One step towards the desired state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// Render `synchronous_standby_names = 'ANY num (names)'` (empty names: no sync).
    Sync {
        /// Acknowledgements a commit waits for.
        num: usize,
        /// Standbys that may acknowledge.
        names: Names,
    },
    /// Write the `sync` key: `leader`, `quorum`, `sync_standby` = voters.
    Quorum {
        /// Leader recorded in the key.
        leader: String,
        /// Votes a candidate needs.
        quorum: usize,
        /// Voters (`sync_standby`).
        voters: Names,
    },
    /// Nothing can be changed until fresh facts arrive (e.g. a standby catching up).
    Wait,
}

/// Why a transition was refused: it would break the overlap invariant.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct QuorumError(pub String);

/// What the leader observes, the input of [`plan`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QuorumFacts {
    /// Leader named in the `sync` key.
    pub leader: String,
    /// `quorum` in the key.
    pub quorum: usize,
    /// Voters in the key (`sync_standby`).
    pub voters: Names,
    /// `num` of the rendered `synchronous_standby_names`.
    pub numsync: usize,
    /// Names in the rendered `synchronous_standby_names`.
    pub sync: Names,
    /// Listed standbys known to have caught up since they were listed.
    pub numsync_confirmed: usize,
    /// Streaming standbys eligible to be listed.
    pub active: Names,
    /// `synchronous_node_count`.
    pub wanted: usize,
    /// This node (the leader that plans).
    pub me: String,
}

struct Resolver {
    leader: String,
    quorum: usize,
    voters: Names,
    numsync: usize,
    sync: Names,
    confirmed: usize,
    active: Names,
    wanted: usize,
    me: String,
    steps: Vec<Step>,
    waiting: bool,
    /// Inconsistencies repaired on the way (the leader logs them).
    notes: Vec<QuorumError>,
}

fn minus(a: &Names, b: &Names) -> Names {
    a.difference(b).cloned().collect()
}
fn union(a: &Names, b: &Names) -> Names {
    a.union(b).cloned().collect()
}
fn inter(a: &Names, b: &Names) -> Names {
    a.intersection(b).cloned().collect()
}
fn one(n: &str) -> Names {
    Names::from([n.to_string()])
}

/// Plans the steps from `facts` to the desired state, merged (two consecutive steps of the
/// same kind collapse into the later one: nobody observes the intermediate value). Empty when
/// in the desired state; an error when the state breaks the invariant beyond repair here.
pub fn plan(facts: &QuorumFacts) -> Result<Vec<Step>, QuorumError> {
    plan_noting(facts).map(|(steps, _)| steps)
}

/// [`plan`], with the inconsistencies it repaired on the way.
pub fn plan_noting(facts: &QuorumFacts) -> Result<(Vec<Step>, Vec<QuorumError>), QuorumError> {
    let mut r = Resolver {
        leader: facts.leader.clone(),
        quorum: facts.quorum,
        voters: facts.voters.clone(),
        numsync: facts.numsync.min(facts.sync.len()),
        sync: facts.sync.clone(),
        confirmed: facts.numsync_confirmed,
        active: facts.active.clone(),
        wanted: facts.wanted,
        me: facts.me.clone(),
        steps: vec![],
        waiting: false,
        notes: vec![],
    };
    r.generate()?;
    let mut merged: Vec<Step> = vec![];
    for s in r.steps {
        if merged.last().is_some_and(|l| same_kind(l, &s)) {
            merged.pop();
        }
        let stop = s == Step::Wait;
        merged.push(s);
        if stop {
            break;
        }
    }
    Ok((merged, r.notes))
}

fn same_kind(a: &Step, b: &Step) -> bool {
    std::mem::discriminant(a) == std::mem::discriminant(b)
}

impl Resolver {
    fn check(&self) -> Result<(), QuorumError> {
        let voters = union(&self.voters, &one(&self.leader));
        let sync = union(&self.sync, &one(&self.me));
        let nodes = union(&voters, &sync).len();
        if !self.voters.is_empty() && nodes > self.quorum + self.numsync + 1 {
            return Err(QuorumError(format!(
                "Quorum and sync not guaranteed to overlap: nodes {nodes} >= quorum {} + sync {} + 1",
                self.quorum, self.numsync
            )));
        }
        if !(voters.is_subset(&sync) || sync.is_subset(&voters)) {
            return Err(QuorumError(format!(
                "Mismatched sets: voter only={:?} sync only={:?}",
                minus(&voters, &sync),
                minus(&sync, &voters)
            )));
        }
        Ok(())
    }

    /// Sets quorum and voters (and the leader when given). Unless told otherwise the
    /// quorum is raised by the listed standbys not yet confirmed, so that the race still
    /// finds one that has every acknowledged commit.
    fn set_quorum(
        &mut self,
        quorum: i64,
        voters: Names,
        leader: Option<&str>,
        adjust: bool,
    ) -> Result<(), QuorumError> {
        if quorum < 0 {
            return Err(QuorumError(format!("Quorum {quorum} < 0 of ({voters:?})")));
        }
        if quorum > 0 && quorum as usize >= voters.len() {
            return Err(QuorumError(format!("Quorum {quorum} >= N of ({voters:?})")));
        }
        let (mut quorum, mut voters) = (quorum as usize, voters);
        let old_leader = self.leader.clone();
        if let Some(l) = leader {
            self.leader = l.to_string();
        } else if self.confirmed == 0 && self.voters.is_empty() {
            // Nobody is known to have caught up: the key keeps no voters.
            quorum = 0;
            voters = Names::new();
        } else if adjust {
            quorum += self.numsync.saturating_sub(self.confirmed);
        }
        if (&self.leader, quorum, &voters) == (&old_leader, self.quorum, &self.voters) {
            if !self.voters.is_empty() {
                return Ok(());
            }
            // Nothing to write while nobody is confirmed: wait for fresh facts.
            self.steps.push(Step::Wait);
            self.waiting = true;
        }
        self.quorum = quorum;
        self.voters = voters;
        self.check()?;
        self.steps.push(Step::Quorum {
            leader: self.leader.clone(),
            quorum: self.quorum,
            voters: self.voters.clone(),
        });
        Ok(())
    }

    fn set_sync(&mut self, numsync: i64, sync: Names) -> Result<(), QuorumError> {
        if numsync < 0 || numsync as usize > sync.len() {
            return Err(QuorumError(format!(
                "Sync {numsync} out of range for ({sync:?})"
            )));
        }
        self.numsync = numsync as usize;
        self.sync = sync;
        self.check()?;
        self.steps.push(Step::Sync {
            num: self.numsync,
            names: self.sync.clone(),
        });
        Ok(())
    }

    fn generate(&mut self) -> Result<(), QuorumError> {
        match self.take_over() {
            Ok(true) => return Ok(()),
            Ok(false) => {}
            Err(e) => {
                self.notes.push(e);
                let n = self.sync.len() as i64 - self.numsync as i64;
                self.set_quorum(n, self.sync.clone(), None, true)?;
            }
        }
        if self.waiting {
            return Ok(());
        }
        if self.confirmed == 0 && !inter(&self.sync, &self.active).is_empty() {
            // After a restart or failover: infer the confirmed count from the key.
            let alive = inter(&self.sync, &self.active).len();
            self.confirmed = alive.min(self.voters.len().saturating_sub(self.quorum));
        }
        self.unfinished()?;
        self.remove_gone()?;
        self.add_new()?;
        self.change_factor()
    }

    /// After a failover the key still names the former leader: it becomes a voter and we
    /// the leader. Ok(true) = stop here (no standby reconnected yet).
    fn take_over(&mut self) -> Result<bool, QuorumError> {
        if self.me == self.leader {
            self.check()?;
            return Ok(false);
        }
        let voters = union(&minus(&self.voters, &one(&self.me)), &one(&self.leader));
        if self.sync.is_empty() {
            let n = voters.len() as i64 - self.quorum as i64;
            self.set_sync(n, voters.clone())?;
        }
        let me = self.me.clone();
        self.set_quorum(self.quorum as i64, voters, Some(&me), true)?;
        Ok(inter(&self.sync, &self.active).is_empty())
    }

    /// Finishes a sequence a crash or an error interrupted (one set contains the other),
    /// then brings quorum and numsync back to the optimum for the current sets.
    fn unfinished(&mut self) -> Result<(), QuorumError> {
        if self.sync.is_subset(&self.voters) && self.sync != self.voters {
            // Voters were being changed: drop dead voters, then list the living ones.
            let gone = minus(&self.voters, &union(&self.sync, &self.active));
            if !gone.is_empty() {
                let q = (self.voters.len() - gone.len()) as i64 - self.numsync as i64;
                let adjust = minus(&self.sync, &self.active).is_empty();
                self.set_quorum(q, minus(&self.voters, &gone), None, adjust)?;
            }
            let add = minus(&inter(&self.voters, &self.active), &self.sync);
            if !add.is_empty() {
                self.set_sync(self.numsync as i64, union(&self.sync, &add))?;
            }
        } else if self.voters.is_subset(&self.sync) && self.sync != self.voters {
            // The replication factor was being changed.
            let dead = minus(&self.sync, &self.active);
            let kept = minus(&self.sync, &dead);
            let keeps_common = self.voters.is_empty() || !inter(&kept, &self.voters).is_empty();
            if !dead.is_empty() && !kept.is_empty() && keeps_common {
                let n = self.numsync.min(self.sync.len() - dead.len());
                self.set_sync(n as i64, kept)?;
            }
            let add = inter(&minus(&self.sync, &self.voters), &self.active);
            if !add.is_empty() {
                let voters = union(&self.voters, &add);
                let q = voters.len() as i64 - self.numsync as i64;
                self.set_quorum(q, voters, None, true)?;
            }
            let extra = minus(&self.sync, &self.voters);
            if !extra.is_empty() {
                let n = self.numsync.min(self.sync.len() - extra.len());
                self.set_sync(n as i64, minus(&self.sync, &extra))?;
            }
        }
        if self.voters != self.sync {
            return Err(QuorumError(format!(
                "voters {:?} and synchronous_standby_names {:?} still differ",
                self.voters, self.sync
            )));
        }
        self.rebalance()
    }

    fn rebalance(&mut self) -> Result<(), QuorumError> {
        let nodes = union(&self.voters, &self.sync).len() as i64;
        let margin = (self.quorum + self.numsync.min(self.confirmed)) as i64 - nodes;
        if margin > 0 {
            if self.numsync > self.wanted {
                let n = self
                    .wanted
                    .max(self.voters.len().saturating_sub(self.quorum));
                self.set_sync(n as i64, self.sync.clone())?;
            } else {
                let q = self.sync.len() as i64 - self.numsync as i64;
                self.set_quorum(q, self.voters.clone(), None, true)?;
            }
        } else {
            let margin = (self.quorum + self.numsync) as i64 - nodes;
            if self.numsync == self.wanted && margin > 0 && self.numsync > self.confirmed {
                let q = self.sync.len() as i64 - self.numsync as i64;
                self.set_quorum(q, self.voters.clone(), None, true)?;
            }
        }
        Ok(())
    }

    /// Standbys that stopped replicating leave both sets.
    fn remove_gone(&mut self) -> Result<(), QuorumError> {
        let mut gone = minus(&self.sync, &self.active);
        if gone.is_empty() {
            return Ok(());
        }
        if gone == self.sync {
            self.set_quorum(0, Names::new(), None, false)?;
            return self.set_sync(0, Names::new());
        }
        if self.quorum > 0 {
            // Lower the quorum first: drop up to `quorum` of the gone from both sets.
            let drop: Names = gone.iter().rev().take(self.quorum).cloned().collect();
            let sync = minus(&self.sync, &drop);
            let n = self.wanted.max(self.numsync).min(sync.len());
            self.set_sync(n as i64, sync)?;
            let voters = minus(&self.voters, &drop);
            gone = inter(&gone, &self.sync);
            let q = voters.len() as i64 - self.numsync as i64;
            self.set_quorum(q, voters, None, gone.is_empty())?;
        }
        if !gone.is_empty() {
            if self.quorum != 0 {
                return Err(QuorumError(format!(
                    "cannot remove {gone:?} while quorum is {}",
                    self.quorum
                )));
            }
            let numsync = self.numsync as i64 - gone.len() as i64;
            let sync = minus(&self.sync, &gone);
            let voters = minus(&self.voters, &gone);
            let decrease = numsync - self.wanted.min(sync.len()) as i64;
            let q = if decrease != 0 {
                decrease.min(voters.len() as i64 - 1)
            } else {
                0
            };
            self.set_quorum(q, voters, None, false)?;
            self.set_sync(numsync, sync)?;
        }
        Ok(())
    }

    /// New replicating standbys join: first up to the wanted replication factor, then the
    /// rest as extra voters.
    fn add_new(&mut self) -> Result<(), QuorumError> {
        let mut new = minus(&self.active, &self.sync);
        if new.is_empty() {
            return Ok(());
        }
        let target = self.wanted.min(union(&self.sync, &new).len());
        let raise = target as i64 - self.numsync as i64;
        if raise > 0 {
            let (add, by) = if self.sync.is_empty() {
                // Only the leader so far: every new standby may join at once.
                (new.clone(), raise)
            } else {
                let add: Names = new.iter().take(raise as usize).cloned().collect();
                let by = add.len() as i64;
                (add, by)
            };
            self.set_sync(self.numsync as i64 + by, union(&self.sync, &add))?;
            let voters = union(&self.voters, &add);
            let q = voters.len() as i64 - target as i64;
            self.set_quorum(q, voters, None, true)?;
            new = minus(&new, &self.sync);
        }
        if !new.is_empty() {
            let voters = union(&self.voters, &new);
            let q = voters.len() as i64 - target as i64;
            self.set_quorum(q, voters, None, target > self.confirmed)?;
            self.set_sync(target as i64, union(&self.sync, &new))?;
        }
        Ok(())
    }

    /// `synchronous_node_count` changed: raise numsync before lowering quorum, raise quorum
    /// before lowering numsync.
    fn change_factor(&mut self) -> Result<(), QuorumError> {
        let delta = self.wanted.min(self.sync.len()) as i64 - self.numsync as i64;
        if delta > 0 {
            self.set_sync(self.numsync as i64 + delta, self.sync.clone())?;
            let q = self.voters.len() as i64 - self.numsync as i64;
            self.set_quorum(q, self.voters.clone(), None, true)?;
        } else if delta < 0 {
            if (self.quorum as i64 - delta) < self.voters.len() as i64 {
                let q = self.voters.len() as i64 - self.numsync as i64 - delta;
                let adjust = self.wanted > self.confirmed;
                self.set_quorum(q, self.voters.clone(), None, adjust)?;
            }
            self.set_sync(self.numsync as i64 + delta, self.sync.clone())?;
        }
        Ok(())
    }
}
