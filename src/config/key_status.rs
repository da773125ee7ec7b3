//! Turns the key tables of [`super::known_keys`] into findings: a warning for every key
//! Patroni does not know (a likely typo), a warning for every key patronus accepts
//! without acting on it, and a problem (`path: reason`) for every key whose absence
//! would be unsafe. Used on the node file (including `bootstrap.dcs`) when it is
//! loaded, and by the agent on the dynamic configuration it reads from the DCS.

use super::error::ConfigWarning;
use super::known_keys::{
    lookup, status_in, Key, KeyStatus, DYNAMIC_SECTIONS, NODE_SECTIONS, OPEN_NODE_SECTIONS,
};
use super::tags::parse_bool;
use serde_json::{Map, Value};

/// What the key tables say about one configuration.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KeyFindings {
    /// Keys accepted but not acted on, each named by its full dotted path.
    pub warnings: Vec<ConfigWarning>,
    /// Keys that cannot be honoured and make the configuration unsafe, as `path: reason`.
    pub refusals: Vec<String>,
}

impl KeyFindings {
    /// Whether nothing was found.
    pub fn is_empty(&self) -> bool {
        self.warnings.is_empty() && self.refusals.is_empty()
    }
}

/// Whether a value says "not set": null, an empty string, list or mapping.
fn is_unset(v: &Value) -> bool {
    match v {
        Value::Null => true,
        Value::String(s) => s.trim().is_empty(),
        Value::Array(items) => items.is_empty(),
        Value::Object(map) => map.is_empty(),
        _ => false,
    }
}

/// The final status of a key with value `v` in `section` (rules resolved).
pub fn resolve(status: KeyStatus, section: &Map<String, Value>, v: &Value) -> KeyStatus {
    let resolved = match status {
        KeyStatus::IfTrue(inner) if parse_bool(v) == Some(true) => *inner,
        KeyStatus::IfTrue(_) => KeyStatus::Used,
        KeyStatus::ByValue(rule) => rule(section, v),
        other => other,
    };
    match resolved {
        KeyStatus::IfTrue(_) | KeyStatus::ByValue(_) => KeyStatus::Used,
        other => other,
    }
}

fn join(prefix: &str, section: &str, key: &str) -> String {
    [prefix, section, key]
        .iter()
        .filter(|p| !p.is_empty())
        .copied()
        .collect::<Vec<_>>()
        .join(".")
}

/// Classifies the keys of `sections` found in `tree`, naming them `<prefix>.<section>.<key>`.
fn walk(tree: &Value, prefix: &str, sections: &[(&str, &[Key])], out: &mut KeyFindings) {
    for (section, table) in sections {
        let Some(Value::Object(map)) = lookup(tree, section) else {
            continue;
        };
        for (key, value) in map {
            if is_unset(value) {
                continue;
            }
            let Some(status) = status_in(table, key) else {
                continue;
            };
            let path = join(prefix, section, key);
            match resolve(status, map, value) {
                KeyStatus::Ignored(note) => out.warnings.push(ConfigWarning::new(
                    path,
                    format!("not implemented yet and is ignored ({note})"),
                )),
                KeyStatus::Warning(text) => out.warnings.push(ConfigWarning::new(path, text)),
                KeyStatus::Unsafe(reason) => out.refusals.push(format!("{path}: {reason}")),
                _ => {}
            }
        }
    }
}

/// Findings of a node file (after environment overrides, before normalisation),
/// including the dynamic configuration under `bootstrap.dcs`.
pub fn node_key_findings(tree: &Value) -> KeyFindings {
    let mut out = KeyFindings::default();
    walk(tree, "", NODE_SECTIONS, &mut out);
    walk(tree, "", OPEN_NODE_SECTIONS, &mut out);
    if let Some(dcs @ Value::Object(_)) = lookup(tree, "bootstrap.dcs") {
        walk(dcs, "bootstrap.dcs", &*DYNAMIC_SECTIONS, &mut out);
    }
    out
}

/// Findings of a dynamic configuration (the DCS `config` key), with paths from its root.
pub fn dynamic_key_findings(config: &Value) -> KeyFindings {
    let mut out = KeyFindings::default();
    walk(config, "", &*DYNAMIC_SECTIONS, &mut out);
    out
}

/// Names listed in a string-list value (used for custom method sections).
fn listed_names(v: Option<&Value>) -> Vec<String> {
    match v {
        Some(Value::Array(items)) => items
            .iter()
            .filter_map(|i| i.as_str().map(str::to_string))
            .collect(),
        Some(Value::String(s)) => vec![s.clone()],
        _ => Vec::new(),
    }
}

/// Warns about every key of a checked section that Patroni does not know,
/// naming its full dotted path (e.g. `unknown key 'postgresql.lisen'`).
pub fn unknown_key_warnings(tree: &Value) -> Vec<ConfigWarning> {
    let replica_methods = listed_names(lookup(tree, "postgresql.create_replica_methods"));
    let bootstrap_methods = listed_names(lookup(tree, "bootstrap.method"));
    let mut warnings = Vec::new();
    for (section, known) in NODE_SECTIONS {
        let Some(Value::Object(map)) = lookup(tree, section) else {
            continue;
        };
        for key in map.keys() {
            if status_in(known, key).is_some() {
                continue;
            }
            let custom = match *section {
                "postgresql" => replica_methods.contains(key),
                "bootstrap" => bootstrap_methods.contains(key),
                _ => false,
            };
            if custom {
                continue;
            }
            let path = if section.is_empty() {
                key.clone()
            } else {
                format!("{section}.{key}")
            };
            warnings.push(ConfigWarning::new(
                path.clone(),
                format!("unknown key '{path}'"),
            ));
        }
    }
    warnings
}

#[cfg(test)]
#[path = "ignored_tests.rs"]
mod tests;

#[cfg(test)]
mod unknown_tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn warns_with_full_path() {
        let tree = json!({"name": "a", "postgresql": {"lisen": "x", "parameters": {"foo": 1}}});
        let w = unknown_key_warnings(&tree);
        assert_eq!(w.len(), 1);
        assert_eq!(w[0].path, "postgresql.lisen");
        assert_eq!(w[0].message, "unknown key 'postgresql.lisen'");
    }

    #[test]
    fn open_maps_and_custom_methods_are_not_checked() {
        let tree = json!({
            "tags": {"whatever": true},
            "ctl": {"x": 1},
            "bootstrap": {"dcs": {"zzz": 1}, "method": "wal_e", "wal_e": {"command": "x"}},
            "postgresql": {
                "create_replica_methods": ["pgbackrest", "basebackup"],
                "pgbackrest": {"command": "x"},
                "callbacks": {"on_start": "y"},
                "basebackup": [{"checkpoint": "fast"}],
                "authentication": {"superuser": {"username": "p", "sslmode": "require"}}
            },
            "log": {"max_queue_size": 1000, "loggers": {"a": "INFO"}},
            "restapi": {"certfile": "x", "authentication": {"username": "u", "password": "p"}},
            "etcd3": {"cacert": "c", "srv": "s"},
            "watchdog": {"mode": "off", "driver": "default"}
        });
        assert!(unknown_key_warnings(&tree).is_empty());
    }

    #[test]
    fn nested_unknown_keys() {
        let tree = json!({
            "bogus": 1,
            "postgresql": {"authentication": {"superuser": {"usrname": "x"}, "admin": {}}},
            "restapi": {"authentication": {"user": "x"}},
            "watchdog": {"devise": "/dev/x"}
        });
        let mut paths: Vec<String> = unknown_key_warnings(&tree)
            .into_iter()
            .map(|w| w.path)
            .collect();
        paths.sort();
        assert_eq!(
            paths,
            vec![
                "bogus",
                "postgresql.authentication.admin",
                "postgresql.authentication.superuser.usrname",
                "restapi.authentication.user",
                "watchdog.devise"
            ]
        );
    }
}
