//! Member tags: the one place for Patroni's tag rules (truthiness, `nofailover` /
//! `failover_priority`, `nosync` / `sync_priority`, `nostream`, `noloadbalance`,
//! `clonefrom`, `replicatefrom`) and for the boolean and integer readings of loosely
//! typed values used by configuration and DCS keys alike.
//!
//! The node configuration (`tags:` in the YAML), the member keys in the DCS, the `/patroni`
//! bodies of peers and the desired tags of the GitOps repository are all read through
//! [`Tags`], so the agent, its peers, the validator, the planner and the simulator cannot
//! disagree about what a tag means.

use serde_json::{Map, Value};

/// Patroni's `parse_bool`: JSON booleans; the strings `on`/`true`/`yes`/`1` and
/// `off`/`false`/`no`/`0` (any case, surrounding blanks ignored); the numbers 1 and 0.
/// Anything else is `None` (not a boolean).
pub fn parse_bool(v: &Value) -> Option<bool> {
    match v {
        Value::Bool(b) => Some(*b),
        Value::String(s) => match s.trim().to_ascii_lowercase().as_str() {
            "on" | "true" | "yes" | "1" => Some(true),
            "off" | "false" | "no" | "0" => Some(false),
            _ => None,
        },
        Value::Number(n) => match n.as_u64() {
            Some(0) => Some(false),
            Some(1) => Some(true),
            _ => None,
        },
        _ => None,
    }
}

/// Whether a flag value counts as set: what [`parse_bool`] reads as true, and any non-zero
/// number. Absent, `null`, `false`, other strings, lists and maps count as unset.
pub fn is_true(v: &Value) -> bool {
    match v {
        Value::Number(n) => n.as_f64().is_some_and(|f| f != 0.0),
        other => parse_bool(other) == Some(true),
    }
}

/// Patroni's `parse_int` for tag values: an integer, a float without fraction, or a string
/// holding an integer (blanks ignored). Anything else is `None`.
pub fn parse_int(v: &Value) -> Option<i64> {
    match v {
        Value::Number(n) => n
            .as_i64()
            .or_else(|| n.as_f64().filter(|f| f.fract() == 0.0).map(|f| f as i64)),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

/// The tags a member publishes as booleans only when set (Patroni's predefined tags).
const BOOLEAN_TAGS: &[&str] = &[
    "nofailover",
    "noloadbalance",
    "clonefrom",
    "nosync",
    "nostream",
];

/// A view of a member's `tags` map with Patroni's rules (`patroni/tags.py`).
#[derive(Debug, Clone, Copy)]
pub struct Tags<'a>(&'a Map<String, Value>);

/// `nofailover` and `failover_priority` (or `nosync` and `sync_priority`) say different
/// things; the boolean wins, as in Patroni (which warns about it at start-up).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TagConflict {
    /// The boolean tag (`nofailover` / `nosync`).
    pub flag: &'static str,
    /// Its value as read.
    pub flag_value: bool,
    /// The priority tag (`failover_priority` / `sync_priority`).
    pub priority: &'static str,
    /// Its value as read.
    pub priority_value: i64,
}

impl<'a> Tags<'a> {
    /// The tags of a member key, a node configuration or a `/patroni` body.
    pub fn of(map: &'a Map<String, Value>) -> Tags<'a> {
        Tags(map)
    }

    /// The underlying map.
    pub fn map(&self) -> &'a Map<String, Value> {
        self.0
    }

    /// A boolean tag: set when [`is_true`].
    pub fn flag(&self, key: &str) -> bool {
        self.0.get(key).is_some_and(is_true)
    }

    /// An integer tag read with [`parse_int`].
    fn int(&self, key: &str) -> Option<i64> {
        self.0.get(key).and_then(parse_int)
    }

    /// `nofailover`: the boolean tag when present (not `null`); otherwise a
    /// `failover_priority` of 0 or less. Such a member never becomes leader.
    pub fn nofailover(&self) -> bool {
        self.bool_tag("nofailover", "failover_priority")
    }

    /// `failover_priority`: 0 when `nofailover` is set, else the tag (default 1 when absent or
    /// not an integer). Used to rank candidates of equal WAL position. With
    /// `nofailover: false, failover_priority: 0` the member may fail over (see
    /// [`Tags::nofailover`]) and ranks below every member of priority 1 or more.
    pub fn failover_priority(&self) -> i64 {
        self.priority_tag("nofailover", "failover_priority")
    }

    /// `nosync`: never chosen as a synchronous standby (same rule as [`Tags::nofailover`]).
    pub fn nosync(&self) -> bool {
        self.bool_tag("nosync", "sync_priority")
    }

    /// `sync_priority` (same rule as [`Tags::failover_priority`]).
    pub fn sync_priority(&self) -> i64 {
        self.priority_tag("nosync", "sync_priority")
    }

    /// `nostream`: the member does not stream WAL (archive recovery only).
    pub fn nostream(&self) -> bool {
        self.flag("nostream")
    }

    /// `noloadbalance`: the `/replica` health check answers 503.
    pub fn noloadbalance(&self) -> bool {
        self.flag("noloadbalance")
    }

    /// `clonefrom`: preferred source for a new replica's base backup.
    pub fn clonefrom(&self) -> bool {
        self.flag("clonefrom")
    }

    /// `replicatefrom`: the member to stream from instead of the leader (a non-empty
    /// string; anything else is ignored).
    pub fn replicatefrom(&self) -> Option<&'a str> {
        self.0
            .get("replicatefrom")
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
    }

    fn bool_tag(&self, flag: &str, priority: &str) -> bool {
        match self.0.get(flag).filter(|v| !v.is_null()) {
            Some(v) => is_true(v),
            None => self.int(priority).is_some_and(|p| p <= 0),
        }
    }

    fn priority_tag(&self, flag: &str, priority: &str) -> i64 {
        if self.flag(flag) {
            0
        } else {
            self.int(priority).unwrap_or(1)
        }
    }

    /// Every contradiction between a boolean tag and its priority tag
    /// (`nofailover: true` with priority > 0, `nofailover: false` with priority <= 0).
    pub fn conflicts(&self) -> Vec<TagConflict> {
        [
            ("nofailover", "failover_priority"),
            ("nosync", "sync_priority"),
        ]
        .into_iter()
        .filter_map(|(flag, priority)| {
            let flag_value = is_true(self.0.get(flag).filter(|v| !v.is_null())?);
            let priority_value = self.int(priority)?;
            let contradicts = if flag_value {
                priority_value > 0
            } else {
                priority_value <= 0
            };
            contradicts.then_some(TagConflict {
                flag,
                flag_value,
                priority,
                priority_value,
            })
        })
        .collect()
    }

    /// The tags as Patroni publishes them in the member key and `/patroni`: predefined
    /// booleans only when set (`nofailover` also when `failover_priority` is present, `nosync`
    /// when `sync_priority` is), as JSON booleans; every other non-null tag as is.
    pub fn published(&self) -> Map<String, Value> {
        let mut out = Map::new();
        for (k, v) in self.0 {
            if BOOLEAN_TAGS.contains(&k.as_str()) {
                let set = is_true(v);
                let keep = set
                    || (k == "nofailover" && self.0.contains_key("failover_priority"))
                    || (k == "nosync" && self.0.contains_key("sync_priority"));
                if keep {
                    out.insert(k.clone(), Value::Bool(set));
                }
            } else if !v.is_null() {
                out.insert(k.clone(), v.clone());
            }
        }
        out
    }
}

#[cfg(test)]
#[path = "tags_tests.rs"]
mod tests;
