//! A deterministic multi-member simulator with virtual time (test only).
//!
//! Several members run the real, pure [`crate::ha::decide`] against a virtual DCS and simulated
//! PostgreSQL instances. Each step advances virtual time by `step_ms`: background task stages
//! that are due complete (in time order), expired leases drop their keys, the primary writes
//! and replicas receive WAL, and every member whose cycle is due (after `loop_wait`, a
//! finished task, or a leader/failover key change seen through the watch) builds its
//! [`crate::ha::Observation`] the way `agent/driver.rs` does, decides, and the actions are
//! applied the way `agent/executor.rs`, `tasks.rs` and `handover.rs` carry them out. After
//! every task stage and every step an invariant checker records the first instant with two
//! writable primaries.
//!
//! Layout: `sim/model.rs` (members, PostgreSQL, tasks, records), `sim/dcs.rs` (the virtual
//! DCS), `sim/cycle.rs` (one HA cycle and the actions), `sim/tasks.rs` (task stages).

mod cycle;
pub mod dcs;
pub mod model;
mod requests;
mod sync;
mod tasks;

pub use dcs::{LeaderKey, SimDcs};
pub use model::*;
pub use requests::SimReply;

use crate::config::timing::{ms_after, secs_to_ms};
use crate::dcs::Failover;

/// A member to create.
#[derive(Debug, Clone)]
pub struct MemberSpec {
    /// Name.
    pub name: String,
    /// `failover_priority` tag.
    pub failover_priority: i64,
    /// `nofailover` tag.
    pub nofailover: bool,
    /// Replication lag in bytes.
    pub lag: u64,
}

impl MemberSpec {
    /// A member with priority 1 and no lag.
    pub fn new(name: &str) -> MemberSpec {
        MemberSpec {
            name: name.into(),
            failover_priority: 1,
            nofailover: false,
            lag: 0,
        }
    }

    /// Sets `failover_priority`.
    pub fn priority(mut self, p: i64) -> MemberSpec {
        self.failover_priority = p;
        self
    }

    /// Sets `nofailover`.
    pub fn nofailover(mut self) -> MemberSpec {
        self.nofailover = true;
        self
    }

    /// Sets the replication lag.
    pub fn lag(mut self, bytes: u64) -> MemberSpec {
        self.lag = bytes;
        self
    }
}

/// How a DCS partition looks to the partitioned member.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PartitionView {
    /// Cluster reads fail after the deadline.
    Unreachable,
    /// Reads return the view of the moment of the partition; writes fail after the deadline.
    StaleCache,
}

/// The simulator.
#[derive(Debug, Clone)]
pub struct Sim {
    /// Timings.
    pub cfg: SimConfig,
    now: u64,
    /// Time stamped on events: a task stage's due time while it is applied, else `now`.
    instant: u64,
    members: Vec<SimMember>,
    dcs: SimDcs,
    writer: bool,
    /// Spreads first cycles and orders the members' cycles within a step.
    rng: Rng,
    trace: Vec<TraceEntry>,
    events: Vec<SimEvent>,
    violation: Option<Violation>,
    /// Operator requests sent so far and the answers they got.
    requests: requests::Requests,
}

impl Sim {
    /// A bootstrapped cluster on timeline 1: the first member is the leader, the others
    /// stream from it. First cycles are spread over `loop_wait` by the seeded PRNG.
    pub fn new(cfg: SimConfig, specs: &[MemberSpec]) -> Sim {
        let mut rng = Rng::new(cfg.seed);
        let mut dcs = SimDcs::new(cfg.dynamic_json());
        let version = dcs.config.as_ref().map(|c| c.version);
        let leader = specs.first().map(|s| s.name.clone());
        let mut members = Vec::new();
        for (i, s) in specs.iter().enumerate() {
            let primary = i == 0;
            let lsn = cfg
                .initial_lsn
                .saturating_sub(if primary { 0 } else { s.lag });
            let mut pg = SimPg::new(primary, lsn, leader.clone().filter(|_| !primary));
            pg.lag = s.lag;
            members.push(SimMember {
                name: s.name.clone(),
                failover_priority: s.failover_priority,
                nofailover: s.nofailover,
                pg,
                machine: Default::default(),
                task: None,
                agent: Agent::Alive,
                link: DcsLink::Up,
                phase: CyclePhase::Idle,
                next_cycle_at: rng.below(secs_to_ms(cfg.loop_wait_s)),
                wake: false,
                applied_config_version: version,
                published: Published {
                    state: "running".into(),
                    role: if primary { "primary" } else { "replica" }.into(),
                    timeline: Some(1),
                    lsn: Some(lsn),
                },
                sleep_ms: secs_to_ms(cfg.loop_wait_s),
                fatal: None,
                fence_deadline: None,
                failing_promotes: 0,
            });
        }
        let until = secs_to_ms(cfg.ttl_s);
        for m in &members {
            dcs.touch_member(&m.name, m.member_value(), until);
        }
        if let Some(l) = &leader {
            dcs.try_acquire(l, until);
        }
        dcs.set_optime(cfg.initial_lsn);
        Sim {
            cfg,
            now: 0,
            instant: 0,
            members,
            dcs,
            writer: true,
            rng,
            trace: vec![],
            events: vec![],
            violation: None,
            requests: Default::default(),
        }
    }

    // ---- queries -------------------------------------------------------------------

    /// Virtual time (ms).
    pub fn now(&self) -> u64 {
        self.now
    }

    /// Holder of the leader key.
    pub fn leader(&self) -> Option<String> {
        self.dcs.leader.as_ref().map(|l| l.name.clone())
    }

    /// A member by name.
    pub fn member(&self, name: &str) -> Option<&SimMember> {
        self.members.iter().find(|m| m.name == name)
    }

    /// All members.
    pub fn members(&self) -> &[SimMember] {
        &self.members
    }

    /// The virtual DCS.
    pub fn dcs(&self) -> &SimDcs {
        &self.dcs
    }

    /// Every decision so far.
    pub fn trace(&self) -> &[TraceEntry] {
        &self.trace
    }

    /// Decisions of one member.
    pub fn trace_of(&self, name: &str) -> Vec<&TraceEntry> {
        self.trace.iter().filter(|t| t.member == name).collect()
    }

    /// Every event so far.
    pub fn events(&self) -> &[SimEvent] {
        &self.events
    }

    /// The first instant with two writable primaries.
    pub fn violation(&self) -> Option<&Violation> {
        self.violation.as_ref()
    }

    /// Members whose PostgreSQL accepts writes now.
    pub fn writable_primaries(&self) -> Vec<String> {
        let w = self.members.iter().filter(|m| m.pg.writable());
        w.map(|m| m.name.clone()).collect()
    }

    /// The trace as text, for failure messages.
    pub fn dump(&self) -> String {
        let mut out: Vec<String> = self
            .trace
            .iter()
            .map(|t| format!("{:>7} {:<3} {} {:?}", t.at, t.member, t.message, t.actions))
            .collect();
        out.extend(
            self.events
                .iter()
                .map(|e| format!("{:>7} {:<3} EVENT {:?}", e.at, e.member, e.kind)),
        );
        out.push(self.describe());
        out.join("\n")
    }

    // ---- running ---------------------------------------------------------------------

    /// Runs for `ms` of virtual time.
    pub fn run_for(&mut self, ms: u64) {
        let end = self.now + ms;
        while self.now < end {
            self.step();
        }
    }

    /// Runs until `pred` holds (checked after each step), at most `max_ms`; the time it held.
    pub fn run_until(&mut self, max_ms: u64, pred: impl Fn(&Sim) -> bool) -> Option<u64> {
        let end = self.now + max_ms;
        while self.now < end {
            self.step();
            if pred(self) {
                return Some(self.now);
            }
        }
        None
    }

    /// One step of virtual time.
    pub fn step(&mut self) {
        let from = self.now;
        self.now += self.cfg.step_ms;
        self.run_stages(from);
        self.instant = self.now;
        self.fire_fences();
        self.expire();
        self.write_and_replicate();
        // Members due in the same step (e.g. woken by one watch event) cycle in random order.
        let mut order: Vec<usize> = (0..self.members.len()).collect();
        for k in (1..order.len()).rev() {
            let j = self.rng.below(k as u64 + 1) as usize;
            order.swap(k, j);
        }
        for i in order {
            self.advance_loop(i);
        }
        self.check(self.now);
    }

    // ---- faults ----------------------------------------------------------------------

    fn idx(&self, name: &str) -> Option<usize> {
        self.members.iter().position(|m| m.name == name)
    }

    fn with_member(&mut self, name: &str, what: &str, f: impl FnOnce(&mut SimMember)) {
        if let Some(i) = self.idx(name) {
            f(&mut self.members[i]);
            self.event(i, EventKind::Fault(what.into()));
        }
    }

    /// The next `n` promotes of `name` fail (`pg_ctl promote` exits non-zero).
    pub fn fail_promotes(&mut self, name: &str, n: u32) {
        self.with_member(name, "promote will fail", |m| m.failing_promotes = n);
    }

    /// Kills the agent and PostgreSQL (crash: no shutdown checkpoint).
    pub fn kill(&mut self, name: &str) {
        self.with_member(name, "agent and postgres killed", |m| {
            m.agent = Agent::Dead;
            m.task = None;
            // The agent process is gone, and with it its state: a revived one starts afresh.
            m.machine = Default::default();
            m.phase = CyclePhase::Idle;
            m.pg.stop(false);
        });
    }

    /// Stops the agent process (SIGSTOP): no cycles, no REST answers, tasks paused;
    /// PostgreSQL keeps running.
    pub fn freeze(&mut self, name: &str) {
        self.with_member(name, "agent frozen", |m| m.agent = Agent::Frozen);
    }

    /// Resumes a frozen agent; it cycles at once.
    pub fn thaw(&mut self, name: &str) {
        let now = self.now;
        self.with_member(name, "agent resumed", |m| {
            if m.agent == Agent::Frozen {
                m.agent = Agent::Alive;
                m.next_cycle_at = now;
            }
        });
    }

    /// Restarts a dead agent (PostgreSQL stays as it is).
    pub fn revive(&mut self, name: &str) {
        let now = self.now;
        self.with_member(name, "agent restarted", |m| {
            m.agent = Agent::Alive;
            m.link = DcsLink::Up;
            m.phase = CyclePhase::Idle;
            m.next_cycle_at = now;
            m.wake = false;
            m.applied_config_version = None;
            m.fatal = None;
        });
    }

    /// Cuts the member off the DCS (replication and REST keep working).
    pub fn partition(&mut self, name: &str, view: PartitionView) {
        let link = match view {
            PartitionView::Unreachable => DcsLink::Down,
            PartitionView::StaleCache => DcsLink::Stale(Box::new(self.dcs.snapshot())),
        };
        self.with_member(name, "partitioned from the DCS", |m| m.link = link);
    }

    /// Ends a partition.
    pub fn heal(&mut self, name: &str) {
        self.with_member(name, "DCS reachable again", |m| m.link = DcsLink::Up);
        if let Some(i) = self.idx(name) {
            self.wake(i, self.now);
        }
    }

    /// Stops or resumes a replica's WAL receiver (its LSN freezes).
    pub fn set_streaming(&mut self, name: &str, on: bool) {
        self.with_member(name, "streaming changed", |m| m.pg.streaming = on);
    }

    /// Turns the client writing to the primary on or off.
    pub fn set_writer(&mut self, on: bool) {
        self.writer = on;
    }

    /// Writes the `failover` key (a switchover when `leader` is set) and wakes the loops.
    pub fn request_failover(&mut self, leader: Option<&str>, candidate: Option<&str>) {
        self.dcs.set_failover(Failover {
            leader: leader.map(str::to_string),
            member: candidate.map(str::to_string),
            scheduled_at: None,
        });
        self.notify_watchers();
    }

    // ---- internals -------------------------------------------------------------------

    fn event(&mut self, i: usize, kind: EventKind) {
        let member = self.members[i].name.clone();
        self.events.push(SimEvent {
            at: self.instant,
            member,
            kind,
        });
    }

    fn lease_until(&self) -> u64 {
        ms_after(self.now, self.cfg.ttl_s)
    }

    /// A wake-up at `at`: an idle loop cycles then; a busy one right after its cycle.
    fn wake(&mut self, i: usize, at: u64) {
        let m = &mut self.members[i];
        if m.phase == CyclePhase::Idle && m.agent == Agent::Alive {
            m.next_cycle_at = m.next_cycle_at.min(at);
        } else {
            m.wake = true;
        }
    }

    /// The etcd watch: a leader/failover key change wakes every connected loop next step.
    fn notify_watchers(&mut self) {
        let at = self.now + self.cfg.step_ms;
        for i in 0..self.members.len() {
            if self.members[i].link == DcsLink::Up && self.members[i].agent != Agent::Dead {
                self.wake(i, at);
            }
        }
    }

    /// Fences whose deadline passed kill their member's PostgreSQL.
    fn fire_fences(&mut self) {
        for i in 0..self.members.len() {
            let m = &mut self.members[i];
            if m.fence_deadline.is_some_and(|d| d <= self.now) {
                m.fence_deadline = None;
                if m.pg.running {
                    m.pg.stop(false);
                    self.event(i, EventKind::Fault("fence killed postgres".into()));
                }
            }
        }
    }

    fn expire(&mut self) {
        let had_leader = self.dcs.leader.is_some();
        for name in self.dcs.expire(self.now) {
            if let Some(i) = self.idx(&name) {
                self.event(i, EventKind::LeaseExpired);
            }
        }
        if had_leader && self.dcs.leader.is_none() {
            self.notify_watchers();
        }
    }

    fn write_and_replicate(&mut self) {
        if self.writer {
            for m in self.members.iter_mut().filter(|m| m.pg.writable()) {
                m.pg.lsn += self.cfg.write_bytes_per_step;
            }
        }
        for j in 0..self.members.len() {
            let up = self.members[j]
                .pg
                .following
                .as_deref()
                .and_then(|f| self.idx(f));
            if let Some(u) = up.filter(|u| *u != j) {
                let source = self.members[u].pg.clone();
                self.members[j].pg.receive_from(&source, false);
            }
        }
    }

    fn check(&mut self, at: u64) {
        if self.violation.is_some() {
            return;
        }
        let primaries = self.writable_primaries();
        if primaries.len() > 1 {
            self.violation = Some(Violation {
                at,
                primaries,
                states: self.describe(),
            });
        }
    }

    fn describe(&self) -> String {
        let lines = self.members.iter().map(|m| {
            let p = &m.pg;
            format!(
                "{}: agent={:?} link={} running={} role={:?} tl={} lsn={} following={:?} task={:?}",
                m.name,
                m.agent,
                if m.link == DcsLink::Up { "up" } else { "cut" },
                p.running,
                p.role,
                p.timeline,
                p.lsn,
                p.following,
                m.machine.task()
            )
        });
        let mut out: Vec<String> = lines.collect();
        out.push(format!("leader key: {:?}", self.leader()));
        out.join("\n")
    }
}
