//! The simulated world the real agents act on: the members' PostgreSQL instances, their
//! agent processes (alive, frozen, killed), their links to the DCS, their fences, and what a
//! run leaves behind (events, decisions, answers, the first split brain). Virtual time is
//! tokio's paused clock: `now` is the time since the run started.

use super::model::{Agent, EventKind, SimEvent, SimMember, TraceEntry, Violation};
use super::SimReply;
use crate::dcs::memory::MemoryDcs;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;
use tokio::time::Instant;

/// Everything that changes during a run.
#[derive(Debug, Default)]
pub struct State {
    /// The members.
    pub members: Vec<SimMember>,
    /// A client writes to the primary.
    pub writer: bool,
    /// Events not yet taken by the simulator's view.
    pub events: Vec<SimEvent>,
    /// Decisions not yet taken by the view.
    pub trace: Vec<TraceEntry>,
    /// Answers not yet taken by the view.
    pub replies: Vec<SimReply>,
    /// The first instant with two writable primaries.
    pub violation: Option<Violation>,
}

/// The world shared by the simulator and every member's ports.
pub struct World {
    /// Timings.
    pub cfg: super::SimConfig,
    /// When the run started (virtual).
    pub start: Instant,
    /// The state.
    state: Mutex<State>,
    /// A client of the DCS store the members share (expiry, snapshots, `failover` writes).
    pub store: MemoryDcs,
}

impl World {
    /// A world of `members` on the DCS `store`.
    pub fn new(cfg: super::SimConfig, members: Vec<SimMember>, store: MemoryDcs) -> Arc<World> {
        let state = State {
            members,
            writer: true,
            ..State::default()
        };
        Arc::new(World {
            cfg,
            start: Instant::now(),
            state: Mutex::new(state),
            store,
        })
    }

    /// Virtual time (ms since the run started).
    pub fn now(&self) -> u64 {
        self.start.elapsed().as_millis() as u64
    }

    /// The state, locked.
    pub fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// True while generation `gen` of member `i`'s agent is the one that runs (alive or
    /// frozen).
    pub fn current(&self, i: usize, gen: u64) -> bool {
        let st = self.lock();
        st.members[i].generation == gen && st.members[i].agent != Agent::Dead
    }

    /// Waits until generation `gen` of member `i`'s agent may act: at once while it is alive,
    /// after a thaw while it is frozen (SIGSTOP stops every thread), never once it was killed.
    pub async fn gate(&self, i: usize, gen: u64) {
        loop {
            let agent = {
                let st = self.lock();
                let m = &st.members[i];
                if m.generation == gen {
                    m.agent
                } else {
                    Agent::Dead
                }
            };
            match agent {
                Agent::Alive => return,
                Agent::Frozen => tokio::time::sleep(Duration::from_millis(10)).await,
                Agent::Dead => std::future::pending::<()>().await,
            }
        }
    }

    /// Sleeps `ms` of virtual time, then waits at the gate.
    pub async fn take(&self, i: usize, gen: u64, ms: u64) {
        self.gate(i, gen).await;
        tokio::time::sleep(Duration::from_millis(ms)).await;
        self.gate(i, gen).await;
    }

    /// Records an event of member `i` now.
    pub fn event(&self, st: &mut State, i: usize, kind: EventKind) {
        let member = st.members[i].name.clone();
        let at = self.now();
        st.events.push(SimEvent { at, member, kind });
    }

    /// Records the first instant with two writable primaries.
    pub fn check(&self, st: &mut State) {
        if st.violation.is_some() {
            return;
        }
        let primaries: Vec<String> = st
            .members
            .iter()
            .filter(|m| m.pg.writable())
            .map(|m| m.name.clone())
            .collect();
        if primaries.len() > 1 {
            st.violation = Some(Violation {
                at: self.now(),
                primaries,
                states: describe(&st.members),
            });
        }
    }
}

/// Every member's state, one line each.
pub fn describe(members: &[SimMember]) -> String {
    let lines = members.iter().map(|m| {
        format!(
            "{} agent={:?} link={} running={} role={:?} tl={} lsn={} following={:?} control={:?}",
            m.name,
            m.agent,
            match m.link {
                super::DcsLink::Up => "up",
                super::DcsLink::Down => "down",
                super::DcsLink::Stale(_) => "stale",
            },
            m.pg.running,
            m.pg.role,
            m.pg.timeline,
            m.pg.lsn,
            m.pg.following,
            m.pg.control_state
        )
    });
    lines.collect::<Vec<_>>().join("\n")
}

/// The world's own process, every `step_ms`: the client writes to the primaries, replicas
/// receive WAL, fences whose deadline passed kill their PostgreSQL, leases that ran out
/// drop their keys; then the split-brain check.
pub async fn tick(world: Arc<World>) {
    let step = Duration::from_millis(world.cfg.step_ms);
    loop {
        tokio::time::sleep(step).await;
        let expired = world.store.expire_now();
        let mut st = world.lock();
        for i in 0..st.members.len() {
            if st.members[i].lease.is_some_and(|l| expired.contains(&l)) {
                st.members[i].lease = None;
                world.event(&mut st, i, EventKind::LeaseExpired);
            }
        }
        fire_fences(&world, &mut st);
        write_and_replicate(&world, &mut st);
        world.check(&mut st);
    }
}

fn fire_fences(world: &World, st: &mut State) {
    let now = world.now();
    for i in 0..st.members.len() {
        let m = &mut st.members[i];
        if m.fence_deadline.is_some_and(|d| d <= now) {
            m.fence_deadline = None;
            if m.pg.running {
                m.pg.stop(false);
                world.event(st, i, EventKind::Fault("fence killed postgres".into()));
            }
        }
    }
}

fn write_and_replicate(world: &World, st: &mut State) {
    if st.writer {
        let bytes = world.cfg.write_bytes_per_step;
        for m in st.members.iter_mut().filter(|m| m.pg.writable()) {
            m.pg.lsn += bytes;
        }
    }
    for j in 0..st.members.len() {
        let up = st.members[j].pg.following.as_deref().and_then(|f| {
            let found = st.members.iter().position(|m| m.name == f);
            found.filter(|u| *u != j)
        });
        if let Some(u) = up {
            let source = st.members[u].pg.clone();
            st.members[j].pg.receive_from(&source, false);
        }
    }
}
