//! `restart`, `reload`, `reinit`, `flush`: REST calls to each selected member.

use super::context::{select_members, Ctl, GlobalOpts, RoleFilter};
use super::error::{CliError, CliResult};
use super::prompt::confirm;
use crate::dcs::{Dcs, Failover};
use crate::wire::PatroniStatus;
use reqwest::Method;
use serde_json::Value;
use std::time::{Duration, Instant};

/// Arguments of `restart`.
#[derive(Debug, Clone, clap::Args)]
#[command(
    after_help = "Examples:\n  patronus restart acme --pending --force\n  patronus restart acme node2 --scheduled 2026-12-01T02:00+00:00 --force"
)]
pub struct RestartArgs {
    /// Cluster name.
    pub cluster: String,
    /// Members (default: all).
    pub members: Vec<String>,
    /// Restart only members with this role.
    #[arg(short = 'r', long = "role", value_enum, default_value = "any")]
    pub role: RoleFilter,
    /// Restart any one member (the first selected).
    #[arg(long)]
    pub any: bool,
    /// When to restart: ISO 8601 time with zone.
    #[arg(long)]
    pub scheduled: Option<String>,
    /// Restart only if the running PostgreSQL version is lower.
    #[arg(long = "pg-version")]
    pub pg_version: Option<String>,
    /// Restart only members with a pending restart.
    #[arg(long)]
    pub pending: bool,
    /// Fail over if the restart of the primary takes longer than this (seconds).
    #[arg(long)]
    pub timeout: Option<u64>,
    /// Do not ask for confirmation.
    #[arg(long)]
    pub force: bool,
}

/// Runs `restart`.
pub async fn restart(g: &GlobalOpts, a: &RestartArgs) -> CliResult<()> {
    let ctl = Ctl::connect(g, Some(&a.cluster)).await?;
    let c = ctl.cluster().await?;
    let mut members = select_members(&c, &a.members, a.role)?;
    if a.any {
        members.truncate(1);
    }
    let names: Vec<&str> = members.iter().map(|m| m.name.as_str()).collect();
    confirm(
        &format!(
            "Are you sure you want to restart members {}?",
            names.join(", ")
        ),
        a.force,
    )?;
    let body = crate::api::requests::RestartRequest {
        role: None,
        postgres_version: a.pg_version.clone(),
        restart_pending: a.pending,
        timeout: a.timeout,
        schedule: a.scheduled.clone(),
    }
    .body();
    let mut failed = 0;
    for m in members {
        match ctl.request(m, Method::POST, "/restart", Some(&body)).await {
            Ok((200, _)) => println!("Success: restart on member {}", m.name),
            Ok((202, _)) => println!("Success: restart scheduled on member {}", m.name),
            Ok((code, text)) => {
                failed += 1;
                println!(
                    "Failed: restart for member {}, status code={code}, ({})",
                    m.name,
                    text.trim()
                );
            }
            Err(e) => {
                failed += 1;
                println!("Failed: restart for member {}: {e}", m.name);
            }
        }
    }
    if failed > 0 {
        return Err(CliError::Failed(format!("{failed} restart(s) failed")));
    }
    Ok(())
}

/// Runs `reload`.
pub async fn reload(
    g: &GlobalOpts,
    cluster: &str,
    members: &[String],
    role: RoleFilter,
    force: bool,
) -> CliResult<()> {
    let ctl = Ctl::connect(g, Some(cluster)).await?;
    let c = ctl.cluster().await?;
    let selected = select_members(&c, members, role)?;
    let names: Vec<&str> = selected.iter().map(|m| m.name.as_str()).collect();
    confirm(
        &format!(
            "Are you sure you want to reload members {}?",
            names.join(", ")
        ),
        force,
    )?;
    let loop_wait = c
        .config
        .as_ref()
        .and_then(|v| v.value.get("loop_wait"))
        .and_then(Value::as_u64)
        .unwrap_or(10);
    for m in selected {
        match ctl.request(m, Method::POST, "/reload", None).await? {
            (202, text) => {
                println!(
                    "Reload request received for member {} and will be processed within {loop_wait} seconds",
                    m.name
                );
                // The agent names the changed keys a reload cannot apply.
                if let Some((_, restart)) = text.split_once("; ") {
                    println!("{}: {restart}", m.name);
                }
            }
            (code, text) => println!(
                "Failed: reload for member {}, status code={code}, ({})",
                m.name,
                text.trim()
            ),
        }
    }
    Ok(())
}

/// Runs `reinit`.
pub async fn reinit(
    g: &GlobalOpts,
    cluster: &str,
    members: &[String],
    from_leader: bool,
    wait: bool,
    force: bool,
) -> CliResult<()> {
    if members.is_empty() {
        return Err(CliError::Failed(
            "name at least one member to reinitialize".into(),
        ));
    }
    let ctl = Ctl::connect(g, Some(cluster)).await?;
    let c = ctl.cluster().await?;
    let selected = select_members(&c, members, RoleFilter::Any)?;
    let names: Vec<&str> = selected.iter().map(|m| m.name.as_str()).collect();
    confirm(
        &format!(
            "Are you sure you want to reinitialize members {}?",
            names.join(", ")
        ),
        force,
    )?;
    let body = crate::api::requests::ReinitializeRequest {
        force: true,
        from_leader,
    }
    .body();
    let mut started = Vec::new();
    for m in &selected {
        let before = postmaster_start(&ctl, m).await;
        match ctl
            .request(m, Method::POST, "/reinitialize", Some(&body))
            .await?
        {
            (200, _) => {
                println!("Success: reinitialize for member {}", m.name);
                started.push((*m, before));
            }
            (code, text) => println!(
                "Failed: reinitialize for member {}, status code={code}, ({})",
                m.name,
                text.trim()
            ),
        }
    }
    if started.len() != selected.len() {
        return Err(CliError::Failed(
            "reinitialize failed on some members".into(),
        ));
    }
    if wait {
        wait_reinitialized(&ctl, started).await?;
    }
    Ok(())
}

/// Waits (up to an hour) until each member runs again on a new postmaster: the clone
/// restarted it; the state alone could still be the one from before the wipe.
async fn wait_reinitialized(
    ctl: &Ctl,
    started: Vec<(&crate::dcs::MemberEntry, Option<Value>)>,
) -> CliResult<()> {
    let names: Vec<&str> = started.iter().map(|(m, _)| m.name.as_str()).collect();
    eprintln!(
        "Waiting for reinitialize to complete on: {}",
        names.join(", ")
    );
    let deadline = Instant::now() + Duration::from_secs(3600);
    for (m, before) in started {
        loop {
            let done = match ctl.request(m, Method::GET, "/patroni", None).await {
                Ok((200, b)) => PatroniStatus::from_text(&b).is_some_and(|v| {
                    v.is_running() && v.postmaster_start_time.as_ref() != before.as_ref()
                }),
                _ => false,
            };
            if done {
                println!("Reinitialize is completed on: {}", m.name);
                break;
            }
            if Instant::now() > deadline {
                return Err(CliError::Failed(format!(
                    "timed out waiting for {}",
                    m.name
                )));
            }
            eprint!(".");
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    }
    Ok(())
}

/// Runs `flush … restart|switchover`.
pub async fn flush(
    g: &GlobalOpts,
    cluster: &str,
    members: &[String],
    target: &str,
    role: RoleFilter,
    force: bool,
) -> CliResult<()> {
    let ctl = Ctl::connect(g, Some(cluster)).await?;
    let c = ctl.cluster().await?;
    match target {
        "restart" => {
            let selected = select_members(&c, members, role)?;
            confirm("Are you sure you want to flush scheduled restarts?", force)?;
            for m in selected {
                match ctl.request(m, Method::DELETE, "/restart", None).await? {
                    (200, _) => println!("Success: flush scheduled restart for member {}", m.name),
                    (404, _) => println!("No scheduled restart for member {}", m.name),
                    (code, text) => println!(
                        "Failed: flush scheduled restart for member {}, status code={code}, ({})",
                        m.name,
                        text.trim()
                    ),
                }
            }
            Ok(())
        }
        "switchover" => {
            let leader = c.leader_name().and_then(|l| c.member(l));
            let via_api = match leader {
                Some(m) => ctl
                    .request(m, Method::DELETE, "/switchover", None)
                    .await
                    .ok(),
                None => None,
            };
            match via_api {
                Some((200, text)) | Some((404, text)) => {
                    println!("{}", text.trim());
                    Ok(())
                }
                _ => match c.failover {
                    Some(f) if f.value.scheduled_at.is_some() => {
                        ctl.dcs
                            .write_failover(&Failover::default(), Some(f.version))
                            .await?;
                        println!("Success: scheduled switchover deleted");
                        Ok(())
                    }
                    _ => Err(CliError::Failed("no switchover is scheduled".into())),
                },
            }
        }
        other => Err(CliError::Failed(format!(
            "flush target must be 'restart' or 'switchover', not '{other}'"
        ))),
    }
}

/// The member's `postmaster_start_time` from `/patroni` (None when unknown).
async fn postmaster_start(ctl: &Ctl, m: &crate::dcs::MemberEntry) -> Option<Value> {
    match ctl.request(m, Method::GET, "/patroni", None).await {
        Ok((200, b)) => PatroniStatus::from_text(&b)?.postmaster_start_time,
        _ => None,
    }
}
