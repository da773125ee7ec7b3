//! `POST /restart`, `POST /reload`, `POST /reinitialize`, and shared helpers.

use super::{auth, ApiState};
use crate::agent::Command;
use crate::ha::Request;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::Value;

/// A plain-text answer with a numeric status.
pub fn text(code: u16, msg: impl Into<String>) -> Response {
    let code = StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    (code, msg.into()).into_response()
}

/// Parses an optional JSON object body (empty = `{}`); 400 on anything else.
#[allow(clippy::result_large_err)]
pub fn body_json(body: &Bytes) -> Result<Value, Response> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(Value::Object(Default::default()));
    }
    match serde_json::from_slice::<Value>(body) {
        Ok(v) if v.is_object() => Ok(v),
        Ok(_) => Err(text(400, "Bad request: the body must be a JSON object")),
        Err(e) => Err(text(400, format!("Bad request: invalid JSON: {e}"))),
    }
}

async fn send(sh: &ApiState, request: Request, reply_on_start: bool) -> Result<String, String> {
    let (tx, rx) = tokio::sync::oneshot::channel();
    let cmd = Command {
        request,
        reply: tx,
        reply_on_start,
    };
    sh.commands
        .send(cmd)
        .map_err(|_| "the HA loop is not running".to_string())?;
    sh.wake.notify_one();
    rx.await
        .map_err(|_| "the HA loop dropped the request".to_string())?
}

/// `POST /restart` (immediate; the leader keeps its lock).
pub async fn post_restart(State(sh): State<ApiState>, headers: HeaderMap, body: Bytes) -> Response {
    if let Some(denied) = auth::check(&sh, &headers) {
        return denied;
    }
    let v = match body_json(&body) {
        Ok(v) => v,
        Err(r) => return r,
    };
    if let Some(role) = v.get("role").and_then(Value::as_str) {
        let mine = sh.status().role;
        let matches = match role {
            "primary" | "master" => mine == "primary",
            "replica" => mine == "replica",
            "standby_leader" => mine == "standby_leader",
            _ => return text(400, format!("PostgreSQL role should be either primary, standby_leader, or replica, not {role}")),
        };
        if !matches {
            return text(503, "restart conditions are not satisfied");
        }
    }
    if v.get("schedule").is_some() {
        return text(400, "scheduled restarts are not supported yet");
    }
    match send(&sh, Request::Restart, false).await {
        Ok(_) => text(200, "restarted successfully"),
        Err(e) if e.contains("in progress") => text(503, e),
        Err(e) => text(503, format!("restart failed: {e}")),
    }
}

/// `POST /reload`: re-read the node configuration (like SIGHUP).
pub async fn post_reload(State(sh): State<ApiState>, headers: HeaderMap) -> Response {
    if let Some(denied) = auth::check(&sh, &headers) {
        return denied;
    }
    let sh2 = sh.clone();
    tokio::task::spawn_blocking(move || crate::agent::run::reload_node_config(&sh2));
    text(202, "reload scheduled")
}

/// `POST /reinitialize`: wipe and re-clone this replica.
pub async fn post_reinitialize(
    State(sh): State<ApiState>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if let Some(denied) = auth::check(&sh, &headers) {
        return denied;
    }
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
    let from_leader = v
        .get("from_leader")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    match send(&sh, Request::Reinitialize { from_leader }, true).await {
        Ok(_) => text(200, "reinitialize started"),
        Err(e) => text(503, e),
    }
}
