//! Carrying out operations and restart waves through the members' REST APIs (the same calls
//! `patronus switchover` / `restart` make), waiting for each step to finish.

use crate::dcs::{Cluster, Dcs, MemberEntry};
use crate::postgres::pending::{restart_order, RestartOrder};
use crate::wire::RestartAnswer;
use serde_json::Value;
use std::time::{Duration, Instant};

/// REST client for member APIs, with the credentials and TLS settings of `ctl` (see
/// [`crate::gitops::connection::AgentAccess`]).
#[derive(Clone)]
pub struct Exec {
    http: reqwest::Client,
    auth: Option<(String, String)>,
}

fn base(m: &MemberEntry) -> String {
    m.data
        .api_url
        .trim_end_matches("/patroni")
        .trim_end_matches('/')
        .to_string()
}

/// What a 401 or 403 from an agent means, naming it; None for other answers.
pub fn refusal(member: &str, code: u16) -> Option<String> {
    match code {
        401 => Some(format!(
            "agent {member} refused the credentials (401): set ctl.authentication in the -c \
             file or PATRONI_CTL_USERNAME/PATRONI_CTL_PASSWORD"
        )),
        403 => Some(format!(
            "agent {member} refused the request (403): the reconciler's address is not in \
             restapi.allowlist, or the agent requires a client certificate (ctl.certfile)"
        )),
        _ => None,
    }
}

/// Why a switchover request to agent `member` failed: its refusal (401/403), the transport
/// error when it could not be reached (status 0; an untrusted certificate points to
/// `ctl.cacert`), else the status and answer.
pub(crate) fn switchover_failure(member: &str, code: u16, text: &str) -> String {
    if let Some(why) = refusal(member, code) {
        return why;
    }
    if code == 0 {
        let hint = if text.contains("certificate") {
            " (set ctl.cacert or PATRONI_CTL_CACERT to the CA of the agents' certificates)"
        } else {
            ""
        };
        return format!("agent {member} could not be reached: {}{hint}", text.trim());
    }
    format!("switchover refused (status {code}): {}", text.trim())
}

impl Exec {
    /// A client for the agents' REST APIs.
    pub fn new(
        access: &crate::gitops::connection::AgentAccess,
    ) -> Result<Exec, crate::gitops::GitopsError> {
        Ok(Exec {
            http: access.http_client(Duration::from_secs(120))?,
            auth: access.auth.clone(),
        })
    }

    /// POSTs `body` to `path` on member `m`: (status, text). Transport errors are status 0.
    pub async fn post(&self, m: &MemberEntry, path: &str, body: &Value) -> (u16, String) {
        let mut rb = self.http.post(format!("{}{path}", base(m))).json(body);
        if let Some((user, password)) = &self.auth {
            rb = rb.basic_auth(user, Some(password));
        }
        match rb.send().await {
            Ok(r) => {
                let code = r.status().as_u16();
                (code, r.text().await.unwrap_or_default())
            }
            Err(e) => (0, error_chain(&e)),
        }
    }

    /// Planned switchover from the current leader (to `candidate` or the best member).
    pub async fn switchover(&self, c: &Cluster, candidate: Option<&str>) -> Result<String, String> {
        let leader = c
            .leader_name()
            .and_then(|l| c.member(l))
            .ok_or("the cluster has no leader")?;
        let body = crate::api::switchover::SwitchoverRequest {
            leader: Some(leader.name.clone()),
            candidate: candidate.map(str::to_string),
            scheduled_at: None,
        }
        .body();
        match self.post(leader, "/switchover", &body).await {
            (200, text) => Ok(text.trim().to_string()),
            (code, text) => Err(switchover_failure(&leader.name, code, &text)),
        }
    }

    /// Asks member `m` to restart (`restart_pending` when `pending_only`), retrying while it
    /// is busy with another action; Ok(None) when it accepted, Ok(Some(why)) when nothing is
    /// pending any more, Err when it refused.
    pub async fn request_restart(
        &self,
        m: &MemberEntry,
        pending_only: bool,
    ) -> Result<Option<String>, String> {
        let name = &m.name;
        // A member still finishing another action (e.g. the old primary right after its
        // switchover) answers 503 "… in progress": retry for a while.
        let busy_until = Instant::now() + Duration::from_secs(60);
        let answer = loop {
            let (code, text) = self.post(m, "/restart", &restart_body(pending_only)).await;
            let answer = RestartAnswer::read(code, &text);
            if answer != RestartAnswer::Busy || Instant::now() > busy_until {
                break answer;
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        };
        match answer {
            RestartAnswer::Done(_) => Ok(None),
            // Nothing pending any more (e.g. the old primary restarted during its switchover).
            RestartAnswer::NotSatisfied if pending_only => {
                Ok(Some(format!("{name} has no pending restart any more")))
            }
            RestartAnswer::Busy => Err(format!("restart of {name} failed: still busy after 60 s")),
            RestartAnswer::NotSatisfied => Err(format!(
                "restart of {name} failed (status 503): {}",
                crate::wire::NOT_SATISFIED
            )),
            RestartAnswer::Other { code, text } => Err(refusal(name, code)
                .unwrap_or_else(|| format!("restart of {name} failed (status {code}): {text}"))),
        }
    }

    /// Restarts `name` and waits until it runs again without a pending restart (streaming
    /// when it is a replica).
    pub async fn restart_member(
        &self,
        dcs: &dyn Dcs,
        c: &Cluster,
        name: &str,
        pending_only: bool,
    ) -> Result<String, String> {
        let m = c
            .member(name)
            .ok_or_else(|| format!("{name} is not a member"))?;
        if let Some(nothing) = self.request_restart(m, pending_only).await? {
            return Ok(nothing);
        }
        let deadline = Instant::now() + Duration::from_secs(180);
        loop {
            if let Ok(now) = dcs.fresh_cluster().await {
                let leader = now.leader_name() == Some(name);
                let ok = now.member(name).is_some_and(|m| {
                    m.data.is_running()
                        && m.data.pending_restart != Some(true)
                        && (leader || m.data.replication_state.as_deref() == Some("streaming"))
                });
                if ok {
                    return Ok(format!("{name} restarted"));
                }
            }
            if Instant::now() > deadline {
                return Err(format!("{name} did not come back within 180 s"));
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }
}

/// A reqwest error with its causes (a TLS failure says which certificate problem).
fn error_chain(e: &reqwest::Error) -> String {
    let mut out = e.to_string();
    let mut cur = std::error::Error::source(e);
    while let Some(c) = cur {
        let s = c.to_string();
        if !out.contains(&s) {
            out = format!("{out}: {s}");
        }
        cur = c.source();
    }
    out
}

/// Whether any pending parameter of the cluster must go primary-first (a decrease of a
/// shared-memory parameter replicas must hold at least as large as the primary).
pub fn primary_first(c: &Cluster) -> bool {
    c.members.iter().any(|m| {
        m.data
            .pending_restart_reason
            .iter()
            .flatten()
            .any(|(name, r)| {
                let old = r.get("old_value").and_then(Value::as_str).unwrap_or("");
                let new = r.get("new_value").and_then(Value::as_str).unwrap_or("");
                matches!(restart_order(name, old, new), RestartOrder::PrimaryFirst)
            })
    })
}

/// Members owing a restart, in wave order: replicas one by one then the primary (or the
/// primary first for decreases).
pub fn wave_order(c: &Cluster) -> Vec<String> {
    let leader = c.leader_name();
    let pending = |m: &&MemberEntry| m.data.pending_restart == Some(true);
    let mut replicas: Vec<String> = c
        .members
        .iter()
        .filter(pending)
        .filter(|m| Some(m.name.as_str()) != leader)
        .map(|m| m.name.clone())
        .collect();
    let primary: Vec<String> = c
        .members
        .iter()
        .filter(pending)
        .filter(|m| Some(m.name.as_str()) == leader)
        .map(|m| m.name.clone())
        .collect();
    if primary_first(c) {
        let mut v = primary;
        v.append(&mut replicas);
        v
    } else {
        replicas.extend(primary);
        replicas
    }
}

/// The `/restart` body of a rolling restart (only members with a pending restart when
/// `pending_only`).
fn restart_body(pending_only: bool) -> Value {
    crate::api::requests::RestartRequest {
        restart_pending: pending_only,
        ..Default::default()
    }
    .body()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusals_name_the_agent_and_the_remedy() {
        let r401 = refusal("node1", 401).expect("401 is a refusal");
        assert!(
            r401.starts_with("agent node1 refused the credentials (401)"),
            "{r401}"
        );
        assert!(r401.contains("PATRONI_CTL_USERNAME"), "{r401}");
        let r403 = refusal("node1", 403).expect("403 is a refusal");
        assert!(r403.contains("restapi.allowlist"), "{r403}");
        assert!(refusal("node1", 503).is_none());
        assert!(refusal("node1", 200).is_none());
    }

    #[test]
    fn a_switchover_failure_names_the_agent_and_why() {
        let tls = "error sending request for url (https://127.0.0.1:8008/switchover): \
                   invalid peer certificate: UnknownIssuer";
        let f = switchover_failure("node1", 0, tls);
        assert!(f.starts_with("agent node1 could not be reached: "), "{f}");
        assert!(
            f.contains("https://127.0.0.1:8008") && f.contains("UnknownIssuer"),
            "{f}"
        );
        assert!(f.contains("ctl.cacert"), "{f}");
        let refused = switchover_failure("node1", 0, "connection refused");
        assert!(!refused.contains("ctl.cacert"), "{refused}");
        assert!(switchover_failure("node1", 401, "").contains("refused the credentials"));
        let busy = switchover_failure("node1", 412, " no good candidate \n");
        assert_eq!(busy, "switchover refused (status 412): no good candidate");
    }
}
