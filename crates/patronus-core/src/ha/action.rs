//! What a cycle asks the executor to do. One action, one effect.

/// How to demote (docs/patroni-behaviour.md §2.11).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DemoteMode {
    /// Fast stop, keep no lock, restart as replica without upstream (DCS unreachable).
    Offline,
    /// Fast stop with checkpoint, release the lock (switchover).
    Graceful,
    /// Immediate stop, release the lock.
    Immediate,
    /// Immediate stop, the lock is already lost.
    ImmediateNolock,
    /// `standby_cluster` was added while we run as primary (Patroni's `demote-cluster`):
    /// fast stop with checkpoint, keep the lock, restart as the standby leader following
    /// the remote primary.
    Cluster,
}

impl DemoteMode {
    /// How PostgreSQL is stopped for this demotion.
    pub fn stop_mode(self) -> super::vocab::StopMode {
        match self {
            DemoteMode::Offline | DemoteMode::Graceful | DemoteMode::Cluster => {
                super::vocab::StopMode::Fast
            }
            DemoteMode::Immediate | DemoteMode::ImmediateNolock => {
                super::vocab::StopMode::Immediate
            }
        }
    }
}

/// One effect for the executor.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    /// Race for `initialize`; the winner runs initdb and bootstraps the cluster.
    Bootstrap,
    /// Standby cluster: race for `initialize`; the winner clones the remote primary
    /// (`standby_cluster.create_replica_methods`, default pg_basebackup), follows it and
    /// takes the leader key as the standby leader.
    BootstrapStandbyLeader,
    /// Point the standby leader's recovery at the remote primary of `standby_cluster`.
    FollowRemote,
    /// Start PostgreSQL in recovery following the remote primary of `standby_cluster`.
    StartFollowingRemote,
    /// Clone a replica from this member with pg_basebackup.
    CreateReplica {
        /// Member to clone from.
        source: String,
    },
    /// No leader: create the data with the replica methods that need none (`no_leader`),
    /// e.g. a restore from a backup repository.
    CreateReplicaWithoutLeader,
    /// Try to create the leader key; on success promote if running as replica.
    AcquireLock {
        /// Promote after winning.
        promote: bool,
    },
    /// Delete our leader key.
    ReleaseLock,
    /// Start PostgreSQL as primary (we hold the lock).
    StartPrimary,
    /// Start PostgreSQL as a replica following `leader` (None = no upstream: none yet, or
    /// `nostream`).
    StartReplica {
        /// Member to stream from (the leader, or the `replicatefrom` member).
        leader: Option<String>,
    },
    /// Promote the running replica.
    Promote,
    /// Stop being primary.
    Demote {
        /// Demote mode.
        mode: DemoteMode,
    },
    /// Point the replica at a (new) upstream: the leader, or the member named by its
    /// `replicatefrom` tag.
    Follow {
        /// Member to stream from.
        leader: String,
    },
    /// Render the replica's recovery settings without an upstream (`nostream`: WAL comes
    /// from `restore_command` only).
    StopStreaming,
    /// Write the system identifier into `initialize`.
    WriteInitialize {
        /// The sysid from pg_control.
        sysid: String,
        /// Only create the key (the cluster had none: two members adopting their own data
        /// directories at once must not overwrite each other, Patroni's `create_new`).
        create_new: bool,
    },
    /// Seed the `config` key from the local bootstrap.dcs (create-only).
    SeedConfig,
    /// Publish `status` (optime, slots) as leader.
    PublishStatus,
    /// Append the current timeline switch to `history`.
    UpdateHistory,
    /// Re-render configuration files and reload PostgreSQL.
    ApplyConfig,
    /// Create, drop, advance and copy replication slots ([`crate::ha::slots`]).
    SyncSlots,
    /// Hand the leader role over: clean stop, verify a candidate has the shutdown checkpoint,
    /// release the lock; otherwise resume as primary (planned switchover / manual failover).
    HandOver {
        /// Named candidate (None = the best one).
        candidate: Option<String>,
    },
    /// Clear the `failover` key (CAS on its version).
    ClearFailover,
    /// Write the `sync` key naming us as leader with these standbys (CAS on the version
    /// seen); None deletes the key (sync mode switched off).
    WriteSync {
        /// Synchronous standbys, or None to delete the key.
        standbys: Option<Vec<String>>,
    },
    /// Write the `sync` key in quorum mode: us as leader, `quorum`, and the voters as
    /// `sync_standby` (CAS on the version seen).
    WriteQuorum {
        /// Votes a candidate needs after losing the leader.
        quorum: u64,
        /// Voters, sorted.
        voters: Vec<String>,
    },
    /// Write the `failsafe` key with this topology (`{member: api_url}`); None deletes it
    /// (failsafe mode switched off).
    WriteFailsafe {
        /// Members and their REST API URLs, or None to delete the key.
        topology: Option<std::collections::BTreeMap<String, String>>,
    },
    /// Render `synchronous_standby_names` (None = leave it to the user's parameters) and
    /// reload PostgreSQL.
    SetSyncNames {
        /// The value to render.
        value: Option<String>,
    },
    /// Rewind the diverged data directory from `leader` with pg_rewind, then follow it.
    Rewind {
        /// Member to rewind from.
        leader: String,
    },
    /// Wipe the data directory and clone again from `leader`.
    Reinitialize {
        /// Member to clone from (the leader, or a replica tagged `clonefrom`).
        leader: String,
    },
    /// Restart PostgreSQL in its current role (the leader keeps the lock).
    Restart,
    /// Stop the agent with an error (e.g. system id mismatch).
    Fatal {
        /// Why.
        reason: String,
    },
    /// Log a warning the decision found (the core does no I/O: the driver logs it).
    Warn {
        /// The line.
        message: String,
    },
}

/// Output of one HA cycle.
#[derive(Debug, Clone, PartialEq)]
pub struct Decision {
    /// Effects to run, in order.
    pub actions: Vec<Action>,
    /// Patroni's log line for this cycle.
    pub message: String,
    /// Run the next cycle no later than this (ms since epoch), e.g. a scheduled switchover.
    pub wake_at_ms: Option<u64>,
}

impl Decision {
    /// A decision with a message and actions.
    pub fn new(message: impl Into<String>, actions: Vec<Action>) -> Self {
        Decision {
            actions,
            message: message.into(),
            wake_at_ms: None,
        }
    }

    /// True if the decision contains `a`.
    pub fn has(&self, a: &Action) -> bool {
        self.actions.contains(a)
    }
}
