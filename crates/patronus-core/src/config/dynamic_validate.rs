//! Strict checks of an edited dynamic configuration ([`validate_dynamic`]): problems are
//! reported, never clamped.

use super::dynamic::{
    parse_bool, parse_duration_secs, parse_i64, parse_u64, SyncMode, DEFAULT_MIN_TTL,
    MIN_LOOP_WAIT, MIN_RETRY_TIMEOUT,
};
use super::known_keys::{is_known_dynamic_key, is_known_dynamic_postgresql_key};
use super::yaml::kind;
use serde_json::{Map, Value};

/// Checks an edited dynamic config strictly (used before writing it): returns every
/// problem as "path: reason". Uses a `ttl` minimum of 20 seconds.
pub fn validate_dynamic(v: &Value) -> Vec<String> {
    validate_dynamic_with_min_ttl(v, DEFAULT_MIN_TTL)
}

/// Top-level keys holding non-negative integers.
const U64_KEYS: &[&str] = &[
    "ttl",
    "loop_wait",
    "retry_timeout",
    "maximum_lag_on_failover",
    "max_timelines_history",
    "primary_start_timeout",
    "master_start_timeout",
    "primary_stop_timeout",
    "master_stop_timeout",
    "primary_race_backoff",
    "synchronous_node_count",
];

/// Top-level boolean keys.
const BOOL_KEYS: &[&str] = &[
    "synchronous_mode_strict",
    "failsafe_mode",
    "check_timeline",
    "pause",
];

/// Keys of `postgresql` holding parameter mappings.
const PG_PARAMETER_KEYS: &[&str] = &[
    "parameters",
    "parameters_primary",
    "parameters_replica",
    "parameters_standby_leader",
    "recovery_conf",
];

/// Keys of `postgresql` holding lists of configuration lines.
const PG_LINE_KEYS: &[&str] = &[
    "pg_hba",
    "pg_hba_primary",
    "pg_hba_replica",
    "pg_hba_standby_leader",
    "pg_ident",
    "pg_ident_primary",
    "pg_ident_replica",
    "pg_ident_standby_leader",
];

/// Present, non-null value of `key`.
fn present<'a>(obj: &'a Map<String, Value>, key: &str) -> Option<&'a Value> {
    obj.get(key).filter(|v| !v.is_null())
}

fn is_string_list(v: &Value) -> bool {
    v.as_array()
        .is_some_and(|items| items.iter().all(Value::is_string))
}

/// Every problem of `v` as `path: reason`, with `ttl` at least `min_ttl`.
pub fn validate_dynamic_with_min_ttl(v: &Value, min_ttl: u64) -> Vec<String> {
    let Some(root) = v.as_object() else {
        return vec![format!("(root): expected a mapping, found {}", kind(v))];
    };
    let mut problems = Vec::new();
    check_keys_and_scalars(root, &mut problems);
    check_timeouts(root, min_ttl, &mut problems);
    check_slot_lists(root, &mut problems);
    if let Err(e) = super::standby::StandbyCluster::parse(root.get("standby_cluster")) {
        problems.extend(e);
    }
    match present(root, "postgresql") {
        None => {}
        Some(Value::Object(pg)) => check_postgresql(pg, &mut problems),
        Some(other) => problems.push(format!(
            "postgresql: expected a mapping, found {}",
            kind(other)
        )),
    }
    problems
}

/// Unknown top-level keys and the type of each scalar setting.
fn check_keys_and_scalars(root: &Map<String, Value>, problems: &mut Vec<String>) {
    for key in root.keys() {
        if !is_known_dynamic_key(key) {
            problems.push(format!("{key}: unknown key"));
        }
    }
    for key in U64_KEYS {
        if let Some(raw) = present(root, key) {
            if parse_u64(raw).is_none() {
                problems.push(format!(
                    "{key}: expected a non-negative integer, found {raw}"
                ));
            }
        }
    }
    if let Some(raw) = present(root, "maximum_lag_on_syncnode") {
        if parse_i64(raw).is_none() {
            problems.push(format!(
                "maximum_lag_on_syncnode: expected an integer, found {raw}"
            ));
        }
    }
    if let Some(raw) = present(root, "member_slots_ttl") {
        if parse_duration_secs(raw).is_none() {
            problems.push(format!(
                "member_slots_ttl: expected seconds or a duration like \"30min\", found {raw}"
            ));
        }
    }
    for key in BOOL_KEYS {
        if let Some(raw) = present(root, key) {
            if parse_bool(raw).is_none() {
                problems.push(format!("{key}: expected a boolean, found {raw}"));
            }
        }
    }
    if let Some(raw) = present(root, "synchronous_mode") {
        if SyncMode::parse(raw).is_none() {
            problems.push(format!(
                "synchronous_mode: expected true, false, \"on\", \"off\" or \"quorum\", found {raw}"
            ));
        }
    }
}

/// Permanent slots (a mapping or a list of names) and `ignore_slots` (a list of mappings).
fn check_slot_lists(root: &Map<String, Value>, problems: &mut Vec<String>) {
    for key in ["slots", "permanent_slots", "permanent_replication_slots"] {
        match present(root, key) {
            None | Some(Value::Object(_)) => {}
            Some(v) if is_string_list(v) => {}
            Some(other) => problems.push(format!(
                "{key}: expected a mapping of slots or a list of names, found {}",
                kind(other)
            )),
        }
    }
    match present(root, "ignore_slots") {
        None => {}
        Some(Value::Array(items)) => {
            for (i, item) in items.iter().enumerate() {
                if !item.is_object() {
                    problems.push(format!(
                        "ignore_slots[{i}]: expected a mapping, found {}",
                        kind(item)
                    ));
                }
            }
        }
        Some(other) => problems.push(format!(
            "ignore_slots: expected a list, found {}",
            kind(other)
        )),
    }
}

/// Minimums and the rule `loop_wait + 2 * retry_timeout <= ttl`.
fn check_timeouts(root: &Map<String, Value>, min_ttl: u64, problems: &mut Vec<String>) {
    let value = |key: &str, default: u64| present(root, key).and_then(parse_u64).unwrap_or(default);
    let ttl = value("ttl", 30);
    let loop_wait = value("loop_wait", 10);
    let retry_timeout = value("retry_timeout", 10);
    let minimums = [
        ("ttl", ttl, min_ttl),
        ("loop_wait", loop_wait, MIN_LOOP_WAIT),
        ("retry_timeout", retry_timeout, MIN_RETRY_TIMEOUT),
        (
            "synchronous_node_count",
            value("synchronous_node_count", 1),
            1,
        ),
    ];
    for (key, v, min) in minimums {
        if v < min {
            problems.push(format!("{key}: {v} is below the minimum {min}"));
        }
    }
    if loop_wait.saturating_add(retry_timeout.saturating_mul(2)) > ttl {
        problems.push(format!(
            "loop_wait: loop_wait ({loop_wait}) + 2 * retry_timeout ({retry_timeout}) must not \
             exceed ttl ({ttl})"
        ));
    }
}

fn check_postgresql(pg: &Map<String, Value>, problems: &mut Vec<String>) {
    for key in pg.keys() {
        if !is_known_dynamic_postgresql_key(key) {
            problems.push(format!("postgresql.{key}: unknown key"));
        }
    }
    for key in PG_PARAMETER_KEYS {
        if let Some(v) = present(pg, key) {
            if !v.is_object() {
                problems.push(format!(
                    "postgresql.{key}: expected a mapping, found {}",
                    kind(v)
                ));
            }
        }
    }
    for key in PG_LINE_KEYS {
        if let Some(v) = present(pg, key) {
            if !is_string_list(v) {
                problems.push(format!("postgresql.{key}: expected a list of strings"));
            }
        }
    }
    for key in ["use_pg_rewind", "use_slots"] {
        if let Some(raw) = present(pg, key) {
            if parse_bool(raw).is_none() {
                problems.push(format!("postgresql.{key}: expected a boolean, found {raw}"));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn null_values_count_as_absent() {
        assert!(validate_dynamic_with_min_ttl(
            &json!({"ttl": null, "postgresql": {"pg_hba": null}}),
            20
        )
        .is_empty());
    }

    #[test]
    fn role_specific_postgresql_keys() {
        let p = validate_dynamic_with_min_ttl(
            &json!({"postgresql": {"parameters_primary": 1, "pg_ident_replica": "x"}}),
            20,
        );
        assert_eq!(
            p,
            vec![
                "postgresql.parameters_primary: expected a mapping, found a number",
                "postgresql.pg_ident_replica: expected a list of strings"
            ]
        );
    }
}
