//! `demote-cluster` / `promote-cluster` (Patroni 4): turn the cluster into a standby
//! cluster following a remote primary, or back into a normal one, by writing
//! `standby_cluster` with `PATCH /config` on the leader, then wait until the leader reports
//! the new role and runs.

use super::context::{Ctl, GlobalOpts};
use super::error::{CliError, CliResult};
use super::output::{render_list, Format, ListOptions};
use super::prompt::confirm;
use crate::api::views::cluster_json;
use crate::dcs::Cluster;
use reqwest::Method;
use serde_json::{json, Map, Value};
use std::time::{Duration, Instant};

/// How long `demote-cluster` / `promote-cluster` wait for the new role.
const WAIT: Duration = Duration::from_secs(300);

/// Arguments of `demote-cluster`.
#[derive(Debug, Clone, clap::Args)]
#[command(
    after_help = "Example:\n  patronus -c node1.yml demote-cluster --host 10.0.0.1 --port 5432 --force"
)]
pub struct DemoteArgs {
    /// Cluster name (default: `scope` of the config).
    pub cluster: Option<String>,
    /// Address of the remote primary to follow.
    #[arg(long)]
    pub host: Option<String>,
    /// Port of the remote primary.
    #[arg(long)]
    pub port: Option<u16>,
    /// Command to restore WAL records from the remote primary's archive.
    #[arg(long = "restore-command")]
    pub restore_command: Option<String>,
    /// Name of the slot on the remote primary to stream from.
    #[arg(long = "primary-slot-name")]
    pub primary_slot_name: Option<String>,
    /// Do not ask for confirmation.
    #[arg(long)]
    pub force: bool,
}

/// Arguments of `promote-cluster`.
#[derive(Debug, Clone, clap::Args)]
#[command(after_help = "Example:\n  patronus -c node1.yml promote-cluster --force")]
pub struct PromoteArgs {
    /// Cluster name (default: `scope` of the config).
    pub cluster: Option<String>,
    /// Do not ask for confirmation.
    #[arg(long)]
    pub force: bool,
}

/// The `standby_cluster` section `demote-cluster` writes (patronictl's rules).
pub fn demote_section(a: &DemoteArgs) -> CliResult<Value> {
    if a.host.is_none() && a.port.is_none() && a.restore_command.is_none() {
        return Err(CliError::Failed(
            "At least --host, --port or --restore-command should be specified".into(),
        ));
    }
    let mut m = Map::new();
    let mut put = |k: &str, v: Option<Value>| {
        if let Some(v) = v {
            m.insert(k.to_string(), v);
        }
    };
    put("host", a.host.clone().map(Value::String));
    put("port", a.port.map(|p| json!(p)));
    put(
        "primary_slot_name",
        a.primary_slot_name.clone().map(Value::String),
    );
    put(
        "restore_command",
        a.restore_command.clone().map(Value::String),
    );
    Ok(Value::Object(m))
}

/// Runs `demote-cluster`.
pub async fn demote(g: &GlobalOpts, a: &DemoteArgs) -> CliResult<()> {
    let section = demote_section(a)?;
    change_role(g, a.cluster.as_deref(), a.force, Some(section)).await
}

/// Runs `promote-cluster`.
pub async fn promote(g: &GlobalOpts, a: &PromoteArgs) -> CliResult<()> {
    change_role(g, a.cluster.as_deref(), a.force, None).await
}

async fn change_role(
    g: &GlobalOpts,
    cluster: Option<&str>,
    force: bool,
    section: Option<Value>,
) -> CliResult<()> {
    let demote = section.is_some();
    let (verb, target) = if demote {
        ("demot", "standby_leader")
    } else {
        ("promot", "primary")
    };
    let ctl = Ctl::connect(g, cluster).await?;
    let c = ctl.cluster().await?;
    let Some(leader) = c.leader_name().and_then(|l| c.member(l)).cloned() else {
        return Err(CliError::Failed(format!(
            "Cluster has no leader, {verb}ion is not possible"
        )));
    };
    if leader.data.role == target {
        return Err(CliError::Failed(
            "Cluster is already in the required state".into(),
        ));
    }
    println!("Current cluster topology");
    print!("{}", table(&ctl.scope, &c));
    confirm(
        &format!("Are you sure you want to {verb}e {} cluster?", ctl.scope),
        force,
    )?;
    let body = json!({ "standby_cluster": section });
    match ctl
        .request(&leader, Method::PATCH, "/config", Some(&body))
        .await
    {
        Ok((200, _)) => {}
        Ok((code, text)) => {
            return Err(CliError::Failed(format!(
                "Failed to {verb}e {} cluster: /config PATCH status code={code}, ({text})",
                ctl.scope
            )))
        }
        Err(e) => {
            return Err(CliError::Failed(format!(
                "Failed to {verb}e {} cluster: {e}",
                ctl.scope
            )))
        }
    }
    let deadline = Instant::now() + WAIT;
    loop {
        let c = ctl.cluster().await?;
        let now = chrono::Local::now().format("%Y-%m-%d %H:%M:%S");
        if role_reached(&c, target) {
            println!("{now} cluster is successfully {verb}ed");
            print!("{}", table(&ctl.scope, &c));
            return Ok(());
        }
        let lead = c.leader_name().and_then(|l| c.member(l));
        println!(
            "{now} cluster is unlocked: {}, leader role: {}, leader state: {}",
            if c.leader.is_none() { "True" } else { "False" },
            lead.map_or("None", |m| m.data.role.as_str()),
            lead.map_or("None", |m| m.data.state.as_str()),
        );
        if Instant::now() > deadline {
            return Err(CliError::Failed(format!(
                "timed out waiting for the leader to run as {target}"
            )));
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

/// The leader runs in the wanted role.
fn role_reached(c: &Cluster, target: &str) -> bool {
    c.leader_name()
        .and_then(|l| c.member(l))
        .is_some_and(|m| m.data.role == target && m.data.is_running())
}

fn table(scope: &str, c: &Cluster) -> String {
    let opts = ListOptions {
        extended: false,
        timestamp: None,
        topology: false,
    };
    render_list(
        scope,
        c.initialize.as_deref(),
        &cluster_json(c, scope),
        &Format::Pretty,
        &opts,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args() -> DemoteArgs {
        DemoteArgs {
            cluster: None,
            host: None,
            port: None,
            restore_command: None,
            primary_slot_name: None,
            force: true,
        }
    }

    #[test]
    fn demote_needs_a_source_and_writes_only_given_keys() {
        assert!(demote_section(&args()).is_err());
        let a = DemoteArgs {
            host: Some("10.0.0.1".into()),
            port: Some(5433),
            primary_slot_name: Some("dr".into()),
            ..args()
        };
        assert_eq!(
            demote_section(&a).unwrap(),
            json!({"host": "10.0.0.1", "port": 5433, "primary_slot_name": "dr"})
        );
        let a = DemoteArgs {
            restore_command: Some("cp /a/%f %p".into()),
            ..args()
        };
        assert_eq!(
            demote_section(&a).unwrap(),
            json!({"restore_command": "cp /a/%f %p"})
        );
    }
}
