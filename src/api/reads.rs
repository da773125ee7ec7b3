//! GET/HEAD/OPTIONS: status, cluster, history, config, and the health checks.

use super::health::{evaluate, Check};
use super::views::{cluster_json, patroni_status};
use super::ApiState;
use crate::agent::driver::now_ms;
use axum::extract::{Query, State};
use axum::http::{header, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use serde_json::Value;
use std::collections::BTreeMap;

fn json_response(code: StatusCode, body: &Value, with_body: bool) -> Response {
    if !with_body {
        return code.into_response();
    }
    (
        code,
        [(header::CONTENT_TYPE, "application/json")],
        body.to_string(),
    )
        .into_response()
}

/// The `/patroni` body of this member: the last cycle's status with the live WAL positions.
pub async fn patroni_body(sh: &crate::agent::Shared) -> serde_json::Value {
    let node = sh.node();
    let mut st = sh.status();
    refresh_positions(sh, &mut st).await;
    patroni_status(&st, &node.scope, &node.name)
}

/// Overlays the live WAL positions (Patroni answers `/patroni` from a fresh query; the
/// switchover hand-over depends on it).
async fn refresh_positions(sh: &crate::agent::Shared, st: &mut crate::agent::NodeStatus) {
    if st.state != "running" {
        return;
    }
    let q = tokio::time::timeout(std::time::Duration::from_millis(500), sh.sql.state()).await;
    if let Ok(Ok(rt)) = q {
        if rt.in_recovery {
            st.received = rt.receive_lsn.or(st.received);
            st.replayed = rt.replay_lsn.or(st.replayed);
        } else {
            st.location = rt.flush_lsn.or(st.location);
        }
    }
}

/// Serves every read path; unknown methods get 405, unknown paths the generic check (503).
pub async fn read_or_check(
    State(sh): State<ApiState>,
    method: Method,
    uri: Uri,
    Query(query): Query<BTreeMap<String, String>>,
) -> Response {
    let with_body = method == Method::GET;
    if !(method == Method::GET || method == Method::HEAD || method == Method::OPTIONS) {
        return StatusCode::METHOD_NOT_ALLOWED.into_response();
    }
    let path = uri.path();
    let first = path.trim_start_matches('/').split('/').next().unwrap_or("");
    let node = sh.node();
    match first {
        "patroni" => json_response(StatusCode::OK, &patroni_body(&sh).await, with_body),
        "cluster" => match sh.dcs.fresh_cluster().await {
            Ok(c) => json_response(StatusCode::OK, &cluster_json(&c, &node.scope), with_body),
            Err(e) => (StatusCode::BAD_GATEWAY, e.to_string()).into_response(),
        },
        "metrics" => {
            let st = sh.status();
            let prio = crate::config::Tags::of(&st.tags).failover_priority();
            let failsafe = super::metrics::FailsafeGauges {
                active: sh.failsafe.is_active(now_ms()),
                enabled: sh.failsafe.enabled(),
                member: sh.failsafe.is_member(&node.name),
            };
            let body = super::metrics::render(&st, &node.scope, &node.name, prio, failsafe);
            if !with_body {
                return StatusCode::OK.into_response();
            }
            (
                StatusCode::OK,
                [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
                body,
            )
                .into_response()
        }
        "failsafe" => super::failsafe::get_failsafe(&sh, with_body),
        "history" => {
            let c = sh.dcs.cluster().await.ok();
            let h = c
                .and_then(|c| c.history_raw)
                .unwrap_or_else(|| Value::Array(vec![]));
            json_response(StatusCode::OK, &h, with_body)
        }
        "config" => match sh.dcs.cluster().await.ok().and_then(|c| c.config) {
            Some(cfg) => json_response(StatusCode::OK, &cfg.value, with_body),
            None => (StatusCode::BAD_GATEWAY, "Config is empty").into_response(),
        },
        _ => {
            let check = Check::from_path(path);
            let st = sh.status();
            let code = evaluate(check, &st, &node.name, &query, now_ms());
            let code = StatusCode::from_u16(code).unwrap_or(StatusCode::SERVICE_UNAVAILABLE);
            if check.bodyless() {
                return code.into_response();
            }
            json_response(
                code,
                &patroni_status(&st, &node.scope, &node.name),
                with_body,
            )
        }
    }
}
