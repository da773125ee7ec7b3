//! Custom bootstrap (`bootstrap.method: <name>` with its section `bootstrap.<name>`): a
//! command creates the data directory instead of initdb (restore of a backup, clone of
//! another cluster), then the agent starts it — in archive recovery with the section's
//! `recovery_conf` when given (point-in-time recovery), waiting for the end of recovery —
//! and the bootstrap goes on as after initdb (roles, `post_bootstrap`, `initialize`).
//!
//! Reference: Patroni's `Bootstrap._custom_bootstrap` and `bootstrap()`.

use super::shared::Shared;
use super::task_error::TaskError;
use crate::config::DynamicConfig;
use crate::postgres::Postgres;
use serde_json::{Map, Value};
use std::path::Path;
use std::time::Duration;
use tokio::time::Instant;

/// Keys of the section that steer patronus and are not passed to the command.
const RESERVED: [&str; 6] = [
    "command",
    "no_params",
    "keep_existing_recovery_conf",
    "recovery_conf",
    "scope",
    "datadir",
];
/// How long the command may run.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(24 * 3600);
/// How long recovery may take after the command.
const RECOVERY_TIMEOUT: Duration = Duration::from_secs(24 * 3600);

/// What a custom bootstrap runs.
#[derive(Debug, Clone, PartialEq)]
pub struct BootstrapPlan {
    /// Full argv of the command.
    pub argv: Vec<String>,
    /// Keep `recovery.signal`/`standby.signal` the command left.
    pub keep_existing_recovery_conf: bool,
    /// Recovery parameters to start with (`restore_command`, `recovery_target_*`).
    pub recovery_conf: Map<String, Value>,
}

/// Plans the custom bootstrap `name` from its section; Err names the field and reason.
pub fn plan_bootstrap(
    name: &str,
    section: Option<&Value>,
    scope: &str,
    data_dir: &Path,
) -> Result<BootstrapPlan, String> {
    let section = section.and_then(Value::as_object).ok_or_else(|| {
        format!("bootstrap.method is {name} but there is no bootstrap.{name} section")
    })?;
    let command = section
        .get("command")
        .and_then(Value::as_str)
        .ok_or_else(|| format!("bootstrap.{name}.command: missing (a command line is required)"))?;
    let flag = |k: &str| section.get(k).is_some_and(crate::config::tags::is_true);
    let mut params = Vec::new();
    if !flag("no_params") {
        params.push(format!("--scope={scope}"));
        params.push(format!("--datadir={}", data_dir.display()));
    }
    for (k, v) in section
        .iter()
        .filter(|(k, _)| !RESERVED.contains(&k.as_str()))
    {
        let v = match v {
            Value::String(s) => s.clone(),
            Value::Bool(b) => if *b { "True" } else { "False" }.to_string(),
            other => other.to_string(),
        };
        params.push(format!("--{k}={v}"));
    }
    let refs: Vec<&str> = params.iter().map(String::as_str).collect();
    let argv = super::callbacks::script_argv(command, &refs)
        .map_err(|e| format!("bootstrap.{name}.command: {e}"))?;
    let recovery_conf = match section.get("recovery_conf") {
        None | Some(Value::Null) => Map::new(),
        Some(Value::Object(m)) => m.clone(),
        Some(_) => return Err(format!("bootstrap.{name}.recovery_conf: expected a map")),
    };
    Ok(BootstrapPlan {
        argv,
        keep_existing_recovery_conf: flag("keep_existing_recovery_conf"),
        recovery_conf,
    })
}

/// Runs the command (through the PostgreSQL control port), then starts PostgreSQL (in
/// recovery when `recovery_conf` is given, or when a kept `recovery.signal` asks for it) and
/// waits until it runs as a primary.
pub async fn run(
    sh: &Shared,
    dynamic: &DynamicConfig,
    plan: &BootstrapPlan,
) -> Result<(), TaskError> {
    let pg = &sh.ctl;
    pg.run_bootstrap_command(plan)
        .await
        .map_err(TaskError::Script)?;
    let mut params = dynamic.parameters.clone();
    params.extend(plan.recovery_conf.clone());
    pg.write_config(&params, dynamic.pg_hba.as_deref(), None)?;
    if !plan.recovery_conf.is_empty() {
        pg.write_signal("recovery.signal")?;
    }
    for w in pg.start(&params).await? {
        tracing::warn!("{w}");
    }
    sh.sql.reset().await;
    wait_primary(sh).await?;
    // Recovery is over: the recovery parameters leave postgresql.conf.
    if !plan.recovery_conf.is_empty() {
        if let Ok(true) = pg.write_config(&dynamic.parameters, dynamic.pg_hba.as_deref(), None) {
            pg.reload().await?;
        }
    }
    Ok(())
}

/// The command of a custom bootstrap: prepares the data directory, runs the script as the
/// instance's owner, checks that it left a data directory and removes the recovery signals
/// unless `keep_existing_recovery_conf`.
pub async fn run_command(pg: &Postgres, plan: &BootstrapPlan) -> Result<(), String> {
    pg.prepare_data_dir().map_err(|e| e.to_string())?;
    pg.write_pgpass().map_err(|e| e.to_string())?;
    tracing::info!("Running custom bootstrap script: {}", plan.argv.join(" "));
    let mut cmd = pg.owner_command(Path::new(&plan.argv[0]));
    cmd.args(&plan.argv[1..])
        .env("PGPASSFILE", &pg.settings.pgpass);
    let out = crate::postgres::process::run(cmd, "custom bootstrap script", COMMAND_TIMEOUT)
        .await
        .map_err(|e| format!("custom bootstrap failed: {e}"))?;
    for line in out.lines().filter(|l| !l.trim().is_empty()) {
        tracing::info!("custom bootstrap: {line}");
    }
    if !pg.settings.data_dir.join("PG_VERSION").exists() {
        return Err("custom bootstrap failed: the command left no data directory".into());
    }
    let data = &pg.settings.data_dir;
    if !plan.keep_existing_recovery_conf {
        for f in ["recovery.signal", "standby.signal"] {
            let _ = std::fs::remove_file(data.join(f));
        }
    }
    Ok(())
}

/// Waits until PostgreSQL answers and is out of recovery (PITR ends with a promotion).
async fn wait_primary(sh: &Shared) -> Result<(), TaskError> {
    let deadline = Instant::now() + RECOVERY_TIMEOUT;
    loop {
        let last = match sh.sql.state().await {
            Ok(s) if !s.in_recovery => return Ok(()),
            Ok(_) => "still in recovery".to_string(),
            Err(e) => e.to_string(),
        };
        if !sh.ctl.is_running() {
            return Err(TaskError::Refused(format!(
                "postgres stopped during the recovery after the custom bootstrap ({last})"
            )));
        }
        if Instant::now() >= deadline {
            return Err(TaskError::Refused(format!(
                "recovery after the custom bootstrap did not end: {last}"
            )));
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn plan_passes_scope_datadir_then_the_sections_keys() {
        let section = json!({
            "command": "/usr/local/bin/clone_cluster.sh --fast",
            "keep_existing_recovery_conf": true,
            "recovery_conf": {"restore_command": "cp /arch/%f %p", "recovery_target_action": "promote"},
            "from": "10.0.0.9",
        });
        let p = plan_bootstrap("clone", Some(&section), "demo", Path::new("/pg/data")).unwrap();
        assert_eq!(
            p.argv,
            [
                "/usr/local/bin/clone_cluster.sh",
                "--fast",
                "--scope=demo",
                "--datadir=/pg/data",
                "--from=10.0.0.9"
            ]
        );
        assert!(p.keep_existing_recovery_conf);
        assert_eq!(p.recovery_conf["restore_command"], "cp /arch/%f %p");
    }

    #[test]
    fn no_params_and_errors_name_the_field() {
        let p = plan_bootstrap(
            "r",
            Some(&json!({"command": "restore", "no_params": true})),
            "demo",
            Path::new("/d"),
        )
        .unwrap();
        assert_eq!(p.argv, ["restore"]);
        assert!(!p.keep_existing_recovery_conf && p.recovery_conf.is_empty());
        let e = plan_bootstrap("pitr", None, "demo", Path::new("/d")).unwrap_err();
        assert!(e.contains("no bootstrap.pitr section"), "{e}");
        let e =
            plan_bootstrap("pitr", Some(&json!({"x": 1})), "demo", Path::new("/d")).unwrap_err();
        assert!(e.contains("bootstrap.pitr.command"), "{e}");
        let e = plan_bootstrap(
            "pitr",
            Some(&json!({"command": "x", "recovery_conf": "restore_command=cp"})),
            "demo",
            Path::new("/d"),
        )
        .unwrap_err();
        assert!(
            e.contains("bootstrap.pitr.recovery_conf: expected a map"),
            "{e}"
        );
    }
}
