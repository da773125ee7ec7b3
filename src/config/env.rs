//! `PATRONI_*` environment overrides, applied to the configuration tree before
//! typed deserialisation. Environment values win over the file; empty values and
//! unknown `PATRONI_*` names are ignored, as Patroni does.

use serde_json::{Map, Value};
use std::collections::BTreeMap;

/// Name of the variable whose value replaces the whole configuration file.
pub const PATRONI_CONFIGURATION: &str = "PATRONI_CONFIGURATION";

/// Variables that set one string at a fixed path.
const SIMPLE: &[(&str, &[&str])] = &[
    ("PATRONI_NAME", &["name"]),
    ("PATRONI_NAMESPACE", &["namespace"]),
    ("PATRONI_SCOPE", &["scope"]),
    ("PATRONI_RESTAPI_LISTEN", &["restapi", "listen"]),
    (
        "PATRONI_RESTAPI_CONNECT_ADDRESS",
        &["restapi", "connect_address"],
    ),
    (
        "PATRONI_RESTAPI_USERNAME",
        &["restapi", "authentication", "username"],
    ),
    (
        "PATRONI_RESTAPI_PASSWORD",
        &["restapi", "authentication", "password"],
    ),
    ("PATRONI_RESTAPI_CERTFILE", &["restapi", "certfile"]),
    ("PATRONI_RESTAPI_KEYFILE", &["restapi", "keyfile"]),
    (
        "PATRONI_RESTAPI_KEYFILE_PASSWORD",
        &["restapi", "keyfile_password"],
    ),
    ("PATRONI_RESTAPI_CAFILE", &["restapi", "cafile"]),
    ("PATRONI_RESTAPI_CIPHERS", &["restapi", "ciphers"]),
    (
        "PATRONI_RESTAPI_VERIFY_CLIENT",
        &["restapi", "verify_client"],
    ),
    ("PATRONI_RESTAPI_ALLOWLIST", &["restapi", "allowlist"]),
    (
        "PATRONI_RESTAPI_ALLOWLIST_INCLUDE_MEMBERS",
        &["restapi", "allowlist_include_members"],
    ),
    ("PATRONI_CTL_CERTFILE", &["ctl", "certfile"]),
    ("PATRONI_CTL_KEYFILE", &["ctl", "keyfile"]),
    ("PATRONI_CTL_KEYFILE_PASSWORD", &["ctl", "keyfile_password"]),
    ("PATRONI_CTL_CACERT", &["ctl", "cacert"]),
    ("PATRONI_CTL_INSECURE", &["ctl", "insecure"]),
    (
        "PATRONI_CTL_USERNAME",
        &["ctl", "authentication", "username"],
    ),
    (
        "PATRONI_CTL_PASSWORD",
        &["ctl", "authentication", "password"],
    ),
    ("PATRONI_POSTGRESQL_LISTEN", &["postgresql", "listen"]),
    (
        "PATRONI_POSTGRESQL_CONNECT_ADDRESS",
        &["postgresql", "connect_address"],
    ),
    ("PATRONI_POSTGRESQL_DATA_DIR", &["postgresql", "data_dir"]),
    (
        "PATRONI_POSTGRESQL_CONFIG_DIR",
        &["postgresql", "config_dir"],
    ),
    ("PATRONI_POSTGRESQL_BIN_DIR", &["postgresql", "bin_dir"]),
    ("PATRONI_POSTGRESQL_PGPASS", &["postgresql", "pgpass"]),
    (
        "PATRONI_SUPERUSER_USERNAME",
        &["postgresql", "authentication", "superuser", "username"],
    ),
    (
        "PATRONI_SUPERUSER_PASSWORD",
        &["postgresql", "authentication", "superuser", "password"],
    ),
    (
        "PATRONI_REPLICATION_USERNAME",
        &["postgresql", "authentication", "replication", "username"],
    ),
    (
        "PATRONI_REPLICATION_PASSWORD",
        &["postgresql", "authentication", "replication", "password"],
    ),
    (
        "PATRONI_REWIND_USERNAME",
        &["postgresql", "authentication", "rewind", "username"],
    ),
    (
        "PATRONI_REWIND_PASSWORD",
        &["postgresql", "authentication", "rewind", "password"],
    ),
    ("PATRONI_LOG_LEVEL", &["log", "level"]),
    ("PATRONI_LOG_TYPE", &["log", "type"]),
    ("PATRONI_LOG_DIR", &["log", "dir"]),
    ("PATRONI_LOG_FORMAT", &["log", "format"]),
    ("PATRONI_LOG_DATEFORMAT", &["log", "dateformat"]),
];

/// etcd variable suffixes that set a plain string key of the etcd section.
const ETCD_STRINGS: &[(&str, &str)] = &[
    ("PROTOCOL", "protocol"),
    ("USERNAME", "username"),
    ("PASSWORD", "password"),
    ("CACERT", "cacert"),
    ("CERT", "cert"),
    ("KEY", "key"),
    ("KEY_PASSWORD", "key_password"),
];

/// Keys that name etcd endpoints; an endpoint variable replaces all of them.
const ETCD_ENDPOINT_KEYS: &[&str] = &["host", "hosts", "url", "urls", "srv", "proxy"];

/// Returns the object at `path` under `tree`, turning non-objects into objects.
fn object_at<'a>(tree: &'a mut Value, path: &[&str]) -> Option<&'a mut Map<String, Value>> {
    let mut node = tree;
    for key in path {
        node = ensure_object(node)?
            .entry((*key).to_string())
            .or_insert_with(|| Value::Object(Map::new()));
    }
    ensure_object(node)
}

fn ensure_object(node: &mut Value) -> Option<&mut Map<String, Value>> {
    if !node.is_object() {
        *node = Value::Object(Map::new());
    }
    node.as_object_mut()
}

fn set(tree: &mut Value, path: &[&str], value: Value) {
    if let Some((last, parents)) = path.split_last() {
        if let Some(map) = object_at(tree, parents) {
            map.insert((*last).to_string(), value);
        }
    }
}

/// Parses `PATRONI_ETCD3_HOSTS`: YAML list (`['h:1','h:2']`) or a comma string.
fn parse_hosts(raw: &str) -> Value {
    match super::yaml::parse_yaml_str(raw) {
        Ok(v @ (Value::Array(_) | Value::String(_))) => v,
        _ => Value::String(raw.to_string()),
    }
}

fn apply_etcd(tree: &mut Value, env: &BTreeMap<String, String>, prefix: &str, section: &str) {
    let get = |suffix: &str| {
        env.get(&format!("{prefix}{suffix}"))
            .filter(|v| !v.is_empty())
    };
    let host = get("HOST");
    let hosts = get("HOSTS");
    let url = get("URL");
    let strings: Vec<(&str, &String)> = ETCD_STRINGS
        .iter()
        .filter_map(|(suffix, key)| get(suffix).map(|v| (*key, v)))
        .collect();
    if host.is_none() && hosts.is_none() && url.is_none() && strings.is_empty() {
        return;
    }
    let Some(map) = object_at(tree, &[section]) else {
        return;
    };
    if host.is_some() || hosts.is_some() || url.is_some() {
        for key in ETCD_ENDPOINT_KEYS {
            map.remove(*key);
        }
    }
    if let Some(h) = host {
        map.insert("host".into(), Value::String(h.clone()));
    }
    if let Some(h) = hosts {
        map.insert("hosts".into(), parse_hosts(h));
    }
    if let Some(u) = url {
        map.insert("url".into(), Value::String(u.clone()));
    }
    for (key, v) in strings {
        map.insert(key.into(), Value::String(v.clone()));
    }
}

/// Roles of `postgresql.authentication` and their variable prefix.
const ROLES: &[(&str, &str)] = &[
    ("PATRONI_SUPERUSER_", "superuser"),
    ("PATRONI_REPLICATION_", "replication"),
    ("PATRONI_REWIND_", "rewind"),
];

/// libpq TLS keys a role variable may set (`PATRONI_REPLICATION_SSLMODE`, ...).
const ROLE_TLS_KEYS: &[&str] = &[
    "sslmode",
    "sslkey",
    "sslpassword",
    "sslcert",
    "sslrootcert",
    "sslcrl",
    "sslcrldir",
    "gssencmode",
    "channel_binding",
];

/// `PATRONI_<ROLE>_<SSLKEY>` → `postgresql.authentication.<role>.<sslkey>`, as Patroni.
fn apply_role_tls(tree: &mut Value, env: &BTreeMap<String, String>) {
    for (prefix, role) in ROLES {
        for key in ROLE_TLS_KEYS {
            let name = format!("{prefix}{}", key.to_ascii_uppercase());
            if let Some(v) = env.get(&name).filter(|v| !v.is_empty()) {
                set(
                    tree,
                    &["postgresql", "authentication", role, key],
                    Value::String(v.clone()),
                );
            }
        }
    }
}

/// Applies every recognised `PATRONI_*` variable of `env` to `tree`.
///
/// `PATRONI_ETCD3_*` goes to the `etcd3` section, or to a legacy `etcd` section when
/// the file has only that one; `PATRONI_ETCD_*` goes to `etcd`. `PATRONI_ETCD3_HOSTS`
/// is parsed as YAML (a list or a comma-separated string). Setting any endpoint
/// variable (`HOST`, `HOSTS`, `URL`) replaces the endpoints of the file.
pub fn apply_env_overrides(tree: &mut Value, env: &BTreeMap<String, String>) {
    for (name, path) in SIMPLE {
        if let Some(v) = env.get(*name).filter(|v| !v.is_empty()) {
            set(tree, path, Value::String(v.clone()));
        }
    }
    apply_role_tls(tree, env);
    let has = |k: &str| tree.get(k).is_some_and(|v| !v.is_null());
    let etcd3_target = if has("etcd") && !has("etcd3") {
        "etcd"
    } else {
        "etcd3"
    };
    apply_etcd(tree, env, "PATRONI_ETCD3_", etcd3_target);
    apply_etcd(tree, env, "PATRONI_ETCD_", "etcd");
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn role_tls_variables() {
        let mut tree = json!({});
        apply_env_overrides(
            &mut tree,
            &env(&[
                ("PATRONI_REPLICATION_SSLMODE", "verify-full"),
                ("PATRONI_REPLICATION_SSLROOTCERT", "/ca.crt"),
                ("PATRONI_SUPERUSER_CHANNEL_BINDING", "require"),
                ("PATRONI_REWIND_SSLPASSWORD", "k"),
            ]),
        );
        let a = &tree["postgresql"]["authentication"];
        assert_eq!(a["replication"]["sslmode"], "verify-full");
        assert_eq!(a["replication"]["sslrootcert"], "/ca.crt");
        assert_eq!(a["superuser"]["channel_binding"], "require");
        assert_eq!(a["rewind"]["sslpassword"], "k");
    }

    fn env(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn simple_overrides_win() {
        let mut tree = json!({"name": "file", "postgresql": {"listen": "x:1"}});
        apply_env_overrides(
            &mut tree,
            &env(&[
                ("PATRONI_NAME", "env"),
                ("PATRONI_POSTGRESQL_LISTEN", "*:5433"),
                ("PATRONI_SUPERUSER_PASSWORD", "s3cret"),
                ("PATRONI_RESTAPI_USERNAME", "admin"),
                ("PATRONI_UNKNOWN_THING", "ignored"),
                ("PATRONI_SCOPE", ""),
            ]),
        );
        assert_eq!(
            tree,
            json!({
                "name": "env",
                "postgresql": {"listen": "*:5433",
                    "authentication": {"superuser": {"password": "s3cret"}}},
                "restapi": {"authentication": {"username": "admin"}}
            })
        );
    }

    #[test]
    fn etcd_hosts_yaml_list_replaces_file_endpoints() {
        let mut tree = json!({"etcd3": {"host": "old:2379", "protocol": "http"}});
        apply_env_overrides(&mut tree, &env(&[("PATRONI_ETCD3_HOSTS", "['a:1','b:2']")]));
        assert_eq!(
            tree,
            json!({"etcd3": {"hosts": ["a:1", "b:2"], "protocol": "http"}})
        );
    }

    #[test]
    fn etcd_hosts_comma_string_and_legacy_section() {
        let mut tree = json!({"etcd": {"host": "old:2379"}});
        apply_env_overrides(
            &mut tree,
            &env(&[
                ("PATRONI_ETCD3_HOSTS", "a:1,b:2"),
                ("PATRONI_ETCD3_USERNAME", "u"),
            ]),
        );
        assert_eq!(tree, json!({"etcd": {"hosts": "a:1,b:2", "username": "u"}}));
    }

    #[test]
    fn non_object_root_becomes_object() {
        let mut tree = Value::Null;
        apply_env_overrides(&mut tree, &env(&[("PATRONI_ETCD3_URL", "https://e:2379")]));
        assert_eq!(tree, json!({"etcd3": {"url": "https://e:2379"}}));
    }
}
