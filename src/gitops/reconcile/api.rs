//! The reconciler's HTTP surface: `GET /status` (JSON), `GET /metrics` (Prometheus),
//! `POST /hooks/git` (reconcile now, e.g. from a forge webhook).

use axum::routing::{get, post};
use axum::Router;
use serde_json::Value;
use std::fmt::Write;
use std::sync::{Arc, RwLock};

/// Shared between the loop (writer) and the HTTP handlers (readers).
#[derive(Default)]
pub struct StatusBoard {
    /// The JSON status document.
    pub doc: RwLock<Value>,
    /// Wakes the loop.
    pub wake: tokio::sync::Notify,
}

/// Prometheus text from the status document (pure).
pub fn metrics(doc: &Value) -> String {
    let mut s = String::new();
    let mut gauge = |name: &str, help: &str, labels: &str, v: f64| {
        let _ = writeln!(
            s,
            "# HELP {name} {help}\n# TYPE {name} gauge\n{name}{labels} {v}"
        );
    };
    let last = doc
        .get("last_pass_unix")
        .and_then(Value::as_f64)
        .unwrap_or(0.0);
    gauge(
        "patronus_reconcile_last_pass_timestamp_seconds",
        "When the last reconcile pass ran.",
        "",
        last,
    );
    let err = doc.get("last_error").is_some_and(|e| !e.is_null());
    gauge(
        "patronus_reconcile_error",
        "1 when the last desired commit was invalid.",
        "",
        if err { 1.0 } else { 0.0 },
    );
    for (scope, c) in doc
        .get("clusters")
        .and_then(Value::as_object)
        .into_iter()
        .flatten()
    {
        let l = format!("{{scope=\"{scope}\"}}");
        let n = |k: &str| c.get(k).and_then(Value::as_f64).unwrap_or(0.0);
        gauge(
            "patronus_drift_events",
            "Drift events seen since the reconciler started.",
            &l,
            n("drift_events"),
        );
        gauge(
            "patronus_pending_restarts",
            "Members with a pending restart.",
            &l,
            n("pending_restarts"),
        );
        gauge(
            "patronus_owed_restarts",
            "1 when restarts are owed but parked outside the windows.",
            &l,
            n("owed_restarts"),
        );
        for (state, count) in c
            .get("operations")
            .and_then(Value::as_object)
            .into_iter()
            .flatten()
        {
            let l2 = format!("{{scope=\"{scope}\",state=\"{state}\"}}");
            gauge(
                "patronus_operations",
                "Declared operations by state.",
                &l2,
                count.as_f64().unwrap_or(0.0),
            );
        }
    }
    s
}

/// The router.
pub fn router(board: Arc<StatusBoard>) -> Router {
    let b1 = board.clone();
    let b2 = board.clone();
    Router::new()
        .route(
            "/status",
            get(move || {
                let b = b1.clone();
                async move { axum::Json(b.doc.read().map(|d| d.clone()).unwrap_or_default()) }
            }),
        )
        .route(
            "/metrics",
            get(move || {
                let b = b2.clone();
                async move { metrics(&b.doc.read().map(|d| d.clone()).unwrap_or_default()) }
            }),
        )
        .route(
            "/hooks/git",
            post(move || {
                let b = board.clone();
                async move {
                    b.wake.notify_one();
                    (axum::http::StatusCode::ACCEPTED, "reconcile scheduled")
                }
            }),
        )
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn metrics_from_status() {
        let doc = json!({"last_pass_unix": 5.0, "clusters": {"acme": {"drift_events": 2, "pending_restarts": 1, "operations": {"done": 1}}}});
        let m = metrics(&doc);
        assert!(m.contains("patronus_drift_events{scope=\"acme\"} 2"));
        assert!(m.contains("patronus_operations{scope=\"acme\",state=\"done\"} 1"));
        assert!(m.contains("patronus_reconcile_error 0"));
    }
}
