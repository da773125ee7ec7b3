//! A deterministic multi-member simulator with virtual time (test only).
//!
//! Every member runs the **real agent**: the real [`crate::agent::Driver`] with its pure
//! agent machine, its effects and its background tasks (start, promote, demote, the
//! switchover hand-over, pg_rewind, clones, restarts), on ports over a simulated world: a
//! shared in-memory DCS with leases and a watch, simulated PostgreSQL instances (control and
//! SQL), the peers' `/patroni` answered by their real handler, a fence and a clock. Time is
//! tokio's paused clock on one current-thread runtime, so a run is replayed exactly from its
//! seed. The world's own process ([`world::tick`]) makes a client write to the primaries,
//! replicas receive WAL, fences fire and leases expire; every change of a PostgreSQL
//! instance and every tick runs the split-brain checker, which records the first instant
//! with two writable primaries.
//!
//! Layout: `sim/model.rs` (members, PostgreSQL, records), `sim/world.rs` (the state, the
//! gate of frozen and killed agents, the tick, the checker), `sim/dcs.rs`, `sim/pg.rs`,
//! `sim/sql.rs` (the ports), `sim/agent.rs` (a member's real agent on them),
//! `sim/requests.rs` (operator requests); the scenarios: `sim/scenario_tests.rs`,
//! `sync_tests.rs`, `request_tests.rs`, `sweep_tests.rs`. It lives outside `src/ha/` (the
//! pure core's re-export) because it runs the agent, tokio and all.

mod agent;
pub mod dcs;
pub mod model;
mod pg;
mod requests;
mod sql;
pub mod world;

#[cfg(test)]
mod request_tests;
#[cfg(test)]
mod scenario_tests;
#[cfg(test)]
mod sweep_tests;
#[cfg(test)]
mod sync_tests;

pub use model::*;
pub use requests::SimReply;

use crate::config::timing::secs_to_ms;
use crate::dcs::memory::MemoryDcs;
use crate::dcs::{Cluster, Dcs, Failover, Keys, Member};
use std::sync::{Arc, RwLock};
use std::time::Duration;
use world::World;

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

/// What the tests read between steps: a copy of the world taken after each step.
#[derive(Default)]
struct View {
    members: Vec<SimMember>,
    dcs: Cluster,
    trace: Vec<TraceEntry>,
    events: Vec<SimEvent>,
    replies: Vec<SimReply>,
    violation: Option<Violation>,
    now: u64,
}

/// The simulator.
pub struct Sim {
    /// Timings.
    pub cfg: SimConfig,
    rt: tokio::runtime::Runtime,
    /// Runs the agents' loops (not `Send`) on the runtime's thread.
    local: tokio::task::LocalSet,
    world: Arc<World>,
    registry: agent::Registry,
    agents: Vec<Option<agent::AgentHandle>>,
    view: View,
    requests: requests::Requests,
}

impl Sim {
    /// A bootstrapped cluster on timeline 1: the first member is the leader, the others
    /// stream from it. The agents' first cycles are spread over `loop_wait` by the seeded
    /// PRNG.
    pub fn new(cfg: SimConfig, specs: &[MemberSpec]) -> Sim {
        let rt = match tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .start_paused(true)
            .build()
        {
            Ok(rt) => rt,
            Err(e) => panic!("the simulator's runtime: {e}"),
        };
        let _context = rt.enter();
        let local = tokio::task::LocalSet::new();
        let leader = specs.first().map(|s| s.name.clone());
        let members = specs
            .iter()
            .enumerate()
            .map(|(i, s)| new_member(&cfg, s, i == 0, leader.clone()))
            .collect();
        let store = MemoryDcs::new(Keys::new("/service", "sim"), Duration::from_secs(cfg.ttl_s));
        let world = World::new(cfg.clone(), members, store);
        rt.block_on(seed_dcs(&world, &cfg));
        let registry: agent::Registry =
            Arc::new(RwLock::new(vec![Default::default(); specs.len()]));
        let mut rng = Rng::new(cfg.seed);
        let agents = (0..specs.len())
            .map(|i| {
                let delay = rng.below(secs_to_ms(cfg.loop_wait_s));
                Some(agent::spawn(&local, &world, &registry, i, 0, delay))
            })
            .collect();
        tokio::spawn(world::tick(world.clone()));
        drop(_context);
        let mut sim = Sim {
            cfg,
            rt,
            local,
            world,
            registry,
            agents,
            view: View::default(),
            requests: Default::default(),
        };
        sim.refresh();
        sim
    }

    // ---- queries -------------------------------------------------------------------

    /// Virtual time (ms).
    pub fn now(&self) -> u64 {
        self.view.now
    }

    /// Holder of the leader key.
    pub fn leader(&self) -> Option<String> {
        self.view.dcs.leader_name().map(str::to_string)
    }

    /// A member by name.
    pub fn member(&self, name: &str) -> Option<&SimMember> {
        self.view.members.iter().find(|m| m.name == name)
    }

    /// The DCS as a fresh read shows it.
    pub fn dcs(&self) -> &Cluster {
        &self.view.dcs
    }

    /// When `name`'s lease runs out unless refreshed (virtual ms).
    pub fn lease_expiry(&self, name: &str) -> Option<u64> {
        let lease = self.member(name)?.lease?;
        let at = self.world.store.lease_expiry(lease)?;
        Some(at.saturating_duration_since(self.world.start).as_millis() as u64)
    }

    /// Every decision so far.
    pub fn trace(&self) -> &[TraceEntry] {
        &self.view.trace
    }

    /// Decisions of one member.
    pub fn trace_of(&self, name: &str) -> Vec<&TraceEntry> {
        self.view
            .trace
            .iter()
            .filter(|t| t.member == name)
            .collect()
    }

    /// Every event so far.
    pub fn events(&self) -> &[SimEvent] {
        &self.view.events
    }

    /// The first instant with two writable primaries.
    pub fn violation(&self) -> Option<&Violation> {
        self.view.violation.as_ref()
    }

    /// Members whose PostgreSQL accepts writes now.
    pub fn writable_primaries(&self) -> Vec<String> {
        let w = self.view.members.iter().filter(|m| m.pg.writable());
        w.map(|m| m.name.clone()).collect()
    }

    /// The trace and the events as text, in time order, for failure messages.
    pub fn dump(&self) -> String {
        let mut lines: Vec<(u64, String)> = self
            .view
            .trace
            .iter()
            .map(|t| {
                (
                    t.at,
                    format!("{:>7} {:<3} {} {:?}", t.at, t.member, t.message, t.actions),
                )
            })
            .collect();
        lines.extend(self.view.events.iter().map(|e| {
            (
                e.at,
                format!("{:>7} {:<3} EVENT {:?}", e.at, e.member, e.kind),
            )
        }));
        lines.sort_by_key(|l| l.0);
        let mut out: Vec<String> = lines.into_iter().map(|l| l.1).collect();
        out.push(world::describe(&self.view.members));
        out.push(format!("leader key: {:?}", self.leader()));
        out.join("\n")
    }

    // ---- running ---------------------------------------------------------------------

    /// Runs for `ms` of virtual time.
    pub fn run_for(&mut self, ms: u64) {
        let sleep = async move { tokio::time::sleep(Duration::from_millis(ms)).await };
        self.local.block_on(&self.rt, sleep);
        self.refresh();
    }

    /// Runs until `pred` holds (checked after each step), at most `max_ms`; the time it held.
    pub fn run_until(&mut self, max_ms: u64, pred: impl Fn(&Sim) -> bool) -> Option<u64> {
        let end = self.now() + max_ms;
        while self.now() < end {
            self.step();
            if pred(self) {
                return Some(self.now());
            }
        }
        None
    }

    /// One step of virtual time.
    pub fn step(&mut self) {
        self.run_for(self.cfg.step_ms);
    }

    /// Takes what happened since the last step into the view.
    fn refresh(&mut self) {
        let dcs = self
            .local
            .block_on(&self.rt, self.world.store.fresh_cluster());
        let mut st = self.world.lock();
        self.view.members = st.members.clone();
        self.view.trace.append(&mut st.trace);
        self.view.events.append(&mut st.events);
        self.view.replies.append(&mut st.replies);
        self.view.violation = st.violation.clone();
        drop(st);
        let _context = self.rt.enter();
        self.view.now = self.world.now();
        if let Ok(c) = dcs {
            self.view.dcs = c;
        }
    }

    // ---- faults ----------------------------------------------------------------------

    fn idx(&self, name: &str) -> Option<usize> {
        self.view.members.iter().position(|m| m.name == name)
    }

    fn with_member(&mut self, name: &str, what: &str, f: impl FnOnce(&mut SimMember)) {
        if let Some(i) = self.idx(name) {
            // In the runtime's context: the clock is the paused, virtual one.
            let _context = self.rt.enter();
            let mut st = self.world.lock();
            f(&mut st.members[i]);
            self.world.event(&mut st, i, EventKind::Fault(what.into()));
            self.world.check(&mut st);
        }
        self.refresh();
    }

    /// The next `n` promotes of `name` fail (`pg_ctl promote` exits non-zero).
    pub fn fail_promotes(&mut self, name: &str, n: u32) {
        self.with_member(name, "promote will fail", |m| m.failing_promotes = n);
    }

    /// Kills the agent and PostgreSQL (crash: no shutdown checkpoint). The agent process is
    /// gone, and with it its state: a revived one starts afresh.
    pub fn kill(&mut self, name: &str) {
        if let Some(a) = self.idx(name).and_then(|i| self.agents[i].take()) {
            a.task.abort();
        }
        self.with_member(name, "agent and postgres killed", |m| {
            m.agent = Agent::Dead;
            m.pg.stop(false);
        });
    }

    /// Stops the agent process (SIGSTOP): no cycles, no REST answers, tasks paused;
    /// PostgreSQL keeps running.
    pub fn freeze(&mut self, name: &str) {
        self.with_member(name, "agent frozen", |m| m.agent = Agent::Frozen);
    }

    /// Resumes a frozen agent.
    pub fn thaw(&mut self, name: &str) {
        self.with_member(name, "agent resumed", |m| {
            if m.agent == Agent::Frozen {
                m.agent = Agent::Alive;
            }
        });
    }

    /// Starts a killed agent again (PostgreSQL stays as it is).
    pub fn revive(&mut self, name: &str) {
        let Some(i) = self.idx(name) else { return };
        let mut generation = 0;
        self.with_member(name, "agent restarted", |m| {
            m.agent = Agent::Alive;
            m.link = DcsLink::Up;
            m.fatal = None;
            m.generation += 1;
            generation = m.generation;
        });
        let _context = self.rt.enter();
        let handle = agent::spawn(&self.local, &self.world, &self.registry, i, generation, 0);
        self.agents[i] = Some(handle);
    }

    /// Cuts the member off the DCS (replication and REST keep working).
    pub fn partition(&mut self, name: &str, view: PartitionView) {
        let link = match view {
            PartitionView::Unreachable => DcsLink::Down,
            PartitionView::StaleCache => DcsLink::Stale(Box::new(self.view.dcs.clone())),
        };
        self.with_member(name, "partitioned from the DCS", |m| m.link = link);
    }

    /// Ends a partition; the agent's watch fires.
    pub fn heal(&mut self, name: &str) {
        self.with_member(name, "DCS reachable again", |m| m.link = DcsLink::Up);
        if let Some(a) = self.idx(name).and_then(|i| self.agents[i].as_ref()) {
            a.shared.wake.notify_one();
        }
    }

    /// Stops or resumes a replica's WAL receiver (its LSN freezes).
    pub fn set_streaming(&mut self, name: &str, on: bool) {
        self.with_member(name, "streaming changed", |m| m.pg.streaming = on);
    }

    /// Writes the `failover` key (a switchover when `leader` is set); the watch wakes the
    /// loops.
    pub fn request_failover(&mut self, leader: Option<&str>, candidate: Option<&str>) {
        let f = Failover {
            leader: leader.map(str::to_string),
            member: candidate.map(str::to_string),
            scheduled_at: None,
        };
        let write = self.world.store.write_failover(&f, None);
        if let Err(e) = self.local.block_on(&self.rt, write) {
            panic!("writing the failover key: {e}");
        }
        self.refresh();
    }
}

/// Member `spec` at the start: PostgreSQL running on timeline 1, a replica of `leader`
/// unless `primary`.
fn new_member(
    cfg: &SimConfig,
    spec: &MemberSpec,
    primary: bool,
    leader: Option<String>,
) -> SimMember {
    let lag = if primary { 0 } else { spec.lag };
    let lsn = cfg.initial_lsn.saturating_sub(lag);
    let mut pg = SimPg::new(primary, lsn, leader.filter(|_| !primary));
    pg.lag = lag;
    SimMember {
        name: spec.name.clone(),
        failover_priority: spec.failover_priority,
        nofailover: spec.nofailover,
        pg,
        agent: Agent::Alive,
        generation: 0,
        link: DcsLink::Up,
        fence_deadline: None,
        failing_promotes: 0,
        lease: None,
        fatal: None,
    }
}

/// The DCS of a running cluster: `initialize`, `config`, the leader key, `status`, and the
/// member keys the agents published before the run (they refresh them on their own leases).
async fn seed_dcs(world: &World, cfg: &SimConfig) {
    let store = &world.store;
    let members = world.lock().members.clone();
    let seeded = async {
        store.set_initialize(SYSID, true).await?;
        store.write_config(&cfg.dynamic_json(), Some(0)).await?;
        for m in &members {
            let primary = m.pg.role == crate::ha::PgRole::Primary;
            let member = Member {
                conn_url: format!("postgres://{}:5432/postgres", m.name),
                api_url: format!("http://{}:8008/patroni", m.name),
                state: "running".into(),
                role: if primary { "primary" } else { "replica" }.into(),
                xlog_location: Some(m.pg.lsn),
                timeline: Some(1),
                tags: m.tags(),
                ..Member::default()
            };
            store.touch_member(&m.name, &member).await?;
            if primary {
                store.try_acquire_leader(&m.name).await?;
            }
        }
        let status = crate::dcs::Status {
            optime: cfg.initial_lsn,
            ..Default::default()
        };
        store.write_status(&status).await
    };
    if let Err(e) = seeded.await {
        panic!("seeding the simulated DCS: {e}");
    }
}
