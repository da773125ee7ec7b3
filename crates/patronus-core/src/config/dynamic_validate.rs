//! Strict checks of an edited dynamic configuration ([`validate_dynamic`]): problems are
//! reported, never clamped.

use super::dynamic::parse_bool;
use super::dynamic_keys::{dynamic_key, DEFAULT_MIN_TTL, DYNAMIC_KEYS};
use super::known_keys::{is_known_dynamic_key, is_known_dynamic_postgresql_key};
use super::yaml::kind;
use serde_json::{Map, Value};

/// Checks an edited dynamic config strictly (used before writing it): returns every
/// problem as "path: reason". Uses a `ttl` minimum of 20 seconds.
pub fn validate_dynamic(v: &Value) -> Vec<String> {
    validate_dynamic_with_min_ttl(v, DEFAULT_MIN_TTL)
}

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
    for key in DYNAMIC_KEYS {
        for name in key.names() {
            if let Some(raw) = present(root, name) {
                if !key.ty.accepts(raw) {
                    problems.push(format!(
                        "{name}: expected {}, found {raw}",
                        key.ty.expected()
                    ));
                }
            }
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
    for key in DYNAMIC_KEYS {
        if let (Some(v), Some(min)) = (key.unsigned_in(root), key.minimum(min_ttl)) {
            if v < min {
                problems.push(format!("{}: {v} is below the minimum {min}", key.name));
            }
        }
    }
    // The table's value (or default) of the three timing keys.
    let value = |name: &str| {
        dynamic_key(name)
            .and_then(|k| k.unsigned_in(root))
            .unwrap_or_default()
    };
    let (ttl, loop_wait, retry_timeout) =
        (value("ttl"), value("loop_wait"), value("retry_timeout"));
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
