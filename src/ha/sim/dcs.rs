//! The virtual DCS: leader key, member keys, leases, `config`, `status`, `history`, `failover`.

use super::model::SYSID;
use crate::dcs::cluster::{Leader, MemberEntry, Versioned};
use crate::dcs::{Cluster, Failover, HistoryLine, Member, Status, SyncState};
use serde_json::Value;
use std::collections::BTreeMap;

/// The leader key.
#[derive(Debug, Clone, PartialEq)]
pub struct LeaderKey {
    /// Holder.
    pub name: String,
    /// Revision it was created at.
    pub version: i64,
}

/// The virtual DCS. Every member has one lease (expiry time) that carries its member key and,
/// for the holder, the leader key, as in the etcd implementation.
#[derive(Debug, Clone, Default)]
pub struct SimDcs {
    /// Leader key.
    pub leader: Option<LeaderKey>,
    /// Member keys with their versions.
    pub members: BTreeMap<String, (Member, i64)>,
    /// Lease expiry per member.
    pub leases: BTreeMap<String, u64>,
    /// `config` value and version.
    pub config: Option<Versioned<Value>>,
    /// `status.optime`.
    pub optime: u64,
    /// `history`.
    pub history: Vec<HistoryLine>,
    /// `failover`.
    pub failover: Option<Versioned<Failover>>,
    /// `sync` (synchronous mode).
    pub sync: Option<Versioned<SyncState>>,
    /// Store revision.
    pub revision: i64,
}

impl SimDcs {
    /// A store holding only `config`.
    pub fn new(config: Value) -> SimDcs {
        let mut d = SimDcs::default();
        let version = d.bump();
        d.config = Some(Versioned {
            value: config,
            version,
        });
        d
    }

    fn bump(&mut self) -> i64 {
        self.revision += 1;
        self.revision
    }

    /// The cluster view a reader gets now.
    pub fn snapshot(&self) -> Cluster {
        Cluster {
            initialize: Some(SYSID.into()),
            config: self.config.clone(),
            leader: self.leader.as_ref().map(|l| Leader {
                name: l.name.clone(),
                lease: 1,
                version: l.version,
            }),
            members: self
                .members
                .iter()
                .map(|(n, (m, v))| MemberEntry {
                    name: n.clone(),
                    data: m.clone(),
                    version: *v,
                    lease: 1,
                })
                .collect(),
            status: Status {
                optime: self.optime,
                ..Status::default()
            },
            history: self.history.clone(),
            history_raw: Some(Value::Array(
                self.history.iter().map(HistoryLine::to_value).collect(),
            )),
            failover: self.failover.clone(),
            sync: self.sync.clone(),
            revision: self.revision,
            ..Cluster::default()
        }
    }

    /// Refreshes (or grants) `name`'s lease until `until`.
    pub fn keepalive(&mut self, name: &str, until: u64) {
        self.leases.insert(name.to_string(), until);
    }

    /// Create-if-absent of the leader key.
    pub fn try_acquire(&mut self, name: &str, until: u64) -> bool {
        self.keepalive(name, until);
        if self.leader.is_some() {
            return false;
        }
        let version = self.bump();
        self.leader = Some(LeaderKey {
            name: name.to_string(),
            version,
        });
        true
    }

    /// `update_leader`: still ours → refresh; vanished → re-create; someone else's → false.
    /// Returns (held, key changed).
    pub fn update_leader(&mut self, name: &str, until: u64) -> (bool, bool) {
        self.keepalive(name, until);
        match &self.leader {
            Some(l) if l.name == name => (true, false),
            Some(_) => (false, false),
            None => (self.try_acquire(name, until), true),
        }
    }

    /// Deletes the leader key if it names `name`.
    pub fn release(&mut self, name: &str) -> bool {
        if self.leader.as_ref().is_some_and(|l| l.name == name) {
            self.leader = None;
            self.bump();
            return true;
        }
        false
    }

    /// Drops expired leases with their keys (the leader key too when its holder's lease
    /// expired); returns the members whose lease expired.
    pub fn expire(&mut self, now: u64) -> Vec<String> {
        let gone: Vec<String> = self
            .leases
            .iter()
            .filter(|(_, exp)| **exp <= now)
            .map(|(n, _)| n.clone())
            .collect();
        for n in &gone {
            self.leases.remove(n);
            self.members.remove(n);
        }
        if self.leader.as_ref().is_some_and(|l| gone.contains(&l.name)) {
            self.leader = None;
            self.bump();
        }
        gone
    }

    /// Writes `name`'s member key, refreshing its lease.
    pub fn touch_member(&mut self, name: &str, data: Member, until: u64) {
        self.keepalive(name, until);
        let v = self.bump();
        self.members.insert(name.to_string(), (data, v));
    }

    /// Writes `history`.
    pub fn set_history(&mut self, lines: Vec<HistoryLine>) {
        self.history = lines;
        self.bump();
    }

    /// Writes `status`.
    pub fn set_optime(&mut self, optime: u64) {
        self.optime = optime;
        self.bump();
    }

    /// Writes the `failover` key.
    pub fn set_failover(&mut self, f: Failover) {
        let version = self.bump();
        self.failover = Some(Versioned { value: f, version });
    }

    /// Writes the `sync` key for `leader` (None = delete it), as `Driver::write_sync`.
    pub fn set_sync(&mut self, leader: &str, standbys: Option<&[String]>) {
        let Some(standbys) = standbys else {
            self.sync = None;
            self.bump();
            return;
        };
        let names = standbys;
        let value = SyncState {
            leader: Some(leader.to_string()),
            sync_standby: (!names.is_empty()).then(|| names.join(",")),
            ..SyncState::default()
        };
        let version = self.bump();
        self.sync = Some(Versioned { value, version });
    }

    /// Clears the `failover` key if it still has version `expected` (None = any).
    pub fn clear_failover(&mut self, expected: Option<i64>) -> bool {
        match &self.failover {
            Some(f) if expected.is_none_or(|e| e == f.version) => {
                self.failover = None;
                self.bump();
                true
            }
            _ => false,
        }
    }
}
