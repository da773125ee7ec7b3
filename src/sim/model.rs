//! State of the simulated members: configuration, PostgreSQL instances, background tasks,
//! and the records a run leaves behind.

use crate::config::timing::secs_to_ms;
use crate::dcs::{Cluster, HistoryLine};
use crate::ha::action::Action;
use crate::ha::observation::PgRole;
use serde_json::{json, Value};

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
    /// The userspace fence's safety margin (ms before the lease could expire, whole seconds:
    /// the node file's `fence.safety_margin`); None runs without a fence.
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
    /// `synchronous_standby_names` in force (None = not managed).
    pub sync_names: Option<String>,
    /// What the configuration files say; in force after a start or a reload.
    pub files: PgFiles,
    /// Physical replication slots.
    pub slots: Vec<String>,
    /// When the postmaster started (virtual ms).
    pub started_ms: u64,
    /// When it was last promoted (virtual ms): the time of its newest timeline history file.
    pub promoted_ms: u64,
}

/// What the agent last wrote into the configuration files.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PgFiles {
    /// `standby.signal` and recovery settings are written (a replica's files).
    pub standby: bool,
    /// The member `primary_conninfo` names.
    pub upstream: Option<String>,
    /// `synchronous_standby_names`.
    pub sync_names: Option<String>,
}

impl SimPg {
    /// A running instance on timeline 1.
    pub fn new(primary: bool, lsn: u64, following: Option<String>) -> SimPg {
        let upstream = following.clone();
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
            files: PgFiles {
                standby: !primary,
                upstream,
                sync_names: None,
            },
            slots: vec![],
            started_ms: 0,
            promoted_ms: 0,
        }
    }

    /// Accepts writes: running and not in recovery.
    pub fn writable(&self) -> bool {
        self.running && self.role == PgRole::Primary
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

    /// Starts the postmaster as its files say: a primary, or a replica of their upstream.
    pub fn start(&mut self, at_ms: u64) -> bool {
        if !self.has_data || self.running {
            return self.running;
        }
        let primary = !self.files.standby;
        self.running = true;
        self.started_ms = at_ms;
        self.role = if primary {
            PgRole::Primary
        } else {
            PgRole::Replica
        };
        if primary {
            self.following = None;
        }
        self.reload();
        self.control_state = if primary {
            "in production".into()
        } else {
            "in archive recovery".into()
        };
        true
    }

    /// `pg_ctl promote` of a running replica at `at_ms`: a new timeline whose history file
    /// records the switch; returns (new timeline, switch point).
    pub fn promote(&mut self, at_ms: u64) -> (u64, u64) {
        self.history.push(HistoryLine {
            timeline: self.timeline,
            lsn: self.lsn,
            reason: PROMOTE_REASON.into(),
            timestamp: None,
            new_leader: None,
        });
        self.timeline += 1;
        self.promoted_ms = at_ms;
        self.role = PgRole::Primary;
        self.following = None;
        self.files.standby = false;
        self.files.upstream = None;
        self.control_state = "in production".into();
        (self.timeline, self.lsn)
    }

    /// Puts the files in force: the upstream (a replica's) and `synchronous_standby_names`.
    pub fn reload(&mut self) {
        if !self.running {
            return;
        }
        if self.role == PgRole::Replica {
            self.following = self.files.upstream.clone();
        }
        self.sync_names = self.files.sync_names.clone();
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

/// One simulated member: its PostgreSQL and what the simulator knows of its agent process
/// (the agent itself is the real [`crate::agent::Driver`], see `sim/agent.rs`).
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
    /// Agent process state.
    pub agent: Agent,
    /// Which start of the agent process runs (a killed agent's ports stop working; a revived
    /// one is a new generation).
    pub generation: u64,
    /// DCS connectivity.
    pub link: DcsLink,
    /// When this member's fence kills its PostgreSQL, if armed (a process of its own: it
    /// fires whatever the agent is doing).
    pub fence_deadline: Option<u64>,
    /// Promotes that will fail before one succeeds (fault injection).
    pub failing_promotes: u32,
    /// The agent's lease in the DCS.
    pub lease: Option<i64>,
    /// Reason of a fatal stop.
    pub fatal: Option<String>,
}

impl SimMember {
    /// Tags of the node file.
    pub fn tags(&self) -> serde_json::Map<String, Value> {
        let mut t = serde_json::Map::new();
        t.insert("failover_priority".into(), json!(self.failover_priority));
        if self.nofailover {
            t.insert("nofailover".into(), json!(true));
        }
        t
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
    /// A background task ended (its outcome as the machine got it).
    TaskEnded {
        /// Which task.
        kind: crate::ha::TaskKind,
        /// It succeeded.
        ok: bool,
        /// Its log line.
        message: String,
    },
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
