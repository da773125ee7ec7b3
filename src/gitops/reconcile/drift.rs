//! Drift: live values of managed keys that differ from git (pure).

use crate::gitops::plan::leaves;
use serde_json::Value;
use std::collections::BTreeMap;

/// One drifted key.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Drift {
    /// Dotted key.
    pub key: String,
    /// Value in git.
    pub git: Value,
    /// Value live (null = absent).
    pub live: Value,
    /// Policy from patronus.yaml (alert, revert, adopt).
    pub policy: String,
}

/// `*` glob match on dotted keys.
pub fn glob(pattern: &str, key: &str) -> bool {
    match pattern.split_once('*') {
        None => pattern == key,
        Some((pre, rest)) => {
            key.starts_with(pre) && {
                let tail = &key[pre.len()..];
                (0..=tail.len()).any(|i| glob(rest, &tail[i..]))
            }
        }
    }
}

fn same(a: &Value, b: &Value) -> bool {
    a == b
        || crate::postgres::params::param_to_string(a)
            .is_some_and(|x| Some(x) == crate::postgres::params::param_to_string(b))
}

/// Managed keys whose live value differs from git, minus ignored ones.
pub fn detect(
    desired: &Value,
    live: &Value,
    ignore: &[String],
    policy: impl Fn(&str) -> String,
) -> Vec<Drift> {
    let mut want = BTreeMap::new();
    leaves("", desired, &mut want);
    let mut have = BTreeMap::new();
    leaves("", live, &mut have);
    want.into_iter()
        .filter(|(k, _)| !ignore.iter().any(|g| glob(g, k)))
        .filter_map(|(k, g)| {
            let l = have.get(&k).cloned().unwrap_or(Value::Null);
            let differs = if g.is_null() {
                !l.is_null()
            } else {
                !same(&g, &l)
            };
            differs.then(|| Drift {
                policy: policy(&k),
                key: k,
                git: g,
                live: l,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn drift_on_managed_keys_only() {
        let git = json!({"postgresql": {"parameters": {"work_mem": "8MB", "log_min_duration_statement": "5s"}}});
        let live = json!({"ttl": 30, "postgresql": {"parameters": {"work_mem": "64MB", "log_min_duration_statement": "1s"}}});
        let d = detect(&git, &live, &["postgresql.parameters.log_*".into()], |_| {
            "alert".into()
        });
        assert_eq!(d.len(), 1);
        assert_eq!(d[0].key, "postgresql.parameters.work_mem");
        assert_eq!(d[0].live, json!("64MB"));
        assert!(detect(&git, &git, &[], |_| "alert".into()).is_empty());
        assert!(
            detect(&json!({"x": 10}), &json!({"x": "10"}), &[], |_| "alert"
                .into())
            .is_empty()
        );
    }

    #[test]
    fn globs() {
        assert!(glob("a.*", "a.b"));
        assert!(glob("*.work_mem", "postgresql.parameters.work_mem"));
        assert!(!glob("a.b", "a.c"));
    }
}
