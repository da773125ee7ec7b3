//! A read-only snapshot of one cluster's keys, parsed from raw key-values.
//!
//! Pure: built by the etcd cache, the in-memory twin and tests alike.

use super::keys::{self, Keys};
use super::model::{Failover, HistoryLine, Member, Status, SyncState};
use super::value_error::json;
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
    /// Failsafe topology (`{member: api_url}`), kept with its version even when it is not
    /// an object (the leader then rewrites it).
    pub failsafe: Option<Versioned<Value>>,
    /// patronus GitOps record (our extension key).
    pub gitops: Option<Versioned<Value>>,
    /// The `--id` of the reconciler holding `gitops-lock` (the active one for this cluster).
    pub gitops_lock: Option<String>,
    /// Store revision the snapshot reflects.
    pub revision: i64,
    /// Values that could not be parsed (key: reason).
    pub warnings: Vec<String>,
}

impl Cluster {
    /// Builds a snapshot from raw keys of `keys`' prefix. A value that cannot be read is
    /// left out (or, for `sync`, kept as unreadable) with a warning naming its key.
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
            let warning = match rel.strip_prefix(keys::MEMBERS) {
                Some(name) => read_member(&mut members, name, kv),
                None => c.read_key(rel, kv),
            };
            if let Some(e) = warning {
                c.warnings.push(format!("{rel}: {e}"));
            }
        }
        c.members = members.into_values().collect();
        c
    }

    /// Reads one cluster-level key; returns a warning when its value cannot be used.
    fn read_key(&mut self, rel: &str, kv: &RawKv) -> Option<String> {
        match rel {
            keys::INITIALIZE => self.initialize = Some(kv.value.clone()),
            keys::LEADER if !kv.value.is_empty() => {
                self.leader = Some(Leader {
                    name: kv.value.clone(),
                    lease: kv.lease,
                    version: kv.mod_revision,
                });
            }
            keys::CONFIG => match json(&kv.value) {
                Ok(v) if v.is_object() => self.config = Some(versioned(v, kv)),
                Ok(_) => return Some("not a JSON object".into()),
                Err(e) => return Some(e.to_string()),
            },
            keys::STATUS => match Status::parse(&kv.value) {
                Ok(s) => self.status = s,
                Err(e) => return Some(e.to_string()),
            },
            keys::HISTORY => return self.read_history(&kv.value),
            keys::FAILOVER => match Failover::parse(&kv.value) {
                Ok(f) if !f.is_empty() || f.scheduled_at.is_some() => {
                    self.failover = Some(versioned(f, kv));
                }
                Ok(_) => {}
                Err(e) => return Some(e.to_string()),
            },
            keys::SYNC => {
                // Kept with its version even when unreadable: sync mode then knows no
                // synchronous standby, and the leader can rewrite the key over it.
                let (value, warning) = match SyncState::parse(&kv.value) {
                    Ok(s) => (s, None),
                    Err(e) => (
                        SyncState::unreadable(),
                        Some(format!(
                            "{e}; no synchronous standby is known until the leader rewrites it"
                        )),
                    ),
                };
                self.sync = Some(versioned(value, kv));
                return warning;
            }
            keys::FAILSAFE => {
                let (value, warning) = match json(&kv.value) {
                    Ok(v) if v.is_object() => (v, None),
                    Ok(v) => (v, Some("not a JSON object".to_string())),
                    Err(e) => (Value::Null, Some(e.to_string())),
                };
                self.failsafe = Some(versioned(value, kv));
                return warning.map(|w| {
                    format!(
                        "{w}; failsafe mode cannot keep the primary until the leader rewrites it"
                    )
                });
            }
            keys::GITOPS => match json(&kv.value) {
                Ok(v) => {
                    let warning = (!v.is_object()).then(|| "not a JSON object".to_string());
                    self.gitops = Some(versioned(v, kv));
                    return warning;
                }
                Err(e) => return Some(e.to_string()),
            },
            keys::GITOPS_LOCK => self.gitops_lock = Some(kv.value.clone()),
            _ => {}
        }
        None
    }

    /// Reads the `history` key: the lines of Patroni's shape, the rest reported.
    fn read_history(&mut self, raw: &str) -> Option<String> {
        let v = match json(raw) {
            Ok(v) => v,
            Err(e) => return Some(e.to_string()),
        };
        let lines = v.as_array().map_or(&[][..], Vec::as_slice);
        self.history = lines.iter().filter_map(HistoryLine::from_value).collect();
        let dropped = lines.len() - self.history.len();
        let warning = if !v.is_array() {
            Some("expected a JSON list of timeline lines; ignored".to_string())
        } else {
            (dropped > 0)
                .then(|| format!("{dropped} line(s) not [timeline, lsn, reason, ...] ignored"))
        };
        self.history_raw = Some(v);
        warning
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
    pub(crate) fn is_initialized(&self) -> bool {
        self.initialize.as_deref().is_some_and(|s| !s.is_empty())
    }

    /// "Cluster timeline": last history line's timeline + 1, or 1 without history.
    pub fn timeline(&self) -> u64 {
        self.history
            .last()
            .map_or(1, |h| h.timeline.saturating_add(1))
    }

    /// The `failsafe` key as Patroni reads it (see [`failsafe_topology`]).
    pub fn failsafe_topology(&self) -> Option<BTreeMap<String, String>> {
        failsafe_topology(&self.failsafe.as_ref()?.value)
    }

    /// True when `config.pause` is set.
    pub fn is_paused(&self) -> bool {
        self.config
            .as_ref()
            .and_then(|c| c.value.get("pause"))
            .is_some_and(crate::config::tags::is_true)
    }
}

/// A `failsafe` value as `{member: api_url}`: None unless it is a JSON object. A URL that is
/// not a string counts as empty (that member cannot be asked, so it cannot confirm).
pub fn failsafe_topology(v: &Value) -> Option<BTreeMap<String, String>> {
    let members = v.as_object()?;
    Some(
        members
            .iter()
            .map(|(name, url)| (name.clone(), url.as_str().unwrap_or_default().to_string()))
            .collect(),
    )
}

fn versioned<T>(value: T, kv: &RawKv) -> Versioned<T> {
    Versioned {
        value,
        version: kv.mod_revision,
    }
}

/// Reads one `members/<name>` key into `members`; returns a warning when unreadable.
fn read_member(
    members: &mut BTreeMap<String, MemberEntry>,
    name: &str,
    kv: &RawKv,
) -> Option<String> {
    if name.is_empty() || name.contains('/') {
        return None;
    }
    match Member::parse(&kv.value) {
        Ok(data) => {
            let entry = MemberEntry {
                name: name.to_string(),
                data,
                version: kv.mod_revision,
                lease: kv.lease,
            };
            members.insert(name.to_string(), entry);
            None
        }
        Err(e) => Some(e.to_string()),
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
        assert!(c.failsafe.is_none() && c.failsafe_topology().is_none());
    }

    #[test]
    fn reads_the_failsafe_key() {
        let keys = Keys::new("/service", "acme");
        let mut m = BTreeMap::new();
        m.insert(
            "/service/acme/failsafe".to_string(),
            kv(r#"{"p1":"http://h1:8008/patroni","p2":7}"#, 4, 0),
        );
        let c = Cluster::from_kvs(&keys, &m, 4);
        let t = c.failsafe_topology().unwrap();
        assert_eq!(t["p1"], "http://h1:8008/patroni");
        assert_eq!(t["p2"], "", "a URL that is not a string is empty");
        assert_eq!(c.failsafe.as_ref().unwrap().version, 4);
        assert!(c.warnings.is_empty());
        for bad in ["[1]", "{bad"] {
            m.insert("/service/acme/failsafe".to_string(), kv(bad, 5, 0));
            let c = Cluster::from_kvs(&keys, &m, 5);
            assert!(c.failsafe_topology().is_none(), "{bad}");
            assert_eq!(
                c.failsafe.as_ref().unwrap().version,
                5,
                "kept to be rewritten"
            );
            assert!(c.warnings[0].starts_with("failsafe:"), "{:?}", c.warnings);
        }
    }
}
