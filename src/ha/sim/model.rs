//! State of the simulated members: configuration, PostgreSQL instances, background tasks,
//! and the records a run leaves behind.

use crate::config::timing::secs_to_ms;
use crate::dcs::{Cluster, HistoryLine, Member};
use crate::ha::action::{Action, Decision};
use crate::ha::observation::{DataDir, PgObservation, PgRole};
use serde_json::{json, Value};
use std::collections::VecDeque;

/// System identifier of the simulated cluster.
pub const SYSID: &str = "7000000000000000001";
/// WAL bytes a shutdown checkpoint record adds.
pub const CHECKPOINT_BYTES: u64 = 104;
/// Reason PostgreSQL writes into a timeline history file after `pg_ctl promote`.
pub const PROMOTE_REASON: &str = "no recovery target specified";

/// Timings and knobs of a simulation run. Times are virtual milliseconds.
#[derive(Debug, Clone)]
pub struct SimConfig {
    /// Dynamic `ttl` (s).
    pub ttl_s: u64,
    /// Dynamic `loop_wait` (s).
    pub loop_wait_s: u64,
    /// Dynamic `retry_timeout` (s); a DCS operation of a partitioned member fails after
    /// `retry_timeout` clamped to 1..=10 s, as the etcd client's deadline.
    pub retry_timeout_s: u64,
    /// Dynamic `maximum_lag_on_failover` (bytes).
    pub maximum_lag_on_failover: u64,
    /// Virtual time advanced per step.
    pub step_ms: u64,
    /// WAL bytes the writer adds to the primary per step.
    pub write_bytes_per_step: u64,
    /// WAL position of the cluster at the start.
    pub initial_lsn: u64,
    /// Seed of the PRNG that spreads the members' first cycles over `loop_wait`.
    pub seed: u64,
    /// Failed DCS deadlines a lock refresh (or member key update) costs when partitioned.
    pub refresh_timeouts: u64,
    /// Duration of `pg_ctl promote`.
    pub promote_ms: u64,
    /// Duration of a start.
    pub start_ms: u64,
    /// Duration of a stop.
    pub stop_ms: u64,
    /// Duration of pg_rewind.
    pub rewind_ms: u64,
    /// Duration of a clone (reinitialize, create replica).
    pub clone_ms: u64,
    /// The userspace fence's safety margin (ms before the lease could expire); None runs
    /// without a fence.
    pub fence_margin_ms: Option<u64>,
    /// `synchronous_mode: on` (priority mode).
    pub synchronous_mode: bool,
}

impl Default for SimConfig {
    fn default() -> Self {
        SimConfig {
            ttl_s: 30,
            loop_wait_s: 10,
            retry_timeout_s: 10,
            maximum_lag_on_failover: 1_048_576,
            step_ms: 100,
            write_bytes_per_step: 1_000,
            initial_lsn: 0x300_0000,
            seed: 42,
            refresh_timeouts: 1,
            promote_ms: 300,
            start_ms: 500,
            stop_ms: 200,
            rewind_ms: 1_000,
            clone_ms: 2_000,
            fence_margin_ms: Some(2_000),
            synchronous_mode: false,
        }
    }
}

impl SimConfig {
    /// The `config` key value.
    pub fn dynamic_json(&self) -> Value {
        json!({
            "ttl": self.ttl_s,
            "loop_wait": self.loop_wait_s,
            "retry_timeout": self.retry_timeout_s,
            "maximum_lag_on_failover": self.maximum_lag_on_failover,
            "postgresql": {"use_pg_rewind": true},
            "synchronous_mode": self.synchronous_mode,
        })
    }

    /// How long one DCS operation of a partitioned member takes to fail.
    pub fn dcs_timeout_ms(&self) -> u64 {
        secs_to_ms(self.retry_timeout_s.clamp(1, 10))
    }

    /// How long a hand-over waits for a candidate to confirm the shutdown checkpoint.
    pub fn confirm_timeout_ms(&self) -> u64 {
        secs_to_ms((self.ttl_s / 2).clamp(3, 15))
    }
}

/// xorshift64: the only randomness, seeded by the test.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    /// A generator from `seed` (0 is replaced: xorshift needs a non-zero state).
    pub fn new(seed: u64) -> Rng {
        Rng(if seed == 0 {
            0x9E37_79B9_7F4A_7C15
        } else {
            seed
        })
    }

    /// Next raw value.
    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }

    /// A value in `0..n` (0 when n is 0).
    pub fn below(&mut self, n: u64) -> u64 {
        if n == 0 {
            0
        } else {
            self.next_u64() % n
        }
    }
}

/// One simulated PostgreSQL instance.
#[derive(Debug, Clone)]
pub struct SimPg {
    /// The data directory holds a cluster.
    pub has_data: bool,
    /// Postmaster running and accepting connections.
    pub running: bool,
    /// Role while running (kept when stopped: what it last was).
    pub role: PgRole,
    /// Current timeline.
    pub timeline: u64,
    /// Primary: flush LSN; replica: received LSN.
    pub lsn: u64,
    /// Upstream in the recovery configuration.
    pub following: Option<String>,
    /// pg_control "Database cluster state".
    pub control_state: String,
    /// pg_control checkpoint location.
    pub control_lsn: u64,
    /// Timeline history file lines.
    pub history: Vec<HistoryLine>,
    /// The WAL receiver works (false = stuck, LSN frozen).
    pub streaming: bool,
    /// Bytes the replica stays behind its upstream while streaming.
    pub lag: u64,
    /// `synchronous_standby_names` as set by sync mode (None = not managed).
    pub sync_names: Option<String>,
}

impl SimPg {
    /// A running instance on timeline 1.
    pub fn new(primary: bool, lsn: u64, following: Option<String>) -> SimPg {
        SimPg {
            has_data: true,
            running: true,
            role: if primary {
                PgRole::Primary
            } else {
                PgRole::Replica
            },
            timeline: 1,
            lsn,
            following,
            control_state: if primary {
                "in production".into()
            } else {
                "in archive recovery".into()
            },
            control_lsn: lsn,
            history: vec![],
            streaming: true,
            lag: 0,
            sync_names: None,
        }
    }

    /// Accepts writes: running and not in recovery.
    pub fn writable(&self) -> bool {
        self.running && self.role == PgRole::Primary
    }

    /// What `observe_pg` would report.
    pub fn observe(&self) -> PgObservation {
        PgObservation {
            data: if self.has_data {
                DataDir::Initialized {
                    sysid: SYSID.into(),
                }
            } else {
                DataDir::Empty
            },
            running: self.running,
            postmaster_alive: self.running,
            role: self.running.then_some(self.role),
            following: self.following.clone(),
            following_remote: false,
            timeline: self.has_data.then_some(self.timeline),
            timeline_from_receiver: false,
            lsn: self.running.then_some(self.lsn),
            control_state: self
                .has_data
                .then(|| crate::ha::ControlState::parse(&self.control_state)),
            control_lsn: self.has_data.then_some(self.control_lsn),
            rewind_possible: true,
            rewind_failures: 0,
            standbys: vec![],
        }
    }

    /// Stops the postmaster: `clean` = fast shutdown with a shutdown checkpoint.
    pub fn stop(&mut self, clean: bool) {
        if !self.running {
            return;
        }
        self.running = false;
        self.control_lsn = self.lsn;
        self.control_state = match (self.role, clean) {
            (PgRole::Primary, true) => {
                self.lsn += CHECKPOINT_BYTES;
                "shut down"
            }
            (PgRole::Primary, false) => "in production",
            (PgRole::Replica, true) => "shut down in recovery",
            (PgRole::Replica, false) => "in archive recovery",
        }
        .into();
    }

    /// Starts the postmaster as primary or as a replica of `following`.
    pub fn start(&mut self, primary: bool, following: Option<String>) -> bool {
        if !self.has_data || self.running {
            return self.running;
        }
        self.running = true;
        self.role = if primary {
            PgRole::Primary
        } else {
            PgRole::Replica
        };
        self.following = if primary { None } else { following };
        self.control_state = if primary {
            "in production".into()
        } else {
            "in archive recovery".into()
        };
        true
    }

    /// Takes over the data of `source` (pg_rewind or a clone): its timeline, history and WAL.
    pub fn copy_from(&mut self, source: &SimPg) {
        self.has_data = true;
        self.running = false;
        self.role = PgRole::Replica;
        self.timeline = source.timeline;
        self.history = source.history.clone();
        self.lsn = source.lsn;
        self.control_lsn = source.lsn;
        self.control_state = "in archive recovery".into();
    }

    /// One replication round from `up`: follow its timeline switch when our WAL ends at or
    /// before the fork point, then receive up to its position minus our lag.
    pub fn receive_from(&mut self, up: &SimPg, ignore_lag: bool) {
        if !self.running || self.role != PgRole::Replica || !self.streaming || !up.running {
            return;
        }
        if up.timeline < self.timeline {
            return;
        }
        if up.timeline > self.timeline {
            let Some(fork) = up.history.iter().find(|h| h.timeline == self.timeline) else {
                return;
            };
            if self.lsn > fork.lsn {
                return;
            }
            self.timeline = up.timeline;
            self.history = up.history.clone();
        }
        let lag = if ignore_lag { 0 } else { self.lag };
        self.lsn = self.lsn.max(up.lsn.saturating_sub(lag));
    }
}

/// One step of a background task, applied when its duration has passed.
#[derive(Debug, Clone, PartialEq)]
pub enum Stage {
    /// Stop PostgreSQL (`clean` = fast with checkpoint, else immediate).
    Stop {
        /// Fast shutdown.
        clean: bool,
    },
    /// Delete our leader key.
    ReleaseLock,
    /// Start PostgreSQL.
    Start {
        /// As primary.
        primary: bool,
        /// Upstream when replica.
        leader: Option<String>,
    },
    /// Promote the running replica.
    Promote,
    /// Hand-over: wait for a candidate with WAL past the shutdown checkpoint.
    AwaitCandidate {
        /// Members asked, from the cycle's cluster view.
        candidates: Vec<String>,
        /// Give up at this time (set when the stage begins).
        deadline: Option<u64>,
    },
    /// pg_rewind from the leader.
    Rewind {
        /// Source member.
        leader: String,
    },
    /// Remove the data directory.
    Wipe,
    /// pg_basebackup from the leader.
    Clone {
        /// Source member.
        leader: String,
    },
}

/// The work of a background task in virtual time: stages run one after the other. Which
/// task runs (its kind, its start) is the agent machine's ([`SimMember::machine`]).
#[derive(Debug, Clone)]
pub struct SimTask {
    /// Remaining stages with their durations.
    pub stages: VecDeque<(u64, Stage)>,
    /// When the front stage completes.
    pub due: u64,
    /// Why a stage failed (fed back to the machine when the task ends).
    pub failure: Option<String>,
}

impl SimTask {
    /// A task starting at `now`.
    pub fn new(now: u64, stages: Vec<(u64, Stage)>) -> SimTask {
        let due = now + stages.first().map_or(0, |s| s.0);
        SimTask {
            stages: stages.into(),
            due,
            failure: None,
        }
    }
}

/// The agent process.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Agent {
    /// Running its loop.
    Alive,
    /// Stopped (SIGSTOP): no cycles, no REST answers, tasks paused.
    Frozen,
    /// Gone.
    Dead,
}

/// The member's connection to the DCS.
#[derive(Debug, Clone, PartialEq)]
pub enum DcsLink {
    /// Working.
    Up,
    /// Partitioned, and the cache knows it: cluster reads fail (observation without cluster).
    Down,
    /// Partitioned, but the watch cache has not noticed: reads return this stale view, every
    /// write (lock refresh, member key) fails after the deadline.
    Stale(Box<Cluster>),
}

/// Where the member is in its HA loop.
#[derive(Debug, Clone, PartialEq)]
pub enum CyclePhase {
    /// Sleeping until `next_cycle_at` or a wake-up.
    Idle,
    /// Blocked on the DCS; decides at this time.
    Deciding(u64),
    /// Blocked on the member key update; sleeps from this time.
    Publishing(u64),
}

/// What the agent last published (its `/patroni` answer and member key).
#[derive(Debug, Clone, PartialEq)]
pub struct Published {
    /// `running`, `stopped`, `stopping`, `starting`, …
    pub state: String,
    /// `primary`, `replica`, `uninitialized`.
    pub role: String,
    /// Timeline.
    pub timeline: Option<u64>,
    /// WAL position when running.
    pub lsn: Option<u64>,
}

/// One simulated member: agent, PostgreSQL and scheduling.
#[derive(Debug, Clone)]
pub struct SimMember {
    /// Member name.
    pub name: String,
    /// `failover_priority` tag.
    pub failover_priority: i64,
    /// `nofailover` tag.
    pub nofailover: bool,
    /// PostgreSQL.
    pub pg: SimPg,
    /// The agent's state between cycles (task, requests, last failure): the real machine.
    pub machine: crate::ha::AgentMachine,
    /// The work of the background task in progress.
    pub task: Option<SimTask>,
    /// Agent process state.
    pub agent: Agent,
    /// DCS connectivity.
    pub link: DcsLink,
    /// Loop position.
    pub phase: CyclePhase,
    /// Next cycle when idle.
    pub next_cycle_at: u64,
    /// A wake-up arrived while busy: cycle again as soon as the current one ends.
    pub wake: bool,
    /// `config` version applied.
    pub applied_config_version: Option<i64>,
    /// Last published status.
    pub published: Published,
    /// Sleep after the current cycle (loop_wait or a decision's earlier wake-up).
    pub sleep_ms: u64,
    /// Reason of a fatal stop.
    pub fatal: Option<String>,
    /// When this member's fence kills its PostgreSQL, if armed (a process of its own: it
    /// fires whatever the agent is doing).
    pub fence_deadline: Option<u64>,
    /// Promotes that will fail before one succeeds (fault injection).
    pub failing_promotes: u32,
}

impl SimMember {
    /// Failover priority of its published tags ([`crate::config::Tags::failover_priority`]).
    pub fn priority(&self) -> i64 {
        crate::config::Tags::of(&self.tags()).failover_priority()
    }

    /// `nofailover` of its published tags ([`crate::config::Tags::nofailover`]).
    pub fn nofailover_tag(&self) -> bool {
        crate::config::Tags::of(&self.tags()).nofailover()
    }

    /// Tags published in the member key.
    pub fn tags(&self) -> serde_json::Map<String, Value> {
        let mut t = serde_json::Map::new();
        t.insert("failover_priority".into(), json!(self.failover_priority));
        if self.nofailover {
            t.insert("nofailover".into(), json!(true));
        }
        t
    }

    /// The member key value for the published status.
    pub fn member_value(&self) -> Member {
        Member {
            conn_url: format!("postgres://{}:5432/postgres", self.name),
            api_url: format!("http://{}:8008/patroni", self.name),
            state: self.published.state.clone(),
            role: self.published.role.clone(),
            xlog_location: self.published.lsn,
            timeline: self.published.timeline,
            tags: self.tags(),
            ..Member::default()
        }
    }
}

/// Something that happened to a member, for assertions.
#[derive(Debug, Clone, PartialEq)]
pub enum EventKind {
    /// Created the leader key.
    LockAcquired,
    /// Deleted its leader key.
    LockReleased,
    /// Its lease expired (with the leader key if it held it).
    LeaseExpired,
    /// PostgreSQL stopped at this WAL end.
    Stopped {
        /// Was a primary.
        was_primary: bool,
        /// Fast shutdown with checkpoint.
        clean: bool,
        /// WAL end after the stop.
        lsn: u64,
    },
    /// PostgreSQL started.
    Started {
        /// As primary.
        primary: bool,
    },
    /// Promoted onto a new timeline at this LSN.
    Promoted {
        /// New timeline.
        timeline: u64,
        /// Switch point.
        lsn: u64,
    },
    /// Data replaced from the leader (pg_rewind or clone).
    Resynced {
        /// Source.
        from: String,
    },
    /// A hand-over found a candidate with the shutdown checkpoint.
    HandOverConfirmed {
        /// Candidate.
        candidate: String,
        /// Shutdown checkpoint.
        checkpoint: u64,
    },
    /// A hand-over gave up and resumes as primary.
    HandOverFailed,
    /// A task stage could not be carried out.
    TaskFailed(String),
    /// Fault injected by the test.
    Fault(String),
}

/// An [`EventKind`] with time and member.
#[derive(Debug, Clone, PartialEq)]
pub struct SimEvent {
    /// Virtual time.
    pub at: u64,
    /// Member.
    pub member: String,
    /// What happened.
    pub kind: EventKind,
}

/// One `decide` call.
#[derive(Debug, Clone, PartialEq)]
pub struct TraceEntry {
    /// Virtual time.
    pub at: u64,
    /// Member.
    pub member: String,
    /// Patroni's log line.
    pub message: String,
    /// Actions decided.
    pub actions: Vec<Action>,
}

impl TraceEntry {
    /// From a decision.
    pub fn new(at: u64, member: &str, d: &Decision) -> TraceEntry {
        TraceEntry {
            at,
            member: member.to_string(),
            message: d.message.clone(),
            actions: d.actions.clone(),
        }
    }
}

/// The first time two writable primaries existed at once.
#[derive(Debug, Clone, PartialEq)]
pub struct Violation {
    /// Virtual time.
    pub at: u64,
    /// The writable primaries.
    pub primaries: Vec<String>,
    /// Every member's state at that instant.
    pub states: String,
}
