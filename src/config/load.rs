//! Loading a node configuration: YAML → JSON tree → `PATRONI_*` overrides →
//! unknown, ignored and unsafe key findings → normalisation → typed model (through
//! `serde_path_to_error`) → validation.

use super::env::{apply_env_overrides, PATRONI_CONFIGURATION};
use super::error::{ConfigError, ConfigWarning};
use super::key_status::{node_key_findings, unknown_key_warnings};
use super::known_keys::NODE_SECTIONS;
use super::node::{normalize_namespace, NodeConfig, DEFAULT_ETCD_PORT};
use super::validate::validate_node;
use super::yaml::{kind, parse_yaml_str};
use serde_json::{Map, Value};
use std::collections::BTreeMap;
use std::path::Path;

/// Scalars that Patroni reads as strings even when YAML types them as numbers or booleans.
const STRING_PATHS: &[&str] = &[
    "name",
    "scope",
    "namespace",
    "restapi.listen",
    "restapi.connect_address",
    "restapi.authentication.username",
    "restapi.authentication.password",
    "restapi.certfile",
    "restapi.keyfile",
    "restapi.keyfile_password",
    "restapi.cafile",
    "restapi.ciphers",
    "postgresql.listen",
    "postgresql.connect_address",
    "postgresql.data_dir",
    "postgresql.config_dir",
    "postgresql.bin_dir",
    "postgresql.pgpass",
    "postgresql.authentication.superuser.username",
    "postgresql.authentication.superuser.password",
    "postgresql.authentication.replication.username",
    "postgresql.authentication.replication.password",
    "postgresql.authentication.rewind.username",
    "postgresql.authentication.rewind.password",
    "postgresql.authentication.superuser.sslpassword",
    "postgresql.authentication.replication.sslpassword",
    "postgresql.authentication.rewind.sslpassword",
    "etcd3.username",
    "etcd3.password",
    "etcd3.key_password",
    "etcd.username",
    "etcd.password",
    "etcd.key_password",
    "log.level",
    "log.type",
    "log.dir",
    "watchdog.device",
    "fence.mode",
    "fence.socket",
];

/// `initdb` options Patroni refuses because it sets them itself.
const FORBIDDEN_INITDB: &[&str] = &["pgdata", "nosync", "pwfile", "sync-only", "version"];

/// Most type errors reported before giving up on a file.
const MAX_TYPE_ERRORS: usize = 64;

/// Reads and parses the node configuration file at `path`.
///
/// When `env` holds `PATRONI_CONFIGURATION`, its value is parsed instead and the
/// file is not read. `env` is usually `std::env::vars().collect()`.
pub fn load_node_config(
    path: &Path,
    env: &BTreeMap<String, String>,
) -> Result<(NodeConfig, Vec<ConfigWarning>), ConfigError> {
    if let Some(yaml) = env.get(PATRONI_CONFIGURATION).filter(|v| !v.is_empty()) {
        return parse_node_config(yaml, PATRONI_CONFIGURATION, env);
    }
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    parse_node_config(&text, &path.display().to_string(), env)
}

/// Parses node configuration YAML; `file` names the source in messages.
///
/// Returns the typed configuration and the warnings (unknown keys, legacy
/// sections, ...), or every problem found at once.
pub fn parse_node_config(
    yaml: &str,
    file: &str,
    env: &BTreeMap<String, String>,
) -> Result<(NodeConfig, Vec<ConfigWarning>), ConfigError> {
    let mut tree = parse_yaml_str(yaml).map_err(|reason| ConfigError::Yaml {
        file: file.to_string(),
        reason,
    })?;
    let invalid = |problems| ConfigError::Invalid {
        file: file.to_string(),
        problems,
    };
    if tree.is_null() {
        tree = Value::Object(Map::new());
    }
    if !tree.is_object() {
        return Err(invalid(vec![format!(
            "(root): expected a mapping of settings, found {}",
            kind(&tree)
        )]));
    }
    apply_env_overrides(&mut tree, env);
    let mut warnings = unknown_key_warnings(&tree);
    let findings = node_key_findings(&tree);
    warnings.extend(findings.warnings);
    let mut problems = findings.refusals;
    normalize(&mut tree, &mut warnings, &mut problems);
    let (mut config, failed) = deserialize_lenient(tree, &mut problems);
    if config.restapi.connect_address.is_empty() {
        config.restapi.connect_address = config.restapi.listen.clone();
    }
    validate_node(&config, &failed, &mut problems, &mut warnings);
    if problems.is_empty() {
        Ok((config, warnings))
    } else {
        Err(invalid(problems))
    }
}

fn get_mut<'a>(tree: &'a mut Value, dotted: &str) -> Option<&'a mut Value> {
    if dotted.is_empty() {
        return Some(tree);
    }
    dotted.split('.').try_fold(tree, |v, k| v.get_mut(k))
}

/// Rewrites the tree into the shape of the typed model.
fn normalize(tree: &mut Value, warnings: &mut Vec<ConfigWarning>, problems: &mut Vec<String>) {
    // An empty section (`tags:`) or key means "not set".
    for (section, _) in NODE_SECTIONS {
        if let Some(Value::Object(map)) = get_mut(tree, section) {
            map.retain(|_, v| !v.is_null());
        }
    }
    for path in STRING_PATHS {
        if let Some(v) = get_mut(tree, path) {
            match v {
                Value::Number(n) => *v = Value::String(n.to_string()),
                Value::Bool(b) => *v = Value::String(b.to_string()),
                _ => {}
            }
        }
    }
    if let Some(Value::String(ns)) = get_mut(tree, "namespace") {
        *ns = normalize_namespace(ns);
    }
    if let Some(mode) = get_mut(tree, "watchdog.mode") {
        *mode = Value::String(watchdog_mode(mode));
    }
    normalize_restapi(tree, problems);
    normalize_dcs(tree, warnings, problems);
    if let Some(Value::Object(bootstrap)) = get_mut(tree, "bootstrap") {
        normalize_bootstrap(bootstrap, warnings, problems);
    }
}

/// `restapi.allowlist` as a list (a YAML list or a comma-separated string, as the
/// environment gives it), `allowlist_include_members` as a boolean, `verify_client` lowercase.
fn normalize_restapi(tree: &mut Value, problems: &mut Vec<String>) {
    let Some(Value::Object(api)) = get_mut(tree, "restapi") else {
        return;
    };
    if let Some(v) = api.get_mut("allowlist") {
        let items = match &mut *v {
            Value::String(s) => match parse_yaml_str(s) {
                Ok(Value::Array(a)) => a,
                _ => s
                    .split(',')
                    .map(|i| Value::String(i.trim().into()))
                    .collect(),
            },
            Value::Array(a) => std::mem::take(a),
            other => {
                problems.push(format!(
                    "restapi.allowlist: expected a list of addresses, found {}",
                    kind(other)
                ));
                Vec::new()
            }
        };
        let items = items.into_iter().map(|i| match i {
            Value::String(s) => Value::String(s.trim().to_string()),
            other => Value::String(other.to_string()),
        });
        *v = Value::Array(items.filter(|i| i.as_str() != Some("")).collect());
    }
    if let Some(v) = api.get_mut("allowlist_include_members") {
        match super::tags::parse_bool(v) {
            Some(b) => *v = Value::Bool(b),
            None => problems.push(format!(
                "restapi.allowlist_include_members: expected a boolean, found {v}"
            )),
        }
    }
    if let Some(Value::String(mode)) = api.get_mut("verify_client") {
        *mode = mode.trim().to_ascii_lowercase();
    }
}

/// Normalises a `watchdog.mode` value (`false` → `off`, `require` → `required`, ...).
pub(super) fn watchdog_mode(v: &Value) -> String {
    let raw = match v {
        Value::Bool(false) => "off".to_string(),
        Value::Bool(true) => "automatic".to_string(),
        Value::String(s) => s.trim().to_ascii_lowercase(),
        other => other.to_string(),
    };
    match raw.as_str() {
        "require" => "required".to_string(),
        "auto" => "automatic".to_string(),
        "disable" | "disabled" => "off".to_string(),
        _ => raw,
    }
}

fn normalize_dcs(tree: &mut Value, warnings: &mut Vec<ConfigWarning>, problems: &mut Vec<String>) {
    let Some(root) = tree.as_object_mut() else {
        return;
    };
    let source = match (root.contains_key("etcd3"), root.remove("etcd")) {
        (true, Some(_)) => {
            warnings.push(ConfigWarning::new(
                "etcd",
                "ignored: the etcd3 section takes precedence",
            ));
            "etcd3"
        }
        (true, None) => "etcd3",
        (false, Some(legacy)) => {
            warnings.push(ConfigWarning::new(
                "etcd",
                "(v2) section is used as etcd3: etcd 3.4+ has no v2 API",
            ));
            root.insert("etcd3".into(), legacy);
            "etcd"
        }
        (false, None) => {
            problems.push("etcd3: missing DCS section (etcd3 or etcd)".to_string());
            return;
        }
    };
    match root.get_mut("etcd3") {
        Some(Value::Object(section)) => normalize_etcd(section, source, problems),
        Some(other) => {
            problems.push(format!(
                "{source}: expected a mapping, found {}",
                kind(other)
            ));
            root.remove("etcd3");
        }
        None => {}
    }
}

/// Fills `hosts` (each `host:port`) and `protocol` from `host`, `hosts`, `url` or `urls`.
fn normalize_etcd(section: &mut Map<String, Value>, source: &str, problems: &mut Vec<String>) {
    let default_port = match section.get("port") {
        Some(Value::Number(n)) => n.as_u64().and_then(|p| u16::try_from(p).ok()),
        Some(Value::String(s)) => s.trim().parse().ok(),
        _ => None,
    }
    .unwrap_or(DEFAULT_ETCD_PORT);
    let Some(key) = ["urls", "url", "hosts", "host"]
        .into_iter()
        .find(|k| section.contains_key(*k))
    else {
        if section.contains_key("srv") || section.contains_key("proxy") {
            problems.push(format!(
                "{source}: srv/proxy discovery is not supported; list the hosts instead"
            ));
        } else {
            problems.push(format!("{source}: no etcd endpoints (host, hosts or url)"));
        }
        return;
    };
    let path = format!("{source}.{key}");
    let Some(items) = section
        .get(key)
        .and_then(|v| string_items(v, &path, problems))
    else {
        return;
    };
    let mut hosts = Vec::new();
    for item in items {
        let mut rest = item.as_str();
        if let Some((scheme, after)) = rest.split_once("://") {
            section.insert(
                "protocol".into(),
                Value::String(scheme.to_ascii_lowercase()),
            );
            rest = after;
        }
        let rest = rest.split('/').next().unwrap_or_default();
        let rest = rest.rsplit('@').next().unwrap_or_default();
        if rest.is_empty() {
            continue;
        }
        if rest.contains(':') && !rest.ends_with(']') {
            hosts.push(Value::String(rest.to_string()));
        } else {
            hosts.push(Value::String(format!("{rest}:{default_port}")));
        }
    }
    if hosts.is_empty() {
        problems.push(format!("{path}: no etcd endpoints given"));
    }
    section.insert("hosts".into(), Value::Array(hosts));
}

/// Items of a list of strings or of a comma-separated string, trimmed.
fn string_items(v: &Value, path: &str, problems: &mut Vec<String>) -> Option<Vec<String>> {
    match v {
        Value::String(s) => Some(
            s.split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_string)
                .collect(),
        ),
        Value::Array(items) => {
            let mut out = Vec::new();
            for (i, item) in items.iter().enumerate() {
                match item {
                    Value::String(s) => out.push(s.trim().to_string()),
                    other => problems.push(format!(
                        "{path}[{i}]: expected a \"host:port\" string, found {}",
                        kind(other)
                    )),
                }
            }
            Some(out)
        }
        other => {
            problems.push(format!(
                "{path}: expected a list of \"host:port\" or a comma-separated string, found {}",
                kind(other)
            ));
            None
        }
    }
}

fn normalize_bootstrap(
    bootstrap: &mut Map<String, Value>,
    warnings: &mut Vec<ConfigWarning>,
    problems: &mut Vec<String>,
) {
    // Removed in Patroni 4; warned about by the key table.
    bootstrap.remove("users");
    if bootstrap.contains_key("post_bootstrap") && bootstrap.remove("post_init").is_some() {
        warnings.push(ConfigWarning::new(
            "bootstrap.post_init",
            "ignored: post_bootstrap is also set",
        ));
    }
    if let Some(initdb) = bootstrap.get_mut("initdb") {
        match render_initdb(initdb, problems) {
            Some(args) => *initdb = Value::Array(args.into_iter().map(Value::String).collect()),
            None => {
                bootstrap.remove("initdb");
            }
        }
    }
}

/// Renders one `initdb` option as a command-line argument.
fn initdb_arg(name: &str, value: Option<&Value>) -> Result<String, String> {
    let name = name.trim();
    if FORBIDDEN_INITDB.contains(&name) {
        return Err(format!("initdb option '{name}' is set by patronus itself"));
    }
    match value {
        None => Ok(format!("--{name}")),
        Some(Value::String(s)) => Ok(format!("--{name}={s}")),
        Some(v @ (Value::Number(_) | Value::Bool(_))) => Ok(format!("--{name}={v}")),
        Some(other) => Err(format!(
            "expected a scalar option value, found {}",
            kind(other)
        )),
    }
}

/// Renders `bootstrap.initdb` (`- data-checksums`, `- encoding: UTF8`, or a mapping)
/// into command-line arguments.
fn render_initdb(v: &Value, problems: &mut Vec<String>) -> Option<Vec<String>> {
    let mut options: Vec<(String, Result<String, String>)> = Vec::new();
    match v {
        Value::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                let path = format!("bootstrap.initdb[{i}]");
                let arg = match item {
                    Value::String(flag) => initdb_arg(flag, None),
                    Value::Object(m) if m.len() == 1 => m
                        .iter()
                        .next()
                        .map_or_else(|| Err(String::new()), |(k, v)| initdb_arg(k, Some(v))),
                    Value::Object(_) => Err(
                        "expected an option name or a one-key mapping, found a mapping with several keys"
                            .to_string(),
                    ),
                    other => Err(format!(
                        "expected an option name or a one-key mapping, found {}",
                        kind(other)
                    )),
                };
                options.push((path, arg));
            }
        }
        Value::Object(m) => {
            for (k, val) in m {
                options.push((format!("bootstrap.initdb.{k}"), initdb_arg(k, Some(val))));
            }
        }
        other => {
            problems.push(format!(
                "bootstrap.initdb: expected a list of options, found {}",
                kind(other)
            ));
            return None;
        }
    }
    let mut args = Vec::new();
    let mut ok = true;
    for (path, arg) in options {
        match arg {
            Ok(a) => args.push(a),
            Err(reason) => {
                problems.push(format!("{path}: {reason}"));
                ok = false;
            }
        }
    }
    ok.then_some(args)
}

/// Deserialises the typed model, collecting every type error: each failing value is
/// reported with its path, removed from the tree, and deserialisation is retried.
fn deserialize_lenient(mut tree: Value, problems: &mut Vec<String>) -> (NodeConfig, Vec<String>) {
    let mut failed = Vec::new();
    for _ in 0..MAX_TYPE_ERRORS {
        match serde_path_to_error::deserialize::<_, NodeConfig>(&tree) {
            Ok(config) => return (config, failed),
            Err(err) => {
                let path = err.path().to_string();
                problems.push(format!("{path}: {}", err.inner()));
                let removed = remove_path(&mut tree, err.path());
                failed.push(path);
                if !removed {
                    break;
                }
            }
        }
    }
    (NodeConfig::default(), failed)
}

fn remove_path(tree: &mut Value, path: &serde_path_to_error::Path) -> bool {
    use serde_path_to_error::Segment;
    let segments: Vec<&Segment> = path.iter().collect();
    let Some((last, parents)) = segments.split_last() else {
        return false;
    };
    let mut node = tree;
    for seg in parents {
        let next = match seg {
            Segment::Map { key } => node.get_mut(key.as_str()),
            Segment::Seq { index } => node.get_mut(*index),
            _ => None,
        };
        match next {
            Some(n) => node = n,
            None => return false,
        }
    }
    match (last, node) {
        (Segment::Map { key }, Value::Object(map)) => map.remove(key.as_str()).is_some(),
        (Segment::Seq { index }, Value::Array(items)) if *index < items.len() => {
            items.remove(*index);
            true
        }
        _ => false,
    }
}

#[cfg(test)]
#[path = "load_tests.rs"]
mod tests;

#[cfg(test)]
#[path = "fixture_tests.rs"]
mod fixture_tests;
