//! `PATCH /config` (recursive merge, null deletes, CAS) and `PUT /config`.

use super::ApiState;
use crate::dcs::error::{CasOutcome, DcsError};
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::Value;

/// Parses a JSON object body; Err carries Patroni's 400 text. A body carrying a secret (a
/// parameter holding a password) is refused: the DCS is shared by every node and read by the
/// reconciler, so the only safe answer is never to store it.
fn parse_body(body: &Bytes) -> Result<Value, String> {
    let v = super::requests::parse_object(body, false)?;
    match crate::secrets::secret_paths(&v).as_slice() {
        [] => Ok(v),
        paths => Err(format!(
            "{} carries a secret (a password): refused, the dynamic configuration is \
             shared by every node; keep secrets on the nodes (.pgpass, environment, files)",
            paths.join(", ")
        )),
    }
}

/// A `standby_cluster` section that cannot be read would turn a standby cluster's leader
/// into a writable primary (or leave it following nothing): such a configuration is refused
/// with the problems (Patroni stores it as given).
fn check_standby_cluster(config: &Value) -> Option<Response> {
    crate::config::standby::StandbyCluster::parse(config.get("standby_cluster"))
        .err()
        .map(|problems| (StatusCode::BAD_REQUEST, problems.join("; ")).into_response())
}

fn ok_json(v: &Value) -> Response {
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "application/json")],
        v.to_string(),
    )
        .into_response()
}

/// Merges the body into the dynamic config with compare-and-swap.
pub async fn patch_config(State(sh): State<ApiState>, body: Bytes) -> Response {
    let patch = match parse_body(&body) {
        Ok(v) => v,
        Err(r) => return (StatusCode::BAD_REQUEST, r).into_response(),
    };
    let cluster = match sh.dcs.fresh_cluster().await {
        Ok(c) => c,
        Err(e) => return (StatusCode::SERVICE_UNAVAILABLE, e.to_string()).into_response(),
    };
    let Some(current) = cluster.config else {
        return (StatusCode::SERVICE_UNAVAILABLE, "Config is empty").into_response();
    };
    let merged = super::requests::patched_config(&current.value, &patch);
    if let Some(r) = check_standby_cluster(&merged) {
        return r;
    }
    let written = sh.dcs.write_config(&merged, Some(current.version)).await;
    match written.or_cas_failed(crate::dcs::keys::CONFIG) {
        Ok(()) => {
            sh.wake.notify_one();
            ok_json(&merged)
        }
        Err(DcsError::CasFailed(_)) => (
            StatusCode::CONFLICT,
            "Config modification aborted due to concurrent changes",
        )
            .into_response(),
        Err(e) => (StatusCode::SERVICE_UNAVAILABLE, e.to_string()).into_response(),
    }
}

/// Replaces the dynamic config.
pub async fn put_config(State(sh): State<ApiState>, body: Bytes) -> Response {
    let v = match parse_body(&body) {
        Ok(v) => v,
        Err(r) => return (StatusCode::BAD_REQUEST, r).into_response(),
    };
    if let Some(r) = check_standby_cluster(&v) {
        return r;
    }
    match sh.dcs.write_config(&v, None).await {
        Ok(_) => {
            sh.wake.notify_one();
            ok_json(&v)
        }
        Err(e) => (StatusCode::BAD_GATEWAY, e.to_string()).into_response(),
    }
}
