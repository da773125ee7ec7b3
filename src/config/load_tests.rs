//! Tests of node configuration loading on inline YAML (the node files under
//! `tests/fixtures/` are covered by `fixture_tests.rs`).

use super::*;
use std::path::PathBuf;

fn no_env() -> BTreeMap<String, String> {
    BTreeMap::new()
}

fn env(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn paths(w: &[ConfigWarning]) -> Vec<&str> {
    w.iter().map(|w| w.path.as_str()).collect()
}

const MINIMAL: &str = "
name: n1
scope: demo
restapi: {listen: '127.0.0.1:8008'}
etcd3: {hosts: ['127.0.0.1:2379']}
postgresql:
  listen: '127.0.0.1:5432'
  connect_address: '127.0.0.1:5432'
  data_dir: /tmp/d
  authentication:
    superuser: {username: postgres}
    replication: {username: rep}
";

fn parse(yaml: &str) -> Result<(NodeConfig, Vec<ConfigWarning>), ConfigError> {
    parse_node_config(yaml, "test.yml", &no_env())
}

fn problems(yaml: &str) -> Vec<String> {
    match parse(yaml) {
        Err(ConfigError::Invalid { problems, .. }) => problems,
        other => panic!("expected Invalid, got {other:?}"),
    }
}

#[test]
fn minimal_config_and_defaults() {
    let (c, w) = parse(MINIMAL).unwrap_or_else(|e| panic!("{e}"));
    assert!(w.is_empty());
    assert_eq!(c.restapi.connect_address, "127.0.0.1:8008");
    assert_eq!(c.namespace, "/service");
    assert_eq!(c.postgresql.pg_ctl_timeout, 60);
    assert!(c.bootstrap.is_none());
}

#[test]
fn unknown_key_warning_has_full_path() {
    let yaml = MINIMAL.replace("  data_dir:", "  lisen: x\n  data_dir:");
    let (_, w) = parse(&yaml).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(w.len(), 1);
    assert_eq!(
        w[0].to_string(),
        "postgresql.lisen: unknown key 'postgresql.lisen'"
    );
}

#[test]
fn wrong_type_names_path() {
    let yaml = format!("{MINIMAL}  pg_ctl_timeout: abc\n");
    let p = problems(&yaml);
    assert_eq!(
        p,
        vec![r#"postgresql.pg_ctl_timeout: invalid type: string "abc", expected u64"#]
    );
}

#[test]
fn several_type_errors_and_missing_fields_at_once() {
    let yaml = "
restapi: {listen: '127.0.0.1:99999'}
etcd3: {hosts: 'a:2379,b'}
postgresql:
  pg_ctl_timeout: [1]
  remove_data_directory_on_rewind_failure: maybe
log: {level: loud}
";
    let p = problems(yaml);
    let joined = p.join("\n");
    for expected in [
        "postgresql.pg_ctl_timeout: invalid type",
        "postgresql.remove_data_directory_on_rewind_failure: invalid type",
        "name: missing",
        "scope: missing",
        "postgresql.listen: missing",
        "postgresql.connect_address: missing",
        "postgresql.data_dir: missing",
        "postgresql.authentication.superuser.username: missing",
        "postgresql.authentication.replication.username: missing",
        "restapi.listen: invalid port",
        "log.level:",
    ] {
        assert!(joined.contains(expected), "{expected} not in\n{joined}");
    }
    assert!(!joined.contains("etcd3"), "{joined}");
}

#[test]
fn missing_dcs_section() {
    let yaml = MINIMAL.replace("etcd3: {hosts: ['127.0.0.1:2379']}", "");
    assert_eq!(
        problems(&yaml),
        vec!["etcd3: missing DCS section (etcd3 or etcd)"]
    );
}

#[test]
fn etcd_forms() {
    let with = |section: &str| {
        let yaml = MINIMAL.replace("etcd3: {hosts: ['127.0.0.1:2379']}", section);
        parse(&yaml).unwrap_or_else(|e| panic!("{e}"))
    };
    let (c, _) = with("etcd3: {host: 'e1'}");
    assert_eq!(c.etcd3.hosts, vec!["e1:2379"]);
    let (c, _) = with("etcd3: {url: 'HTTP://e1:2380'}");
    assert_eq!(c.etcd3.hosts, vec!["e1:2380"]);
    assert_eq!(c.etcd3.protocol, "http");
    let (c, _) = with("etcd3: {url: 'https://e1:2380', cacert: /ca.pem, cert: /c.pem, key: /c.key, key_password: 1234}");
    assert_eq!(c.etcd3.hosts, vec!["e1:2380"]);
    assert_eq!(c.etcd3.protocol, "https");
    assert_eq!(c.etcd3.cacert, Some(PathBuf::from("/ca.pem")));
    assert_eq!(c.etcd3.key, Some(PathBuf::from("/c.key")));
    assert_eq!(
        c.etcd3.key_password.as_deref(),
        Some("1234"),
        "read as a string"
    );
    let (c, _) = with("etcd3: {urls: ['http://a:1', 'http://b:2']}");
    assert_eq!(c.etcd3.hosts, vec!["a:1", "b:2"]);
    let (c, w) = with("etcd3: {host: 'new:1'}\netcd: {host: 'old:2'}");
    assert_eq!(c.etcd3.hosts, vec!["new:1"]);
    assert_eq!(
        w[0].to_string(),
        "etcd: ignored: the etcd3 section takes precedence"
    );
}

#[test]
fn env_overrides_win() {
    let e = env(&[
        ("PATRONI_NAME", "from-env"),
        ("PATRONI_NAMESPACE", "envns/"),
        ("PATRONI_POSTGRESQL_DATA_DIR", "/env/data"),
        ("PATRONI_REPLICATION_PASSWORD", "pw"),
        ("PATRONI_ETCD3_HOSTS", "['x:1','y:2']"),
        ("PATRONI_LOG_LEVEL", "DEBUG"),
    ]);
    let (c, _) = parse_node_config(MINIMAL, "t", &e).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(c.name, "from-env");
    assert_eq!(c.namespace, "/envns");
    assert_eq!(c.postgresql.data_dir, PathBuf::from("/env/data"));
    assert_eq!(
        c.postgresql.authentication.replication.password.as_deref(),
        Some("pw")
    );
    assert_eq!(c.etcd3.hosts, vec!["x:1", "y:2"]);
    assert_eq!(c.log.level, "DEBUG");
}

#[test]
fn patroni_configuration_env_replaces_file() {
    let e = env(&[(PATRONI_CONFIGURATION, MINIMAL)]);
    let missing = PathBuf::from("/nonexistent/patronus.yml");
    let (c, _) = load_node_config(&missing, &e).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(c.name, "n1");
    match load_node_config(&missing, &no_env()) {
        Err(ConfigError::Read { path, .. }) => assert_eq!(path, missing),
        other => panic!("{other:?}"),
    }
}

#[test]
fn env_only_configuration() {
    let e = env(&[
        ("PATRONI_NAME", "n"),
        ("PATRONI_SCOPE", "s"),
        ("PATRONI_RESTAPI_LISTEN", "127.0.0.1:8008"),
        ("PATRONI_ETCD3_HOST", "127.0.0.1:2379"),
        ("PATRONI_POSTGRESQL_LISTEN", "127.0.0.1:5432"),
        ("PATRONI_POSTGRESQL_CONNECT_ADDRESS", "127.0.0.1:5432"),
        ("PATRONI_POSTGRESQL_DATA_DIR", "/d"),
        ("PATRONI_SUPERUSER_USERNAME", "postgres"),
        ("PATRONI_REPLICATION_USERNAME", "rep"),
    ]);
    let (c, w) = parse_node_config("", "empty", &e).unwrap_or_else(|e| panic!("{e}"));
    assert!(w.is_empty());
    assert_eq!(c.etcd3.hosts, vec!["127.0.0.1:2379"]);
}

#[test]
fn namespace_is_normalised() {
    let (c, _) =
        parse(&format!("{MINIMAL}namespace: service/\n")).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(c.namespace, "/service");
    assert_eq!(c.dcs_prefix(), "/service/demo");
}

#[test]
fn scalars_are_lenient() {
    let yaml =
        format!("{MINIMAL}tags: {{nofailover: 'yes', custom: 1.5}}\nwatchdog: {{mode: false}}\n")
            .replace(
                "superuser: {username: postgres}",
                "superuser: {username: postgres, password: 12345}",
            );
    let (c, _) = parse(&yaml).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        c.postgresql.authentication.superuser.password.as_deref(),
        Some("12345")
    );
    assert_eq!(c.watchdog.mode, "off");
    assert!(c.tag_bool("nofailover"));
    assert_eq!(c.failover_priority(), 0);
}

#[test]
fn bad_enums_and_initdb() {
    let yaml = format!(
        "{MINIMAL}watchdog: {{mode: sometimes}}\nlog: {{type: xml}}\nbootstrap:\n  initdb:\n    - [x]\n    - {{a: 1, b: 2}}\n    - pgdata: /x\n"
    );
    let p = problems(&yaml);
    let paths: Vec<&str> = p.iter().filter_map(|s| s.split(": ").next()).collect();
    assert_eq!(
        paths,
        vec![
            "bootstrap.initdb[0]",
            "bootstrap.initdb[1]",
            "bootstrap.initdb[2]",
            "log.type",
            "watchdog.mode"
        ]
    );
}

#[test]
fn yaml_errors_and_non_mapping_root() {
    assert!(matches!(parse("a: [1"), Err(ConfigError::Yaml { .. })));
    assert_eq!(
        problems("- a\n- b\n"),
        vec!["(root): expected a mapping of settings, found a list"]
    );
}

#[test]
fn post_init_alias_and_tag_conflict_warning() {
    let yaml = format!(
        "{MINIMAL}bootstrap: {{post_init: /bin/init.sh}}\ntags: {{nofailover: true, failover_priority: 2}}\n"
    );
    let (c, w) = parse(&yaml).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        c.bootstrap.and_then(|b| b.post_bootstrap).as_deref(),
        Some("/bin/init.sh")
    );
    assert_eq!(paths(&w), vec!["tags"]);
}

#[test]
fn restapi_tls_and_allowlist_from_file_and_environment() {
    let (c, _) = parse_node_config(
        MINIMAL,
        "test.yml",
        &env(&[
            ("PATRONI_RESTAPI_CERTFILE", "/etc/api.crt"),
            ("PATRONI_RESTAPI_KEYFILE", "/etc/api.key"),
            ("PATRONI_RESTAPI_KEYFILE_PASSWORD", "1234"),
            ("PATRONI_RESTAPI_CAFILE", "/etc/ca.crt"),
            ("PATRONI_RESTAPI_VERIFY_CLIENT", "Optional"),
            ("PATRONI_RESTAPI_ALLOWLIST", "['10.0.0.0/8', db1]"),
            ("PATRONI_RESTAPI_ALLOWLIST_INCLUDE_MEMBERS", "on"),
        ]),
    )
    .unwrap();
    let api = &c.restapi;
    assert_eq!(api.certfile, Some("/etc/api.crt".into()));
    assert_eq!(api.keyfile, Some("/etc/api.key".into()));
    // A numeric-looking password stays a string.
    assert_eq!(api.keyfile_password.as_deref(), Some("1234"));
    assert_eq!(api.cafile, Some("/etc/ca.crt".into()));
    assert_eq!(api.verify_client, crate::tls::ClientCertMode::Optional);
    assert_eq!(api.allowlist, vec!["10.0.0.0/8", "db1"]);
    assert!(api.allowlist_include_members);
    assert_eq!(api.scheme(), "https");
    // A comma-separated string is a list too; no certificate means plain HTTP.
    let yaml = MINIMAL.replace(
        "restapi: {listen: '127.0.0.1:8008'}",
        "restapi: {listen: '127.0.0.1:8008', allowlist: '127.0.0.1, 10.1.0.0/16'}",
    );
    let (c, _) = parse(&yaml).unwrap();
    assert_eq!(c.restapi.allowlist, vec!["127.0.0.1", "10.1.0.0/16"]);
    assert_eq!(c.restapi.scheme(), "http");
    let bad = MINIMAL.replace(
        "restapi: {listen: '127.0.0.1:8008'}",
        "restapi: {listen: '127.0.0.1:8008', verify_client: sometimes}",
    );
    let p = problems(&bad);
    assert!(
        p.iter().any(|p| p.contains("restapi.verify_client")),
        "{p:?}"
    );
}

#[test]
fn restapi_tls_keys_without_a_certificate() {
    let yaml = MINIMAL.replace(
        "restapi: {listen: '127.0.0.1:8008'}",
        "restapi: {listen: '127.0.0.1:8008', verify_client: required, cafile: /ca.crt}",
    );
    let p = problems(&yaml);
    assert!(
        p.iter()
            .any(|p| p.starts_with("restapi.verify_client") && p.contains("restapi.certfile")),
        "{p:?}"
    );
    let yaml = MINIMAL.replace(
        "restapi: {listen: '127.0.0.1:8008'}",
        "restapi: {listen: '127.0.0.1:8008', cafile: /ca.crt}",
    );
    let (_, w) = parse(&yaml).unwrap();
    assert_eq!(paths(&w), vec!["restapi.cafile"]);
}
