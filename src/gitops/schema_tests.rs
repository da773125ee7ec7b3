//! The desired-state JSON Schema (`schema/cluster.schema.json`, section `config`) agrees with
//! the table of scalar dynamic keys ([`DYNAMIC_KEYS`]): every key of the table is there with a
//! compatible type and the same minimum, and every key the schema allows there is known.

use super::CLUSTER_SCHEMA;
use crate::config::dynamic_keys::{dynamic_key, DynamicKey, KeyType, Minimum, DYNAMIC_KEYS};
use crate::config::known_keys::{status_in, DYNAMIC_TOP_LEVEL};
use crate::config::SyncMode;
use serde_json::{json, Map, Value};

/// Keys of the table a desired-state repository must not set, and why.
const NOT_IN_DESIRED_STATE: &[(&str, &str)] = &[(
    "pause",
    "maintenance mode is an operation (`patronus pause`), not desired state: docs/gitops.md",
)];

/// The schema of `config`'s keys.
fn config_properties() -> Map<String, Value> {
    let schema: Value = serde_json::from_str(CLUSTER_SCHEMA).expect("cluster schema is JSON");
    schema
        .pointer("/properties/config/properties")
        .and_then(Value::as_object)
        .cloned()
        .expect("cluster schema has config.properties")
}

/// The branches of a schema: its `oneOf`/`anyOf` alternatives, or itself.
fn branches(s: &Value) -> Vec<&Value> {
    ["oneOf", "anyOf"]
        .iter()
        .find_map(|k| s.get(*k).and_then(Value::as_array))
        .map(|b| b.iter().collect())
        .unwrap_or_else(|| vec![s])
}

/// The branch of `s` with `"type": ty`.
fn branch<'a>(s: &'a Value, ty: &str) -> Option<&'a Value> {
    branches(s).into_iter().find(|b| b["type"] == ty)
}

/// Whether the schema `s` describes a section (mapping or list) rather than a scalar.
fn is_section(s: &Value) -> bool {
    branch(s, "object").is_some() || branch(s, "array").is_some()
}

/// The minimum the table promises for a non-negative integer in the desired state.
fn schema_minimum(key: &DynamicKey) -> Option<u64> {
    match key.ty {
        // The ttl floor depends on PATRONUS_MIN_TTL (fast tests): the schema allows every
        // positive value and the rule check (`validate_dynamic_with_min_ttl`) names the floor.
        KeyType::Unsigned {
            min: Minimum::Ttl, ..
        } => Some(1),
        _ => key.minimum(0),
    }
}

/// Why the schema `s` of `key` disagrees with the table, if it does.
fn disagreement(key: &DynamicKey, s: &Value) -> Option<String> {
    let int = branch(s, "integer");
    let min = int.and_then(|b| b.get("minimum")).and_then(Value::as_u64);
    let only = |ty: &str| branches(s).len() == 1 && s["type"] == ty;
    let ok = match key.ty {
        KeyType::Unsigned { .. } => only("integer") && min == schema_minimum(key),
        KeyType::Signed { .. } => {
            only("integer") && int.is_some_and(|b| b.get("minimum").is_none())
        }
        KeyType::Bool { .. } => only("boolean"),
        KeyType::Duration { .. } => min == Some(0) && branch(s, "string").is_some(),
        KeyType::SyncMode { .. } => sync_mode_agrees(s),
    };
    (!ok).then(|| {
        format!(
            "{}: schema {s} does not match the table ({}, minimum {:?})",
            key.name,
            key.ty.expected(),
            schema_minimum(key)
        )
    })
}

/// `synchronous_mode`: booleans and an enum of strings the parser reads, quorum included.
fn sync_mode_agrees(s: &Value) -> bool {
    let words: Vec<&Value> = branches(s)
        .into_iter()
        .filter_map(|b| b.get("enum").and_then(Value::as_array))
        .flatten()
        .collect();
    branch(s, "boolean").is_some()
        && words.iter().all(|w| SyncMode::parse(w).is_some())
        && words.contains(&&json!("quorum"))
}

#[test]
fn every_table_key_is_in_the_schema_with_its_type_and_minimum() {
    let props = config_properties();
    let mut problems = Vec::new();
    for key in DYNAMIC_KEYS {
        // The desired state uses the current names only.
        for alias in key.aliases {
            if props.contains_key(*alias) {
                problems.push(format!(
                    "{alias}: an old alias of {} in the schema",
                    key.name
                ));
            }
        }
        let excluded = NOT_IN_DESIRED_STATE.iter().any(|(n, _)| *n == key.name);
        match (props.get(key.name), excluded) {
            (Some(_), true) => problems.push(format!("{}: must not be in the schema", key.name)),
            (None, false) => problems.push(format!("{}: missing from the schema", key.name)),
            (Some(s), false) => problems.extend(disagreement(key, s)),
            (None, true) => {}
        }
    }
    assert!(problems.is_empty(), "{problems:#?}");
}

#[test]
fn every_scalar_key_of_the_schema_is_in_the_table() {
    for (name, s) in config_properties() {
        assert!(
            status_in(&DYNAMIC_TOP_LEVEL, &name).is_some(),
            "{name}: the schema allows a key the dynamic configuration does not know"
        );
        assert!(
            dynamic_key(&name).is_some() || is_section(&s),
            "{name}: a scalar in the schema missing from DYNAMIC_KEYS"
        );
    }
}

/// The JSON form of a key's default.
fn default_json(key: &DynamicKey) -> Value {
    match key.ty {
        KeyType::Unsigned { default, .. } | KeyType::Duration { default, .. } => json!(default),
        KeyType::Signed { default, .. } => json!(default),
        KeyType::Bool { default, .. } => json!(default),
        KeyType::SyncMode { default, .. } => json!(default != SyncMode::Off),
    }
}

/// Behaviour, not only shape: a cluster file setting every key to the table's default passes
/// `validate`, and one value below a key's minimum fails it (a fixed minimum reported once).
#[test]
fn validate_accepts_the_defaults_and_refuses_values_below_the_minimums() {
    let config: Map<String, Value> = DYNAMIC_KEYS
        .iter()
        .filter(|k| !NOT_IN_DESIRED_STATE.iter().any(|(n, _)| *n == k.name))
        .map(|k| (k.name.to_string(), default_json(k)))
        .collect();
    let yaml = |c: &Map<String, Value>| serde_yaml::to_string(&json!({ "config": c })).unwrap();
    let problems = super::one_cluster_problems(&yaml(&config));
    assert!(problems.is_empty(), "{problems:#?}");
    for key in DYNAMIC_KEYS {
        let Some(min) = schema_minimum(key).filter(|m| *m > 0) else {
            continue;
        };
        let mut low = config.clone();
        low.insert(key.name.into(), json!(min - 1));
        let problems = super::one_cluster_problems(&yaml(&low));
        let path = format!("config.{}", key.name);
        let about = problems.iter().filter(|p| p.path == path).count();
        assert!(about > 0, "{path}: {} accepted: {problems:#?}", min - 1);
        // A fixed minimum is the schema's to report: once, not again by the rule check.
        if matches!(
            key.ty,
            KeyType::Unsigned {
                min: Minimum::Fixed(_),
                ..
            }
        ) {
            assert_eq!(about, 1, "{path}: {problems:#?}");
        }
    }
}
