//! Live-vs-git comparison of a cluster's dynamic configuration, key by key (dotted leaf
//! paths, as the plan and the drift check name them). Pure.

use crate::gitops::plan::leaves;
use serde_json::Value;
use std::collections::BTreeMap;

/// How a key of the desired configuration compares with the live one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyState {
    /// Same value live and in git.
    Same,
    /// Live differs from git (drift, or not applied yet).
    Differs,
    /// Set in git, absent live.
    MissingLive,
}

/// One row of the comparison.
#[derive(Debug, Clone)]
pub struct KeyDiff {
    /// Dotted path, e.g. `postgresql.parameters.work_mem`.
    pub key: String,
    /// Git's value.
    pub git: Value,
    /// The live value (None when absent).
    pub live: Option<Value>,
    /// The comparison.
    pub state: KeyState,
}

/// Compares every key git sets with the live value. Numbers and strings compare by their
/// text (`10` and `"10"` are the same setting, as PostgreSQL reads them).
pub fn compare(git: Option<&Value>, live: Option<&Value>) -> Vec<KeyDiff> {
    let (mut g, mut l) = (BTreeMap::new(), BTreeMap::new());
    if let Some(v) = git {
        leaves("", v, &mut g);
    }
    if let Some(v) = live {
        leaves("", v, &mut l);
    }
    g.into_iter()
        .map(|(key, git)| {
            let live = l.get(&key).cloned();
            let state = match &live {
                None => KeyState::MissingLive,
                Some(v) if text(v) == text(&git) => KeyState::Same,
                Some(_) => KeyState::Differs,
            };
            KeyDiff {
                key,
                git,
                live,
                state,
            }
        })
        .collect()
}

/// A value as one line of text (strings without quotes).
pub fn text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// A config value of `key` (dotted path) as a page may show it: redacted when the setting is
/// a secret or holds one (defence in depth: the status document is already redacted).
pub fn shown(key: &str, v: &Value) -> String {
    let name = key.rsplit('.').next().unwrap_or(key);
    crate::secrets::redact_setting(name, &text(v))
}

/// Number of keys whose live value is not git's.
pub fn drifted(git: Option<&Value>, live: Option<&Value>) -> usize {
    if git.is_none() || live.is_none() {
        return 0;
    }
    compare(git, live)
        .iter()
        .filter(|d| d.state != KeyState::Same)
        .count()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn compares_leaves() {
        let git = json!({"ttl": 30, "postgresql": {"parameters": {"work_mem": "8MB", "max_connections": 100, "x": "1"}}});
        let live = json!({"ttl": "30", "loop_wait": 10, "postgresql": {"parameters": {"work_mem": "64MB", "max_connections": 100}}});
        let d = compare(Some(&git), Some(&live));
        let st: Vec<(&str, &KeyState)> = d.iter().map(|k| (k.key.as_str(), &k.state)).collect();
        assert_eq!(
            st,
            vec![
                ("postgresql.parameters.max_connections", &KeyState::Same),
                ("postgresql.parameters.work_mem", &KeyState::Differs),
                ("postgresql.parameters.x", &KeyState::MissingLive),
                ("ttl", &KeyState::Same),
            ]
        );
        assert_eq!(drifted(Some(&git), Some(&live)), 2);
        assert_eq!(drifted(None, Some(&live)), 0);
    }

    #[test]
    fn secrets_are_never_shown() {
        let v = json!("host=h user=u password=MARKER");
        assert!(!shown("postgresql.parameters.primary_conninfo", &v).contains("MARKER"));
        assert!(!shown(
            "postgresql.authentication.superuser.password",
            &json!("MARKER")
        )
        .contains("MARKER"));
        assert_eq!(
            shown("postgresql.parameters.work_mem", &json!("8MB")),
            "8MB"
        );
    }
}
