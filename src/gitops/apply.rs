//! Apply a plan: one compare-and-swap transaction on `config` and our `gitops` key, bound to
//! the revisions the plan read. A moved revision means the plan is stale; nothing is written.

use super::error::GitopsError;
use super::git::CommitInfo;
use super::plan::ClusterPlan;
use crate::dcs::Dcs;
use serde_json::{json, Map, Value};

/// The new `gitops` key value: desired tags, the applied commit, operation records kept.
pub fn gitops_value(
    previous: Option<&Value>,
    plan: &ClusterPlan,
    commit: Option<&CommitInfo>,
    now: &str,
) -> Value {
    let mut v = previous
        .cloned()
        .filter(Value::is_object)
        .unwrap_or_else(|| Value::Object(Map::new()));
    v["tags"] = Value::Object(plan.target_tags.clone());
    v["applied"] = json!({
        "commit": commit.map(|c| c.sha.clone()),
        "author": commit.map(|c| c.author.clone()),
        "commit_time": commit.map(|c| c.time.clone()),
        "applied_at": now,
        "config_version_before": plan.config_version,
        "desired": plan.applied_desired,
    });
    v
}

/// Writes the plan; Ok(false) when there was nothing to do.
pub async fn apply_plan(
    dcs: &dyn Dcs,
    plan: &ClusterPlan,
    previous_gitops: Option<&Value>,
    commit: Option<&CommitInfo>,
) -> Result<bool, GitopsError> {
    if !plan.changed {
        return Ok(false);
    }
    let now = chrono::Utc::now().to_rfc3339();
    let gitops = gitops_value(previous_gitops, plan, commit, &now);
    let writes = vec![
        (
            crate::dcs::keys::CONFIG.to_string(),
            plan.target_config.to_string(),
            plan.config_version,
        ),
        (
            crate::dcs::keys::GITOPS.to_string(),
            gitops.to_string(),
            plan.gitops_version,
        ),
    ];
    if dcs.cas_many(&writes).await? {
        Ok(true)
    } else {
        Err(GitopsError::Stale(format!(
            "cluster {}: the live configuration changed since the plan was made (config revision {}, gitops revision {}); run plan again",
            plan.scope, plan.config_version, plan.gitops_version
        )))
    }
}
