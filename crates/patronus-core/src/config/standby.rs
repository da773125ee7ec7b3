//! `standby_cluster` of the dynamic configuration: the cluster's leader is a *standby
//! leader* that replicates from a remote primary (`host`/`port`) or replays WAL with
//! `restore_command`, and its replicas cascade from it.
//!
//! Reference: Patroni's `global_config.is_standby_cluster`, `Ha.get_remote_member` and
//! its validator's schema of the section.

use super::dynamic::parse_u64;
use super::yaml::kind;
use serde_json::{Map, Value};

/// Keys of `standby_cluster` (Patroni's schema; all acted on).
pub(crate) const STANDBY_KEYS: &[&str] = &[
    "host",
    "port",
    "primary_slot_name",
    "restore_command",
    "archive_cleanup_command",
    "recovery_min_apply_delay",
    "create_replica_methods",
];

/// A valid `standby_cluster` section.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StandbyCluster {
    /// Remote host (or comma-separated hosts) to stream from.
    pub host: Option<String>,
    /// Remote port.
    pub port: Option<u16>,
    /// Slot to use on the remote primary (none when absent, as in Patroni).
    pub primary_slot_name: Option<String>,
    /// `restore_command` of the standby leader and its replicas.
    pub restore_command: Option<String>,
    /// `archive_cleanup_command` of the standby leader and its replicas.
    pub archive_cleanup_command: Option<String>,
    /// `recovery_min_apply_delay` of the standby leader (as written: `"5min"`, `300000`).
    pub recovery_min_apply_delay: Option<String>,
    /// Methods that create the standby leader's data (default `basebackup` from the remote).
    pub create_replica_methods: Option<Vec<String>>,
}

impl StandbyCluster {
    /// Reads the section strictly; `Ok(None)` when it is absent, null, empty or names
    /// neither `host`, `port` nor `restore_command` (Patroni then runs a normal cluster);
    /// every problem as `standby_cluster.<key>: reason`.
    pub fn parse(v: Option<&Value>) -> Result<Option<StandbyCluster>, Vec<String>> {
        let (sc, problems) = Self::parse_lenient(v);
        if problems.is_empty() {
            Ok(sc)
        } else {
            Err(problems)
        }
    }

    /// Reads the section keeping the usable keys: the section and the problems with the
    /// others (a running cluster must not turn into a primary because of one bad value).
    pub fn parse_lenient(v: Option<&Value>) -> (Option<StandbyCluster>, Vec<String>) {
        let obj = match v {
            None | Some(Value::Null) => return (None, vec![]),
            Some(Value::Object(m)) => m,
            Some(other) => {
                let why = format!("standby_cluster: expected a mapping, found {}", kind(other));
                return (None, vec![why]);
            }
        };
        let mut problems = Vec::new();
        for key in obj.keys() {
            if !STANDBY_KEYS.contains(&key.as_str()) {
                problems.push(format!("standby_cluster.{key}: unknown key"));
            }
        }
        let mut sc = StandbyCluster {
            host: string(obj, "host", &mut problems),
            port: port(obj, &mut problems),
            primary_slot_name: string(obj, "primary_slot_name", &mut problems),
            restore_command: string(obj, "restore_command", &mut problems),
            archive_cleanup_command: string(obj, "archive_cleanup_command", &mut problems),
            recovery_min_apply_delay: delay(obj, &mut problems),
            create_replica_methods: methods(obj, &mut problems),
        };
        if let Some(slot) = &sc.primary_slot_name {
            if !crate::ha::slots::valid_slot_name(slot) {
                problems.push(format!(
                    "standby_cluster.primary_slot_name: '{slot}' is not a valid slot name \
                     (lower-case letters, digits and underscores, at most 63)"
                ));
                sc.primary_slot_name = None;
            }
        }
        let active = sc.host.is_some() || sc.port.is_some() || sc.restore_command.is_some();
        (active.then_some(sc), problems)
    }

    /// The recovery settings the section adds over the node's `recovery_conf`: on the
    /// standby leader `restore_command`, `archive_cleanup_command` and
    /// `recovery_min_apply_delay`; on its replicas the first two (Patroni's
    /// `build_recovery_params`).
    pub fn recovery_overrides(&self, standby_leader: bool) -> Vec<(&'static str, String)> {
        let mut out = Vec::new();
        if let Some(c) = &self.restore_command {
            out.push(("restore_command", c.clone()));
        }
        if let Some(c) = &self.archive_cleanup_command {
            out.push(("archive_cleanup_command", c.clone()));
        }
        if let Some(d) = self
            .recovery_min_apply_delay
            .as_ref()
            .filter(|_| standby_leader)
        {
            out.push(("recovery_min_apply_delay", d.clone()));
        }
        out
    }
}

fn string(obj: &Map<String, Value>, key: &str, problems: &mut Vec<String>) -> Option<String> {
    match obj.get(key) {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) if s.trim().is_empty() => None,
        Some(Value::String(s)) => Some(s.clone()),
        Some(other) => {
            problems.push(format!(
                "standby_cluster.{key}: expected a string, found {}",
                kind(other)
            ));
            None
        }
    }
}

fn port(obj: &Map<String, Value>, problems: &mut Vec<String>) -> Option<u16> {
    let raw = obj.get("port").filter(|v| !v.is_null())?;
    match parse_u64(raw).filter(|p| (1..=65535).contains(p)) {
        Some(p) => Some(p as u16),
        None => {
            problems.push(format!(
                "standby_cluster.port: expected a port number (1-65535), found {raw}"
            ));
            None
        }
    }
}

/// `recovery_min_apply_delay`: milliseconds as a number, or a string with a unit.
fn delay(obj: &Map<String, Value>, problems: &mut Vec<String>) -> Option<String> {
    let raw = obj
        .get("recovery_min_apply_delay")
        .filter(|v| !v.is_null())?;
    let text = match raw {
        Value::Number(_) => parse_u64(raw).map(|n| n.to_string()),
        Value::String(s) => {
            let s = s.trim();
            let digits = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
            let unit = s[digits..].trim();
            let units = ["", "ms", "s", "min", "h", "d"];
            (digits > 0 && units.contains(&unit)).then(|| s.to_string())
        }
        _ => None,
    };
    if text.is_none() {
        problems.push(format!(
            "standby_cluster.recovery_min_apply_delay: expected milliseconds or a duration \
             like \"5min\", found {raw}"
        ));
    }
    text
}

fn methods(obj: &Map<String, Value>, problems: &mut Vec<String>) -> Option<Vec<String>> {
    let raw = obj.get("create_replica_methods").filter(|v| !v.is_null())?;
    let list: Option<Vec<String>> = raw.as_array().and_then(|items| {
        items
            .iter()
            .map(|i| i.as_str().map(str::to_string))
            .collect()
    });
    match list {
        Some(l) if !l.is_empty() => Some(l),
        _ => {
            problems.push(format!(
                "standby_cluster.create_replica_methods: expected a non-empty list of method \
                 names, found {raw}"
            ));
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn parse(v: Value) -> Result<Option<StandbyCluster>, Vec<String>> {
        StandbyCluster::parse(Some(&v))
    }

    #[test]
    fn reads_every_key() {
        let sc = parse(json!({
            "host": "10.0.0.1", "port": "5433", "primary_slot_name": "dr",
            "restore_command": "cp /a/%f %p", "archive_cleanup_command": "true",
            "recovery_min_apply_delay": "5min", "create_replica_methods": ["basebackup"]
        }))
        .unwrap()
        .unwrap();
        assert_eq!(sc.host.as_deref(), Some("10.0.0.1"));
        assert_eq!(sc.port, Some(5433));
        assert_eq!(sc.primary_slot_name.as_deref(), Some("dr"));
        assert_eq!(sc.recovery_min_apply_delay.as_deref(), Some("5min"));
        assert_eq!(sc.create_replica_methods, Some(vec!["basebackup".into()]));
        let leader = sc.recovery_overrides(true);
        assert_eq!(leader.len(), 3);
        let replica = sc.recovery_overrides(false);
        assert_eq!(
            replica,
            vec![
                ("restore_command", "cp /a/%f %p".to_string()),
                ("archive_cleanup_command", "true".to_string())
            ]
        );
    }

    #[test]
    fn inactive_without_host_port_or_restore_command() {
        assert_eq!(StandbyCluster::parse(None), Ok(None));
        assert_eq!(parse(Value::Null), Ok(None));
        assert_eq!(parse(json!({})), Ok(None));
        assert_eq!(
            parse(json!({"primary_slot_name": "x", "host": ""})),
            Ok(None)
        );
        assert!(parse(json!({"restore_command": "cp a b"}))
            .unwrap()
            .is_some());
        assert!(parse(json!({"port": 5432})).unwrap().is_some());
    }

    #[test]
    fn names_each_problem() {
        let e = parse(json!({
            "host": 1, "port": 70000, "primary_slot_name": "Bad-Name",
            "recovery_min_apply_delay": "soon", "create_replica_methods": "basebackup",
            "hots": "x"
        }))
        .unwrap_err();
        for key in [
            "standby_cluster.hots: unknown key",
            "standby_cluster.host: expected a string",
            "standby_cluster.port: expected a port number",
            "standby_cluster.primary_slot_name: 'Bad-Name'",
            "standby_cluster.recovery_min_apply_delay: expected",
            "standby_cluster.create_replica_methods: expected",
        ] {
            assert!(e.iter().any(|p| p.starts_with(key)), "{key}: {e:?}");
        }
        assert_eq!(
            parse(json!("10.0.0.1")).unwrap_err(),
            vec!["standby_cluster: expected a mapping, found a string"]
        );
    }
}
