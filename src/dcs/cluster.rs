//! A read-only snapshot of one cluster's keys, parsed from raw key-values.
//!
//! Pure: built by the etcd cache, the in-memory twin and tests alike.

use super::keys::{self, Keys};
use super::model::{Failover, HistoryLine, Member, Status, SyncState};
use serde_json::Value;
use std::collections::BTreeMap;

/// One raw key as read from the DCS.
#[derive(Debug, Clone, PartialEq)]
pub struct RawKv {
    /// Value bytes as text.
    pub value: String,
    /// etcd `mod_revision` (the object version for CAS).
    pub mod_revision: i64,
    /// etcd `create_revision`.
    pub create_revision: i64,
    /// Lease id the key is attached to (0 = none).
    pub lease: i64,
}

/// A value with the version it was read at.
#[derive(Debug, Clone, PartialEq)]
pub struct Versioned<T> {
    /// The parsed value.
    pub value: T,
    /// `mod_revision` of the key.
    pub version: i64,
}

/// The holder of the leader lock.
#[derive(Debug, Clone, PartialEq)]
pub struct Leader {
    /// Member name stored in the key.
    pub name: String,
    /// Lease the key is attached to.
    pub lease: i64,
    /// `mod_revision` of the key.
    pub version: i64,
}

/// A member key with its metadata.
#[derive(Debug, Clone, PartialEq)]
pub struct MemberEntry {
    /// Member name (from the key).
    pub name: String,
    /// Parsed value.
    pub data: Member,
    /// `mod_revision` of the key.
    pub version: i64,
    /// Lease of the key.
    pub lease: i64,
}

/// Everything the DCS holds for one cluster.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Cluster {
    /// `initialize`: `Some("")` while bootstrapping, then the system identifier.
    pub initialize: Option<String>,
    /// Dynamic configuration (a JSON object) with its version.
    pub config: Option<Versioned<Value>>,
    /// Leader lock holder.
    pub leader: Option<Leader>,
    /// Members sorted by name.
    pub members: Vec<MemberEntry>,
    /// Leader status (default when absent).
    pub status: Status,
    /// Timeline history lines.
    pub history: Vec<HistoryLine>,
    /// The raw history value (to carry enriched fields over).
    pub history_raw: Option<Value>,
    /// Requested failover/switchover, if non-empty.
    pub failover: Option<Versioned<Failover>>,
    /// Sync state.
    pub sync: Option<Versioned<SyncState>>,
    /// Failsafe topology.
    pub failsafe: Option<Value>,
    /// patronus GitOps record (our extension key).
    pub gitops: Option<Versioned<Value>>,
    /// Store revision the snapshot reflects.
    pub revision: i64,
    /// Values that could not be parsed (key: reason).
    pub warnings: Vec<String>,
}

impl Cluster {
    /// Builds a snapshot from raw keys of `keys`' prefix.
    pub fn from_kvs<'a>(
        keys: &Keys,
        kvs: impl IntoIterator<Item = (&'a String, &'a RawKv)>,
        revision: i64,
    ) -> Cluster {
        let mut c = Cluster {
            revision,
            ..Cluster::default()
        };
        let mut members = BTreeMap::new();
        for (full, kv) in kvs {
            let Some(rel) = keys.relative(full) else {
                continue;
            };
            let warn = |c: &mut Cluster, e: String| c.warnings.push(format!("{rel}: {e}"));
            match rel {
                keys::INITIALIZE => c.initialize = Some(kv.value.clone()),
                keys::LEADER => {
                    if !kv.value.is_empty() {
                        c.leader = Some(Leader {
                            name: kv.value.clone(),
                            lease: kv.lease,
                            version: kv.mod_revision,
                        });
                    }
                }
                keys::CONFIG => match serde_json::from_str::<Value>(&kv.value) {
                    Ok(v) if v.is_object() => {
                        c.config = Some(Versioned {
                            value: v,
                            version: kv.mod_revision,
                        })
                    }
                    Ok(_) => warn(&mut c, "not a JSON object".into()),
                    Err(e) => warn(&mut c, e.to_string()),
                },
                keys::STATUS => match Status::parse(&kv.value) {
                    Ok(s) => c.status = s,
                    Err(e) => warn(&mut c, e),
                },
                keys::HISTORY => match serde_json::from_str::<Value>(&kv.value) {
                    Ok(v) => {
                        let lines = v.as_array().map_or(&[][..], Vec::as_slice);
                        c.history = lines.iter().filter_map(HistoryLine::from_value).collect();
                        let dropped = lines.len() - c.history.len();
                        if !v.is_array() {
                            warn(
                                &mut c,
                                "expected a JSON list of timeline lines; ignored".into(),
                            );
                        } else if dropped > 0 {
                            let e = format!(
                                "{dropped} line(s) not [timeline, lsn, reason, ...] ignored"
                            );
                            warn(&mut c, e);
                        }
                        c.history_raw = Some(v);
                    }
                    Err(e) => warn(&mut c, e.to_string()),
                },
                keys::FAILOVER => match Failover::parse(&kv.value) {
                    Ok(f) if !f.is_empty() || f.scheduled_at.is_some() => {
                        c.failover = Some(Versioned {
                            value: f,
                            version: kv.mod_revision,
                        })
                    }
                    Ok(_) => {}
                    Err(e) => warn(&mut c, e),
                },
                keys::SYNC => {
                    // Kept with its version even when unreadable: sync mode then knows no
                    // synchronous standby, and the leader can rewrite the key over it.
                    let value = SyncState::parse(&kv.value).unwrap_or_else(|e| {
                        warn(
                            &mut c,
                            format!(
                                "{e}; no synchronous standby is known until the leader rewrites it"
                            ),
                        );
                        SyncState::unreadable()
                    });
                    c.sync = Some(Versioned {
                        value,
                        version: kv.mod_revision,
                    });
                }
                keys::FAILSAFE => match serde_json::from_str(&kv.value) {
                    Ok(v) => c.failsafe = Some(v),
                    Err(e) => warn(&mut c, format!("invalid JSON: {e}")),
                },
                keys::GITOPS => match serde_json::from_str::<Value>(&kv.value) {
                    Ok(v) => {
                        if !v.is_object() {
                            warn(&mut c, "not a JSON object".into());
                        }
                        c.gitops = Some(Versioned {
                            value: v,
                            version: kv.mod_revision,
                        })
                    }
                    Err(e) => warn(&mut c, format!("invalid JSON: {e}")),
                },
                other => {
                    if let Some(name) = other.strip_prefix(keys::MEMBERS) {
                        if name.is_empty() || name.contains('/') {
                            continue;
                        }
                        match Member::parse(&kv.value) {
                            Ok(data) => {
                                members.insert(
                                    name.to_string(),
                                    MemberEntry {
                                        name: name.to_string(),
                                        data,
                                        version: kv.mod_revision,
                                        lease: kv.lease,
                                    },
                                );
                            }
                            Err(e) => warn(&mut c, e),
                        }
                    }
                }
            }
        }
        c.members = members.into_values().collect();
        c
    }

    /// The member entry named `name`.
    pub fn member(&self, name: &str) -> Option<&MemberEntry> {
        self.members.iter().find(|m| m.name == name)
    }

    /// Name of the leader, if locked.
    pub fn leader_name(&self) -> Option<&str> {
        self.leader.as_ref().map(|l| l.name.as_str())
    }

    /// True if `name` holds the leader lock.
    pub fn is_leader(&self, name: &str) -> bool {
        self.leader_name() == Some(name)
    }

    /// True when `initialize` holds a real system identifier.
    pub fn is_initialized(&self) -> bool {
        self.initialize.as_deref().is_some_and(|s| !s.is_empty())
    }

    /// "Cluster timeline": last history line's timeline + 1, or 1 without history.
    pub fn timeline(&self) -> u64 {
        self.history
            .last()
            .map_or(1, |h| h.timeline.saturating_add(1))
    }

    /// True when `config.pause` is set.
    pub fn is_paused(&self) -> bool {
        self.config
            .as_ref()
            .and_then(|c| c.value.get("pause"))
            .is_some_and(|v| super::model::tag_truthy(Some(v)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kv(v: &str, rev: i64, lease: i64) -> RawKv {
        RawKv {
            value: v.into(),
            mod_revision: rev,
            create_revision: rev,
            lease,
        }
    }

    #[test]
    fn parses_a_patroni_cluster() {
        let keys = Keys::new("/service", "acme");
        let mut m = BTreeMap::new();
        m.insert(
            "/service/acme/initialize".to_string(),
            kv("7277694203142172922", 2, 0),
        );
        m.insert("/service/acme/leader".to_string(), kv("p1", 5, 77));
        m.insert(
            "/service/acme/config".to_string(),
            kv(r#"{"ttl":30,"pause":true}"#, 3, 0),
        );
        m.insert(
            "/service/acme/members/p1".to_string(),
            kv(r#"{"role":"primary","state":"running"}"#, 6, 77),
        );
        m.insert(
            "/service/acme/members/p2".to_string(),
            kv(r#"{"role":"replica"}"#, 7, 78),
        );
        m.insert("/service/acme/members/p2/x".to_string(), kv("{}", 7, 78));
        m.insert(
            "/service/acme/history".to_string(),
            kv(r#"[[1,100,"no recovery target specified"]]"#, 8, 0),
        );
        m.insert("/service/acme/failover".to_string(), kv("{}", 9, 0));
        m.insert("/service/acme/status".to_string(), kv("{bad", 10, 0));
        let c = Cluster::from_kvs(&keys, &m, 10);
        assert!(c.is_initialized());
        assert!(c.is_leader("p1"));
        assert_eq!(c.leader.as_ref().unwrap().lease, 77);
        assert_eq!(c.members.len(), 2);
        assert_eq!(c.timeline(), 2);
        assert!(c.failover.is_none());
        assert!(c.is_paused());
        assert_eq!(c.warnings.len(), 1);
        assert!(c.warnings[0].starts_with("status:"));
    }
}
