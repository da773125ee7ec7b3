//! The plan (pure): what `apply` would change for one cluster, bound to the revisions read.
//!
//! Managed keys are the leaves present in git (objects are walked, arrays are leaves); live
//! leaves absent from git are listed as unmanaged and kept unless the cluster sets `prune`.

use super::desired::DesiredCluster;
use super::guc::{ChangeClass, GucCatalog};
use super::observed::ObservedCluster;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::collections::BTreeMap;

/// One PostgreSQL parameter change.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ParamChange {
    /// Parameter name.
    pub name: String,
    /// Live value (None = not set).
    pub old: Option<String>,
    /// Desired value (None = removed).
    pub new: Option<String>,
    /// reload / restart / restart-replicas-first / restart-primary-first.
    pub class: ChangeClass,
}

/// One member's tag change.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TagChange {
    /// Member.
    pub member: String,
    /// Tag name.
    pub tag: String,
    /// Recorded desired value before.
    pub old: Option<Value>,
    /// New desired value (None = removed).
    pub new: Option<Value>,
}

/// One permanent replication slot added, removed or redefined.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SlotChange {
    /// Slot name.
    pub name: String,
    /// Live definition (None = absent).
    pub old: Option<Value>,
    /// Desired definition (None = removed).
    pub new: Option<Value>,
}

impl SlotChange {
    /// `added`, `removed` or `changed`.
    pub fn verb(&self) -> &'static str {
        match (&self.old, &self.new) {
            (None, _) => "added",
            (_, None) => "removed",
            _ => "changed",
        }
    }
}

/// The plan for one cluster.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClusterPlan {
    /// Scope.
    pub scope: String,
    /// Unified diff of the dynamic config (YAML).
    pub config_diff: String,
    /// Parameter changes with their classification.
    pub params: Vec<ParamChange>,
    /// Restart waves in order (member names), when a restart is needed.
    pub restart_waves: Vec<Vec<String>>,
    /// Tag changes.
    pub tags: Vec<TagChange>,
    /// Permanent slots added, removed or redefined.
    #[serde(default)]
    pub slots: Vec<SlotChange>,
    /// Live keys not managed by git (dotted paths).
    pub unmanaged: Vec<String>,
    /// Operations declared and not yet run.
    pub ops_pending: Vec<String>,
    /// Things an operator should know.
    pub warnings: Vec<String>,
    /// Target config to write.
    pub target_config: Value,
    /// Target gitops key value (tags part).
    pub target_tags: Map<String, Value>,
    /// `config` revision the plan was made against.
    pub config_version: i64,
    /// `gitops` revision the plan was made against.
    pub gitops_version: i64,
    /// True when applying would change something.
    pub changed: bool,
    /// The desired state recorded as `applied.desired` when the plan is applied (see
    /// [`DesiredCluster::applied_form`]).
    #[serde(skip)]
    pub applied_desired: Value,
}

/// Flattens a JSON tree into dotted leaf paths (objects are walked, arrays are leaves).
pub fn leaves(prefix: &str, v: &Value, out: &mut BTreeMap<String, Value>) {
    match v {
        Value::Object(m) if !m.is_empty() => {
            for (k, x) in m {
                let p = if prefix.is_empty() {
                    k.clone()
                } else {
                    format!("{prefix}.{k}")
                };
                leaves(&p, x, out);
            }
        }
        _ => {
            if !prefix.is_empty() {
                out.insert(prefix.to_string(), v.clone());
            }
        }
    }
}

fn set_leaf(root: &mut Value, dotted: &str, v: Value) {
    let _ = crate::config::set_path(root, dotted, v);
}

fn remove_leaf(root: &mut Value, dotted: &str) {
    let _ = crate::config::set_path(root, dotted, Value::Null);
}

fn text(v: &Value) -> Option<String> {
    crate::postgres::params::param_to_string(v)
}

/// Computes the target config: live config with git's leaves set, git's nulls removed, and
/// (with prune) everything else removed.
pub fn target_config(desired: &DesiredCluster, live: Option<&Value>) -> (Value, Vec<String>) {
    let live = live.cloned().unwrap_or_else(|| Value::Object(Map::new()));
    let mut want = BTreeMap::new();
    leaves("", &desired.config, &mut want);
    let mut have = BTreeMap::new();
    leaves("", &live, &mut have);
    let unmanaged: Vec<String> = have
        .keys()
        .filter(|k| !want.contains_key(*k))
        .cloned()
        .collect();
    let mut target = if desired.prune {
        Value::Object(Map::new())
    } else {
        live
    };
    for (k, v) in &want {
        if v.is_null() {
            remove_leaf(&mut target, k);
        } else {
            set_leaf(&mut target, k, v.clone());
        }
    }
    // A `slots` mapping in git is the whole set: live slots it does not name are removed.
    let mut unmanaged = if desired.prune { vec![] } else { unmanaged };
    if let (Some(Value::Object(slots)), Value::Object(t)) =
        (desired.config.get("slots"), &mut target)
    {
        let set: Map<String, Value> = slots
            .iter()
            .filter(|(_, v)| !v.is_null())
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        if set.is_empty() {
            t.remove("slots");
        } else {
            t.insert("slots".into(), Value::Object(set));
        }
        unmanaged.retain(|k| !k.starts_with("slots."));
    }
    if standby::apply_section(&desired.config, &mut target) {
        unmanaged.retain(|k| !k.starts_with("standby_cluster."));
    }
    (target, unmanaged)
}

/// The permanent slots that differ between the live and the target config.
pub fn slot_changes(live: &Value, target: &Value) -> Vec<SlotChange> {
    let empty = Map::new();
    let slots = |v: &Value| {
        v.get("slots")
            .and_then(Value::as_object)
            .cloned()
            .unwrap_or_else(|| empty.clone())
    };
    let (old, new) = (slots(live), slots(target));
    let mut names: Vec<&String> = old.keys().chain(new.keys()).collect();
    names.sort();
    names.dedup();
    names
        .into_iter()
        .filter_map(|n| {
            let (o, w) = (old.get(n).cloned(), new.get(n).cloned());
            (o != w).then(|| SlotChange {
                name: n.clone(),
                old: o,
                new: w,
            })
        })
        .collect()
}

/// `logical postgres/test_decoding` or `physical`, for plan output.
pub fn slot_summary(def: &Value) -> String {
    let t = |k: &str| def.get(k).and_then(Value::as_str).unwrap_or("");
    let implicit = t("type").is_empty() && !t("database").is_empty() && !t("plugin").is_empty();
    if t("type") == "logical" || implicit {
        format!("logical {}/{}", t("database"), t("plugin"))
    } else {
        "physical".into()
    }
}

fn yaml(v: &Value) -> String {
    serde_yaml::to_string(v).unwrap_or_default()
}

/// Restart waves for the strictest restart class among the changes.
fn waves(params: &[ParamChange], obs: &ObservedCluster) -> Vec<Vec<String>> {
    let needs = |c: &ChangeClass| {
        matches!(
            c,
            ChangeClass::Restart
                | ChangeClass::RestartReplicasFirst
                | ChangeClass::RestartPrimaryFirst
        )
    };
    if !params.iter().any(|p| needs(&p.class)) {
        return vec![];
    }
    let primary: Vec<String> = obs.leader.iter().cloned().collect();
    let replicas: Vec<String> = obs
        .members
        .iter()
        .filter(|m| Some(&m.name) != obs.leader.as_ref())
        .map(|m| m.name.clone())
        .collect();
    let primary_first = params
        .iter()
        .any(|p| p.class == ChangeClass::RestartPrimaryFirst);
    let mut w: Vec<Vec<String>> = Vec::new();
    let replica_waves = replicas.into_iter().map(|r| vec![r]);
    if primary_first {
        w.push(primary);
        w.extend(replica_waves);
    } else {
        w.extend(replica_waves);
        w.push(primary);
    }
    w.retain(|x| !x.is_empty());
    w
}

fn num(v: Option<&Value>) -> Option<i64> {
    v.and_then(|x| {
        x.as_i64()
            .or_else(|| x.as_str().and_then(|s| s.parse().ok()))
    })
}

fn warnings(
    desired: &DesiredCluster,
    obs: &ObservedCluster,
    target: &Value,
    tags: &Map<String, Value>,
) -> Vec<String> {
    let mut w = Vec::new();
    let members = obs.members.len() as i64;
    let can_fail_over = obs
        .members
        .iter()
        .filter(|m| Some(&m.name) != obs.leader.as_ref())
        .any(|m| {
            let t = tags
                .get(&m.name)
                .and_then(Value::as_object)
                .cloned()
                .unwrap_or_else(|| m.tags.clone());
            !crate::config::Tags::of(&t).nofailover()
        });
    if members > 1 && !can_fail_over {
        w.push(
            "no replica is left that can fail over (all are nofailover or failover_priority 0)"
                .into(),
        );
    }
    let slots = target
        .get("slots")
        .and_then(Value::as_object)
        .map_or(0, |s| s.len() as i64);
    let params = target.pointer("/postgresql/parameters");
    for p in ["max_wal_senders", "max_replication_slots"] {
        if let Some(n) = num(params.and_then(|x| x.get(p))) {
            if n < members + slots {
                w.push(format!(
                    "{p} = {n} is below members + slots ({})",
                    members + slots
                ));
            }
        }
    }
    let strict = target
        .get("synchronous_mode_strict")
        .and_then(crate::config::tags::parse_bool)
        .unwrap_or(false);
    if strict && members <= 1 {
        w.push("synchronous_mode_strict with a single member blocks every commit".into());
    }
    if !obs.exists {
        w.push(format!(
            "cluster {} does not exist in the DCS yet",
            desired.scope
        ));
    }
    w
}

/// The parameter mappings of `postgresql`: the base one and the role-specific ones (see
/// [`crate::config::dynamic_roles`]).
const PARAMETER_KEYS: [&str; 3] = ["parameters", "parameters_primary", "parameters_replica"];

/// Changes of the parameter mapping `postgresql.<key>`; names of a role-specific mapping are
/// shown as `<key>.<name>` (e.g. `parameters_replica.log_min_duration_statement`).
fn param_changes(
    before: &Value,
    target: &Value,
    key: &str,
    catalog: &GucCatalog,
) -> Vec<ParamChange> {
    let map = |v: &Value| {
        v.get("postgresql")
            .and_then(|p| p.get(key))
            .and_then(Value::as_object)
            .cloned()
            .unwrap_or_default()
    };
    let (old_params, new_params) = (map(before), map(target));
    let mut names: Vec<&String> = old_params.keys().chain(new_params.keys()).collect();
    names.sort();
    names.dedup();
    names
        .into_iter()
        .filter_map(|n| {
            let (o, w) = (
                old_params.get(n).and_then(text),
                new_params.get(n).and_then(text),
            );
            let shown = |v: Option<String>| v.map(|v| crate::secrets::redact_setting(n, &v));
            let name = if key == "parameters" {
                n.clone()
            } else {
                format!("{key}.{n}")
            };
            (o != w).then(|| ParamChange {
                name,
                class: catalog.classify(n, o.as_deref(), w.as_deref()),
                old: shown(o),
                new: shown(w),
            })
        })
        .collect()
}

/// Plans one cluster against its observation.
pub fn plan_cluster(
    desired: &DesiredCluster,
    obs: &ObservedCluster,
    catalog: &GucCatalog,
) -> ClusterPlan {
    plan_cluster_as(desired, obs, catalog, desired.applied_form())
}

/// The `applied.desired` record of the `gitops` key, when there is one.
pub fn recorded_desired(obs: &ObservedCluster) -> Option<&Value> {
    obs.gitops
        .as_ref()
        .and_then(|g| g.pointer("/applied/desired"))
        .filter(|v| !v.is_null())
}

/// Plans `desired` (which may keep live values the commit did not touch) and records
/// `applied` as the desired state the commit declared. A recorded desired state that differs
/// from `applied` counts as a change even when the DCS values already match.
pub fn plan_cluster_as(
    desired: &DesiredCluster,
    obs: &ObservedCluster,
    catalog: &GucCatalog,
    applied: Value,
) -> ClusterPlan {
    let live = obs.config.as_ref();
    let (target, unmanaged) = target_config(desired, live);
    let empty = Value::Object(Map::new());
    let before = live.unwrap_or(&empty);
    let config_diff = config_diff(before, &target);
    let params: Vec<ParamChange> = PARAMETER_KEYS
        .iter()
        .flat_map(|key| param_changes(before, &target, key, catalog))
        .collect();
    let (tags, target_tags) = tag_changes(desired, obs);
    let ops_pending = pending_ops(desired, obs);
    let mut warnings = warnings(desired, obs, &target, &target_tags);
    warnings.extend(standby::role_change_warning(before, &target));
    let slots = slot_changes(before, &target);
    let record_moved = recorded_desired(obs).is_some_and(|r| r != &applied);
    let changed = !config_diff.is_empty() || !tags.is_empty() || record_moved;
    ClusterPlan {
        scope: desired.scope.clone(),
        restart_waves: waves(&params, obs),
        config_diff,
        params,
        tags,
        slots,
        unmanaged,
        ops_pending,
        warnings,
        target_config: target,
        target_tags,
        config_version: obs.config_version,
        gitops_version: obs.gitops_version,
        changed,
        applied_desired: applied,
    }
}

/// The unified diff live → git of the whole config, empty when equal. Shown to people
/// (terminal, pull-request comment): secrets redacted.
fn config_diff(before: &Value, target: &Value) -> String {
    if before == target {
        return String::new();
    }
    let (b, t) = (
        yaml(&crate::secrets::redact_json(before)),
        yaml(&crate::secrets::redact_json(target)),
    );
    similar::TextDiff::from_lines(b.as_str(), t.as_str())
        .unified_diff()
        .context_radius(3)
        .header("live", "git")
        .to_string()
}

/// Each declared tag that differs from the recorded one (a null declared value removes
/// it), and the tags to record per member (nulls dropped).
fn tag_changes(
    desired: &DesiredCluster,
    obs: &ObservedCluster,
) -> (Vec<TagChange>, Map<String, Value>) {
    let mut target_tags = Map::new();
    let mut tags = Vec::new();
    for (member, want) in &desired.tags {
        let had = obs.recorded_tags(member);
        let mut keys: Vec<&String> = had.keys().chain(want.keys()).collect();
        keys.sort();
        keys.dedup();
        for k in keys {
            let (o, n) = (
                had.get(k).cloned(),
                want.get(k).cloned().filter(|v| !v.is_null()),
            );
            if o != n {
                tags.push(TagChange {
                    member: member.clone(),
                    tag: k.clone(),
                    old: o,
                    new: n,
                });
            }
        }
        let clean: Map<String, Value> = want
            .iter()
            .filter(|(_, v)| !v.is_null())
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        target_tags.insert(member.clone(), Value::Object(clean));
    }
    (tags, target_tags)
}

/// Declared operations not yet recorded in the `gitops` key's `ops`, as `id (kind)`.
fn pending_ops(desired: &DesiredCluster, obs: &ObservedCluster) -> Vec<String> {
    let done: Vec<String> = obs
        .gitops
        .as_ref()
        .and_then(|g| g.get("ops"))
        .and_then(Value::as_object)
        .map(|o| o.keys().cloned().collect())
        .unwrap_or_default();
    desired
        .ops
        .iter()
        .filter(|o| !done.contains(&o.id))
        .map(|o| format!("{} ({})", o.id, o.kind))
        .collect()
}

mod standby;
#[cfg(test)]
mod tests;
