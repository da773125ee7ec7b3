//! Operation outcomes a reconciler recorded in the DCS but did not live to commit (killed
//! between its `gitops` key write and its next commit-back): the next active reconciler reads
//! the final records and adds the `operation` events `history.yaml` lacks (pure). The DCS
//! record is the truth; an event already in the history (same id and state) is never repeated.

use serde_json::{json, Value};

/// Whether `events` hold the `operation` event of `id` in `state`.
fn has_event(events: &[Value], id: &str, state: &str) -> bool {
    events.iter().any(|e| {
        e.get("event").and_then(Value::as_str) == Some("operation")
            && e.get("id").and_then(Value::as_str) == Some(id)
            && e.get("state").and_then(Value::as_str) == Some(state)
    })
}

/// The events to add: one per final (`done`/`failed`) record of `gitops.ops` that neither the
/// committed `history` text nor the `pending` events hold. `kind` names an operation's type.
pub fn missing_op_events(
    history: Option<&str>,
    pending: &[Value],
    gitops: Option<&Value>,
    kind: impl Fn(&str) -> Option<String>,
) -> Vec<Value> {
    let Some(ops) = gitops.and_then(|g| g.get("ops")).and_then(Value::as_object) else {
        return vec![];
    };
    let committed: Vec<Value> = history
        .and_then(|t| crate::config::yaml::parse_yaml_str(t).ok())
        .and_then(|v| v.as_array().cloned())
        .unwrap_or_default();
    let mut out = Vec::new();
    for (id, rec) in ops {
        let Some(state) = rec.get("state").and_then(Value::as_str) else {
            continue;
        };
        if !matches!(state, "done" | "failed")
            || has_event(&committed, id, state)
            || has_event(pending, id, state)
        {
            continue;
        }
        let mut ev = json!({"event": "operation", "id": id});
        if let Some(k) = kind(id) {
            ev["type"] = json!(k);
        }
        if let (Some(e), Some(r)) = (ev.as_object_mut(), rec.as_object()) {
            e.extend(r.clone());
        }
        out.push(ev);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_final_record_missing_from_the_history_is_added_once() {
        let g = json!({"ops": {
            "sw1": {"state": "done", "outcome": "switched", "at": "t"},
            "sw2": {"state": "running", "at": "t"},
            "r1": {"state": "failed", "outcome": "no"},
        }});
        let history = "- event: operation\n  id: r1\n  state: failed\n";
        let kind = |id: &str| (id == "sw1").then(|| "switchover".to_string());
        let got = missing_op_events(Some(history), &[], Some(&g), kind);
        assert_eq!(got.len(), 1, "{got:?}");
        assert_eq!(got[0]["id"], "sw1");
        assert_eq!(got[0]["type"], "switchover");
        assert_eq!(got[0]["state"], "done");
        assert_eq!(got[0]["outcome"], "switched");
        // Pending (not yet committed) events count too.
        let again = missing_op_events(Some(history), &got, Some(&g), kind);
        assert!(again.is_empty());
        assert!(missing_op_events(None, &[], None, kind).is_empty());
    }
}
