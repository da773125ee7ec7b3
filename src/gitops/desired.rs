//! The desired state read from a repository directory (docs/gitops.md, "The repository"):
//! `patronus.yaml`, `clusters/<scope>/cluster.yaml`, `clusters/<scope>/ops/*.yaml`.

use super::error::RepoProblem;
use serde_json::{Map, Value};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// One parsed YAML file.
#[derive(Debug, Clone)]
pub struct YamlFile {
    /// Path relative to the repository root.
    pub rel: String,
    /// Parsed content.
    pub value: Value,
}

/// The desired state of one cluster.
#[derive(Debug, Clone, PartialEq)]
pub struct DesiredCluster {
    /// Scope (directory name).
    pub scope: String,
    /// File it came from.
    pub file: String,
    /// Desired dynamic configuration.
    pub config: Value,
    /// Desired tags per member.
    pub tags: BTreeMap<String, Map<String, Value>>,
    /// Delete live keys that are absent from git.
    pub prune: bool,
    /// `manual`, `rolling`, `rolling-in-place`.
    pub restart_policy: String,
    /// Maintenance windows as written.
    pub windows: Vec<String>,
    /// Operations declared under `ops/`.
    pub ops: Vec<Operation>,
    /// This cluster's own `dcs` section (etcd endpoints, namespace) over `patronus.yaml`'s.
    pub dcs: Option<Value>,
}

impl DesiredCluster {
    /// What a commit declares for the cluster's DCS keys (config, tags, prune), as recorded
    /// under `applied.desired` of the `gitops` key when applied: the next commit re-applies
    /// the cluster only when this changes, and drift is measured against it.
    pub fn applied_form(&self) -> Value {
        serde_json::json!({"config": self.config, "tags": self.tags, "prune": self.prune})
    }
}

/// One declared operation.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Operation {
    /// Id (the `id` field, else the file stem).
    pub id: String,
    /// `switchover` or `restart`.
    pub kind: String,
    /// File it came from.
    pub file: String,
    /// The whole document.
    pub spec: Value,
}

/// Repository settings (`patronus.yaml`).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RepoSettings {
    /// The raw document (validated by the schema).
    pub raw: Value,
}

impl RepoSettings {
    /// etcd endpoints (`host:port`).
    #[cfg(test)]
    pub fn etcd_hosts(&self) -> Vec<String> {
        match self.raw.pointer("/dcs/etcd3/hosts") {
            Some(Value::Array(a)) => a
                .iter()
                .filter_map(Value::as_str)
                .map(str::to_string)
                .collect(),
            Some(Value::String(s)) => s
                .split(',')
                .map(|h| h.trim().to_string())
                .filter(|h| !h.is_empty())
                .collect(),
            _ => vec![],
        }
    }

    /// DCS namespace (default `/service`).
    pub fn namespace(&self) -> String {
        self.raw
            .pointer("/dcs/namespace")
            .and_then(Value::as_str)
            .unwrap_or("/service")
            .to_string()
    }

    /// Drift policy for a dotted key (`alert` by default).
    pub fn drift_policy(&self, key: &str) -> String {
        let keys = self.raw.pointer("/drift/keys").and_then(Value::as_object);
        keys.and_then(|k| k.get(key))
            .or_else(|| self.raw.pointer("/drift/default"))
            .and_then(Value::as_str)
            .unwrap_or("alert")
            .to_string()
    }

    /// `commit_back.enabled` (default true).
    pub fn commit_back_enabled(&self) -> bool {
        self.raw
            .pointer("/commit_back/enabled")
            .and_then(Value::as_bool)
            .unwrap_or(true)
    }

    /// `commit_back.branch`: the branch status commits go to (None: the checked-out one).
    pub fn commit_back_branch(&self) -> Option<String> {
        self.raw
            .pointer("/commit_back/branch")
            .and_then(Value::as_str)
            .filter(|b| !b.trim().is_empty())
            .map(str::to_string)
    }

    /// Ignore globs for drift (dotted paths, `*` wildcard).
    pub fn ignore(&self) -> Vec<String> {
        self.raw
            .get("ignore")
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(Value::as_str)
                    .map(str::to_string)
                    .collect()
            })
            .unwrap_or_default()
    }
}

/// The whole repository.
#[derive(Debug, Clone, Default)]
pub struct DesiredState {
    /// Root directory.
    pub root: PathBuf,
    /// Settings.
    pub settings: RepoSettings,
    /// Clusters by scope.
    pub clusters: Vec<DesiredCluster>,
}

/// Reads and parses every YAML file of the repository (no validation yet).
pub fn read_files(root: &Path) -> (Vec<YamlFile>, Vec<RepoProblem>) {
    let mut files = Vec::new();
    let mut problems = Vec::new();
    let mut missing = Vec::new();
    let mut push = |rel: String, path: &Path| match std::fs::read_to_string(path) {
        Ok(text) => match crate::config::yaml::parse_yaml_str(&text) {
            Ok(v) => files.push(YamlFile { rel, value: v }),
            Err(e) => problems.push(RepoProblem::new(rel, "", format!("invalid YAML: {e}"))),
        },
        Err(e) => problems.push(RepoProblem::new(rel, "", format!("cannot read: {e}"))),
    };
    let settings = root.join("patronus.yaml");
    if settings.exists() {
        push("patronus.yaml".into(), &settings);
    }
    let clusters = root.join("clusters");
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(&clusters)
        .map(|it| {
            it.filter_map(Result::ok)
                .map(|e| e.path())
                .filter(|p| p.is_dir())
                .collect()
        })
        .unwrap_or_default();
    dirs.sort();
    for d in dirs {
        let scope = d
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let cfg = d.join("cluster.yaml");
        let rel = format!("clusters/{scope}/cluster.yaml");
        if cfg.exists() {
            push(rel, &cfg);
        } else {
            push_missing(&mut missing, rel);
        }
        let mut ops: Vec<PathBuf> = std::fs::read_dir(d.join("ops"))
            .map(|it| it.filter_map(Result::ok).map(|e| e.path()).collect())
            .unwrap_or_default();
        ops.retain(|p| p.extension().is_some_and(|e| e == "yaml" || e == "yml"));
        ops.sort();
        for op in ops {
            let name = op
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            push(format!("clusters/{scope}/ops/{name}"), &op);
        }
    }
    problems.extend(missing);
    (files, problems)
}

fn push_missing(problems: &mut Vec<RepoProblem>, rel: String) {
    problems.push(RepoProblem::new(
        rel,
        "",
        "missing: every cluster directory needs a cluster.yaml",
    ));
}

/// Builds the model from files that passed the schema.
pub fn build(root: &Path, files: &[YamlFile]) -> DesiredState {
    let mut state = DesiredState {
        root: root.to_path_buf(),
        ..DesiredState::default()
    };
    let mut by_scope: BTreeMap<String, DesiredCluster> = BTreeMap::new();
    for f in files {
        let parts: Vec<&str> = f.rel.split('/').collect();
        match parts.as_slice() {
            ["patronus.yaml"] => state.settings.raw = f.value.clone(),
            ["clusters", scope, "cluster.yaml"] => {
                let entry = by_scope
                    .entry(scope.to_string())
                    .or_insert_with(|| empty_cluster(scope));
                read_cluster_file(entry, f);
            }
            ["clusters", scope, "ops", name] => by_scope
                .entry(scope.to_string())
                .or_insert_with(|| empty_cluster(scope))
                .ops
                .push(read_operation(name, f)),
            _ => {}
        }
    }
    state.clusters = by_scope.into_values().collect();
    state
}

/// The settings of `clusters/<scope>/cluster.yaml` into its cluster.
fn read_cluster_file(entry: &mut DesiredCluster, f: &YamlFile) {
    let v = &f.value;
    entry.file = f.rel.clone();
    entry.config = v
        .get("config")
        .cloned()
        .unwrap_or_else(|| Value::Object(Map::new()));
    entry.tags = member_tags(v);
    entry.dcs = v.get("dcs").filter(|d| d.is_object()).cloned();
    entry.prune = v.get("prune").and_then(Value::as_bool).unwrap_or(false);
    entry.restart_policy = v
        .get("restart_policy")
        .and_then(Value::as_str)
        .unwrap_or("manual")
        .to_string();
    entry.windows = v
        .get("maintenance_windows")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default();
}

/// `members.<name>.tags` of a cluster file, per member (empty when absent).
fn member_tags(v: &Value) -> BTreeMap<String, Map<String, Value>> {
    v.get("members")
        .and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .map(|(name, spec)| {
                    (
                        name.clone(),
                        spec.get("tags")
                            .and_then(Value::as_object)
                            .cloned()
                            .unwrap_or_default(),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

/// An operation file `clusters/<scope>/ops/<name>`: its `id` (else the file stem) and type.
fn read_operation(name: &str, f: &YamlFile) -> Operation {
    let stem = name.rsplit_once('.').map_or(name, |(s, _)| s);
    Operation {
        id: f
            .value
            .get("id")
            .and_then(Value::as_str)
            .unwrap_or(stem)
            .to_string(),
        kind: f
            .value
            .get("type")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string(),
        file: f.rel.clone(),
        spec: f.value.clone(),
    }
}

fn empty_cluster(scope: &str) -> DesiredCluster {
    DesiredCluster {
        scope: scope.to_string(),
        file: String::new(),
        config: Value::Object(Map::new()),
        tags: BTreeMap::new(),
        prune: false,
        restart_policy: "manual".into(),
        windows: vec![],
        ops: vec![],
        dcs: None,
    }
}
