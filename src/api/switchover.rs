//! `POST /switchover`, `POST /failover`, `DELETE /switchover` (docs/patroni-behaviour.md §3.4), all through
//! the `failover` key so `patronictl switchover` works unchanged.

use super::actions::{body_json, text};
use super::ApiState;
use crate::dcs::{Cluster, Failover};
use crate::ha::switchover::parse_time_ms;
use axum::body::Bytes;
use axum::extract::State;
use axum::response::Response;
use serde_json::Value;
use std::time::{Duration, Instant};

/// A `POST /switchover` or `/failover` body: read by the server ([`validate`]), written by
/// the CLI and the reconciler ([`SwitchoverRequest::body`]).
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct SwitchoverRequest {
    /// Current leader (required for switchover).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub leader: Option<String>,
    /// Candidate (required for failover).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub candidate: Option<String>,
    /// ISO time for a scheduled switchover.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scheduled_at: Option<String>,
}

impl SwitchoverRequest {
    /// The JSON body a client sends (unset fields left out).
    pub fn body(&self) -> Value {
        serde_json::to_value(self).unwrap_or_default()
    }
}

fn field(v: &Value, names: &[&str]) -> Option<String> {
    names
        .iter()
        .find_map(|n| v.get(*n).and_then(Value::as_str))
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
}

/// Validates the fields (pure): Err(status, message) as Patroni answers.
pub fn validate(
    v: &Value,
    failover: bool,
    paused: bool,
    now_ms: u64,
) -> Result<SwitchoverRequest, (u16, String)> {
    let req = SwitchoverRequest {
        leader: field(v, &["leader", "master"]),
        candidate: field(v, &["candidate", "member"]),
        scheduled_at: field(v, &["scheduled_at"]),
    };
    if failover && req.candidate.is_none() {
        return Err((
            400,
            "Failover could be performed only to a specific candidate".into(),
        ));
    }
    if !failover && req.leader.is_none() {
        return Err((
            400,
            "Switchover could be performed only from a specific leader".into(),
        ));
    }
    if req.leader.is_some() && req.leader == req.candidate {
        return Err((400, "Switchover target and source are the same".into()));
    }
    if let Some(at) = &req.scheduled_at {
        if failover && req.leader.is_none() {
            return Err((400, "Failover can't be scheduled".into()));
        }
        if paused {
            return Err((400, "Can't schedule switchover in the paused state".into()));
        }
        let Some(ms) = parse_time_ms(at) else {
            let no_tz = chrono::NaiveDateTime::parse_from_str(at, "%Y-%m-%dT%H:%M:%S").is_ok()
                || chrono::NaiveDateTime::parse_from_str(at, "%Y-%m-%dT%H:%M:%S%.f").is_ok();
            if no_tz {
                return Err((
                    400,
                    "Timezone information is mandatory for the scheduled switchover".into(),
                ));
            }
            return Err((422, format!("Unable to parse scheduled timestamp ({at})")));
        };
        if ms < now_ms {
            return Err((422, "Cannot schedule switchover in the past".into()));
        }
    }
    if paused && req.candidate.is_none() {
        return Err((
            400,
            "Switchover is possible only to a specific candidate in a paused state".into(),
        ));
    }
    Ok(req)
}

/// Pre-checks against the cluster and the candidates' live `/patroni` (412 answers).
async fn precheck(
    sh: &ApiState,
    c: &Cluster,
    req: &SwitchoverRequest,
    action: &str,
) -> Result<(), String> {
    if sh.status().dynamic.is_standby_cluster() {
        return Err(crate::ha::standby::SWITCHOVER_REFUSED.into());
    }
    if let (Some(l), Some(cur)) = (&req.leader, c.leader_name()) {
        if l != cur {
            return Err("leader name does not match".into());
        }
    }
    if let Some(cand) = &req.candidate {
        if c.member(cand).is_none() {
            return Err("candidate does not exists".into());
        }
    }
    let leader = c.leader_name();
    let dynamic = sh.status().dynamic.clone();
    let sync_active = crate::ha::sync::key_in_force(dynamic.synchronous_mode, c);
    // Quorum mode names no candidate in advance (Patroni ≥ 4): the race's votes decide.
    let priority_mode = dynamic.synchronous_mode != crate::config::SyncMode::Quorum;
    if sync_active && priority_mode && action == "switchover" {
        let allowed = crate::ha::sync::promotable(c);
        match &req.candidate {
            Some(cand) if !allowed.contains(cand) => {
                return Err("candidate name does not match with sync_standby".into())
            }
            None if allowed.iter().all(|n| Some(n.as_str()) == leader) => {
                return Err(format!(
                    "{action} is not possible: can not find sync_standby"
                ))
            }
            _ => {}
        }
    }
    let members: Vec<_> = c
        .members
        .iter()
        .filter(|m| Some(m.name.as_str()) != leader)
        .filter(|m| req.candidate.as_deref().is_none_or(|cand| cand == m.name))
        .collect();
    if members.is_empty() {
        return Err(format!(
            "{action} is not possible: cluster does not have members except leader"
        ));
    }
    let max_lag = sh.status().dynamic.maximum_lag_on_failover;
    let optime = c.status.optime;
    for m in members {
        if m.data.nofailover() || m.data.api_url.is_empty() {
            continue;
        }
        let Some(b) = sh
            .peers
            .get_json(&m.data.api_url, Duration::from_secs(2))
            .await
        else {
            continue;
        };
        let running = b.get("state").and_then(Value::as_str) == Some("running");
        let pos = crate::agent::handover::reported_position(&b).unwrap_or(0);
        if running && (leader.is_none() || optime.saturating_sub(pos) <= max_lag) {
            return Ok(());
        }
    }
    Err(format!(
        "{action} is not possible: no good candidates have been found"
    ))
}

async fn handle(sh: ApiState, body: Bytes, failover: bool) -> Response {
    let v = match body_json(&body) {
        Ok(v) => v,
        Err(r) => return r,
    };
    let cluster = match sh.dcs.fresh_cluster().await {
        Ok(c) => c,
        Err(e) => return text(503, e.to_string()),
    };
    let now = crate::agent::driver::now_ms();
    let req = match validate(&v, failover, cluster.is_paused(), now) {
        Ok(r) => r,
        Err((code, msg)) => return text(code, msg),
    };
    let action = if req.leader.is_some() {
        "switchover"
    } else {
        "failover"
    };
    if req.scheduled_at.is_none() {
        if let Err(msg) = precheck(&sh, &cluster, &req, action).await {
            return text(412, msg);
        }
    }
    let key = Failover {
        leader: req.leader.clone(),
        member: req.candidate.clone(),
        scheduled_at: req.scheduled_at.clone(),
    };
    if let Ok(mut e) = sh.last_handover_error.write() {
        *e = None;
    }
    if !matches!(sh.dcs.write_failover(&key, None).await, Ok(true)) {
        return text(503, "failed to write failover key into DCS");
    }
    sh.wake.notify_one();
    if req.scheduled_at.is_some() {
        return text(202, "Switchover scheduled");
    }
    await_outcome(&sh, &cluster, &req).await
}

/// Polls the DCS until the leader changes, the request is dropped, or time runs out.
async fn await_outcome(sh: &ApiState, before: &Cluster, req: &SwitchoverRequest) -> Response {
    let old = before.leader_name().map(str::to_string);
    let limit = crate::config::timing::MAX_SECS.min(sh.status().dynamic.loop_wait.max(10)) * 2;
    let deadline = crate::config::timing::deadline(Instant::now(), limit);
    loop {
        tokio::time::sleep(Duration::from_millis(50)).await;
        let Ok(c) = sh.dcs.fresh_cluster().await else {
            continue;
        };
        let leader = c.leader_name().map(str::to_string);
        if leader.is_some() && leader != old {
            let new = leader.unwrap_or_default();
            return match &req.candidate {
                Some(cand) if *cand != new => text(
                    200,
                    format!("Switched over to \"{new}\" instead of \"{cand}\""),
                ),
                _ => text(200, format!("Successfully switched over to \"{new}\"")),
            };
        }
        if c.failover.is_none() && leader == old && leader.is_some() {
            let reason = sh.last_handover_error.read().ok().and_then(|e| e.clone());
            let reason = reason.map(|r| r.trim_start_matches("switchover failed: ").to_string());
            return text(
                503,
                reason.map_or("Switchover failed".to_string(), |r| {
                    format!("Switchover failed: {r}")
                }),
            );
        }
        if Instant::now() >= deadline {
            return text(503, format!("Switchover status unknown after {limit} seconds; operation may still be in progress"));
        }
    }
}

/// `POST /switchover`.
pub async fn post_switchover(State(sh): State<ApiState>, body: Bytes) -> Response {
    handle(sh, body, false).await
}

/// `POST /failover`.
pub async fn post_failover(State(sh): State<ApiState>, body: Bytes) -> Response {
    handle(sh, body, true).await
}

/// `DELETE /switchover`: cancels a scheduled switchover.
pub async fn delete_switchover(State(sh): State<ApiState>) -> Response {
    let c = match sh.dcs.fresh_cluster().await {
        Ok(c) => c,
        Err(e) => return text(503, e.to_string()),
    };
    match c.failover.filter(|f| f.value.scheduled_at.is_some()) {
        None => text(404, "no switchover is scheduled"),
        Some(f) => match sh
            .dcs
            .write_failover(&Failover::default(), Some(f.version))
            .await
        {
            Ok(true) => text(200, "scheduled switchover deleted"),
            _ => text(
                409,
                "unable to delete the scheduled switchover: concurrent modification",
            ),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn validation_messages_match_patroni() {
        let now = 1_700_000_000_000;
        let e = |v: Value, f: bool, p: bool| validate(&v, f, p, now).unwrap_err();
        assert_eq!(
            e(json!({"candidate": "b"}), false, false).1,
            "Switchover could be performed only from a specific leader"
        );
        assert_eq!(
            e(json!({"leader": "a"}), true, false).1,
            "Failover could be performed only to a specific candidate"
        );
        assert_eq!(
            e(json!({"leader": "a", "candidate": "a"}), false, false).1,
            "Switchover target and source are the same"
        );
        assert_eq!(
            e(
                json!({"leader": "a", "scheduled_at": "2030-01-01T00:00:00"}),
                false,
                false
            )
            .0,
            400
        );
        assert_eq!(
            e(
                json!({"leader": "a", "scheduled_at": "2001-01-01T00:00:00+00:00"}),
                false,
                false
            )
            .0,
            422
        );
        assert_eq!(
            e(
                json!({"leader": "a", "scheduled_at": "2030-01-01T00:00:00+00:00"}),
                false,
                true
            )
            .1,
            "Can't schedule switchover in the paused state"
        );
        assert_eq!(
            e(json!({"leader": "a"}), false, true).1,
            "Switchover is possible only to a specific candidate in a paused state"
        );
        assert_eq!(
            e(
                json!({"candidate": "b", "scheduled_at": "2030-01-01T00:00:00+00:00"}),
                true,
                false
            )
            .1,
            "Failover can't be scheduled"
        );
        let ok = validate(&json!({"leader": "a", "member": "b"}), false, false, now).unwrap();
        assert_eq!(ok.candidate.as_deref(), Some("b"));
    }
}
