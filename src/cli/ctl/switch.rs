//! `switchover` and `failover`: prompts like patronictl, `POST /switchover|/failover` on the
//! leader, falling back to the `failover` key when no API answers.

use super::context::{Ctl, GlobalOpts};
use super::error::{CliError, CliResult};
use super::prompt::{ask_default, confirm};
use crate::dcs::{Cluster, Dcs, Failover};

/// Arguments of `switchover` / `failover`.
#[derive(Debug, Clone, clap::Args)]
#[command(
    after_help = "Examples:\n  patronus switchover --candidate node2 --force\n  patronus switchover --scheduled 2026-12-01T02:00+00:00 --force"
)]
pub struct SwitchArgs {
    /// Cluster name (default: `scope` of the config).
    pub cluster: Option<String>,
    /// The current leader (switchover only; default: the leader).
    #[arg(long = "leader", alias = "primary", alias = "master")]
    pub leader: Option<String>,
    /// The member to promote.
    #[arg(long)]
    pub candidate: Option<String>,
    /// When to switch over: ISO 8601 time, or `now` (switchover only).
    #[arg(long)]
    pub scheduled: Option<String>,
    /// Do not ask for confirmation.
    #[arg(long)]
    pub force: bool,
}

fn parse_scheduled(s: &str) -> CliResult<Option<String>> {
    if s == "now" {
        return Ok(None);
    }
    if let Some(ms) = crate::ha::switchover::parse_time_ms(s) {
        let t = chrono::DateTime::from_timestamp_millis(ms as i64).unwrap_or_default();
        return Ok(Some(t.to_rfc3339()));
    }
    for f in [
        "%Y-%m-%dT%H:%M",
        "%Y-%m-%dT%H:%M:%S",
        "%Y-%m-%d %H:%M",
        "%Y-%m-%d %H:%M:%S",
    ] {
        if let Ok(n) = chrono::NaiveDateTime::parse_from_str(s, f) {
            if let Some(t) = n.and_local_timezone(chrono::Local).single() {
                return Ok(Some(t.to_rfc3339()));
            }
        }
    }
    Err(CliError::Failed(format!(
        "Unable to parse scheduled timestamp ({s}). It should be in ISO 8601 format."
    )))
}

/// Runs `switchover` (`failover = false`) or `failover`.
pub async fn switch(g: &GlobalOpts, a: &SwitchArgs, failover: bool) -> CliResult<()> {
    let ctl = Ctl::connect(g, a.cluster.as_deref()).await?;
    let c = ctl.cluster().await?;
    let current = c.leader_name().map(str::to_string);
    let action = if failover { "failover" } else { "switchover" };
    let leader = if failover {
        a.leader.clone()
    } else {
        Some(switchover_leader(a, current.as_deref(), &ctl.scope)?)
    };
    let others: Vec<String> = c
        .members
        .iter()
        .map(|m| m.name.clone())
        .filter(|n| Some(n) != current.as_ref())
        .collect();
    if others.is_empty() {
        return Err(CliError::Failed(format!(
            "{action} is not possible: cluster does not have members except leader"
        )));
    }
    let candidate = ask_candidate(a, &others, failover)?;
    if let Some(cand) = &candidate {
        if c.member(cand).is_none() {
            return Err(CliError::Failed(format!(
                "Member {cand} does not exist in cluster {} or is not healthy",
                ctl.scope
            )));
        }
        if Some(cand) == current.as_ref() && !failover {
            return Err(CliError::Failed(
                "Switchover target and source are the same.".into(),
            ));
        }
    }
    let scheduled = match (&a.scheduled, failover) {
        (Some(_), true) => return Err(CliError::Failed("Failover can't be scheduled".into())),
        (Some(s), false) => parse_scheduled(s)?,
        (None, _) => None,
    };
    let target = candidate
        .clone()
        .unwrap_or_else(|| "any healthy member".into());
    let when = scheduled.clone().unwrap_or_else(|| "now".into());
    confirm(&format!("Are you sure you want to {action} cluster {}, demoting current leader {}, promoting {target} ({when})?", ctl.scope, current.as_deref().unwrap_or("(none)")), a.force)?;
    let key = Failover {
        leader,
        member: candidate,
        scheduled_at: scheduled,
    };
    send_request(&ctl, &c, current.as_deref(), key, failover).await
}

/// The leader a switchover demotes: asked (default: the current one), and it must lead.
fn switchover_leader(a: &SwitchArgs, current: Option<&str>, scope: &str) -> CliResult<String> {
    let l = ask_default("Primary", a.leader.as_deref().or(current), a.force)?;
    if current != Some(l.as_str()) {
        return Err(CliError::Failed(format!(
            "Member {l} is not the leader of cluster {scope}"
        )));
    }
    Ok(l)
}

/// The candidate: required (asked) for a failover; optional for a switchover, asked only on
/// a terminal without `--force`.
fn ask_candidate(a: &SwitchArgs, others: &[String], failover: bool) -> CliResult<Option<String>> {
    let question = format!("Candidate {others:?}");
    if failover {
        return Ok(Some(ask_default(
            &question,
            a.candidate.as_deref(),
            a.force,
        )?));
    }
    if a.force || !super::prompt::interactive() {
        return Ok(a.candidate.clone());
    }
    let v = ask_default(&question, a.candidate.as_deref().or(Some("")), false)?;
    Ok((!v.is_empty()).then_some(v))
}

/// Sends the request to the leader's API (else the candidate's); when no API can be reached
/// at all, writes the `failover` key directly, as patronictl does.
async fn send_request(
    ctl: &Ctl,
    c: &Cluster,
    current: Option<&str>,
    key: Failover,
    failover: bool,
) -> CliResult<()> {
    let action = if failover { "failover" } else { "switchover" };
    let body = crate::api::switchover::SwitchoverRequest {
        leader: key.leader.clone(),
        candidate: key.member.clone(),
        scheduled_at: key.scheduled_at.clone(),
    }
    .body();
    let path = if failover { "/failover" } else { "/switchover" };
    let api_member = current
        .and_then(|l| c.member(l))
        .or_else(|| key.member.as_deref().and_then(|cn| c.member(cn)));
    let answer = match api_member {
        Some(m) => {
            ctl.request(m, reqwest::Method::POST, path, Some(&body))
                .await
        }
        None => Err(CliError::Http(
            "no member API to send the request to".into(),
        )),
    };
    match answer {
        Ok((code, text)) if (200..300).contains(&code) => {
            println!("{text}");
            Ok(())
        }
        Ok((code, text)) => Err(CliError::Failed(format!(
            "{action} failed, status code={code}, ({text})"
        ))),
        Err(CliError::Unreachable(e)) => {
            eprintln!("{e}; writing the failover key directly");
            if ctl.dcs.write_failover(&key, None).await? {
                println!("Manual {action} requested through the DCS");
                Ok(())
            } else {
                Err(CliError::Failed("failed to write the failover key".into()))
            }
        }
        Err(e) => Err(e),
    }
}
