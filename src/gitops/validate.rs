//! Validation of a desired-state repository: JSON Schema per file, PostgreSQL's parameter
//! catalog, the dynamic-config rules, operation sanity. All problems at once; nothing is
//! applied from an invalid repository.

use super::desired::{build, read_files, DesiredState, YamlFile};
use super::error::RepoProblem;
use super::guc::GucCatalog;
use serde_json::Value;
use std::path::Path;
use std::sync::OnceLock;

const SETTINGS_SCHEMA: &str = include_str!("../../schema/patronus.schema.json");
const CLUSTER_SCHEMA: &str = include_str!("../../schema/cluster.schema.json");
const OP_SCHEMA: &str = include_str!("../../schema/op.schema.json");

fn validator(which: &'static str) -> Option<&'static jsonschema::Validator> {
    static S: OnceLock<Option<jsonschema::Validator>> = OnceLock::new();
    static C: OnceLock<Option<jsonschema::Validator>> = OnceLock::new();
    static O: OnceLock<Option<jsonschema::Validator>> = OnceLock::new();
    let (cell, text) = match which {
        "settings" => (&S, SETTINGS_SCHEMA),
        "cluster" => (&C, CLUSTER_SCHEMA),
        _ => (&O, OP_SCHEMA),
    };
    cell.get_or_init(|| {
        let schema: Value = serde_json::from_str(text).ok()?;
        jsonschema::validator_for(&schema).ok()
    })
    .as_ref()
}

/// JSON pointer (`/config/ttl`) → dotted path (`config.ttl`).
fn dotted(pointer: &str) -> String {
    pointer
        .trim_start_matches('/')
        .replace('/', ".")
        .replace("~1", "/")
        .replace("~0", "~")
}

fn schema_problems(f: &YamlFile, which: &'static str) -> Vec<RepoProblem> {
    let Some(v) = validator(which) else {
        return vec![RepoProblem::new(
            &f.rel,
            "",
            "internal error: schema does not compile",
        )];
    };
    let mut out: Vec<RepoProblem> = v
        .iter_errors(&f.value)
        .map(|e| RepoProblem::new(&f.rel, dotted(e.instance_path().as_str()), e.to_string()))
        .collect();
    out.dedup();
    out
}

/// Checks `postgresql.parameters` against the catalog and the config against Patroni's rules.
fn config_problems(file: &str, config: &Value, catalog: &GucCatalog) -> Vec<RepoProblem> {
    let mut out = Vec::new();
    if let Some(params) = config
        .pointer("/postgresql/parameters")
        .and_then(Value::as_object)
    {
        for (name, value) in params {
            if value.is_null() {
                continue;
            }
            if let Err(reason) = catalog.check(name, value) {
                // The reason may quote the value: CI logs are an exit too.
                out.push(RepoProblem::new(
                    file,
                    format!("config.postgresql.parameters.{name}"),
                    crate::secrets::redact(&reason),
                ));
            }
        }
    }
    if let Some(slots) = config.get("slots").and_then(Value::as_object) {
        // Null entries remove a slot; the schema checks the shapes, this names the slot.
        let defined: serde_json::Map<String, Value> = slots
            .iter()
            .filter(|(_, v)| !v.is_null())
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        for e in crate::ha::slots::permanent_slots(&defined).1 {
            let (path, reason) = e.split_once(": ").unwrap_or(("slots", e.as_str()));
            out.push(RepoProblem::new(file, format!("config.{path}"), reason));
        }
    }
    let min_ttl = crate::config::min_ttl_from_env();
    for p in crate::config::validate_dynamic_with_min_ttl(config, min_ttl) {
        // Type errors are reported by the schema already; keep the rules it cannot express.
        let (path, reason) = p.split_once(": ").unwrap_or(("", p.as_str()));
        if reason.contains("invalid type")
            || reason.starts_with("expected")
            || reason.contains("unknown key")
            || (reason.contains("is below the minimum") && schema_holds_minimum(path))
        {
            continue;
        }
        out.push(RepoProblem::new(
            file,
            format!("config.{path}").trim_end_matches('.').to_string(),
            reason.to_string(),
        ));
    }
    out
}

/// Whether the schema checks `key`'s minimum itself: a fixed minimum of the table of dynamic
/// keys (kept equal to the schema's by `schema_tests`); `ttl`'s floor depends on
/// `PATRONUS_MIN_TTL` and is left to the rule check.
fn schema_holds_minimum(key: &str) -> bool {
    use crate::config::dynamic_keys::{dynamic_key, KeyType, Minimum};
    dynamic_key(key).is_some_and(|k| {
        matches!(
            k.ty,
            KeyType::Unsigned {
                min: Minimum::Fixed(_),
                ..
            }
        )
    })
}

fn op_problems(state: &DesiredState) -> Vec<RepoProblem> {
    let mut out = Vec::new();
    for c in &state.clusters {
        let mut seen = std::collections::BTreeSet::new();
        for op in &c.ops {
            if !seen.insert(op.id.clone()) {
                out.push(RepoProblem::new(
                    &op.file,
                    "id",
                    format!("duplicate operation id '{}'", op.id),
                ));
            }
            if let Some(nb) = op.spec.get("not_before").and_then(Value::as_str) {
                if chrono::DateTime::parse_from_rfc3339(nb).is_err() {
                    out.push(RepoProblem::new(
                        &op.file,
                        "not_before",
                        format!("'{nb}' is not an RFC 3339 time with zone"),
                    ));
                }
            }
            if let Some(w) = op.spec.get("window").and_then(Value::as_str) {
                if let Err(e) = super::window::Window::parse(w) {
                    out.push(RepoProblem::new(&op.file, "window", e));
                }
            }
        }
        for (i, w) in c.windows.iter().enumerate() {
            if let Err(e) = super::window::Window::parse(w) {
                out.push(RepoProblem::new(
                    &c.file,
                    format!("maintenance_windows.{i}"),
                    e,
                ));
            }
        }
    }
    out
}

/// Members each cluster is known to have, from `status/<scope>/observed.yaml` (commit-back)
/// when present, for offline checks of member tags.
fn known_members(root: &Path, scope: &str) -> Option<Vec<String>> {
    let text = std::fs::read_to_string(root.join(format!("status/{scope}/observed.yaml"))).ok()?;
    let v = crate::config::yaml::parse_yaml_str(&text).ok()?;
    let members = v.get("members")?.as_array()?;
    Some(
        members
            .iter()
            .filter_map(|m| m.get("name").and_then(Value::as_str).map(str::to_string))
            .collect(),
    )
}

/// Tags naming members the cluster does not have.
pub fn unknown_member_problems(
    c: &super::desired::DesiredCluster,
    members: &[String],
) -> Vec<RepoProblem> {
    c.tags
        .keys()
        .filter(|m| !members.contains(m))
        .map(|m| {
            RepoProblem::new(
                &c.file,
                format!("members.{m}"),
                format!("unknown member '{m}' of cluster {}", c.scope),
            )
        })
        .collect()
}

/// Loads and validates a repository. Ok only when there is no problem at all.
pub fn load_and_validate(root: &Path) -> Result<DesiredState, Vec<RepoProblem>> {
    if !root.is_dir() {
        return Err(vec![RepoProblem::new(
            root.display().to_string(),
            "",
            "not a directory",
        )]);
    }
    let (files, problems) = read_files(root);
    validate_files(root, &files, problems)
}

/// Validates parsed repository files (pure, but for the optional
/// `status/<scope>/observed.yaml` read under `root` to check member names). `problems`
/// holds those found while reading; Ok only when there is no problem at all.
pub fn validate_files(
    root: &Path,
    files: &[YamlFile],
    mut problems: Vec<RepoProblem>,
) -> Result<DesiredState, Vec<RepoProblem>> {
    for f in files {
        let which = if f.rel == "patronus.yaml" {
            "settings"
        } else if f.rel.ends_with("/cluster.yaml") {
            "cluster"
        } else {
            "op"
        };
        problems.extend(schema_problems(f, which));
    }
    problems.extend(super::repo_secrets::secret_problems(files));
    let state = build(root, files);
    if state.clusters.is_empty() && problems.is_empty() {
        problems.push(RepoProblem::new(
            "clusters/",
            "",
            "no cluster defined (expected clusters/<scope>/cluster.yaml)",
        ));
    }
    let catalog = GucCatalog::postgresql15();
    for c in &state.clusters {
        if !c.file.is_empty() {
            problems.extend(config_problems(&c.file, &c.config, catalog));
        }
        if let Some(members) = known_members(root, &c.scope) {
            problems.extend(unknown_member_problems(c, &members));
        }
    }
    problems.extend(op_problems(&state));
    if problems.is_empty() {
        Ok(state)
    } else {
        problems.sort_by(|a, b| (&a.file, &a.path).cmp(&(&b.file, &b.path)));
        problems.dedup();
        Err(problems)
    }
}

/// Tests: validates a repository holding only `clusters/acme/cluster.yaml` = `cluster_yaml`,
/// written to a fresh temporary directory (removed afterwards).
#[cfg(test)]
fn load_one_cluster(cluster_yaml: &str) -> Result<DesiredState, Vec<RepoProblem>> {
    static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let root = std::env::temp_dir().join(format!("patronus-validate-{}-{n}", std::process::id()));
    let dir = root.join("clusters/acme");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("cluster.yaml"), cluster_yaml).unwrap();
    let out = load_and_validate(&root);
    let _ = std::fs::remove_dir_all(&root);
    out
}

/// Tests: the problems [`load_one_cluster`] reports (none when it validates).
#[cfg(test)]
fn one_cluster_problems(cluster_yaml: &str) -> Vec<RepoProblem> {
    load_one_cluster(cluster_yaml).err().unwrap_or_default()
}

#[cfg(test)]
#[path = "validate_slots_tests.rs"]
mod slots_tests;

#[cfg(test)]
#[path = "validate_sync_tests.rs"]
mod sync_tests;

#[cfg(test)]
#[path = "validate_dcs_tests.rs"]
mod dcs_tests;

#[cfg(test)]
#[path = "schema_tests.rs"]
mod schema_tests;
