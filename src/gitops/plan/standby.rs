//! `standby_cluster` in the desired state: the section in git is the whole section (its
//! keys are not merged with live ones), `null` removes it, and a plan that adds or removes
//! it says what the agents will do (demote the cluster's primary into a standby leader, or
//! promote the standby leader).

use crate::config::standby::StandbyCluster;
use serde_json::{Map, Value};

/// Git's `standby_cluster` mapping replaces the live one (null entries left out); returns
/// true when git manages the section (then none of its live leaves are unmanaged).
pub fn apply_section(desired: &Value, target: &mut Value) -> bool {
    let (Some(Value::Object(section)), Value::Object(t)) = (desired.get("standby_cluster"), target)
    else {
        return false;
    };
    let set: Map<String, Value> = section
        .iter()
        .filter(|(_, v)| !v.is_null())
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    if set.is_empty() {
        t.remove("standby_cluster");
    } else {
        t.insert("standby_cluster".into(), Value::Object(set));
    }
    true
}

fn source(sc: &StandbyCluster) -> String {
    match (&sc.host, &sc.restore_command) {
        (Some(h), _) => format!("{h}:{}", sc.port.unwrap_or(5432)),
        (None, Some(_)) => "restore_command".to_string(),
        (None, None) => format!("port {}", sc.port.unwrap_or(5432)),
    }
}

/// The warning of a plan that turns the cluster into a standby cluster or back.
pub fn role_change_warning(live: &Value, target: &Value) -> Option<String> {
    let read = |v: &Value| StandbyCluster::parse_lenient(v.get("standby_cluster")).0;
    match (read(live), read(target)) {
        (Some(old), None) => Some(format!(
            "standby_cluster removed: the standby leader stops following {} and is promoted \
             to a writable primary (promote-cluster)",
            source(&old)
        )),
        (None, Some(new)) => Some(format!(
            "standby_cluster added: the primary is stopped and restarted as a standby leader \
             following {} (demote-cluster); the cluster accepts no writes",
            source(&new)
        )),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn git_section_replaces_the_live_one() {
        let mut target = json!({"ttl": 30, "standby_cluster": {"host": "a", "port": 5433}});
        let desired = json!({"standby_cluster": {"host": "b", "primary_slot_name": null}});
        assert!(apply_section(&desired, &mut target));
        assert_eq!(target["standby_cluster"], json!({"host": "b"}));
        assert!(!apply_section(&json!({"ttl": 30}), &mut target));
    }

    #[test]
    fn promotion_and_demotion_are_announced() {
        let standby = json!({"standby_cluster": {"host": "10.0.0.1", "port": 5433}});
        let normal = json!({"ttl": 30});
        let w = role_change_warning(&standby, &normal).unwrap();
        assert!(w.contains("promoted") && w.contains("10.0.0.1:5433"), "{w}");
        let w = role_change_warning(&normal, &standby).unwrap();
        assert!(w.contains("standby leader following 10.0.0.1:5433"), "{w}");
        assert_eq!(role_change_warning(&standby, &standby), None);
    }
}
