//! Property tests of the desired-state repository files (`patronus.yaml`,
//! `clusters/<scope>/cluster.yaml`, `clusters/<scope>/ops/*.yaml`): any YAML document, and
//! valid files with a random value of a random type at a path that is read, give a desired
//! state or problems naming the file and the reason — never a panic; a valid state plans
//! against any live configuration.

use super::desired::YamlFile;
use super::guc::GucCatalog;
use super::observed::ObservedCluster;
use super::plan::plan_cluster;
use super::validate::validate_files;
use super::window::{open_at, Window};
use crate::config::merge::set_path;
use crate::config::yaml::parse_yaml_str;
use crate::prop_support::{config, json_value, wild_string};
use proptest::prelude::*;
use serde_json::Value;
use std::path::Path;

const SETTINGS: &str = include_str!("../../examples/gitops/patronus.yaml");
const CLUSTER: &str = include_str!("../../examples/gitops/clusters/demo/cluster.yaml");
const OP: &str = "type: switchover\ncandidate: node2\nnot_before: '2030-12-01T02:00:00Z'\n\
                  window: Sat 02:00-04:00 UTC\npreconditions: {max_lag_bytes: 1048576}\n";

const SETTINGS_REL: &str = "patronus.yaml";
const CLUSTER_REL: &str = "clusters/demo/cluster.yaml";
const OP_REL: &str = "clusters/demo/ops/sw.yaml";

/// Paths read from each file.
const PATHS: &[(&str, &str)] = &[
    (SETTINGS_REL, "dcs"),
    (SETTINGS_REL, "dcs.etcd3.hosts"),
    (SETTINGS_REL, "dcs.namespace"),
    (SETTINGS_REL, "drift.default"),
    (SETTINGS_REL, "drift.keys"),
    (SETTINGS_REL, "ignore"),
    (SETTINGS_REL, "postgresql_major"),
    (CLUSTER_REL, "config"),
    (CLUSTER_REL, "config.ttl"),
    (CLUSTER_REL, "config.loop_wait"),
    (CLUSTER_REL, "config.synchronous_mode"),
    (CLUSTER_REL, "config.postgresql"),
    (CLUSTER_REL, "config.postgresql.parameters"),
    (CLUSTER_REL, "config.postgresql.parameters.work_mem"),
    (CLUSTER_REL, "config.postgresql.parameters.max_connections"),
    (CLUSTER_REL, "config.slots"),
    (CLUSTER_REL, "members"),
    (CLUSTER_REL, "members.node3.tags"),
    (CLUSTER_REL, "prune"),
    (CLUSTER_REL, "restart_policy"),
    (CLUSTER_REL, "maintenance_windows"),
    (OP_REL, "type"),
    (OP_REL, "id"),
    (OP_REL, "candidate"),
    (OP_REL, "not_before"),
    (OP_REL, "window"),
    (OP_REL, "preconditions"),
    (OP_REL, "preconditions.max_lag_bytes"),
    (OP_REL, "members"),
];

fn files() -> Vec<YamlFile> {
    [
        (SETTINGS_REL, SETTINGS),
        (CLUSTER_REL, CLUSTER),
        (OP_REL, OP),
    ]
    .into_iter()
    .map(|(rel, text)| YamlFile {
        rel: rel.to_string(),
        value: parse_yaml_str(text).unwrap_or(Value::Null),
    })
    .collect()
}

/// Validates; on success plans the state against a live configuration.
fn check(files: &[YamlFile], live: &Value) -> Result<(), Vec<String>> {
    let root = Path::new("/nonexistent/patronus-prop-repo");
    match validate_files(root, files, vec![]) {
        Ok(state) => {
            let obs = ObservedCluster {
                scope: "demo".into(),
                exists: true,
                config: Some(live.clone()),
                gitops: Some(live.clone()),
                ..ObservedCluster::default()
            };
            for c in &state.clusters {
                let _ = plan_cluster(c, &obs, GucCatalog::postgresql15());
                let _ = open_at(&c.windows, chrono::Utc::now());
            }
            let _ = (state.settings.ignore(), state.settings.etcd_hosts());
            let _ = state
                .settings
                .drift_policy("postgresql.parameters.work_mem");
            Ok(())
        }
        Err(problems) => {
            let known = [SETTINGS_REL, CLUSTER_REL, OP_REL, "clusters/"];
            for p in &problems {
                assert!(known.contains(&p.file.as_str()), "{p}");
                assert!(!p.reason.is_empty(), "{p}");
            }
            Err(problems.iter().map(ToString::to_string).collect())
        }
    }
}

#[test]
fn the_base_files_are_valid_and_plan() {
    assert_eq!(check(&files(), &Value::Null), Ok(()));
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn any_document_in_any_file_is_state_or_problems(
        which in 0usize..3,
        doc in prop_oneof![
            json_value(),
            wild_string().prop_map(|s| parse_yaml_str(&s).unwrap_or(Value::String(s))),
        ],
    ) {
        let mut fs = files();
        fs[which].value = doc;
        let _ = check(&fs, &Value::Null);
    }

    #[test]
    fn a_wrong_value_at_a_read_path_names_its_file(
        target in prop::sample::select(PATHS),
        value in json_value(),
    ) {
        let (rel, path) = target;
        let mut fs = files();
        let Some(f) = fs.iter_mut().find(|f| f.rel == rel) else {
            return Err(TestCaseError::fail("unknown file"));
        };
        prop_assume!(set_path(&mut f.value, path, value).is_ok());
        if let Err(problems) = check(&fs, &Value::Null) {
            prop_assert!(problems.iter().any(|p| p.starts_with(rel)), "{rel} {path}: {problems:?}");
        }
    }

    #[test]
    fn a_valid_state_plans_against_any_live_config(live in json_value()) {
        prop_assert_eq!(check(&files(), &live), Ok(()));
    }

    #[test]
    fn windows_parse_or_explain(text in wild_string()) {
        if let Err(e) = Window::parse(&text) {
            prop_assert!(e.contains("maintenance window"), "{e}");
        }
        let _ = open_at(&[text], chrono::Utc::now());
    }
}
