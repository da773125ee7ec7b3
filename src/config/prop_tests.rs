//! Property tests of the node YAML loader: any YAML document, and a valid node file with a
//! random value of a random type at a path the loader reads, never panic; the result is a
//! configuration or an error whose text names the file and, for a mutated path, the path.

use super::error::ConfigError;
use super::load::parse_node_config;
use super::merge::set_path;
use super::yaml::parse_yaml_str;
use super::{validate_dynamic, DynamicConfig, NodeConfig};
use crate::prop_support::{config, json_value, wild_string};
use proptest::prelude::*;
use serde_json::Value;
use std::collections::BTreeMap;

const FIXTURE: &str = include_str!("../../tests/fixtures/debian12-etcd3.yml");

/// Paths of a node file the loader reads (sections, scalars, lists, open maps).
const PATHS: &[&str] = &[
    "name",
    "scope",
    "namespace",
    "restapi",
    "restapi.listen",
    "restapi.connect_address",
    "restapi.authentication",
    "etcd3",
    "etcd3.hosts",
    "etcd3.port",
    "etcd3.protocol",
    "bootstrap",
    "bootstrap.dcs",
    "bootstrap.dcs.ttl",
    "bootstrap.dcs.postgresql.parameters",
    "bootstrap.initdb",
    "bootstrap.pg_hba",
    "bootstrap.post_bootstrap",
    "postgresql",
    "postgresql.listen",
    "postgresql.connect_address",
    "postgresql.data_dir",
    "postgresql.bin_dir",
    "postgresql.authentication",
    "postgresql.authentication.superuser",
    "postgresql.authentication.superuser.username",
    "postgresql.authentication.replication.password",
    "postgresql.authentication.rewind",
    "postgresql.parameters",
    "postgresql.pg_hba",
    "postgresql.pg_ctl_timeout",
    "postgresql.use_pg_rewind",
    "postgresql.create_replica_methods",
    "tags",
    "tags.nofailover",
    "tags.failover_priority",
    "log",
    "log.level",
    "log.type",
    "log.dir",
    "watchdog",
    "watchdog.mode",
    "watchdog.safety_margin",
];

/// Uses every accessor of a loaded configuration (they must not panic either).
fn exercise(c: &NodeConfig) {
    let _ = (
        c.failover_priority(),
        c.tag_view().conflicts(),
        c.dcs_prefix(),
    );
    let _ = (c.restapi.listen_host_port(), c.restapi.connect_host_port());
    let pg = &c.postgresql;
    let _ = (pg.listen_hosts(), pg.listen_port(), pg.connect_host_port());
    let _ = (pg.bin("pg_ctl"), pg.pgpass_path(&c.name));
    if let Some(b) = &c.bootstrap {
        let d = DynamicConfig::from_value(&b.dcs);
        assert!(d.warnings.iter().all(|w| !w.is_empty()));
        assert!(validate_dynamic(&b.dcs).iter().all(|p| !p.is_empty()));
    }
}

fn check(result: Result<(NodeConfig, Vec<super::ConfigWarning>), ConfigError>) -> Option<String> {
    match result {
        Ok((c, warnings)) => {
            exercise(&c);
            assert!(warnings
                .iter()
                .all(|w| !w.path.is_empty() && !w.message.is_empty()));
            None
        }
        Err(e) => {
            let text = e.to_string();
            assert!(text.starts_with("node.yml"), "names the file: {text}");
            if let ConfigError::Invalid { problems, .. } = &e {
                assert!(!problems.is_empty());
                assert!(problems.iter().all(|p| p.contains(": ")), "{problems:?}");
            }
            Some(text)
        }
    }
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn any_yaml_text_is_a_config_or_an_error(text in wild_string()) {
        check(parse_node_config(&text, "node.yml", &BTreeMap::new()));
    }

    #[test]
    fn any_yaml_tree_is_a_config_or_an_error(tree in json_value()) {
        let yaml = serde_yaml::to_string(&tree).unwrap_or_default();
        check(parse_node_config(&yaml, "node.yml", &BTreeMap::new()));
    }

    #[test]
    fn a_wrong_value_at_a_known_path_is_named(
        path in prop::sample::select(PATHS),
        value in json_value(),
    ) {
        let mut tree = parse_yaml_str(FIXTURE).unwrap_or(Value::Null);
        prop_assume!(set_path(&mut tree, path, value).is_ok());
        let yaml = serde_yaml::to_string(&tree).unwrap_or_default();
        if let Some(text) = check(parse_node_config(&yaml, "node.yml", &BTreeMap::new())) {
            let section = path.split('.').next().unwrap_or(path);
            prop_assert!(text.contains(section), "{path}: {text}");
        }
    }

    #[test]
    fn any_environment_override_is_a_config_or_an_error(
        name in prop::sample::select(vec![
            "PATRONI_NAME", "PATRONI_SCOPE", "PATRONI_NAMESPACE", "PATRONI_ETCD3_HOSTS",
            "PATRONI_ETCD3_HOST", "PATRONI_ETCD3_URL", "PATRONI_ETCD_HOSTS",
            "PATRONI_RESTAPI_LISTEN", "PATRONI_POSTGRESQL_LISTEN", "PATRONI_LOG_LEVEL",
            "PATRONI_SUPERUSER_PASSWORD", "PATRONI_POSTGRESQL_DATA_DIR",
        ]),
        value in wild_string(),
    ) {
        let env = BTreeMap::from([(name.to_string(), value)]);
        check(parse_node_config(FIXTURE, "node.yml", &env));
    }
}
