//! `postgresql.recovery_conf` on a replica, by Patroni's rules (`build_recovery_params`):
//! the node file's mapping replaces the dynamic configuration's; the settings patronus
//! manages (`primary_conninfo`, `primary_slot_name`, `recovery_target_timeline`) are its
//! own; `recovery_target*` settings are dropped and, as every supported major (≥ 12) reads
//! them from the configuration files, rendered empty so that no included file can make a
//! replica stop, pause or promote at a target. Pure functions.

use super::render::RECOVERY_MANAGED;
use serde_json::{Map, Value};
use std::collections::BTreeMap;

/// The recovery targets a replica renders empty (PostgreSQL ≥ 12).
pub const CLEARED_TARGETS: &[&str] = &[
    "recovery_target",
    "recovery_target_lsn",
    "recovery_target_name",
    "recovery_target_time",
    "recovery_target_xid",
];

/// The `recovery_conf` in effect: the node file's when it sets one, else the dynamic one.
pub fn effective<'a>(
    local: &'a Map<String, Value>,
    dynamic: Option<&'a Map<String, Value>>,
) -> &'a Map<String, Value> {
    static EMPTY: std::sync::OnceLock<Map<String, Value>> = std::sync::OnceLock::new();
    if !local.is_empty() {
        return local;
    }
    dynamic.unwrap_or_else(|| EMPTY.get_or_init(Map::new))
}

/// The extra recovery settings of a replica as setting texts (strings as they are, numbers
/// and booleans written out; nulls and nested values dropped), without the managed ones
/// and the recovery targets, plus the cleared targets.
pub fn replica_settings(conf: &Map<String, Value>) -> BTreeMap<String, String> {
    let mut out: BTreeMap<String, String> = conf
        .iter()
        .filter(|(k, _)| {
            let k = k.to_ascii_lowercase();
            !k.starts_with("recovery_target") && !RECOVERY_MANAGED.contains(&k.as_str())
        })
        .filter_map(|(k, v)| Some((k.clone(), setting_text(v)?)))
        .collect();
    for t in CLEARED_TARGETS {
        out.insert((*t).to_string(), String::new());
    }
    out
}

/// A JSON value as a setting text (None for nulls and nested values).
pub fn setting_text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(if *b { "on" } else { "off" }.to_string()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn map(v: Value) -> Map<String, Value> {
        v.as_object().cloned().unwrap()
    }

    #[test]
    fn the_node_files_recovery_conf_replaces_the_dynamic_one() {
        let local = map(json!({"restore_command": "local"}));
        let dynamic = map(json!({"restore_command": "dcs", "recovery_min_apply_delay": "1min"}));
        assert_eq!(effective(&local, Some(&dynamic)), &local);
        let none = Map::new();
        assert_eq!(effective(&none, Some(&dynamic)), &dynamic);
        assert!(effective(&none, None).is_empty());
    }

    #[test]
    fn replica_settings_drop_the_managed_ones_and_the_targets() {
        let conf = map(json!({
            "restore_command": "cp /arch/%f %p",
            "recovery_min_apply_delay": 300,
            "archive_cleanup_command": "pg_archivecleanup /arch %r",
            "hot_standby_feedback": true,
            "primary_conninfo": "host=elsewhere",
            "Primary_Slot_Name": "x",
            "recovery_target_timeline": "1",
            "recovery_target_time": "2026-01-01",
            "recovery_target_action": "promote",
            "nested": {"a": 1},
            "nothing": null,
        }));
        let s = replica_settings(&conf);
        assert_eq!(s["restore_command"], "cp /arch/%f %p");
        assert_eq!(s["recovery_min_apply_delay"], "300");
        assert_eq!(s["archive_cleanup_command"], "pg_archivecleanup /arch %r");
        assert_eq!(s["hot_standby_feedback"], "on");
        for gone in [
            "primary_conninfo",
            "Primary_Slot_Name",
            "recovery_target_timeline",
            "recovery_target_action",
            "nested",
            "nothing",
        ] {
            assert!(!s.contains_key(gone), "{gone} is not rendered");
        }
        for t in CLEARED_TARGETS {
            assert_eq!(s[*t], "", "{t} is rendered empty");
        }
    }
}
