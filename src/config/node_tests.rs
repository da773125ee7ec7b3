//! Tests of the node model helpers.

use super::*;
use serde_json::json;

fn pg(listen: &str) -> PostgresqlConfig {
    PostgresqlConfig {
        listen: listen.to_string(),
        ..PostgresqlConfig::default()
    }
}

#[test]
fn listen_multi_host() {
    let p = pg("127.0.0.1, 192.168.1.11:5432");
    assert_eq!(p.listen_hosts(), vec!["127.0.0.1", "192.168.1.11"]);
    assert_eq!(p.listen_port(), 5432);
    let p = pg("*:5433");
    assert_eq!(p.listen_hosts(), vec!["*"]);
    assert_eq!(p.listen_port(), 5433);
    let p = pg("localhost");
    assert_eq!(p.listen_hosts(), vec!["localhost"]);
    assert_eq!(p.listen_port(), 5432);
    let p = pg("h:notaport");
    assert_eq!(p.listen_port(), 5432);
}

#[test]
fn connect_addresses() {
    let mut p = pg("*:5432");
    p.connect_address = "10.0.0.1:5434".into();
    assert_eq!(p.connect_host_port(), ("10.0.0.1".to_string(), 5434));
    let r = RestApiConfig {
        listen: "0.0.0.0:8009".into(),
        connect_address: "node1".into(),
        ..Default::default()
    };
    assert_eq!(r.listen_host_port(), ("0.0.0.0".to_string(), 8009));
    assert_eq!(r.connect_host_port(), ("node1".to_string(), 8008));
}

#[test]
fn port_checks() {
    assert_eq!(check_port("h:5432"), Ok(Some(5432)));
    assert_eq!(check_port("h"), Ok(None));
    assert!(check_port("h:0").is_err());
    assert!(check_port("h:65536").is_err());
    assert!(check_port("h:x").is_err());
    assert!(check_port("h:").is_err());
}

#[test]
fn bin_dir_from_path_when_unset() {
    let dir = tempfile::tempdir().unwrap();
    let (empty, pgbin) = (dir.path().join("empty"), dir.path().join("pg/bin"));
    std::fs::create_dir_all(&empty).unwrap();
    std::fs::create_dir_all(&pgbin).unwrap();
    for b in ["pg_ctl", "postgres"] {
        std::fs::write(pgbin.join(b), "").unwrap();
    }
    std::fs::write(empty.join("pg_ctl"), "").unwrap();
    let path = std::env::join_paths([&empty, &pgbin]).unwrap();
    let mut p = pg("*:5432");
    assert_eq!(p.resolved_bin_dir(Some(&path)), pgbin);
    assert_eq!(
        p.resolved_bin_dir(Some(std::ffi::OsStr::new(""))),
        PathBuf::from("/usr/lib/postgresql/15/bin")
    );
    p.bin_dir = Some("/opt/pg/bin".into());
    assert_eq!(
        p.resolved_bin_dir(Some(&path)),
        PathBuf::from("/opt/pg/bin")
    );
}

#[test]
fn bin_and_pgpass() {
    let mut p = pg("*:5432");
    assert_eq!(
        p.bin("pg_ctl"),
        PathBuf::from("/usr/lib/postgresql/15/bin/pg_ctl")
    );
    assert_eq!(p.pgpass_path("n1"), PathBuf::from("/tmp/pgpass_n1"));
    p.bin_dir = Some("/opt/pg/bin/".into());
    p.pgpass = Some("/var/pgpass".into());
    assert_eq!(p.bin("initdb"), PathBuf::from("/opt/pg/bin/initdb"));
    assert_eq!(p.pgpass_path("n1"), PathBuf::from("/var/pgpass"));
}

#[test]
fn namespace_normalisation() {
    assert_eq!(normalize_namespace("/db/"), "/db");
    assert_eq!(normalize_namespace("service"), "/service");
    assert_eq!(normalize_namespace("//a//b/"), "/a/b");
    assert_eq!(normalize_namespace(""), "/");
    let c = NodeConfig {
        namespace: "/".into(),
        scope: "demo".into(),
        ..NodeConfig::default()
    };
    assert_eq!(c.dcs_prefix(), "/demo");
}

#[test]
fn tag_bool_values() {
    let c = with_tags(
        json!({"a": true, "b": "On", "c": "YES", "d": "1", "e": 2, "f": 0,
                     "g": "off", "h": false, "i": 0.5, "j": null}),
    );
    for k in ["a", "b", "c", "d", "e", "i"] {
        assert!(c.tag_bool(k), "{k}");
    }
    for k in ["f", "g", "h", "j", "missing"] {
        assert!(!c.tag_bool(k), "{k}");
    }
}

fn with_tags(tags: serde_json::Value) -> NodeConfig {
    NodeConfig {
        tags: tags.as_object().cloned().unwrap_or_default(),
        ..NodeConfig::default()
    }
}

/// The node configuration reads its tags through `Tags` (the rule table is in
/// `tags_tests.rs`).
#[test]
fn failover_priority_from_tags() {
    assert_eq!(with_tags(json!({})).failover_priority(), 1);
    let c = with_tags(json!({"nofailover": false, "failover_priority": 0}));
    assert_eq!((c.nofailover(), c.failover_priority()), (false, 0));
    assert_eq!(c.tag_view().conflicts().len(), 1);
    let c = with_tags(json!({"nofailover": true, "failover_priority": 5}));
    assert_eq!((c.nofailover(), c.failover_priority()), (true, 0));
}

#[test]
fn defaults() {
    let c = NodeConfig::default();
    assert_eq!(c.namespace, "/service");
    assert_eq!(c.etcd3.protocol, "http");
    assert_eq!(c.postgresql.pg_ctl_timeout, 60);
    assert_eq!(c.log.level, "INFO");
    assert_eq!(c.log.kind, "plain");
    assert_eq!(c.watchdog.mode, "automatic");
    assert_eq!(c.watchdog.device, "/dev/watchdog");
    assert_eq!(c.watchdog.safety_margin, 5);
    assert_eq!(BootstrapConfig::default().dcs, json!({}));
}
