//! What the reconciler commits back under `status/<scope>/` (pure rendering): the observed
//! state and an append-only history of events. No secrets, no volatile values (LSNs).

use super::super::observed::ObservedCluster;
use serde_json::{json, Value};

/// `status/<scope>/observed.yaml`.
pub fn observed_yaml(
    obs: &ObservedCluster,
    applied: Option<&Value>,
    last_drift: Option<&Value>,
    error: Option<&str>,
) -> String {
    let members: Vec<Value> = obs
        .members
        .iter()
        .map(|m| {
            let mut v = json!({"name": m.name, "role": m.role, "state": m.state});
            if let Some(tl) = m.timeline {
                v["timeline"] = json!(tl);
            }
            if !m.tags.is_empty() {
                v["tags"] = Value::Object(m.tags.clone());
            }
            if m.pending_restart {
                v["pending_restart"] = json!(true);
                v["pending_restart_reason"] = Value::Object(m.pending_restart_reason.clone());
            }
            v
        })
        .collect();
    // Everything an offline `patronus plan --observed` needs, nothing volatile (no LSNs).
    let mut doc = json!({
        "scope": obs.scope,
        "exists": obs.exists,
        "leader": obs.leader,
        "members": members,
        "config": obs.config,
        "config_version": obs.config_version,
        "gitops_version": obs.gitops_version,
    });
    if let Some(tags) = obs.gitops.as_ref().and_then(|g| g.get("tags")) {
        doc["gitops"] = json!({"tags": tags});
    }
    if let Some(a) = applied {
        doc["applied"] = a.clone();
    }
    if let Some(d) = last_drift {
        doc["last_drift"] = d.clone();
    }
    if let Some(e) = error {
        doc["last_error"] = json!(e);
    }
    // The live config may hold what an operator wrote straight into the DCS: no secret
    // goes to git.
    format!(
        "# Written by the patronus reconciler; do not edit.\n{}",
        serde_yaml::to_string(&crate::secrets::redact_json(&doc)).unwrap_or_default()
    )
}

/// Appends events to the history document (a YAML list).
pub fn history_yaml(previous: Option<&str>, events: &[Value]) -> String {
    let mut list: Vec<Value> = previous
        .and_then(|t| crate::config::yaml::parse_yaml_str(t).ok())
        .and_then(|v| v.as_array().cloned())
        .unwrap_or_default();
    list.extend(events.iter().map(crate::secrets::redact_json));
    format!(
        "# Append-only history written by the patronus reconciler.\n{}",
        serde_yaml::to_string(&Value::Array(list)).unwrap_or_default()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn history_appends() {
        let first = history_yaml(None, &[json!({"event": "applied", "commit": "abc"})]);
        let second = history_yaml(Some(&first), &[json!({"event": "drift", "key": "x"})]);
        let v = crate::config::yaml::parse_yaml_str(&second).unwrap();
        assert_eq!(v.as_array().unwrap().len(), 2);
        assert_eq!(v[0]["commit"], "abc");
    }

    #[test]
    fn no_secret_reaches_git() {
        let obs = ObservedCluster {
            scope: "acme".into(),
            config: Some(json!({"postgresql": {"parameters": {
                "primary_conninfo": "host=h password=MARKER1", "work_mem": "4MB"}}})),
            ..Default::default()
        };
        let ev = json!({"event": "drift", "live": "user=u password=MARKER2"});
        let text = observed_yaml(&obs, None, Some(&ev), Some("postgres://u:MARKER3@h"));
        let hist = history_yaml(None, std::slice::from_ref(&ev));
        for m in ["MARKER1", "MARKER2", "MARKER3"] {
            assert!(
                !text.contains(m) && !hist.contains(m),
                "{m}:\n{text}\n{hist}"
            );
        }
        assert!(text.contains("work_mem: 4MB"));
    }
}
