//! What a new desired commit does to one cluster (pure): nothing when the cluster's own
//! desired state did not change; otherwise the drift measured against the previously applied
//! desired state (recorded before anything is written), and the config to apply, which keeps
//! the live value of every drifted `alert`/`adopt` key the commit did not touch.

use super::drift::{detect, Drift};
use crate::gitops::desired::DesiredCluster;
use crate::gitops::plan::leaves;
use serde_json::Value;
use std::collections::BTreeMap;

/// The previously applied desired state a commit is compared with.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Base<'a> {
    /// `applied.desired` of the `gitops` key (or the reconciler's previous desired state).
    Recorded(&'a Value),
    /// Applied before by a version that did not record it: the previous git values are
    /// unknown, so every live value that differs from the new commit is reported as drift
    /// before it is overwritten (over-reporting rather than overwriting in silence).
    Unknown,
    /// Never applied: the first apply adopts the cluster; nothing to report.
    Never,
}

/// The decision for one cluster.
#[derive(Debug, Clone, PartialEq)]
pub enum CommitEffect {
    /// The cluster's desired state is the one already applied: leave it (and its drift) alone.
    Unchanged,
    /// Apply `desired`; record `drift` first.
    Apply {
        /// The desired cluster to plan: the commit's, with untouched drifted keys kept live.
        desired: Box<DesiredCluster>,
        /// Drift to record before applying.
        drift: Vec<Drift>,
        /// Keys whose live (drifted) value is kept.
        kept: Vec<String>,
    },
}

/// Decides what `new` does to a cluster whose live config is `live`.
pub fn on_commit(
    base: Base<'_>,
    new: &DesiredCluster,
    live: &Value,
    ignore: &[String],
    policy: impl Fn(&str) -> String,
) -> CommitEffect {
    let old_config = match base {
        Base::Recorded(b) if *b == new.applied_form() => return CommitEffect::Unchanged,
        Base::Recorded(b) => b.get("config").cloned().unwrap_or(Value::Null),
        Base::Unknown => new.config.clone(),
        Base::Never => {
            return CommitEffect::Apply {
                desired: Box::new(new.clone()),
                drift: vec![],
                kept: vec![],
            }
        }
    };
    let drift = detect(&old_config, live, ignore, policy);
    let (mut old, mut want) = (BTreeMap::new(), BTreeMap::new());
    leaves("", &old_config, &mut old);
    leaves("", &new.config, &mut want);
    let mut desired = new.clone();
    let mut kept = Vec::new();
    for d in &drift {
        let untouched =
            old.get(&d.key).unwrap_or(&Value::Null) == want.get(&d.key).unwrap_or(&Value::Null);
        if matches!(base, Base::Recorded(_)) && untouched && d.policy != "revert" {
            let _ = crate::config::set_path(&mut desired.config, &d.key, d.live.clone());
            kept.push(d.key.clone());
        }
    }
    CommitEffect::Apply {
        desired: Box::new(desired),
        drift,
        kept,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn cluster(config: Value) -> DesiredCluster {
        DesiredCluster {
            scope: "a".into(),
            file: "clusters/a/cluster.yaml".into(),
            config,
            tags: Default::default(),
            prune: false,
            restart_policy: "manual".into(),
            windows: vec![],
            ops: vec![],
            dcs: None,
        }
    }

    fn params(p: Value) -> Value {
        json!({"postgresql": {"parameters": p}})
    }

    fn alert(_: &str) -> String {
        "alert".into()
    }

    #[test]
    fn a_cluster_whose_desired_state_did_not_change_is_left_alone() {
        let c = cluster(params(json!({"work_mem": "8MB"})));
        let live = params(json!({"work_mem": "64MB"}));
        let base = c.applied_form();
        assert_eq!(
            on_commit(Base::Recorded(&base), &c, &live, &[], alert),
            CommitEffect::Unchanged
        );
    }

    #[test]
    fn untouched_alert_drift_is_recorded_and_kept_touched_keys_are_applied() {
        let old = cluster(params(json!({"work_mem": "8MB", "temp_buffers": "16MB"})));
        let new = cluster(params(json!({"work_mem": "8MB", "temp_buffers": "32MB"})));
        let live = params(json!({"work_mem": "64MB", "temp_buffers": "24MB"}));
        let base = old.applied_form();
        let CommitEffect::Apply {
            desired,
            drift,
            kept,
        } = on_commit(Base::Recorded(&base), &new, &live, &[], alert)
        else {
            panic!("the cluster changed");
        };
        let keys: Vec<&str> = drift.iter().map(|d| d.key.as_str()).collect();
        assert_eq!(
            keys,
            [
                "postgresql.parameters.temp_buffers",
                "postgresql.parameters.work_mem"
            ]
        );
        assert_eq!(drift[1].live, json!("64MB"));
        assert_eq!(drift[1].git, json!("8MB"));
        assert_eq!(kept, ["postgresql.parameters.work_mem"]);
        assert_eq!(
            desired.config,
            params(json!({"work_mem": "64MB", "temp_buffers": "32MB"})),
            "the commit's own change wins; the untouched drifted key keeps its live value"
        );
    }

    #[test]
    fn revert_policy_drift_is_recorded_and_overwritten() {
        let old = cluster(params(json!({"work_mem": "8MB"})));
        let new = cluster(params(json!({"work_mem": "8MB", "temp_buffers": "8MB"})));
        let live = params(json!({"work_mem": "64MB"}));
        let base = old.applied_form();
        let effect = on_commit(Base::Recorded(&base), &new, &live, &[], |_| "revert".into());
        let CommitEffect::Apply {
            desired,
            drift,
            kept,
        } = effect
        else {
            panic!("the cluster changed");
        };
        assert_eq!(drift.len(), 1);
        assert!(kept.is_empty());
        assert_eq!(*desired, new);
    }

    #[test]
    fn a_key_removed_live_stays_removed_when_the_commit_does_not_touch_it() {
        let old = cluster(json!({"ttl": 30, "loop_wait": 10}));
        let new = cluster(json!({"ttl": 30, "loop_wait": 10, "retry_timeout": 10}));
        let live = json!({"loop_wait": 10});
        let base = old.applied_form();
        let CommitEffect::Apply { desired, kept, .. } =
            on_commit(Base::Recorded(&base), &new, &live, &[], alert)
        else {
            panic!("the cluster changed");
        };
        assert_eq!(kept, ["ttl"]);
        assert_eq!(
            desired.config,
            json!({"loop_wait": 10, "retry_timeout": 10})
        );
    }

    #[test]
    fn unknown_base_reports_every_difference_and_keeps_nothing() {
        let new = cluster(params(json!({"work_mem": "8MB"})));
        let live = params(json!({"work_mem": "64MB"}));
        let CommitEffect::Apply {
            desired,
            drift,
            kept,
        } = on_commit(Base::Unknown, &new, &live, &[], alert)
        else {
            panic!("an unknown base is applied");
        };
        assert_eq!(drift.len(), 1);
        assert!(kept.is_empty());
        assert_eq!(*desired, new);
        let first = on_commit(Base::Never, &new, &live, &[], alert);
        assert!(matches!(first, CommitEffect::Apply { drift, .. } if drift.is_empty()));
    }

    #[test]
    fn ignored_keys_are_neither_reported_nor_kept() {
        let old = cluster(params(json!({"work_mem": "8MB"})));
        let new = cluster(json!({"ttl": 30, "postgresql": {"parameters": {"work_mem": "8MB"}}}));
        let live = params(json!({"work_mem": "64MB"}));
        let base = old.applied_form();
        let ignore = ["postgresql.parameters.*".to_string()];
        let CommitEffect::Apply { drift, kept, .. } =
            on_commit(Base::Recorded(&base), &new, &live, &ignore, alert)
        else {
            panic!("the cluster changed");
        };
        assert!(drift.is_empty() && kept.is_empty());
    }
}
