//! Tables of the keys Patroni knows, used to warn about unknown (misspelt) keys.
//!
//! Only sections listed in [`NODE_SECTIONS`] are checked; keys whose value is an
//! open map (`postgresql.parameters`, `tags`, `bootstrap.dcs`, `ctl`, ...) are known
//! but never descended into.

use super::error::ConfigWarning;
use serde_json::Value;

/// Top-level keys of a node file.
pub const TOP_LEVEL: &[&str] = &[
    "name",
    "scope",
    "namespace",
    "restapi",
    "etcd3",
    "etcd",
    "bootstrap",
    "postgresql",
    "tags",
    "log",
    "watchdog",
    "ctl",
    "thread_pool_size",
    "citus",
    "consul",
    "zookeeper",
    "exhibitor",
    "kubernetes",
    "raft",
];

/// DCS sections Patroni supports but this agent does not (warned as ignored).
pub const UNSUPPORTED_DCS: &[&str] = &["consul", "zookeeper", "exhibitor", "kubernetes", "raft"];

/// Keys of `restapi`.
pub const RESTAPI: &[&str] = &[
    "listen",
    "connect_address",
    "proxy_address",
    "authentication",
    "certfile",
    "keyfile",
    "keyfile_password",
    "cafile",
    "ciphers",
    "verify_client",
    "allowlist",
    "allowlist_include_members",
    "http_extra_headers",
    "https_extra_headers",
    "request_queue_size",
    "server_tokens",
];

/// Keys of `restapi.authentication`.
pub const BASIC_AUTH: &[&str] = &["username", "password"];

/// Keys of `etcd3` (and legacy `etcd`).
pub const ETCD: &[&str] = &[
    "host",
    "hosts",
    "url",
    "urls",
    "port",
    "protocol",
    "username",
    "password",
    "cacert",
    "cert",
    "key",
    "key_password",
    "use_proxies",
    "srv",
    "srv_suffix",
    "proxy",
    "retry_timeout",
];

/// Keys of `bootstrap` (plus the section named by `bootstrap.method`).
pub const BOOTSTRAP: &[&str] = &[
    "dcs",
    "method",
    "initdb",
    "pg_hba",
    "post_bootstrap",
    "post_init",
    "users",
];

/// Keys of `postgresql` (plus sections named in `create_replica_methods`).
pub const POSTGRESQL: &[&str] = &[
    "listen",
    "connect_address",
    "proxy_address",
    "data_dir",
    "config_dir",
    "bin_dir",
    "bin_name",
    "pgpass",
    "authentication",
    "parameters",
    "parameters_primary",
    "parameters_replica",
    "parameters_standby_leader",
    "pg_hba",
    "pg_hba_primary",
    "pg_hba_replica",
    "pg_hba_standby_leader",
    "pg_ident",
    "pg_ident_primary",
    "pg_ident_replica",
    "pg_ident_standby_leader",
    "use_pg_rewind",
    "use_slots",
    "pg_ctl_timeout",
    "remove_data_directory_on_rewind_failure",
    "remove_data_directory_on_diverged_timelines",
    "callbacks",
    "create_replica_methods",
    "basebackup",
    "custom_conf",
    "config_base_name",
    "recovery_conf",
    "use_unix_socket",
    "use_unix_socket_repl",
    "rewind",
    "pre_promote",
    "before_stop",
    "krbsrvname",
];

/// Keys of `postgresql.authentication`.
pub const AUTHENTICATION: &[&str] = &["superuser", "replication", "rewind"];

/// Keys of one role under `postgresql.authentication`.
pub const CREDENTIALS: &[&str] = &[
    "username",
    "password",
    "sslmode",
    "sslkey",
    "sslpassword",
    "sslcert",
    "sslrootcert",
    "sslcrl",
    "sslcrldir",
    "sslnegotiation",
    "gssencmode",
    "channel_binding",
];

/// Keys of `log`.
pub const LOG: &[&str] = &[
    "type",
    "level",
    "traceback_level",
    "format",
    "dateformat",
    "static_fields",
    "max_queue_size",
    "dir",
    "mode",
    "file_num",
    "file_size",
    "loggers",
    "deduplicate_heartbeat_logs",
];

/// Keys of `watchdog`.
pub const WATCHDOG: &[&str] = &["mode", "device", "safety_margin", "driver"];

/// Every checked section of a node file: dotted path and its known keys.
pub const NODE_SECTIONS: &[(&str, &[&str])] = &[
    ("", TOP_LEVEL),
    ("restapi", RESTAPI),
    ("restapi.authentication", BASIC_AUTH),
    ("etcd3", ETCD),
    ("etcd", ETCD),
    ("bootstrap", BOOTSTRAP),
    ("postgresql", POSTGRESQL),
    ("postgresql.authentication", AUTHENTICATION),
    ("postgresql.authentication.superuser", CREDENTIALS),
    ("postgresql.authentication.replication", CREDENTIALS),
    ("postgresql.authentication.rewind", CREDENTIALS),
    ("log", LOG),
    ("watchdog", WATCHDOG),
];

/// Top-level keys of the dynamic (DCS) configuration.
pub const DYNAMIC_TOP_LEVEL: &[&str] = &[
    "ttl",
    "loop_wait",
    "retry_timeout",
    "maximum_lag_on_failover",
    "maximum_lag_on_syncnode",
    "max_timelines_history",
    "primary_start_timeout",
    "master_start_timeout",
    "primary_stop_timeout",
    "master_stop_timeout",
    "primary_race_backoff",
    "synchronous_mode",
    "synchronous_mode_strict",
    "synchronous_node_count",
    "failsafe_mode",
    "check_timeline",
    "pause",
    "member_slots_ttl",
    "slots",
    "permanent_slots",
    "permanent_replication_slots",
    "ignore_slots",
    "standby_cluster",
    "postgresql",
    "citus",
];

/// Keys of `postgresql` in the dynamic configuration.
pub const DYNAMIC_POSTGRESQL: &[&str] = &[
    "parameters",
    "pg_hba",
    "pg_ident",
    "use_pg_rewind",
    "use_slots",
    "recovery_conf",
    "parameters_primary",
    "parameters_replica",
    "parameters_standby_leader",
    "pg_hba_primary",
    "pg_hba_replica",
    "pg_hba_standby_leader",
    "pg_ident_primary",
    "pg_ident_replica",
    "pg_ident_standby_leader",
];

/// Whether an unknown dynamic top-level key is an allowed extension (`x_*`, `patronus*`).
pub fn is_dynamic_extension(key: &str) -> bool {
    key.starts_with("x_") || key.starts_with("patronus")
}

/// Whether `key` is a known top-level key of the dynamic configuration.
pub fn is_known_dynamic_key(key: &str) -> bool {
    DYNAMIC_TOP_LEVEL.contains(&key) || is_dynamic_extension(key)
}

fn lookup<'a>(tree: &'a Value, dotted: &str) -> Option<&'a Value> {
    if dotted.is_empty() {
        return Some(tree);
    }
    dotted.split('.').try_fold(tree, |v, k| v.get(k))
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
            if known.contains(&key.as_str()) {
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
mod tests {
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

    #[test]
    fn dynamic_extensions() {
        assert!(is_known_dynamic_key("ttl"));
        assert!(is_known_dynamic_key("x_custom"));
        assert!(is_known_dynamic_key("patronus_feature"));
        assert!(!is_known_dynamic_key("ttll"));
    }
}
