//! The JSON values stored in the DCS, field for field as Patroni writes them (docs/patroni-behaviour.md §1.2).
//!
//! Parsing is tolerant: a value written by someone else that does not match is read field by
//! field, and whatever cannot be understood is dropped with a warning rather than failing the
//! whole cluster view.

use super::value_error::{json, ValueError};
use crate::config::tags::Tags;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// Our member-key extension (Patroni ignores it): the start time of the postmaster the
/// member's `state` and `pending_restart` were observed on.
pub const POSTMASTER_START_KEY: &str = "patronus_postmaster_start";

/// A member key value (`members/<name>`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Member {
    /// `postgres://host:port/dbname`, no credentials.
    #[serde(default)]
    pub conn_url: String,
    /// `http://host:port/patroni`.
    #[serde(default)]
    pub api_url: String,
    /// PostgreSQL state (`running`, `stopped`, `creating replica`, …).
    #[serde(default)]
    pub state: String,
    /// `primary`, `replica`, `standby_leader`, `demoted`, `uninitialized`, `promoted`.
    #[serde(default)]
    pub role: String,
    /// Agent version (we publish a Patroni-compatible version number).
    #[serde(default)]
    pub version: String,
    /// Primary: flush LSN; replica: max(receive, replay).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub xlog_location: Option<u64>,
    /// Replica receive LSN.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub receive_lsn: Option<u64>,
    /// Replica replay LSN.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replay_lsn: Option<u64>,
    /// `streaming` or `in archive recovery`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replication_state: Option<String>,
    /// Current timeline.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeline: Option<u64>,
    /// Effective tags.
    #[serde(default, skip_serializing_if = "Map::is_empty")]
    pub tags: Map<String, Value>,
    /// Set when a restart is needed to apply parameters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pending_restart: Option<bool>,
    /// `{param: {old_value, new_value}}`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pending_restart_reason: Option<Map<String, Value>>,
    /// Leader only: false until the post-promote checkpoint finished.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub checkpoint_after_promote: Option<bool>,
    /// A scheduled restart with its filters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scheduled_restart: Option<Value>,
    /// Present (true) in maintenance mode.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pause: Option<bool>,
    /// Fields we do not model, kept so a round trip loses nothing.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl Member {
    /// Parses a member value, accepting Patroni's legacy bare `postgres://…` form.
    pub fn parse(raw: &str) -> Result<Member, ValueError> {
        if raw.starts_with("postgres") {
            return Ok(Member {
                conn_url: raw.to_string(),
                ..Member::default()
            });
        }
        let value = json(raw)?;
        if !value.is_object() {
            return Err(ValueError::not_an_object(&value));
        }
        match serde_json::from_value::<Member>(value.clone()) {
            Ok(m) => Ok(m),
            Err(_) => Ok(Self::loose(&value)),
        }
    }

    /// Field-by-field reading of an object whose types do not all match.
    fn loose(v: &Value) -> Member {
        let s = |k: &str| v.get(k).and_then(Value::as_str).unwrap_or("").to_string();
        let n = |k: &str| {
            v.get(k).and_then(|x| {
                x.as_u64()
                    .or_else(|| x.as_str().and_then(|s| s.parse().ok()))
            })
        };
        Member {
            conn_url: s("conn_url"),
            api_url: s("api_url"),
            state: s("state"),
            role: s("role"),
            version: s("version"),
            xlog_location: n("xlog_location"),
            receive_lsn: n("receive_lsn"),
            replay_lsn: n("replay_lsn"),
            replication_state: v
                .get("replication_state")
                .and_then(Value::as_str)
                .map(str::to_string),
            timeline: n("timeline"),
            tags: v
                .get("tags")
                .and_then(Value::as_object)
                .cloned()
                .unwrap_or_default(),
            pending_restart: v.get("pending_restart").and_then(Value::as_bool),
            pending_restart_reason: v
                .get("pending_restart_reason")
                .and_then(Value::as_object)
                .cloned(),
            checkpoint_after_promote: v.get("checkpoint_after_promote").and_then(Value::as_bool),
            scheduled_restart: v.get("scheduled_restart").cloned(),
            pause: v.get("pause").and_then(Value::as_bool),
            extra: Map::new(),
        }
    }

    /// Compact JSON as Patroni writes it.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_else(|_| "{}".into())
    }

    /// When the member's running postmaster started (`pg_postmaster_start_time()` as text),
    /// from our extension field [`POSTMASTER_START_KEY`] (Patroni does not publish it).
    pub fn postmaster_start(&self) -> Option<&str> {
        self.extra.get(POSTMASTER_START_KEY).and_then(Value::as_str)
    }

    /// True if the member advertises itself as a running primary.
    pub fn is_primary_role(&self) -> bool {
        matches!(self.role.as_str(), "primary" | "master" | "promoted")
    }

    /// The tags read with Patroni's rules.
    pub fn tag_view(&self) -> Tags<'_> {
        Tags::of(&self.tags)
    }

    /// A boolean tag, see [`crate::config::tags::is_true`].
    pub fn tag_bool(&self, key: &str) -> bool {
        self.tag_view().flag(key)
    }

    /// Sync priority, see [`Tags::sync_priority`].
    pub fn sync_priority(&self) -> i64 {
        self.tag_view().sync_priority()
    }

    /// Failover priority, see [`Tags::failover_priority`].
    pub fn failover_priority(&self) -> i64 {
        self.tag_view().failover_priority()
    }

    /// `nofailover`: never a leader candidate, see [`Tags::nofailover`].
    pub fn nofailover(&self) -> bool {
        self.tag_view().nofailover()
    }

    /// Host and port parsed from `conn_url`.
    pub fn host_port(&self) -> Option<(String, u16)> {
        let rest = self.conn_url.split("://").nth(1)?;
        let hostport = rest.split('/').next()?;
        let hostport = hostport.rsplit('@').next()?;
        let (host, port) = match hostport.rsplit_once(':') {
            Some((h, p)) => (h, p.parse().ok()?),
            None => (hostport, 5432),
        };
        Some((host.trim_matches(['[', ']']).to_string(), port))
    }
}

/// The `status` key: leader optime and permanent slot positions.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Status {
    /// Leader WAL position (bytes).
    #[serde(default)]
    pub optime: u64,
    /// Permanent slot positions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub slots: Option<Map<String, Value>>,
    /// Member slots to keep although the member key is gone.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retain_slots: Option<Vec<String>>,
}

impl Status {
    /// Parses the JSON form or Patroni's legacy bare integer.
    pub fn parse(raw: &str) -> Result<Status, ValueError> {
        if let Ok(n) = raw.trim().parse::<u64>() {
            return Ok(Status {
                optime: n,
                ..Status::default()
            });
        }
        let value = json(raw)?;
        serde_json::from_value(value).map_err(|e| ValueError::Shape(e.to_string()))
    }
}

/// The `failover` key: a requested switchover/failover.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Failover {
    /// Current leader the request applies to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub leader: Option<String>,
    /// Candidate (named `member` in the DCS, `candidate` in REST).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub member: Option<String>,
    /// ISO 8601 time with zone for a scheduled switchover.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scheduled_at: Option<String>,
}

impl Failover {
    /// Parses JSON or the legacy `leader:candidate` text.
    pub fn parse(raw: &str) -> Result<Failover, ValueError> {
        if raw.trim_start().starts_with('{') {
            let value = json(raw)?;
            return serde_json::from_value(value).map_err(|e| ValueError::Shape(e.to_string()));
        }
        let (l, m) = raw.split_once(':').unwrap_or((raw, ""));
        let opt = |s: &str| (!s.trim().is_empty()).then(|| s.trim().to_string());
        Ok(Failover {
            leader: opt(l),
            member: opt(m),
            scheduled_at: None,
        })
    }

    /// True when neither leader nor candidate is named (Patroni's "empty").
    pub fn is_empty(&self) -> bool {
        self.leader.is_none() && self.member.is_none()
    }
}

/// The `sync` key.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SyncState {
    /// Leader that wrote the state.
    #[serde(default)]
    pub leader: Option<String>,
    /// Quorum (quorum mode only).
    #[serde(default)]
    pub quorum: u64,
    /// Sorted comma-joined standby names, or null.
    #[serde(default)]
    pub sync_standby: Option<String>,
    /// The key exists but could not be read (invalid JSON, wrong types): no synchronous
    /// standby is known, so in synchronous mode nobody may be promoted on a sync basis
    /// until the leader rewrites it. Never written.
    #[serde(skip)]
    pub unreadable: bool,
}

impl SyncState {
    /// Parses the key strictly: each field must have Patroni's type (`leader` and
    /// `sync_standby` strings or null, `quorum` a non-negative integer). The error names
    /// the field and the reason.
    pub fn parse(raw: &str) -> Result<SyncState, ValueError> {
        let v = json(raw)?;
        let Value::Object(m) = &v else {
            return Err(ValueError::not_an_object(&v));
        };
        let text = |k: &str| match m.get(k) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(other) => Err(ValueError::field(k, "a string", other)),
        };
        let quorum = match m.get("quorum") {
            None | Some(Value::Null) => 0,
            Some(q) => q
                .as_u64()
                .ok_or_else(|| ValueError::field("quorum", "a non-negative integer", q))?,
        };
        Ok(SyncState {
            leader: text("leader")?,
            quorum,
            sync_standby: text("sync_standby")?,
            unreadable: false,
        })
    }

    /// The state of a key that exists but cannot be read (see [`SyncState::unreadable`]).
    pub fn unreadable() -> SyncState {
        SyncState {
            unreadable: true,
            ..SyncState::default()
        }
    }

    /// Names of the synchronous standbys.
    pub fn members(&self) -> Vec<String> {
        self.sync_standby
            .as_deref()
            .unwrap_or("")
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_string)
            .collect()
    }
}

/// One line of the `history` key: `[tl, switch_lsn, reason, timestamp?, new_leader?]`.
#[derive(Debug, Clone, PartialEq)]
pub struct HistoryLine {
    /// Timeline that ended.
    pub timeline: u64,
    /// LSN where it ended.
    pub lsn: u64,
    /// Reason text from the history file.
    pub reason: String,
    /// ISO timestamp of the switch, when known.
    pub timestamp: Option<String>,
    /// Member promoted, when known.
    pub new_leader: Option<String>,
}

impl HistoryLine {
    /// Reads one JSON array line; None if it is not Patroni's shape.
    pub fn from_value(v: &Value) -> Option<HistoryLine> {
        let a = v.as_array()?;
        let num = |x: &Value| {
            x.as_u64()
                .or_else(|| x.as_str().and_then(|s| s.parse().ok()))
        };
        Some(HistoryLine {
            timeline: num(a.first()?)?,
            lsn: num(a.get(1)?)?,
            reason: a.get(2).and_then(Value::as_str).unwrap_or("").to_string(),
            timestamp: a.get(3).and_then(Value::as_str).map(str::to_string),
            new_leader: a.get(4).and_then(Value::as_str).map(str::to_string),
        })
    }

    /// The JSON array form.
    pub fn to_value(&self) -> Value {
        let mut a = vec![
            Value::from(self.timeline),
            Value::from(self.lsn),
            Value::from(self.reason.clone()),
        ];
        if let Some(t) = &self.timestamp {
            a.push(Value::from(t.clone()));
            if let Some(n) = &self.new_leader {
                a.push(Value::from(n.clone()));
            }
        }
        Value::Array(a)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn member_round_trips_patroni_example() {
        let raw = r#"{"conn_url":"postgres://10.179.201.21:5432/postgres","api_url":"http://10.179.201.21:8008/patroni","state":"stopped","role":"replica","version":"4.0.5","pending_restart":true,"pending_restart_reason":{"max_connections":{"old_value":"200","new_value":"100"}}}"#;
        let m = Member::parse(raw).unwrap();
        assert_eq!(m.state, "stopped");
        assert_eq!(m.pending_restart, Some(true));
        assert_eq!(m.to_json(), raw);
        assert_eq!(m.host_port(), Some(("10.179.201.21".into(), 5432)));
    }

    #[test]
    fn member_legacy_and_loose_forms() {
        let m = Member::parse("postgres://h:5433/postgres").unwrap();
        assert_eq!(m.host_port(), Some(("h".into(), 5433)));
        let m =
            Member::parse(r#"{"role":"replica","xlog_location":"123","timeline":"x"}"#).unwrap();
        assert_eq!(m.xlog_location, Some(123));
        assert_eq!(m.timeline, None);
        assert!(Member::parse("[1]").is_err());
        assert!(Member::parse("{bad").is_err());
    }

    #[test]
    fn failover_priority_from_tags() {
        let mut m = Member::default();
        assert_eq!(m.failover_priority(), 1);
        m.tags.insert("failover_priority".into(), Value::from(3));
        assert_eq!(m.failover_priority(), 3);
        m.tags.insert("nofailover".into(), Value::from("true"));
        assert_eq!(m.failover_priority(), 0);
    }

    #[test]
    fn status_accepts_legacy_integer() {
        assert_eq!(Status::parse("42").unwrap().optime, 42);
        let s = Status::parse(r#"{"optime":7,"slots":{"a":1}}"#).unwrap();
        assert_eq!(s.optime, 7);
        assert_eq!(
            serde_json::to_string(&Status {
                optime: 5,
                ..Default::default()
            })
            .unwrap(),
            r#"{"optime":5}"#
        );
    }

    #[test]
    fn failover_parses_json_and_legacy() {
        let f = Failover::parse(r#"{"leader":"a","member":"b"}"#).unwrap();
        assert_eq!(f.member.as_deref(), Some("b"));
        let f = Failover::parse("a:b").unwrap();
        assert_eq!(
            (f.leader.as_deref(), f.member.as_deref()),
            (Some("a"), Some("b"))
        );
        assert!(Failover::parse("{}").unwrap().is_empty());
    }

    #[test]
    fn history_line_shapes() {
        let v: Value = serde_json::from_str(r#"[1,25623960,"no recovery target specified","2019-09-23T16:57:57+02:00","postgresql0"]"#).unwrap();
        let h = HistoryLine::from_value(&v).unwrap();
        assert_eq!(h.timeline, 1);
        assert_eq!(h.new_leader.as_deref(), Some("postgresql0"));
        assert_eq!(h.to_value(), v);
        let short: Value = serde_json::from_str(r#"[2,100,"x"]"#).unwrap();
        assert_eq!(HistoryLine::from_value(&short).unwrap().to_value(), short);
    }

    #[test]
    fn sync_key_is_parsed_strictly_with_the_field_named() {
        let s = SyncState::parse(r#"{"leader":"n1","quorum":1,"sync_standby":"n2"}"#);
        assert_eq!(s.map(|s| s.members()), Ok(vec!["n2".to_string()]));
        let s = SyncState::parse(r#"{"leader":"n1","sync_standby":null,"x":1}"#);
        assert!(s.is_ok_and(|s| s.members().is_empty() && !s.unreadable));
        let err = |raw: &str| {
            SyncState::parse(raw)
                .err()
                .map(|e| e.to_string())
                .unwrap_or_default()
        };
        assert!(err("{bad").starts_with("invalid JSON"));
        assert_eq!(err("[1]"), "expected a JSON object, found a list");
        assert_eq!(
            err(r#"{"leader":"n1","sync_standby":["n2"]}"#),
            "field 'sync_standby': expected a string, found a list"
        );
        assert_eq!(
            err(r#"{"leader":5}"#),
            "field 'leader': expected a string, found a number"
        );
        assert_eq!(
            SyncState::parse(r#"{"leader":5}"#).err(),
            Some(ValueError::Field {
                field: "leader".into(),
                expected: "a string",
                found: "a number"
            })
        );
        assert!(err(r#"{"quorum":-1}"#).starts_with("field 'quorum'"));
        assert!(SyncState::unreadable().members().is_empty());
    }

    #[test]
    fn sync_members_split() {
        let s: SyncState =
            serde_json::from_str(r#"{"leader":"n1","quorum":0,"sync_standby":"n2,n3"}"#).unwrap();
        assert_eq!(s.members(), vec!["n2", "n3"]);
    }
}
