//! `edit-config`: unified diff, confirmation, validation (beyond Patroni), CAS write.

use super::context::{Ctl, GlobalOpts};
use super::error::{CliError, CliResult};
use super::prompt::confirm;
use crate::config::{merge_patch, set_path};
use crate::dcs::error::CasOutcome;
use crate::dcs::Dcs;
use serde_json::Value;
use std::io::Read;
use std::path::PathBuf;

/// Arguments of `edit-config`.
#[derive(Debug, Clone, clap::Args)]
#[command(
    after_help = "Examples:\n  patronus edit-config -p work_mem=8MB --force\n  patronus edit-config -s loop_wait=5 -s ttl=30\n  patronus edit-config --apply changes.yml"
)]
pub struct EditArgs {
    /// Cluster name (default: `scope` of the config).
    pub cluster: Option<String>,
    /// Do not print the diff.
    #[arg(short = 'q', long)]
    pub quiet: bool,
    /// Set a dotted key to a YAML value (`null` deletes); repeatable.
    #[arg(short = 's', long = "set", value_name = "KEY=VALUE")]
    pub set: Vec<String>,
    /// Set a PostgreSQL parameter (`postgresql.parameters.NAME`); repeatable.
    #[arg(short = 'p', long = "pg", value_name = "NAME=VALUE")]
    pub pg: Vec<String>,
    /// Merge a YAML file (or - for stdin) into the configuration.
    #[arg(long = "apply", value_name = "FILE")]
    pub apply: Option<PathBuf>,
    /// Replace the configuration with a YAML file (or - for stdin).
    #[arg(long = "replace", value_name = "FILE")]
    pub replace: Option<PathBuf>,
    /// Do not ask for confirmation.
    #[arg(long)]
    pub force: bool,
}

fn read_yaml(path: &PathBuf) -> CliResult<Value> {
    let text = if path.as_os_str() == "-" {
        let mut s = String::new();
        std::io::stdin()
            .read_to_string(&mut s)
            .map_err(|e| CliError::Failed(format!("cannot read stdin: {e}")))?;
        s
    } else {
        std::fs::read_to_string(path)
            .map_err(|e| CliError::Failed(format!("cannot read {}: {e}", path.display())))?
    };
    crate::config::yaml::parse_yaml_str(&text)
        .map_err(|e| CliError::Failed(format!("{}: invalid YAML: {e}", path.display())))
}

fn split_kv(s: &str) -> CliResult<(&str, Value)> {
    let (k, v) = s.split_once('=').ok_or_else(|| {
        CliError::Failed(format!(
            "invalid --set/--pg argument '{s}': expected KEY=VALUE"
        ))
    })?;
    let value = crate::config::yaml::parse_yaml_str(v).unwrap_or(Value::String(v.to_string()));
    Ok((k.trim(), value))
}

/// Builds the new configuration from the options (pure).
pub fn apply_edits(
    current: &Value,
    a: &EditArgs,
    apply: Option<Value>,
    replace: Option<Value>,
) -> CliResult<Value> {
    let mut new = replace.unwrap_or_else(|| current.clone());
    if let Some(p) = apply {
        merge_patch(&mut new, &p);
    }
    for s in &a.set {
        let (k, v) = split_kv(s)?;
        set_path(&mut new, k, v).map_err(CliError::Failed)?;
    }
    for s in &a.pg {
        let (k, v) = split_kv(s)?;
        set_path(&mut new, &format!("postgresql.parameters.{k}"), v).map_err(CliError::Failed)?;
    }
    Ok(new)
}

fn yaml(v: &Value) -> String {
    serde_yaml::to_string(v).unwrap_or_default()
}

/// Unified diff of two YAML renderings.
pub fn diff(old: &Value, new: &Value) -> String {
    let (a, b) = (yaml(old), yaml(new));
    similar::TextDiff::from_lines(&a, &b)
        .unified_diff()
        .context_radius(3)
        .header("before", "after")
        .to_string()
}

fn edit_in_editor(current: &Value) -> CliResult<Value> {
    if !super::prompt::interactive() {
        return Err(CliError::Aborted(
            "no change given (-s/-p/--apply/--replace) and stdin is not a terminal for $EDITOR"
                .into(),
        ));
    }
    let editor = std::env::var("EDITOR").unwrap_or_else(|_| "vi".into());
    let path = std::env::temp_dir().join(format!("patronus-config-{}.yaml", std::process::id()));
    std::fs::write(&path, yaml(current)).map_err(|e| CliError::Failed(e.to_string()))?;
    let status = std::process::Command::new(&editor)
        .arg(&path)
        .status()
        .map_err(|e| CliError::Failed(format!("cannot run {editor}: {e}")))?;
    let text = std::fs::read_to_string(&path).unwrap_or_default();
    let _ = std::fs::remove_file(&path);
    if !status.success() {
        return Err(CliError::Aborted(format!("{editor} exited with {status}")));
    }
    crate::config::yaml::parse_yaml_str(&text)
        .map_err(|e| CliError::Failed(format!("invalid YAML: {e}")))
}

/// Runs `edit-config`.
pub async fn edit_config(g: &GlobalOpts, a: &EditArgs) -> CliResult<()> {
    let ctl = Ctl::connect(g, a.cluster.as_deref()).await?;
    let c = ctl.cluster().await?;
    let (current, version) = match c.config {
        Some(v) => (v.value, v.version),
        None => (serde_json::json!({}), 0),
    };
    let no_options =
        a.set.is_empty() && a.pg.is_empty() && a.apply.is_none() && a.replace.is_none();
    let new = if no_options {
        edit_in_editor(&current)?
    } else {
        let apply = a.apply.as_ref().map(read_yaml).transpose()?;
        let replace = a.replace.as_ref().map(read_yaml).transpose()?;
        apply_edits(&current, a, apply, replace)?
    };
    if new == current {
        println!("Not changed");
        return Ok(());
    }
    let min_ttl = crate::config::min_ttl_from_env();
    let mut problems = crate::config::validate_dynamic_with_min_ttl(&new, min_ttl);
    problems.extend(crate::secrets::secret_paths(&new).into_iter().map(|p| {
        format!("{p}: carries a secret (a password); keep it on the nodes, not in the DCS")
    }));
    if !problems.is_empty() {
        return Err(CliError::Failed(format!(
            "refusing to write an invalid configuration:\n  - {}",
            problems.join("\n  - ")
        )));
    }
    if !a.quiet {
        print!("{}", diff(&current, &new));
    }
    confirm("Apply these changes?", a.force)?;
    let written = ctl.dcs.write_config(&new, Some(version)).await;
    match written.or_cas_failed(crate::dcs::keys::CONFIG) {
        Ok(()) => {
            println!("Configuration changed");
            Ok(())
        }
        Err(crate::dcs::DcsError::CasFailed(_)) => Err(CliError::Failed(
            "Config modification aborted due to concurrent changes".into(),
        )),
        Err(e) => Err(e.into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn args(set: &[&str], pg: &[&str]) -> EditArgs {
        EditArgs {
            cluster: None,
            quiet: false,
            set: set.iter().map(|s| s.to_string()).collect(),
            pg: pg.iter().map(|s| s.to_string()).collect(),
            apply: None,
            replace: None,
            force: true,
        }
    }

    #[test]
    fn set_and_pg_edit_the_tree() {
        let cur = json!({"ttl": 30, "postgresql": {"parameters": {"work_mem": "4MB"}}});
        let new = apply_edits(
            &cur,
            &args(
                &["loop_wait=5", "ttl=null"],
                &["work_mem=8MB", "max_connections=200"],
            ),
            None,
            None,
        )
        .unwrap();
        assert_eq!(
            new,
            json!({"loop_wait": 5, "postgresql": {"parameters": {"work_mem": "8MB", "max_connections": 200}}})
        );
        assert!(apply_edits(&cur, &args(&["nokeyvalue"], &[]), None, None).is_err());
        let d = diff(&cur, &new);
        assert!(
            d.contains("-  parameters") || d.contains("+    work_mem: 8MB"),
            "{d}"
        );
    }
}
