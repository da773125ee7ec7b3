//! `pause` / `resume`: maintenance mode through `PATCH /config` on the leader (first
//! reachable member otherwise), `--wait` polls the members' `pause` flag.

use super::context::{Ctl, GlobalOpts};
use super::error::{CliError, CliResult};
use reqwest::Method;
use serde_json::json;
use std::time::{Duration, Instant};

/// Runs `pause` (`on = true`) or `resume`.
pub async fn pause(g: &GlobalOpts, cluster: Option<&str>, on: bool, wait: bool) -> CliResult<()> {
    let ctl = Ctl::connect(g, cluster).await?;
    let c = ctl.cluster().await?;
    if c.is_paused() == on {
        return Err(CliError::Failed(format!(
            "Cluster is {} paused",
            if on { "already" } else { "not" }
        )));
    }
    let body = json!({"pause": if on { json!(true) } else { json!(null) }});
    let mut order: Vec<_> = c.members.iter().collect();
    order.sort_by_key(|m| Some(m.name.as_str()) != c.leader_name());
    let mut done = false;
    for m in order {
        if let Ok((200, _)) = ctl.request(m, Method::PATCH, "/config", Some(&body)).await {
            done = true;
            break;
        }
    }
    if !done {
        return Err(CliError::Failed("no member accepted the change".into()));
    }
    if wait {
        eprintln!(
            "Waiting for the cluster to be {}",
            if on { "paused" } else { "resumed" }
        );
        let deadline = Instant::now() + Duration::from_secs(300);
        loop {
            let c = ctl.cluster().await?;
            if c.members
                .iter()
                .all(|m| m.data.pause.unwrap_or(false) == on)
            {
                break;
            }
            if Instant::now() > deadline {
                return Err(CliError::Failed(
                    "timed out waiting for every member".into(),
                ));
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }
    println!(
        "Success: cluster management is {}",
        if on { "paused" } else { "resumed" }
    );
    Ok(())
}
