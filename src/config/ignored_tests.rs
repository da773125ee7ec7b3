//! Tests of the key classification: used keys are silent, ignored keys warn with their
//! full path, unsafe keys are refused with the reason.

use super::*;
use crate::config::known_keys::{DYNAMIC_SECTIONS, NODE_SECTIONS, OPEN_NODE_SECTIONS, TOP_LEVEL};
use serde_json::json;

fn warned(f: &KeyFindings) -> Vec<&str> {
    f.warnings.iter().map(|w| w.path.as_str()).collect()
}

fn refused(f: &KeyFindings) -> Vec<&str> {
    f.refusals
        .iter()
        .filter_map(|r| r.split(": ").next())
        .collect()
}

#[test]
fn used_keys_are_silent() {
    let tree = json!({
        "name": "n1", "scope": "s", "namespace": "/db",
        "restapi": {"listen": "h:8008", "authentication": {"username": "u", "password": "p"}},
        "etcd3": {"hosts": ["e:2379"], "protocol": "http", "username": "u", "password": "p"},
        "bootstrap": {"method": "initdb", "dcs": {"ttl": 30, "synchronous_mode": true,
            "postgresql": {"parameters": {"a": 1}, "use_slots": true}}},
        "postgresql": {"create_replica_methods": ["pgbackrest", "basebackup"], "callbacks": {},
            "pgbackrest": {"command": "pgbackrest restore", "keep_data": true},
            "basebackup": ["verbose"], "pre_promote": "/fence.sh", "before_stop": "/x",
            "authentication": {"replication": {"username": "r", "sslmode": "prefer"}}},
        "watchdog": {"mode": "off", "device": "/dev/watchdog"},
        "tags": {"nofailover": false, "clonefrom": false, "custom": 1},
        "log": {"level": "INFO", "dir": null}
    });
    assert_eq!(node_key_findings(&tree), KeyFindings::default());
}

#[test]
fn ignored_keys_warn_with_full_path() {
    let tree = json!({
        "postgresql": {"callbacks": {"on_start": "/x"}, "create_replica_methods": ["pgbackrest"],
            "pg_ident_replica": ["a b c"], "use_unix_socket": true},
        "bootstrap": {"method": "pitr", "users": {"a": {}}},
        "log": {"dir": "/var/log/patroni", "format": "%(message)s", "loggers": {"a": "DEBUG"},
            "traceback_level": "ERROR"},
        "tags": {"clonefrom": true, "replicatefrom": "n2"},
        "citus": {"group": 0},
        "consul": {"host": "c"}
    });
    let f = node_key_findings(&tree);
    assert!(f.refusals.is_empty(), "{:?}", f.refusals);
    let mut paths = warned(&f);
    paths.sort_unstable();
    assert_eq!(
        paths,
        vec![
            "bootstrap.users",
            "citus",
            "consul",
            "log.loggers",
            "log.traceback_level",
            "postgresql.pg_ident_replica",
        ]
    );
    let ident = f
        .warnings
        .iter()
        .find(|w| w.path == "postgresql.pg_ident_replica")
        .map(ToString::to_string);
    assert_eq!(
        ident.as_deref(),
        Some(
            "postgresql.pg_ident_replica: not implemented yet and is ignored (role-specific settings apply from the dynamic configuration only)"
        )
    );
}

#[test]
fn unsafe_keys_are_refused_with_the_reason() {
    // Keys refused before they were implemented (REST TLS, allowlist, pre_promote, PostgreSQL
    // TLS) are accepted now; what stays refused names why.
    let tree = json!({
        "restapi": {"certfile": "/c", "keyfile": "/k", "verify_client": "required",
            "allowlist": ["10.0.0.0/8"], "allowlist_include_members": true},
        "postgresql": {"pre_promote": "/fence.sh",
            "authentication": {"superuser": {"username": "p", "sslmode": "verify-full",
                "gssencmode": "require"}}}
    });
    let f = node_key_findings(&tree);
    let mut paths = refused(&f);
    paths.sort_unstable();
    assert_eq!(
        paths,
        vec!["postgresql.authentication.superuser.gssencmode"]
    );
    assert!(
        f.refusals.iter().any(|r| r.contains("GSSAPI")),
        "{:?}",
        f.refusals
    );
}

#[test]
fn rest_tls_and_allowlist_keys_are_used_and_ciphers_warn() {
    let tree = json!({
        "restapi": {"certfile": "/c", "keyfile": "/k", "keyfile_password": "p", "cafile": "/ca",
            "verify_client": "required", "allowlist": ["10.0.0.0/8"],
            "allowlist_include_members": true, "ciphers": "ECDHE+AESGCM"},
    });
    let f = node_key_findings(&tree);
    assert!(f.refusals.is_empty(), "{:?}", f.refusals);
    assert_eq!(warned(&f), vec!["restapi.ciphers"]);
}

#[test]
fn etcd_tls_and_auth_keys_are_used_in_every_form() {
    for etcd in [
        json!({"url": "https://e:2379"}),
        json!({"urls": ["http://a:2379", "https://b:2379"]}),
        json!({"hosts": "http://a:2379,HTTPS://b:2379"}),
        json!({"host": "https://e"}),
        json!({"hosts": "e:2379", "protocol": "HTTPS", "cacert": "/ca", "cert": "/c",
            "key": "/k", "key_password": "x", "username": "u", "password": "p"}),
    ] {
        assert!(
            node_key_findings(&json!({"etcd": etcd.clone()})).is_empty(),
            "{etcd}"
        );
        assert!(
            node_key_findings(&json!({"etcd3": etcd.clone()})).is_empty(),
            "{etcd}"
        );
    }
}

#[test]
fn watchdog_keys_are_used_and_only_the_driver_warns() {
    let mode = |m: Value| node_key_findings(&json!({"watchdog": {"mode": m, "device": "/d"}}));
    for m in [
        json!("off"),
        json!(false),
        json!("automatic"),
        json!("required"),
        json!(true),
    ] {
        assert!(mode(m.clone()).is_empty(), "{m}");
    }
    let driver = node_key_findings(&json!({"watchdog": {"mode": "required", "driver": "testing"}}));
    assert_eq!(warned(&driver), vec!["watchdog.driver"]);
    assert!(driver.refusals.is_empty());
}

#[test]
fn unset_values_are_silent() {
    let tree = json!({
        "restapi": {"certfile": "", "allowlist": [], "allowlist_include_members": false},
        "etcd3": {"cacert": null, "use_proxies": false},
        "postgresql": {"callbacks": {}, "pre_promote": ""}
    });
    assert!(node_key_findings(&tree).is_empty());
}

#[test]
fn bootstrap_dcs_is_classified_with_its_prefix() {
    let tree = json!({"bootstrap": {"dcs": {
        "ttl": 30, "slots": {"s": {"type": "physical"}}, "failsafe_mode": true,
        "primary_race_backoff": 1, "member_slots_ttl": "30min", "maximum_lag_on_syncnode": 1,
        "postgresql": {"pg_ident_primary": ["x"], "pg_hba_standby_leader": ["x"],
            "recovery_conf": {"restore_command": "c"}}
    }}});
    let f = node_key_findings(&tree);
    assert!(f.refusals.is_empty());
    assert_eq!(warned(&f), vec!["bootstrap.dcs.primary_race_backoff",]);
    // Standby clusters are implemented: the section is neither refused nor warned about.
    let standby = json!({"bootstrap": {"dcs": {"standby_cluster": {"host": "h"}}}});
    assert!(node_key_findings(&standby).is_empty());
}

#[test]
fn dynamic_config_findings() {
    let f = dynamic_key_findings(&json!({
        "ttl": 30, "failsafe_mode": true, "synchronous_mode": "quorum",
        "synchronous_node_count": 2, "ignore_slots": [{"name": "x"}], "primary_race_backoff": 1,
        "standby_cluster": {"host": "h", "port": 5432}, "x_custom": 1
    }));
    assert_eq!(warned(&f), vec!["primary_race_backoff"]);
    assert!(refused(&f).is_empty());
    assert!(dynamic_key_findings(&json!({"ttl": 30, "pause": true})).is_empty());
    assert!(dynamic_key_findings(&json!("garbage")).is_empty());
}

/// Every status in the tables resolves to one of the final classes for any value.
#[test]
fn every_known_key_resolves() {
    let section = serde_json::Map::new();
    let tables = NODE_SECTIONS
        .iter()
        .chain(OPEN_NODE_SECTIONS)
        .chain(DYNAMIC_SECTIONS.iter());
    let mut count = 0;
    for (_, table) in tables {
        for (_, status) in *table {
            for v in [json!(true), json!("x"), json!(["https://a"]), json!(1)] {
                let r = resolve(*status, &section, &v);
                assert!(!matches!(r, KeyStatus::IfTrue(_) | KeyStatus::ByValue(_)));
            }
            count += 1;
        }
    }
    assert!(count > TOP_LEVEL.len() * 5, "{count}");
}

#[test]
fn postgresql_tls_keys_are_used() {
    let tree = json!({"postgresql": {"authentication": {
        "superuser": {"username": "p", "sslmode": "verify-full", "sslrootcert": "/ca",
            "sslcert": "/c", "sslkey": "/k", "sslpassword": "x", "sslcrl": "/crl",
            "sslcrldir": "/crls", "channel_binding": "require", "gssencmode": "prefer"},
        "replication": {"username": "r", "sslmode": "require"}}}});
    assert_eq!(node_key_findings(&tree), KeyFindings::default());
    let gss = json!({"postgresql": {"authentication": {
        "superuser": {"username": "p", "gssencmode": "require"}}}});
    assert_eq!(
        refused(&node_key_findings(&gss)),
        vec!["postgresql.authentication.superuser.gssencmode"]
    );
}
