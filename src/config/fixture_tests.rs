//! The node files of `tests/fixtures/` (the shapes Patroni tutorials use): what each one
//! parses to, which warnings it gives, and environment overrides applied over one.

use super::*;
use crate::config::dynamic::DynamicConfig;
use crate::config::dynamic_validate::validate_dynamic;
use std::path::PathBuf;

/// The project's own fixtures, inside the repository.
const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/");

fn env(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn path(name: &str) -> PathBuf {
    PathBuf::from(FIXTURES).join(name)
}

fn load_with(name: &str, e: &BTreeMap<String, String>) -> (NodeConfig, Vec<ConfigWarning>) {
    load_node_config(&path(name), e).unwrap_or_else(|err| panic!("{name}: {err}"))
}

fn fixture(name: &str) -> (NodeConfig, Vec<ConfigWarning>) {
    load_with(name, &BTreeMap::new())
}

fn text(name: &str) -> String {
    std::fs::read_to_string(path(name)).unwrap_or_else(|e| panic!("{name}: {e}"))
}

/// Paths of the unknown-key warnings (a fixture must have none: no typos in our own files).
fn unknown_keys(w: &[ConfigWarning]) -> Vec<&str> {
    w.iter()
        .filter(|w| w.message.starts_with("unknown key"))
        .map(|w| w.path.as_str())
        .collect()
}

fn has_warning(w: &[ConfigWarning], path: &str) -> bool {
    w.iter().any(|w| w.path == path)
}

fn dynamic_of(c: &NodeConfig) -> (Value, DynamicConfig) {
    let dcs = c.bootstrap.clone().unwrap_or_default().dcs;
    let d = DynamicConfig::from_value(&dcs);
    (dcs, d)
}

#[test]
fn debian12_etcd3_fixture() {
    let (c, w) = fixture("debian12-etcd3.yml");
    assert!(unknown_keys(&w).is_empty(), "{w:?}");
    assert_eq!((c.scope.as_str(), c.name.as_str()), ("ledger", "ledger-a"));
    assert_eq!(
        c.etcd3.hosts,
        vec!["192.0.2.11:2379", "192.0.2.12:2379", "192.0.2.13:2379"]
    );
    assert_eq!(c.etcd3.protocol, "http");
    assert_eq!(c.log.level, "WARNING");
    assert_eq!(c.log.dir, Some(PathBuf::from("/var/log/patroni/ledger")));
    assert!(c
        .log
        .format
        .as_deref()
        .is_some_and(|f| f.contains("%(message)s")));
    assert_eq!(c.watchdog.mode, "off");
    assert_eq!(c.watchdog.safety_margin, 5);
    assert_eq!(c.postgresql.listen_hosts(), vec!["192.0.2.31"]);
    assert_eq!(c.postgresql.pg_hba.as_ref().map(Vec::len), Some(4));
    assert_eq!(
        c.postgresql.bin("pg_ctl"),
        PathBuf::from("/usr/lib/postgresql/16/bin/pg_ctl")
    );
    assert_eq!(c.failover_priority(), 2);
    assert!(c.tag_bool("clonefrom") && !c.tag_bool("nosync"));
    let b = c.bootstrap.clone().unwrap_or_default();
    assert_eq!(b.pg_hba.len(), 2);
    assert!(b.initdb.is_empty());
    let (dcs, d) = dynamic_of(&c);
    assert!(d.warnings.is_empty(), "{:?}", d.warnings);
    assert_eq!((d.ttl, d.loop_wait, d.retry_timeout), (40, 5, 12));
    assert_eq!(d.maximum_lag_on_failover, 8_388_608);
    assert!(d.use_pg_rewind && d.use_slots);
    assert_eq!(d.parameters["max_connections"], 200);
    assert_eq!(d.parameters["shared_buffers"], "512MB");
    assert!(
        validate_dynamic(&dcs).is_empty(),
        "{:?}",
        validate_dynamic(&dcs)
    );
}

#[test]
fn legacy_etcd_v2_fixture() {
    let (c, w) = fixture("legacy-etcd-v2.yml");
    let etcd = w.iter().find(|w| w.path == "etcd").map(|w| w.to_string());
    assert_eq!(
        etcd.as_deref(),
        Some("etcd: (v2) section is used as etcd3: etcd 3.4+ has no v2 API")
    );
    assert!(has_warning(&w, "bootstrap.users"), "{w:?}");
    assert!(unknown_keys(&w).is_empty(), "{w:?}");
    assert_eq!(c.etcd3.hosts, vec!["198.51.100.5:2379"]);
    let b = c.bootstrap.clone().unwrap_or_default();
    assert_eq!(
        b.initdb,
        vec!["--encoding=UTF8", "--locale=C.UTF-8", "--data-checksums"]
    );
    assert_eq!(b.pg_hba.len(), 2);
    assert_eq!(b.dcs["postgresql"]["parameters"]["wal_keep_segments"], 16);
    assert_eq!(
        c.postgresql.connect_host_port(),
        ("198.51.100.22".into(), 5433)
    );
    assert_eq!(c.postgresql.listen_port(), 5433);
    assert_eq!(c.restapi.listen_host_port(), ("0.0.0.0".into(), 8009));
    assert_eq!(
        c.restapi.connect_host_port(),
        ("198.51.100.22".into(), 8009)
    );
    assert_eq!(c.postgresql.authentication.superuser.username, "admin");
    let (_, d) = dynamic_of(&c);
    assert!(!d.use_pg_rewind);
}

#[test]
fn initdb_mapping_pgbackrest_fixture() {
    let (c, w) = fixture("initdb-mapping-pgbackrest.yml");
    assert!(unknown_keys(&w).is_empty(), "{w:?}");
    let b = c.bootstrap.clone().unwrap_or_default();
    assert_eq!(
        b.initdb,
        vec![
            "--encoding=UTF8",
            "--locale=en_US.UTF-8",
            "--wal-segsize=32"
        ]
    );
    assert_eq!(
        c.postgresql.create_replica_methods,
        Some(vec!["pgbackrest".to_string(), "basebackup".to_string()])
    );
    let method = c.postgresql.replica_method_config("pgbackrest");
    assert_eq!(
        method
            .and_then(|m| m.get("command"))
            .and_then(Value::as_str),
        Some("/usr/bin/pgbackrest --stanza=inventory --delta restore")
    );
    assert_eq!(
        method.and_then(|m| m.get("keep_data")),
        Some(&Value::Bool(true))
    );
    assert!(c
        .postgresql
        .basebackup
        .as_ref()
        .is_some_and(Value::is_array));
    assert_eq!(c.log.dir, Some(PathBuf::from("/var/log/patroni")));
    assert_eq!(c.watchdog.mode, "automatic");
    assert_eq!(c.postgresql.listen_hosts(), vec!["0.0.0.0"]);
    let (dcs, d) = dynamic_of(&c);
    assert_eq!(d.parameters["archive_mode"], "on");
    assert_eq!(d.maximum_lag_on_failover, 33_554_432);
    assert!(
        validate_dynamic(&dcs).is_empty(),
        "{:?}",
        validate_dynamic(&dcs)
    );
}

#[test]
fn namespace_tags_rewind_fixture() {
    let (c, w) = fixture("namespace-tags-rewind.yml");
    assert!(unknown_keys(&w).is_empty(), "{w:?}");
    assert_eq!(c.namespace, "/pgha");
    assert_eq!(c.dcs_prefix(), "/pgha/Billing_Main");
    assert_eq!(
        c.etcd3.hosts,
        vec![
            "etcd-a.internal:2379",
            "etcd-b.internal:2379",
            "etcd-c.internal:2379"
        ]
    );
    let rewind = c
        .postgresql
        .authentication
        .rewind
        .clone()
        .unwrap_or_default();
    assert_eq!(rewind.username, "rewinder");
    assert_eq!(rewind.password.as_deref(), Some("rw-secret"));
    assert_eq!(
        c.postgresql.listen_hosts(),
        vec!["127.0.0.1", "10.20.30.43"]
    );
    assert_eq!(c.postgresql.listen_port(), 5434);
    assert_eq!(c.failover_priority(), 0, "nofailover: true");
    assert!(c.tag_bool("nofailover") && c.tag_bool("noloadbalance") && c.tag_bool("nosync"));
    assert!(!c.tag_bool("clonefrom"));
    assert!(!has_warning(&w, "tags"), "no contradicting tags: {w:?}");
    let b = c.bootstrap.clone().unwrap_or_default();
    assert_eq!(b.initdb, vec!["--encoding=UTF8"]);
    let (_, d) = dynamic_of(&c);
    assert!(d.warnings.is_empty(), "{:?}", d.warnings);
    assert_eq!((d.ttl, d.loop_wait, d.retry_timeout), (25, 5, 10));
}

#[test]
fn every_fixture_parses_without_typos() {
    let mut count = 0;
    let dir = std::fs::read_dir(FIXTURES).unwrap_or_else(|e| panic!("{FIXTURES}: {e}"));
    for entry in dir.flatten() {
        let name = entry.file_name().to_string_lossy().to_string();
        if name.ends_with(".yml") || name.ends_with(".yaml") {
            let (c, w) = fixture(&name);
            assert!(unknown_keys(&w).is_empty(), "{name}: {w:?}");
            assert!(c.bootstrap.is_some(), "{name}: every fixture bootstraps");
            count += 1;
        }
    }
    assert!(count >= 4, "expected at least 4 fixtures, found {count}");
}

#[test]
fn typos_in_a_fixture_are_warned_with_their_path() {
    let yaml = text("debian12-etcd3.yml")
        .replace("  bin_dir:", "  bindir: /opt/pg\n  bin_dir:")
        .replace(
            "watchdog:\n  mode: off",
            "watchdog:\n  mdoe: off\n  mode: off",
        )
        .replace("  traceback_level:", "  traceback_levle:")
        + "tag:\n  nofailover: true\n";
    let (c, w) = parse_node_config(&yaml, "typos.yml", &BTreeMap::new())
        .unwrap_or_else(|e| panic!("typos only warn: {e}"));
    let mut typos = unknown_keys(&w);
    typos.sort();
    assert_eq!(
        typos,
        vec![
            "log.traceback_levle",
            "postgresql.bindir",
            "tag",
            "watchdog.mdoe"
        ]
    );
    let bindir = w.iter().find(|w| w.path == "postgresql.bindir");
    assert_eq!(
        bindir.map(|w| w.to_string()).as_deref(),
        Some("postgresql.bindir: unknown key 'postgresql.bindir'")
    );
    assert_eq!(c.failover_priority(), 2, "the misspelt `tag:` is not read");
}

#[test]
fn env_overrides_apply_over_a_fixture() {
    let e = env(&[
        ("PATRONI_NAME", "ledger-z"),
        ("PATRONI_SCOPE", ""),
        (
            "PATRONI_ETCD3_HOSTS",
            "['127.0.0.1:12379', '127.0.0.1:22379']",
        ),
        ("PATRONI_RESTAPI_LISTEN", "127.0.0.1:18008"),
        ("PATRONI_POSTGRESQL_DATA_DIR", "/tmp/ledger-z"),
        ("PATRONI_SUPERUSER_PASSWORD", "from-env"),
        ("PATRONI_LOG_LEVEL", "DEBUG"),
    ]);
    let (c, _) = load_with("debian12-etcd3.yml", &e);
    assert_eq!(c.name, "ledger-z");
    assert_eq!(c.scope, "ledger", "an empty variable is ignored");
    assert_eq!(c.etcd3.hosts, vec!["127.0.0.1:12379", "127.0.0.1:22379"]);
    assert_eq!(c.restapi.listen, "127.0.0.1:18008");
    assert_eq!(
        c.restapi.connect_address, "192.0.2.31:8008",
        "kept from the file"
    );
    assert_eq!(c.postgresql.data_dir, PathBuf::from("/tmp/ledger-z"));
    assert_eq!(
        c.postgresql.authentication.superuser.password.as_deref(),
        Some("from-env")
    );
    assert_eq!(c.postgresql.authentication.superuser.username, "postgres");
    assert_eq!(c.log.level, "DEBUG");
    assert_eq!(c.log.dir, Some(PathBuf::from("/var/log/patroni/ledger")));
}

#[test]
fn env_overrides_reach_a_legacy_etcd_section() {
    let e = env(&[("PATRONI_ETCD3_HOSTS", "127.0.0.1:2379, 127.0.0.2")]);
    let (c, w) = load_with("legacy-etcd-v2.yml", &e);
    assert_eq!(c.etcd3.hosts, vec!["127.0.0.1:2379", "127.0.0.2:2379"]);
    assert!(has_warning(&w, "etcd"), "{w:?}");
}

#[test]
fn patroni_configuration_replaces_a_fixture_file() {
    let e = env(&[(PATRONI_CONFIGURATION, &text("namespace-tags-rewind.yml"))]);
    let (c, _) = load_with("debian12-etcd3.yml", &e);
    assert_eq!(c.name, "billing-n3");
    assert_eq!(c.namespace, "/pgha");
}
