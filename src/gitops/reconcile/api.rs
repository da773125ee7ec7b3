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

/// One metric family: name, help text, (labels, value) samples.
type Family = (&'static str, &'static str, Vec<(String, f64)>);

/// The metric families, without samples.
fn families() -> Vec<Family> {
    vec![
        (
            "patronus_reconcile_last_pass_timestamp_seconds",
            "When the last reconcile pass ran.",
            vec![],
        ),
        (
            "patronus_reconcile_error",
            "1 when the last desired commit was invalid.",
            vec![],
        ),
        (
            "patronus_drift_events",
            "Drift events seen since the reconciler started.",
            vec![],
        ),
        (
            "patronus_pending_restarts",
            "Members with a pending restart.",
            vec![],
        ),
        (
            "patronus_owed_restarts",
            "1 when restarts are owed but parked outside the windows.",
            vec![],
        ),
        (
            "patronus_operations",
            "Declared operations by state.",
            vec![],
        ),
        (
            "patronus_reconcile_cluster_reads_total",
            "Cluster reads since the reconciler started (at most one per cluster and pass).",
            vec![],
        ),
    ]
}

/// Prometheus text from the status document (pure); one HELP/TYPE per metric family.
pub fn metrics(doc: &Value) -> String {
    let mut families = families();
    let last = doc
        .get("last_pass_unix")
        .and_then(Value::as_f64)
        .unwrap_or(0.0);
    families[0].2.push((String::new(), last));
    if let Some(reads) = doc.get("cluster_reads").and_then(Value::as_f64) {
        families[6].2.push((String::new(), reads));
    }
    let err = doc.get("last_error").is_some_and(|e| !e.is_null());
    families[1]
        .2
        .push((String::new(), if err { 1.0 } else { 0.0 }));
    for (scope, c) in doc
        .get("clusters")
        .and_then(Value::as_object)
        .into_iter()
        .flatten()
    {
        let l = format!("{{scope=\"{scope}\"}}");
        let n = |k: &str| c.get(k).and_then(Value::as_f64).unwrap_or(0.0);
        families[2].2.push((l.clone(), n("drift_events")));
        families[3].2.push((l.clone(), n("pending_restarts")));
        families[4].2.push((l, n("owed_restarts")));
        for (state, count) in c
            .get("operations")
            .and_then(Value::as_object)
            .into_iter()
            .flatten()
        {
            families[5].2.push((
                format!("{{scope=\"{scope}\",state=\"{state}\"}}"),
                count.as_f64().unwrap_or(0.0),
            ));
        }
    }
    let mut s = String::new();
    for (name, help, samples) in families {
        if samples.is_empty() {
            continue;
        }
        let kind = if name.ends_with("_total") {
            "counter"
        } else {
            "gauge"
        };
        let _ = writeln!(s, "# HELP {name} {help}\n# TYPE {name} {kind}");
        for (labels, v) in samples {
            let _ = writeln!(s, "{name}{labels} {v}");
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
        let doc = json!({"last_pass_unix": 5.0, "cluster_reads": 7, "clusters": {"acme": {"drift_events": 2, "pending_restarts": 1, "operations": {"done": 1}}}});
        let m = metrics(&doc);
        assert!(m.contains("# TYPE patronus_reconcile_cluster_reads_total counter\npatronus_reconcile_cluster_reads_total 7\n"), "{m}");
        assert!(m.contains("# TYPE patronus_drift_events gauge"));
        assert!(m.contains("patronus_drift_events{scope=\"acme\"} 2"));
        assert!(m.contains("patronus_operations{scope=\"acme\",state=\"done\"} 1"));
        assert!(m.contains("patronus_reconcile_error 0"));
    }
}
