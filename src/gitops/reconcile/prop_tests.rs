//! Property tests of what the reconciler reads back from the DCS: the records of our
//! `gitops` key (any JSON: records or an error naming key and field, never a panic) and
//! drift detection with any ignore globs over any keys (non-ASCII included).

use super::drift::{detect, glob};
use super::ops::{op_records, recorded, with_record};
use crate::dcs::{Cluster, Versioned};
use crate::gitops::observed::ObservedCluster;
use crate::prop_support::{config, json_value, wild_string};
use proptest::prelude::*;
use serde_json::json;

proptest! {
    #![proptest_config(config())]

    #[test]
    fn any_gitops_key_gives_records_or_names_the_field(g in json_value(), id in wild_string()) {
        match op_records(Some(&g)) {
            Ok(_) => {
                let written = with_record(Some(&g), &id, json!({"state": "running"}));
                let written = written.map_err(|e| TestCaseError::fail(e.to_string()))?;
                prop_assert_eq!(
                    recorded(Some(&written), &id).ok().flatten(),
                    Some(json!({"state": "running"}))
                );
            }
            Err(e) => {
                let text = e.to_string();
                prop_assert!(text.contains("'gitops'"), "{text}");
                prop_assert!(text.contains("'ops'") || text.contains("'(root)'"), "{text}");
                let rewritten = with_record(Some(&g), &id, json!({}));
                prop_assert!(rewritten.is_err(), "a corrupt key is never overwritten");
            }
        }
        let c = Cluster {
            gitops: Some(Versioned { value: g, version: 3 }),
            ..Cluster::default()
        };
        let obs = ObservedCluster::from_cluster("s", &c);
        let _ = obs.recorded_tags(&id);
    }

    #[test]
    fn globs_work_on_any_text(pattern in wild_string(), key in wild_string()) {
        let _ = glob(&pattern, &key);
        prop_assert!(glob("*", &key));
        let prefix = format!("{key}*");
        prop_assert!(glob(&prefix, &key), "prefix glob");
        if !key.contains('*') {
            let (suffix, longer) = (format!("*{key}"), format!("x.{key}"));
            prop_assert!(glob(&key, &key), "literal glob");
            prop_assert!(glob(&suffix, &longer), "suffix glob");
        }
    }

    #[test]
    fn drift_never_reports_an_ignored_key(
        desired in json_value(),
        live in json_value(),
        ignore in prop::collection::vec(wild_string(), 0..3),
    ) {
        for d in detect(&desired, &live, &ignore, |_| "alert".into()) {
            prop_assert!(!ignore.iter().any(|g| glob(g, &d.key)), "{}", d.key);
        }
    }
}
