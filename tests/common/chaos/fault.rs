//! Fault kinds, the seeded plan of faults, and injecting one fault into a running cluster.

use super::super::TestCluster;
use reqwest::Method;
use serde_json::json;
use std::time::{Duration, Instant};

/// splitmix64: a tiny seeded generator, enough to make a fault plan reproducible.
pub struct Rng(u64);

impl Rng {
    /// A generator started from `seed`.
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A number in `lo..=hi`.
    pub fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.next_u64() % (hi - lo + 1)
    }
}

/// The faults the suite injects.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum FaultKind {
    /// kill -9 of one member's agent (any member), restarted after the hold.
    KillAgent,
    /// kill -9 of one member's agent and postmaster (any member), agent restarted after the hold.
    KillAgentPostmaster,
    /// kill -9 of a replica's postmaster (its agent restarts it).
    KillReplicaPostmaster,
    /// SIGTERM of the leader's agent, restarted after the hold.
    TermLeader,
    /// SIGSTOP of one member's agent for the hold, then SIGCONT.
    StopAgent,
    /// `POST /switchover` to the leader (no candidate: the leader picks).
    Switchover,
    /// etcd killed for 2 s, then restarted on the same data.
    EtcdKill,
    /// etcd frozen (SIGSTOP) for 3 s.
    EtcdFreeze,
    /// etcd frozen longer than ttl.
    EtcdFreezeLong,
}

impl FaultKind {
    /// Every kind, in the order of the summary table.
    pub const ALL: [FaultKind; 9] = [
        FaultKind::KillAgent,
        FaultKind::KillAgentPostmaster,
        FaultKind::KillReplicaPostmaster,
        FaultKind::TermLeader,
        FaultKind::StopAgent,
        FaultKind::Switchover,
        FaultKind::EtcdKill,
        FaultKind::EtcdFreeze,
        FaultKind::EtcdFreezeLong,
    ];

    /// Short name for the tables.
    pub fn name(self) -> &'static str {
        match self {
            FaultKind::KillAgent => "kill9-agent",
            FaultKind::KillAgentPostmaster => "kill9-agent+postmaster",
            FaultKind::KillReplicaPostmaster => "kill9-replica-postmaster",
            FaultKind::TermLeader => "sigterm-leader-agent",
            FaultKind::StopAgent => "sigstop-agent",
            FaultKind::Switchover => "switchover",
            FaultKind::EtcdKill => "etcd-killed-2s",
            FaultKind::EtcdFreeze => "etcd-frozen-3s",
            FaultKind::EtcdFreezeLong => "etcd-frozen>ttl",
        }
    }
}

/// One planned fault: its kind, a random number picking its target, and its length.
#[derive(Debug, Clone)]
pub struct Fault {
    /// What happens.
    pub kind: FaultKind,
    /// Picks the target among the members the kind applies to.
    pub pick: u64,
    /// How long the fault is held before it is repaired (restart, SIGCONT, thaw).
    pub hold: Duration,
}

/// `n` faults from `seed`. Kinds are dealt from shuffled decks of all nine, so every run of
/// nine consecutive faults covers every kind once; targets and lengths are random.
pub fn plan(seed: u64, n: usize, ttl: u64) -> Vec<Fault> {
    let mut rng = Rng::new(seed);
    let mut deck: Vec<FaultKind> = Vec::new();
    let mut out = Vec::with_capacity(n);
    while out.len() < n {
        if deck.is_empty() {
            deck = FaultKind::ALL.to_vec();
            for i in (1..deck.len()).rev() {
                let j = rng.range(0, i as u64) as usize;
                deck.swap(i, j);
            }
        }
        let kind = deck.pop().expect("deck refilled");
        let secs = match kind {
            FaultKind::KillAgent => rng.range(0, 3),
            FaultKind::KillAgentPostmaster => rng.range(0, ttl + 5),
            FaultKind::TermLeader => rng.range(0, 5),
            // "A few seconds"; past ttl the leader's lease expires while its postmaster still
            // accepts writes (no fencing yet, issue 13).
            FaultKind::StopAgent => rng.range(2, ttl + 2),
            FaultKind::EtcdKill => 2,
            FaultKind::EtcdFreeze => 3,
            FaultKind::EtcdFreezeLong => rng.range(ttl + 2, 2 * ttl),
            FaultKind::KillReplicaPostmaster | FaultKind::Switchover => 0,
        };
        out.push(Fault {
            kind,
            pick: rng.next_u64(),
            hold: Duration::from_secs(secs),
        });
    }
    out
}

/// What injecting a fault did.
#[derive(Debug, Clone, Default)]
pub struct Applied {
    /// The member (name) or "etcd".
    pub target: String,
    /// Whether the target held the leader key when the fault started.
    pub target_was_leader: bool,
    /// When the fault began.
    pub started: Option<Instant>,
    /// A problem of the injection itself (a refused switchover, an agent that did not stop).
    pub problem: Option<String>,
    /// The member whose postmaster was killed and that postmaster's pid: healed needs a new one.
    pub killed_postmaster: Option<(usize, i32)>,
}

/// Injects `f` with member `leader` leading, holds it, and repairs it. Returns at the repair.
pub async fn apply(c: &mut TestCluster, f: &Fault, leader: usize) -> Applied {
    // Counted from the leader, so whether the leader is hit follows from the seed alone.
    let n = c.nodes.len();
    let any = (leader + (f.pick % n as u64) as usize) % n;
    let replica = (leader + 1 + (f.pick % (n as u64 - 1)) as usize) % n;
    let target = match f.kind {
        FaultKind::KillAgent | FaultKind::KillAgentPostmaster | FaultKind::StopAgent => Some(any),
        FaultKind::KillReplicaPostmaster => Some(replica),
        FaultKind::TermLeader | FaultKind::Switchover => Some(leader),
        FaultKind::EtcdKill | FaultKind::EtcdFreeze | FaultKind::EtcdFreezeLong => None,
    };
    let mut a = Applied {
        target: target.map_or("etcd".into(), |i| c.nodes[i].name.clone()),
        target_was_leader: target == Some(leader),
        started: Some(Instant::now()),
        problem: None,
        killed_postmaster: None,
    };
    if let (FaultKind::KillAgentPostmaster | FaultKind::KillReplicaPostmaster, Some(i)) =
        (f.kind, target)
    {
        a.killed_postmaster = postmaster_pid(c, i).map(|pid| (i, pid));
    }
    let hold = f.hold;
    match (f.kind, target) {
        (FaultKind::KillAgent, Some(i)) => {
            c.kill_agent(i);
            tokio::time::sleep(hold).await; // the fault's length
            c.start_agent(i);
        }
        (FaultKind::KillAgentPostmaster, Some(i)) => {
            c.kill_agent(i);
            c.kill_postmaster(i);
            tokio::time::sleep(hold).await; // the fault's length
            c.start_agent(i);
        }
        (FaultKind::KillReplicaPostmaster, Some(i)) => c.kill_postmaster(i),
        (FaultKind::TermLeader, Some(i)) => {
            a.problem = term_agent(c, i).await;
            tokio::time::sleep(hold).await; // the fault's length
            c.start_agent(i);
        }
        (FaultKind::StopAgent, Some(i)) => {
            c.stop_agent(i);
            tokio::time::sleep(hold).await; // the fault's length
            c.cont_agent(i);
        }
        (FaultKind::Switchover, Some(i)) => a.problem = switchover(c, i).await,
        (FaultKind::EtcdKill, _) => {
            c.etcd.kill();
            tokio::time::sleep(hold).await; // the fault's length
            c.etcd.restart().await;
        }
        (FaultKind::EtcdFreeze | FaultKind::EtcdFreezeLong, _) => {
            c.etcd.freeze();
            tokio::time::sleep(hold).await; // the fault's length
            c.etcd.thaw();
        }
        (kind, None) => unreachable!("{kind:?} always has a member target"),
    }
    a
}

/// The pid in member `i`'s `postmaster.pid` (None when there is none).
pub fn postmaster_pid(c: &TestCluster, i: usize) -> Option<i32> {
    std::fs::read_to_string(c.nodes[i].data_dir.join("postmaster.pid"))
        .ok()?
        .lines()
        .next()?
        .trim()
        .parse()
        .ok()
}

/// SIGTERM and wait (60 s) for the agent to exit; one that does not is killed and reported.
async fn term_agent(c: &mut TestCluster, i: usize) -> Option<String> {
    let mut child = c.nodes[i].agent.take()?;
    super::super::signal_pid(child.id(), nix::sys::signal::Signal::SIGTERM);
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline {
        if matches!(child.try_wait(), Ok(Some(_))) {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let _ = child.kill();
    let _ = child.wait();
    Some("the agent did not exit within 60 s of SIGTERM (killed)".into())
}

/// POST /switchover to the leader; anything but 200 is reported.
async fn switchover(c: &TestCluster, i: usize) -> Option<String> {
    let body = json!({"leader": c.nodes[i].name}).to_string();
    let (code, text) = c.send(i, Method::POST, "/switchover", &body).await;
    (code != 200).then(|| format!("switchover answered {code}: {text}"))
}
