//! How a new replica gets its data: `postgresql.create_replica_methods` tried in order —
//! the built-in `basebackup` (pg_basebackup with `postgresql.basebackup` options) or a
//! custom method (a section named like the method: `command`, `keep_data`, `no_leader`,
//! `no_params`, other keys passed as `--key=value`). Planning is pure; running is in
//! [`run_methods`].
//!
//! Reference: Patroni's `Postgresql.create_replica`, `basebackup` and `process_user_options`.

use crate::config::node::PostgresqlConfig;
use crate::postgres::Postgres;
use serde_json::{Map, Value};
use std::path::Path;
use std::time::Duration;

/// Keys of a method section that steer patronus and are never passed to the command.
const CONTROL_KEYS: [&str; 5] = [
    "command",
    "keep_data",
    "no_params",
    "no_leader",
    "no_master",
];
/// pg_basebackup options patronus sets itself (Patroni refuses the same ones).
const BASEBACKUP_NOT_ALLOWED: [&str; 12] = [
    "pgdata",
    "format",
    "wal-method",
    "xlog-method",
    "gzip",
    "version",
    "compress",
    "dbname",
    "host",
    "port",
    "username",
    "password",
];
/// How long a clone may take.
const CLONE_TIMEOUT: Duration = Duration::from_secs(24 * 3600);
/// pg_basebackup attempts per clone (Patroni: 2, 5 s apart).
const BASEBACKUP_ATTEMPTS: u32 = 2;

/// One way to create the replica.
#[derive(Debug, Clone, PartialEq)]
pub enum MethodKind {
    /// pg_basebackup with these extra options.
    Basebackup {
        /// Rendered options, e.g. `--verbose`, `--max-rate=100M`.
        options: Vec<String>,
    },
    /// A user command.
    Custom {
        /// Full argv: the split command and its `--key=value` arguments.
        argv: Vec<String>,
        /// Keep what is in the data directory (e.g. for `pgbackrest --delta restore`).
        keep_data: bool,
    },
}

/// A method in the order it is tried.
#[derive(Debug, Clone, PartialEq)]
pub struct MethodPlan {
    /// Method name as listed.
    pub name: String,
    /// What to run.
    pub kind: MethodKind,
}

/// Where the clone comes from.
#[derive(Debug, Clone, PartialEq)]
pub struct CloneSource {
    /// `postgres://<replication user>@<host>:<port>/postgres` (no password: PGPASSFILE).
    pub connstring: String,
}

/// The configured method names (default `[basebackup]`).
fn method_names(cfg: &PostgresqlConfig) -> Vec<String> {
    cfg.create_replica_methods
        .clone()
        .filter(|m| !m.is_empty())
        .unwrap_or_else(|| vec!["basebackup".to_string()])
}

/// Whether method `name` may run without a leader (`no_leader`, or Patroni's old
/// `no_master`); never `basebackup`, which needs one.
fn works_without_leader(cfg: &PostgresqlConfig, name: &str) -> bool {
    name != "basebackup"
        && cfg
            .replica_method_config(name)
            .and_then(Value::as_object)
            .is_some_and(|s| flag(s, "no_leader") || flag(s, "no_master"))
}

/// Whether a configured method can create the data while no leader runs.
pub fn any_without_leader(cfg: &PostgresqlConfig) -> bool {
    method_names(cfg)
        .iter()
        .any(|m| works_without_leader(cfg, m))
}

/// The methods to try, in order, with the problems found in their configuration (logged).
/// Without a `source` (no leader) only the methods marked `no_leader` are tried, with an
/// empty `--connstring`, as in Patroni.
pub fn plan_methods(
    cfg: &PostgresqlConfig,
    scope: &str,
    source: Option<&CloneSource>,
) -> (Vec<MethodPlan>, Vec<String>) {
    let no_source = CloneSource {
        connstring: String::new(),
    };
    let mut warnings = Vec::new();
    let plans = method_names(cfg)
        .iter()
        .filter(|name| source.is_some() || works_without_leader(cfg, name))
        .map(|name| {
            let section = cfg
                .replica_method_config(name)
                .and_then(Value::as_object)
                .cloned()
                .unwrap_or_default();
            let kind = if name == "basebackup" {
                MethodKind::Basebackup {
                    options: basebackup_options(cfg.basebackup.as_ref(), &mut warnings),
                }
            } else {
                let source = source.unwrap_or(&no_source);
                custom_method(name, &section, scope, &cfg.data_dir, source, &mut warnings)
            };
            MethodPlan {
                name: name.clone(),
                kind,
            }
        })
        .collect();
    (plans, warnings)
}

fn custom_method(
    name: &str,
    section: &Map<String, Value>,
    scope: &str,
    data_dir: &Path,
    source: &CloneSource,
    warnings: &mut Vec<String>,
) -> MethodKind {
    let command = section
        .get("command")
        .and_then(Value::as_str)
        .unwrap_or(name);
    let mut params: Vec<String> = section
        .iter()
        .filter(|(k, _)| !CONTROL_KEYS.contains(&k.as_str()))
        .map(|(k, v)| format!("--{k}={}", python_str(v)))
        .collect();
    if !flag(section, "no_params") {
        params.extend([
            format!("--scope={scope}"),
            "--role=replica".to_string(),
            format!("--datadir={}", data_dir.display()),
            format!("--connstring={}", source.connstring),
        ]);
    }
    let refs: Vec<&str> = params.iter().map(String::as_str).collect();
    let argv = match super::callbacks::script_argv(command, &refs) {
        Ok(a) => a,
        Err(e) => {
            warnings.push(format!("postgresql.{name}.command: {e}"));
            vec![]
        }
    };
    MethodKind::Custom {
        argv,
        keep_data: flag(section, "keep_data"),
    }
}

fn flag(section: &Map<String, Value>, key: &str) -> bool {
    section.get(key).is_some_and(crate::config::tags::is_true)
}

/// A value as Python's `str()` renders it (Patroni formats `--key=value` that way).
fn python_str(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Bool(true) => "True".into(),
        Value::Bool(false) => "False".into(),
        Value::Null => "None".into(),
        other => other.to_string(),
    }
}

/// `postgresql.basebackup` as pg_basebackup options: a list of strings (`verbose` →
/// `--verbose`) and single-key maps (`max-rate: 100M` → `--max-rate=100M`), or one map.
/// Options patronus sets itself are refused with a warning, as in Patroni.
pub fn basebackup_options(v: Option<&Value>, warnings: &mut Vec<String>) -> Vec<String> {
    let mut pairs: Vec<(String, Option<String>)> = Vec::new();
    match v {
        None | Some(Value::Null) => {}
        Some(Value::Array(items)) => {
            for item in items {
                match item {
                    Value::String(s) => pairs.push((s.clone(), None)),
                    Value::Object(m) if m.len() == 1 => {
                        pairs.extend(m.iter().map(|(k, v)| (k.clone(), Some(python_str(v)))))
                    }
                    other => warnings.push(format!(
                        "postgresql.basebackup: {other} is neither an option name nor a single-key map"
                    )),
                }
            }
        }
        Some(Value::Object(m)) => {
            pairs.extend(m.iter().map(|(k, v)| (k.clone(), Some(python_str(v)))))
        }
        Some(other) => warnings.push(format!(
            "postgresql.basebackup: expected a list or a map, got {other}"
        )),
    }
    pairs
        .into_iter()
        .filter_map(|(k, v)| {
            let k = k.trim_start_matches('-').to_string();
            if BASEBACKUP_NOT_ALLOWED.contains(&k.as_str()) {
                warnings.push(format!(
                    "postgresql.basebackup: option {k} is set by patronus and is not allowed"
                ));
                return None;
            }
            Some(match v {
                Some(v) => format!("--{k}={v}"),
                None => format!("--{k}"),
            })
        })
        .collect()
}

/// Runs the methods in order until one succeeds; returns its name, or every failure (none
/// planned is a failure too). `basebackup_conninfo` is the libpq conninfo pg_basebackup uses.
pub async fn run_methods(
    pg: &Postgres,
    plans: &[MethodPlan],
    basebackup_conninfo: &str,
) -> Result<String, Vec<String>> {
    let mut failures = Vec::new();
    for plan in plans {
        let result = match &plan.kind {
            MethodKind::Basebackup { options } => {
                basebackup(pg, basebackup_conninfo, options).await
            }
            MethodKind::Custom { argv, keep_data } => {
                custom(pg, &plan.name, argv, *keep_data).await
            }
        };
        match result {
            Ok(()) => return Ok(plan.name.clone()),
            Err(e) => {
                tracing::error!("Error creating replica using method {}: {e}", plan.name);
                failures.push(format!("{}: {e}", plan.name));
            }
        }
    }
    if plans.is_empty() {
        failures.push("no replica method can run".into());
    }
    Err(failures)
}

async fn basebackup(pg: &Postgres, conninfo: &str, options: &[String]) -> Result<(), String> {
    let mut last = String::new();
    for attempt in 1..=BASEBACKUP_ATTEMPTS {
        empty_data_dir(pg)?;
        match pg.basebackup(conninfo, options).await {
            Ok(()) => return Ok(()),
            Err(e) => last = e.to_string(),
        }
        if attempt < BASEBACKUP_ATTEMPTS {
            tracing::warn!("pg_basebackup failed ({last}); trying again in 5 seconds");
            tokio::time::sleep(Duration::from_secs(5)).await;
        }
    }
    Err(last)
}

async fn custom(pg: &Postgres, name: &str, argv: &[String], keep_data: bool) -> Result<(), String> {
    if argv.is_empty() {
        return Err("no command to run".into());
    }
    if keep_data {
        if !pg.data_dir_empty() {
            tracing::info!("Leaving data directory uncleaned");
        }
    } else {
        empty_data_dir(pg)?;
    }
    pg.prepare_data_dir().map_err(|e| e.to_string())?;
    pg.write_pgpass().map_err(|e| e.to_string())?;
    let mut cmd = pg.owner_command(Path::new(&argv[0]));
    cmd.args(&argv[1..]).env("PGPASSFILE", &pg.settings.pgpass);
    crate::postgres::process::run(cmd, name, CLONE_TIMEOUT)
        .await
        .map(|out| {
            for line in out.lines().filter(|l| !l.trim().is_empty()) {
                tracing::info!("{name}: {line}");
            }
        })
        .map_err(|e| e.to_string())
}

fn empty_data_dir(pg: &Postgres) -> Result<(), String> {
    match std::fs::remove_dir_all(&pg.settings.data_dir) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(format!(
            "cannot remove {}: {e}",
            pg.settings.data_dir.display()
        )),
    }
}

#[cfg(test)]
#[path = "replica_methods_tests.rs"]
mod tests;
