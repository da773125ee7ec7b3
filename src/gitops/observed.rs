//! The observed state of a cluster: read live from the DCS, or from a file for offline plans
//! (`--observed FILE`: the `status/<scope>/observed.yaml` committed back, or an export).

use crate::dcs::Cluster;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// One member as observed.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ObservedMember {
    /// Member name.
    pub name: String,
    /// `leader` or `replica`.
    #[serde(default)]
    pub role: String,
    /// PostgreSQL state.
    #[serde(default)]
    pub state: String,
    /// Published (effective) tags.
    #[serde(default)]
    pub tags: Map<String, Value>,
    /// Pending restart flag.
    #[serde(default)]
    pub pending_restart: bool,
    /// Pending restart reasons.
    #[serde(default, skip_serializing_if = "Map::is_empty")]
    pub pending_restart_reason: Map<String, Value>,
    /// Timeline.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeline: Option<u64>,
}

/// One cluster as observed.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ObservedCluster {
    /// Scope.
    pub scope: String,
    /// True when the cluster exists in the DCS (`initialize` or `config` present).
    #[serde(default)]
    pub exists: bool,
    /// Live dynamic config.
    #[serde(default)]
    pub config: Option<Value>,
    /// `mod_revision` of `config` (0 = absent).
    #[serde(default)]
    pub config_version: i64,
    /// Our `gitops` key.
    #[serde(default)]
    pub gitops: Option<Value>,
    /// `mod_revision` of `gitops` (0 = absent).
    #[serde(default)]
    pub gitops_version: i64,
    /// Leader name.
    #[serde(default)]
    pub leader: Option<String>,
    /// Members.
    #[serde(default)]
    pub members: Vec<ObservedMember>,
}

impl ObservedCluster {
    /// Builds the observation from a DCS snapshot.
    pub fn from_cluster(scope: &str, c: &Cluster) -> ObservedCluster {
        let leader = c.leader_name().map(str::to_string);
        ObservedCluster {
            scope: scope.to_string(),
            exists: c.initialize.is_some() || c.config.is_some(),
            config: c.config.as_ref().map(|v| v.value.clone()),
            config_version: c.config.as_ref().map_or(0, |v| v.version),
            gitops: c.gitops.as_ref().map(|v| v.value.clone()),
            gitops_version: c.gitops.as_ref().map_or(0, |v| v.version),
            members: c
                .members
                .iter()
                .map(|m| ObservedMember {
                    name: m.name.clone(),
                    role: if leader.as_deref() == Some(m.name.as_str()) {
                        "leader".into()
                    } else {
                        "replica".into()
                    },
                    state: m
                        .data
                        .replication_state
                        .clone()
                        .unwrap_or(m.data.state.clone()),
                    tags: m.data.tags.clone(),
                    pending_restart: m.data.pending_restart.unwrap_or(false),
                    pending_restart_reason: m
                        .data
                        .pending_restart_reason
                        .clone()
                        .unwrap_or_default(),
                    timeline: m.data.timeline,
                })
                .collect(),
            leader,
        }
    }

    /// Desired tags recorded in our `gitops` key for `member`.
    pub fn recorded_tags(&self, member: &str) -> Map<String, Value> {
        self.gitops
            .as_ref()
            .and_then(|g| g.get("tags"))
            .and_then(|t| t.get(member))
            .and_then(Value::as_object)
            .cloned()
            .unwrap_or_default()
    }
}

/// Reads observed clusters from a file: a single cluster document, or `{clusters: [...]}`.
pub fn load_observed(path: &std::path::Path) -> Result<Vec<ObservedCluster>, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let v = crate::config::yaml::parse_yaml_str(&text)
        .map_err(|e| format!("{}: invalid YAML: {e}", path.display()))?;
    let list = match v.get("clusters") {
        Some(Value::Array(a)) => a.clone(),
        _ => vec![v],
    };
    list.into_iter()
        .map(|c| {
            let mut oc: ObservedCluster =
                serde_json::from_value(c).map_err(|e| format!("{}: {e}", path.display()))?;
            oc.exists = oc.exists || oc.config.is_some();
            Ok(oc)
        })
        .collect()
}
