//! Everything `decide` looks at, gathered by the driver before each cycle.

use crate::config::dynamic::DynamicConfig;
use crate::dcs::Cluster;

/// What the data directory holds (from `pg_controldata`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DataDir {
    /// Missing or empty: needs bootstrap or a clone.
    Empty,
    /// A cluster with this system identifier.
    Initialized {
        /// Database system identifier.
        sysid: String,
    },
    /// Present but unreadable (no valid pg_control).
    Invalid,
}

/// Role of the running PostgreSQL.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PgRole {
    /// Not in recovery.
    Primary,
    /// In recovery.
    Replica,
}

/// Local PostgreSQL as observed this cycle.
#[derive(Debug, Clone, PartialEq)]
pub struct PgObservation {
    /// Data directory content.
    pub data: DataDir,
    /// Postmaster running and accepting queries.
    pub running: bool,
    /// A postmaster process exists (it may still be starting or refuse our login).
    pub postmaster_alive: bool,
    /// Role when running.
    pub role: Option<PgRole>,
    /// Member name the replica configuration currently follows (None = no upstream).
    pub following: Option<String>,
    /// The recovery configuration follows the remote primary of `standby_cluster`.
    pub following_remote: bool,
    /// Current timeline (None when unknown: a standby whose replayed timeline could not
    /// be asked).
    pub timeline: Option<u64>,
    /// `timeline` is the one the WAL receiver received: the upstream served it, so it is
    /// not a diverged one even when the leader has not published it yet.
    pub timeline_from_receiver: bool,
    /// Primary: flush LSN; replica: max(receive, replay).
    pub lsn: Option<u64>,
    /// pg_control "Database cluster state" when stopped (`shut down`, `in production`, …).
    pub control_state: Option<super::vocab::ControlState>,
    /// Where a stopped instance's data reaches: the minimum recovery point of a replica,
    /// the latest checkpoint otherwise (see `ControlData::local_position`).
    pub control_lsn: Option<u64>,
    /// pg_rewind can work on this data directory (wal_log_hints or checksums).
    pub rewind_possible: bool,
    /// pg_rewind runs that failed in a row since the last one that worked (or the last
    /// clone).
    pub rewind_failures: u32,
    /// Primary only: its `pg_stat_replication` rows.
    pub standbys: Vec<StandbyConn>,
}

impl PgObservation {
    /// True when running as primary.
    pub fn is_primary(&self) -> bool {
        self.running && self.role == Some(PgRole::Primary)
    }
}

/// A long action running in the background.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TaskKind {
    /// initdb + first start + roles.
    Bootstrap,
    /// pg_basebackup from the leader.
    CreateReplica,
    /// Starting PostgreSQL.
    Start,
    /// Restarting PostgreSQL.
    Restart,
    /// Promoting to primary.
    Promote,
    /// Stopping/demoting.
    Demote,
    /// Rewinding after a timeline divergence.
    Rewind,
    /// Wiping and re-cloning.
    Reinitialize,
}

impl TaskKind {
    /// Patroni's wording of the action in log lines.
    pub fn describe(self) -> &'static str {
        match self {
            TaskKind::Bootstrap => "bootstrap",
            TaskKind::CreateReplica => "replica bootstrap",
            TaskKind::Start => "starting",
            TaskKind::Restart => "restart",
            TaskKind::Promote => "promote",
            TaskKind::Demote => "demote",
            TaskKind::Rewind => "rewind",
            TaskKind::Reinitialize => "reinitialize",
        }
    }
}

/// A background task that failed, fed back to the core by the driver.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskFailure {
    /// What failed.
    pub kind: TaskKind,
    /// The task's reason (its log line).
    pub message: String,
    /// When it ended (ms since the epoch).
    pub at_ms: u64,
}

/// State of our leader lock after the driver's refresh attempt this cycle.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LockState {
    /// The DCS says somebody else (or nobody) holds it; we did not try.
    NotHeld,
    /// We hold it and refreshed it.
    Held,
    /// We believed we held it but refreshing failed (DCS error).
    RefreshFailed,
}

/// Another member's `GET /patroni` answer, fetched when a race needs it.
#[derive(Debug, Clone, PartialEq)]
pub struct PeerStatus {
    /// Member name.
    pub name: String,
    /// True if it answered.
    pub reachable: bool,
    /// True if it runs as a primary (not in recovery).
    pub is_primary: bool,
    /// max(received, replayed) or primary location.
    pub wal_position: u64,
    /// Its timeline, when reported.
    pub timeline: Option<u64>,
    /// Its `nofailover` (see [`crate::config::Tags::nofailover`]): never a candidate.
    pub nofailover: bool,
    /// Its failover priority, ranking candidates of equal WAL position.
    pub failover_priority: i64,
}

/// Facts about this node from its local configuration.
#[derive(Debug, Clone, PartialEq)]
pub struct NodeFacts {
    /// Member name.
    pub name: String,
    /// Local `bootstrap` section present.
    pub can_bootstrap: bool,
    /// Its `nofailover` (see [`crate::config::Tags::nofailover`]): never takes the lock.
    pub nofailover: bool,
    /// Its failover priority, ranking candidates of equal WAL position.
    pub failover_priority: i64,
    /// `postgresql.use_pg_rewind` (local or dynamic).
    pub use_pg_rewind: bool,
    /// Why this member could not keep a primary from outliving its lease (watchdog
    /// required but unusable, fence not armable); such a member never takes the lock.
    pub fence_problem: Option<String>,
    /// When `pre_promote` last failed (ms since the epoch): within `ttl` of it the member
    /// stays out of the leader race, as in Patroni.
    pub pre_promote_failed_ms: Option<u64>,
    /// A replica method with `no_leader` is configured: the data can be created while no
    /// leader runs.
    pub clone_without_leader: bool,
    /// Its `nostream` / `replicatefrom` tags: where it streams from.
    pub stream: super::upstream::StreamTags,
}

/// An operator request from the REST API, decided on in the next cycle.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Request {
    /// `POST /restart`.
    Restart,
    /// `POST /reinitialize`.
    Reinitialize {
        /// Clone from the leader even if another member is marked `clonefrom`.
        from_leader: bool,
        /// Cancel a long action in progress first.
        force: bool,
    },
}

/// What the members of the `failsafe` key answered to our `POST /failsafe` this cycle.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FailsafeOutcome {
    /// Every other member accepted (or we are the only member).
    Confirmed,
    /// These members did not accept: unreachable, refusing, or running as a primary.
    Refused(Vec<String>),
    /// The last known `failsafe` key is missing, not an object, or does not list us.
    NoTopology,
}

/// A leader's `POST /failsafe` received by this member.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FailsafeCall {
    /// The leader's member name.
    pub leader: String,
    /// When it called (ms since the epoch).
    pub at_ms: u64,
}

/// Failsafe-mode facts, filled by the driver each cycle.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FailsafeFacts {
    /// Our REST API URL (`…/patroni`), our entry in the `failsafe` key.
    pub api_url: String,
    /// Leader side, DCS unreachable: the members' answers this cycle (None = not asked).
    pub outcome: Option<FailsafeOutcome>,
    /// Replica side: the last leader that called `POST /failsafe` here.
    pub last_call: Option<FailsafeCall>,
}

/// Input of one HA cycle.
#[derive(Debug, Clone)]
pub struct Observation {
    /// Wall clock in milliseconds since the epoch.
    pub now_ms: u64,
    /// This node.
    pub node: NodeFacts,
    /// The cluster view, or None when the DCS was not accessible.
    pub cluster: Option<Cluster>,
    /// Dynamic config in force.
    pub config: DynamicConfig,
    /// Local PostgreSQL.
    pub pg: PgObservation,
    /// Long action in progress.
    pub task: Option<TaskKind>,
    /// When the task started (ms since the epoch).
    pub task_started_ms: Option<u64>,
    /// Leader lock state.
    pub lock: LockState,
    /// `config` version last applied to PostgreSQL.
    pub applied_config_version: Option<i64>,
    /// Peers' status (only filled when the leader key is absent).
    pub peers: Vec<PeerStatus>,
    /// A pending operator request.
    pub request: Option<Request>,
    /// When a scheduled restart is due (ms since the epoch).
    pub scheduled_restart_ms: Option<u64>,
    /// `synchronous_standby_names` as rendered by sync mode (None = not managed by us).
    pub sync_names_applied: Option<String>,
    /// The primary's flush LSN when `sync_names_applied` was first seen in force: a listed
    /// standby that flushed this far holds every commit acknowledged before (quorum mode).
    pub sync_names_since_lsn: Option<u64>,
    /// Failsafe mode: the members' confirmation and the leader's calls.
    pub failsafe: FailsafeFacts,
    /// The last finished task, when it failed (None after one that succeeded).
    pub last_failure: Option<TaskFailure>,
}

impl Observation {
    /// True when we hold the leader lock.
    pub fn has_lock(&self) -> bool {
        self.lock == LockState::Held
    }

    /// Our member name.
    pub fn name(&self) -> &str {
        &self.node.name
    }
}

/// One row of the primary's `pg_stat_replication`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StandbyConn {
    /// `application_name` (the member name).
    pub name: String,
    /// `state = 'streaming'`.
    pub streaming: bool,
    /// `sync_state` (`sync`, `potential`, `async`, `quorum`).
    pub sync_state: String,
    /// `flush_lsn`.
    pub flush_lsn: u64,
}
