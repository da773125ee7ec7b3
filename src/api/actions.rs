//! `POST /restart`, `POST /reload`, `POST /reinitialize`, and shared helpers.

use super::ApiState;
use crate::agent::reply::{Reply, RequestError, RequestKind};
use crate::agent::Command;
use crate::ha::Request;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::Value;

use super::requests::{
    parse_object, parse_reinitialize, parse_restart, ReinitializeRequest, RestartRequest,
};
use crate::postgres::version::version_number;

/// A plain-text answer with a numeric status.
pub fn text(code: u16, msg: impl Into<String>) -> Response {
    let code = StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    (code, msg.into()).into_response()
}

/// Parses an optional JSON object body (empty = `{}`); 400 on anything else.
#[allow(clippy::result_large_err)]
pub fn body_json(body: &Bytes) -> Result<Value, Response> {
    parse_object(body, true).map_err(|e| text(400, e))
}

async fn send(sh: &ApiState, request: Request, reply_on_start: bool) -> Reply {
    let (tx, rx) = tokio::sync::oneshot::channel();
    let cmd = Command {
        request,
        reply: tx,
        reply_on_start,
    };
    sh.commands
        .send(cmd)
        .map_err(|_| RequestError::LoopStopped)?;
    sh.wake.notify_one();
    rx.await.map_err(|_| RequestError::Dropped)?
}

/// `POST /restart`: immediate (the leader keeps its lock) or scheduled, with Patroni's filters.
pub async fn post_restart(State(sh): State<ApiState>, body: Bytes) -> Response {
    let v = match body_json(&body) {
        Ok(v) => v,
        Err(r) => return r,
    };
    let st = sh.status();
    let RestartRequest {
        role,
        postgres_version: pg_version,
        restart_pending,
        timeout,
        schedule,
    } = match parse_restart(&v) {
        Ok(r) => r,
        Err((code, msg)) => return text(code, msg),
    };
    if let Some(schedule) = schedule.as_deref() {
        if st.dynamic.pause {
            return text(500, "Can't schedule restart in the paused state");
        }
        let Some(at_ms) = crate::ha::switchover::parse_time_ms(schedule) else {
            if chrono::NaiveDateTime::parse_from_str(schedule, "%Y-%m-%dT%H:%M:%S").is_ok() {
                return text(
                    400,
                    "Timezone information is mandatory for the scheduled restart",
                );
            }
            return text(
                422,
                format!("Unable to parse scheduled timestamp ({schedule})"),
            );
        };
        if at_ms < crate::agent::driver::now_ms() {
            return text(422, "Cannot schedule restart in the past");
        }
        let Ok(mut guard) = sh.scheduled_restart.write() else {
            return text(500, "internal error");
        };
        if guard.is_some() {
            return text(409, "Another restart is already scheduled");
        }
        *guard = Some(crate::agent::shared::ScheduledRestart {
            schedule: schedule.to_string(),
            at_ms,
            postmaster_start_time: st.postmaster_start_time.clone(),
            role,
            postgres_version: pg_version,
            restart_pending,
            timeout,
        });
        drop(guard);
        sh.wake.notify_one();
        return text(202, "Restart scheduled");
    }
    let filter = crate::ha::restart::RestartFilter {
        role: role.as_deref(),
        below_version: pg_version.as_deref().and_then(version_number),
        restart_pending,
    };
    let facts = crate::ha::restart::RestartFacts {
        role: &st.role,
        server_version: Some(st.server_version),
        pending_restart: st.pending_restart,
    };
    if !filter.holds(&facts) {
        return text(503, crate::wire::NOT_SATISFIED);
    }
    match send(&sh, Request::Restart, false).await {
        Ok(_) => text(200, "restarted successfully"),
        Err(e) => text(e.status(), e.body(RequestKind::Restart)),
    }
}

/// `DELETE /restart`: drops a scheduled restart.
pub async fn delete_restart(State(sh): State<ApiState>) -> Response {
    let Ok(mut guard) = sh.scheduled_restart.write() else {
        return text(500, "internal error");
    };
    if guard.take().is_some() {
        drop(guard);
        sh.wake.notify_one();
        text(200, "scheduled restart deleted")
    } else {
        text(404, "no restarts are scheduled")
    }
}

/// `POST /reload`: re-read the node configuration (like SIGHUP).
pub async fn post_reload(State(sh): State<ApiState>) -> Response {
    let sh2 = sh.clone();
    let done = tokio::task::spawn_blocking(move || crate::agent::run::reload_node_config(&sh2));
    match done.await {
        Ok(Some(restart)) if !restart.is_empty() => text(
            202,
            format!(
                "reload scheduled; a restart of patronus is needed to apply: {}",
                restart.join(", ")
            ),
        ),
        Ok(Some(_)) => text(202, "reload scheduled"),
        _ => text(
            500,
            "reload failed: the configuration file could not be loaded, see the log",
        ),
    }
}

/// `POST /reinitialize`: wipe and re-clone this replica.
pub async fn post_reinitialize(State(sh): State<ApiState>, body: Bytes) -> Response {
    let v = match body_json(&body) {
        Ok(v) => v,
        Err(r) => return r,
    };
    let st = sh.status();
    if st.has_lock {
        return text(503, "I am the leader, can not reinitialize");
    }
    if st.cluster.as_ref().is_none_or(|c| c.leader.is_none()) {
        return text(503, "Cluster has no leader, can not reinitialize");
    }
    let ReinitializeRequest { from_leader, force } = parse_reinitialize(&v);
    match send(&sh, Request::Reinitialize { from_leader, force }, true).await {
        Ok(_) => text(200, "reinitialize started"),
        Err(e) => text(e.status(), e.body(RequestKind::Reinitialize)),
    }
}
