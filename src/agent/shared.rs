//! State shared by the HA driver, background tasks and the REST API.

use crate::config::{DynamicConfig, NodeConfig, SyncMode};
use crate::dcs::{Cluster, Dcs};
use crate::postgres::{Following, Postgres, ReplicationRow};
use serde_json::{Map, Value};
use std::sync::{Arc, RwLock};
use tokio::sync::Notify;

/// The version we advertise in member keys and `/patroni` for Patroni's compatibility checks.
pub const PATRONI_COMPAT_VERSION: &str = "4.1.4";

/// What the last cycle learned, published for the REST API.
#[derive(Debug, Clone, Default)]
pub struct NodeStatus {
    /// PostgreSQL state string (`running`, `stopped`, …).
    pub state: String,
    /// `primary`, `replica`, `uninitialized`, …
    pub role: String,
    /// True while we hold the leader lock.
    pub has_lock: bool,
    /// When the lock expires (ms since epoch) if nobody refreshes it.
    pub lock_expires_ms: u64,
    /// Replication state for replicas (`streaming` / `in archive recovery`).
    pub replication_state: Option<String>,
    /// Replayed LSN (replica).
    pub replayed: Option<u64>,
    /// Received LSN (replica).
    pub received: Option<u64>,
    /// Primary location.
    pub location: Option<u64>,
    /// Timeline.
    pub timeline: Option<u64>,
    /// Server version number.
    pub server_version: i32,
    /// Postmaster start time.
    pub postmaster_start_time: Option<String>,
    /// Replay timestamp (replica).
    pub replay_timestamp: Option<String>,
    /// Replay paused (replica).
    pub replay_paused: bool,
    /// System identifier.
    pub sysid: Option<String>,
    /// Replication connections (primary).
    pub replication: Vec<ReplicationRow>,
    /// Effective tags.
    pub tags: Map<String, Value>,
    /// Pending restart flag.
    pub pending_restart: bool,
    /// `watchdog.mode: required` and the watchdog cannot be used (Patroni's flag: peers
    /// leave this member out of the race).
    pub watchdog_failed: bool,
    /// Why this member cannot fence a primary (it does not lead while this is set).
    pub fence_problem: Option<String>,
    /// Pending restart reasons.
    pub pending_restart_reason: Map<String, Value>,
    /// Last cluster view.
    pub cluster: Option<Cluster>,
    /// Dynamic config in force.
    pub dynamic: DynamicConfig,
    /// Last successful DCS contact (seconds since epoch).
    pub dcs_last_seen: u64,
    /// When the next cycle is scheduled (ms since epoch).
    pub next_cycle_ms: u64,
    /// Last cycle's log line.
    pub last_message: String,
    /// The scheduled restart as published in the member key.
    pub scheduled_restart: Option<serde_json::Value>,
    /// Parameters set with ALTER SYSTEM (postgresql.auto.conf), published for drift checks;
    /// secret-bearing ones are left out (`crate::secrets`).
    pub alter_system: Map<String, Value>,
}

/// Shared handles.
pub struct Shared {
    /// Node configuration (replaced on reload).
    pub node: RwLock<NodeConfig>,
    /// The DCS.
    pub dcs: Arc<dyn Dcs>,
    /// Local PostgreSQL: its settings (paths, timeouts) and what the observation reads.
    pub pg: Arc<Postgres>,
    /// Control of the local PostgreSQL (the PostgreSQL control port; [`Postgres`] for real):
    /// what effects and background tasks do to the instance.
    pub ctl: Arc<dyn super::pg_port::PgControl>,
    /// SQL to it (the SQL port; [`crate::postgres::LocalSql`] for real).
    pub sql: Arc<dyn super::sql_port::Sql>,
    /// Latest status.
    pub status: RwLock<NodeStatus>,
    /// Wakes the HA loop early.
    pub wake: Notify,
    /// Path of the node config file (for reload).
    pub config_path: std::path::PathBuf,
    /// Minimum ttl accepted from the dynamic config.
    pub min_ttl: u64,
    /// Operator requests for the HA loop (restart, reinitialize).
    pub commands: tokio::sync::mpsc::UnboundedSender<Command>,
    /// Why the last hand-over (switchover) failed, for the REST answer.
    pub last_handover_error: RwLock<Option<String>>,
    /// A restart scheduled through `POST /restart`.
    pub scheduled_restart: RwLock<Option<ScheduledRestart>>,
    /// Failsafe mode: the last `failsafe` key, leader calls, confirmations.
    pub failsafe: super::failsafe::FailsafeState,
    /// The REST server's TLS and allowlist and the client towards peers (reloadable).
    pub security: Arc<crate::tls::security::ApiSecurity>,
    /// REST calls to other members (`/patroni`).
    pub peers: Arc<dyn super::ports::Peers>,
    /// The wall clock of the HA loop.
    pub clock: Arc<dyn super::ports::Clock>,
    /// Callback scripts (one at a time) and the last `pre_promote` failure.
    pub callbacks: super::callbacks::CallbackRunner,
    /// Set by a reload that changed the node file's PostgreSQL files settings.
    pub local_reload: std::sync::atomic::AtomicBool,
}

pub use crate::ha::restart::ScheduledRestart;

/// What a [`Shared`] is made of: the node file, the ports, and the request channel.
pub struct SharedParts {
    /// The node configuration.
    pub node: NodeConfig,
    /// The DCS.
    pub dcs: Arc<dyn Dcs>,
    /// The local PostgreSQL's settings.
    pub pg: Arc<Postgres>,
    /// Control of the local PostgreSQL.
    pub ctl: Arc<dyn super::pg_port::PgControl>,
    /// SQL to it.
    pub sql: Arc<dyn super::sql_port::Sql>,
    /// The REST server's TLS and allowlist, the client towards peers.
    pub security: Arc<crate::tls::security::ApiSecurity>,
    /// REST calls to other members.
    pub peers: Arc<dyn super::ports::Peers>,
    /// The wall clock.
    pub clock: Arc<dyn super::ports::Clock>,
    /// Where operator requests go.
    pub commands: tokio::sync::mpsc::UnboundedSender<Command>,
}

impl Shared {
    /// Shared state over `parts`, everything else empty (no node file path, `min_ttl` 0).
    pub fn new(parts: SharedParts) -> Shared {
        Shared {
            node: RwLock::new(parts.node),
            dcs: parts.dcs,
            pg: parts.pg,
            ctl: parts.ctl,
            sql: parts.sql,
            status: RwLock::new(NodeStatus::default()),
            wake: Notify::new(),
            config_path: Default::default(),
            min_ttl: 0,
            commands: parts.commands,
            last_handover_error: RwLock::new(None),
            scheduled_restart: RwLock::new(None),
            failsafe: Default::default(),
            security: parts.security,
            peers: parts.peers,
            clock: parts.clock,
            callbacks: Default::default(),
            local_reload: Default::default(),
        }
    }
}

/// An operator request with the channel its answer goes back on.
#[derive(Debug)]
pub struct Command {
    /// What is asked.
    pub request: crate::ha::Request,
    /// The action's message, or why it was not carried out.
    pub reply: tokio::sync::oneshot::Sender<super::reply::Reply>,
    /// Answer as soon as the action starts instead of when it ends.
    pub reply_on_start: bool,
}

impl NodeStatus {
    /// True when `name` is listed in the `sync` key of the last cluster view.
    fn listed_in_sync_key(&self, name: &str) -> bool {
        self.cluster
            .as_ref()
            .and_then(|c| c.sync.as_ref())
            .is_some_and(|s| {
                s.value
                    .members()
                    .iter()
                    .any(|m| m.eq_ignore_ascii_case(name))
            })
    }

    /// True when `name` is a synchronous standby (priority mode, listed in the `sync` key).
    pub fn is_sync_standby(&self, name: &str) -> bool {
        self.dynamic.synchronous_mode != SyncMode::Quorum && self.listed_in_sync_key(name)
    }

    /// True when `name` is a quorum standby (quorum mode, a voter in the `sync` key).
    pub fn is_quorum_standby(&self, name: &str) -> bool {
        self.dynamic.synchronous_mode == SyncMode::Quorum && self.listed_in_sync_key(name)
    }
}

impl Shared {
    /// True once after a reload changed the local parameters, pg_hba or pg_ident.
    pub fn take_local_reload(&self) -> bool {
        self.local_reload
            .swap(false, std::sync::atomic::Ordering::SeqCst)
    }

    /// A copy of the latest status.
    pub fn status(&self) -> NodeStatus {
        self.status.read().map(|s| s.clone()).unwrap_or_default()
    }

    /// Our member name.
    pub fn name(&self) -> String {
        self.node.read().map(|n| n.name.clone()).unwrap_or_default()
    }

    /// Records which leader the replica configuration follows (None: nobody).
    pub fn set_following(&self, leader: Option<String>) {
        let f = leader.map_or(Following::Nobody, Following::Member);
        self.ctl.set_following(f);
    }

    /// Records that the recovery configuration follows the remote primary of
    /// `standby_cluster` (the standby leader), no member.
    pub fn set_following_remote(&self) {
        self.ctl.set_following(Following::RemotePrimary);
    }

    /// True when the recovery configuration follows the remote primary.
    pub fn following_remote(&self) -> bool {
        self.ctl.following() == Following::RemotePrimary
    }

    /// The leader the replica configuration follows.
    pub fn following(&self) -> Option<String> {
        self.ctl.following().member()
    }

    /// A copy of the node config.
    pub fn node(&self) -> NodeConfig {
        match self.node.read() {
            Ok(n) => n.clone(),
            Err(e) => e.into_inner().clone(),
        }
    }
}
