//! `GET /failsafe` and `POST /failsafe` (Patroni's failsafe mode).
//!
//! Reference: patroni/api.py `do_GET_failsafe`, `do_POST_failsafe`.

use super::actions::text;
use super::requests::{parse_failsafe, parse_object};
use super::ApiState;
use crate::agent::driver::now_ms;
use crate::agent::failsafe::LeaderCall;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};

/// `GET /failsafe`: the last known `failsafe` key (200), or 502 when there is none (failsafe
/// mode off: the leader deletes the key).
pub fn get_failsafe(sh: &ApiState, with_body: bool) -> Response {
    match sh.failsafe.key().filter(serde_json::Value::is_object) {
        Some(key) if with_body => (
            StatusCode::OK,
            [(header::CONTENT_TYPE, "application/json")],
            key.to_string(),
        )
            .into_response(),
        Some(_) => StatusCode::OK.into_response(),
        None => text(502, "failsafe mode is not enabled"),
    }
}

/// `POST /failsafe`: a leader without DCS asks whether it may keep its primary. A member
/// that does not run a primary records the call (it will not race for ttl) and answers 200
/// `Accepted` with its WAL position in the `lsn` header; a running primary answers 500.
pub async fn post_failsafe(State(sh): State<ApiState>, body: Bytes) -> Response {
    if !sh.failsafe.enabled() {
        return text(502, "failsafe mode is not enabled");
    }
    let request = match parse_object(&body, false)
        .map_err(|e| (400, e))
        .and_then(|v| parse_failsafe(&v))
    {
        Ok(r) => r,
        Err((code, msg)) => return text(code, msg),
    };
    let st = sh.status();
    if st.state == "running" && st.role == "primary" {
        return text(500, "Running as a leader");
    }
    sh.failsafe.accept(LeaderCall {
        name: request.name,
        conn_url: request.conn_url,
        api_url: request.api_url,
        at_ms: now_ms(),
    });
    let lsn = match (st.received, st.replayed) {
        (Some(a), Some(b)) => Some(a.max(b)),
        (a, b) => a.or(b),
    };
    match lsn {
        Some(lsn) => (StatusCode::OK, [("lsn", lsn.to_string())], "Accepted").into_response(),
        None => (StatusCode::OK, "Accepted").into_response(),
    }
}
