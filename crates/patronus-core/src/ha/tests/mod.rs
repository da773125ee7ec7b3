//! Decision-table tests: one per branch of `decide` (docs/patroni-behaviour.md §2;
//! upstream: patroni/ha.py).

mod failover;
mod failsafe;
mod foundation;
mod machine;
mod quorum;
mod standby;
mod sync;
mod tags;

use super::*;
use crate::config::dynamic::DynamicConfig;
use crate::dcs::cluster::{Leader, MemberEntry, Versioned};
use crate::dcs::{Cluster, Member};
use serde_json::json;

pub(super) fn member(name: &str, state: &str, role: &str) -> MemberEntry {
    MemberEntry {
        name: name.into(),
        data: Member {
            state: state.into(),
            role: role.into(),
            ..Member::default()
        },
        version: 1,
        lease: 1,
    }
}

pub(super) struct B(pub(super) Observation);

impl B {
    pub(super) fn new(name: &str) -> B {
        B(Observation {
            now_ms: 1_000_000,
            node: NodeFacts {
                name: name.into(),
                can_bootstrap: true,
                nofailover: false,
                failover_priority: 1,
                use_pg_rewind: true,
                fence_problem: None,
                pre_promote_failed_ms: None,
                clone_without_leader: false,
                stream: Default::default(),
            },
            cluster: Some(Cluster::default()),
            config: DynamicConfig::default(),
            pg: PgObservation {
                data: DataDir::Empty,
                running: false,
                postmaster_alive: false,
                role: None,
                following: None,
                following_remote: false,
                timeline: None,
                timeline_from_receiver: false,
                lsn: None,
                control_state: None,
                control_lsn: None,
                rewind_possible: true,
                rewind_failures: 0,
                standbys: vec![],
            },
            task: None,
            task_started_ms: None,
            lock: LockState::NotHeld,
            applied_config_version: None,
            peers: vec![],
            request: None,
            scheduled_restart_ms: None,
            sync_names_applied: None,
            sync_names_since_lsn: None,
            last_failure: None,
            failsafe: FailsafeFacts::default(),
        })
    }
    pub(super) fn cluster(mut self, f: impl FnOnce(&mut Cluster)) -> B {
        f(self.0.cluster.get_or_insert_with(Cluster::default));
        self
    }
    pub(super) fn initialized(self) -> B {
        self.cluster(|c| {
            c.initialize = Some("7000".into());
            c.config = Some(Versioned {
                value: json!({"ttl": 30}),
                version: 3,
            });
        })
    }
    pub(super) fn led_by(self, leader: &str) -> B {
        let l = leader.to_string();
        self.cluster(move |c| {
            c.leader = Some(Leader {
                name: l.clone(),
                lease: 9,
                version: 5,
            });
            c.members.push(member(&l, "running", "primary"));
        })
    }
    pub(super) fn primary(mut self) -> B {
        self.0.pg = PgObservation {
            data: DataDir::Initialized {
                sysid: "7000".into(),
            },
            running: true,
            postmaster_alive: true,
            role: Some(PgRole::Primary),
            following: None,
            following_remote: false,
            timeline: Some(1),
            timeline_from_receiver: false,
            lsn: Some(1000),
            control_state: Some(crate::ha::ControlState::InProduction),
            control_lsn: Some(900),
            rewind_possible: true,
            rewind_failures: 0,
            standbys: vec![],
        };
        self.0.applied_config_version = Some(3);
        self
    }
    pub(super) fn replica(mut self, following: Option<&str>, lsn: u64) -> B {
        self.0.pg = PgObservation {
            data: DataDir::Initialized {
                sysid: "7000".into(),
            },
            running: true,
            postmaster_alive: true,
            role: Some(PgRole::Replica),
            following: following.map(str::to_string),
            following_remote: false,
            timeline: Some(1),
            timeline_from_receiver: false,
            lsn: Some(lsn),
            control_state: Some(crate::ha::ControlState::InArchiveRecovery),
            control_lsn: Some(lsn),
            rewind_possible: true,
            rewind_failures: 0,
            standbys: vec![],
        };
        self.0.applied_config_version = Some(3);
        self
    }
    pub(super) fn stopped(mut self, control: &str) -> B {
        self.0.pg.running = false;
        self.0.pg.postmaster_alive = false;
        self.0.pg.role = None;
        self.0.pg.control_state = Some(crate::ha::ControlState::parse(control));
        self
    }
    pub(super) fn lock(mut self, l: LockState) -> B {
        self.0.lock = l;
        self
    }
    pub(super) fn with(mut self, f: impl FnOnce(&mut Observation)) -> B {
        f(&mut self.0);
        self
    }
    pub(super) fn decide(&self) -> Decision {
        decide(&self.0)
    }
}

pub(super) fn peer(name: &str, wal: u64, prio: i64, primary: bool) -> PeerStatus {
    PeerStatus {
        name: name.into(),
        reachable: true,
        is_primary: primary,
        wal_position: wal,
        timeline: Some(1),
        nofailover: prio <= 0,
        failover_priority: prio,
    }
}
