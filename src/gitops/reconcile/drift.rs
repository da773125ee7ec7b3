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

/// `*` glob match on dotted keys (`*` matches any run of characters, dots included).
///
/// Works on whole characters, so any key or pattern (non-ASCII names included) is safe, and
/// runs in O(pattern × key) time whatever the number of stars.
pub fn glob(pattern: &str, key: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let k: Vec<char> = key.chars().collect();
    // Greedy matching with backtracking to the last star only.
    let (mut pi, mut ki) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while ki < k.len() {
        match p.get(pi) {
            Some('*') => {
                star = Some((pi, ki));
                pi += 1;
            }
            Some(c) if *c == k[ki] => {
                pi += 1;
                ki += 1;
            }
            _ => match star {
                Some((sp, sk)) => {
                    pi = sp + 1;
                    ki = sk + 1;
                    star = Some((sp, sk + 1));
                }
                None => return false,
            },
        }
    }
    p[pi..].iter().all(|c| *c == '*')
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
    // A `slots` or `standby_cluster` mapping in git is the whole set: a live entry it does
    // not name is drift.
    for section in ["slots", "standby_cluster"] {
        if let (Some(Value::Object(git)), Some(Value::Object(live))) =
            (desired.get(section), live.get(section))
        {
            for name in live.keys().filter(|n| !git.contains_key(*n)) {
                want.insert(format!("{section}.{name}"), Value::Null);
                have.insert(format!("{section}.{name}"), live[name].clone());
            }
        }
    }
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

/// Where a member tag drift was seen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TagSource {
    /// The `gitops` key's `tags` (edited behind git's back): agents publish it next cycle.
    Recorded,
    /// What the member publishes (its agent does not apply the desired tag, e.g. a Patroni
    /// agent, or has not yet: callers wait a grace period before reporting it).
    Published,
}

/// Desired member tags (`members.<name>.tags` of the repository) that differ from the
/// recorded ones or from those a member publishes; key `members.<name>.tags.<tag>`, policy
/// `alert` (tags are never reverted or adopted by drift handling: the next apply writes them).
/// A member absent from the DCS is not compared.
pub fn tag_drift(
    desired: &BTreeMap<String, serde_json::Map<String, Value>>,
    recorded: Option<&Value>,
    published: &BTreeMap<String, serde_json::Map<String, Value>>,
    ignore: &[String],
) -> Vec<(Drift, TagSource)> {
    let mut out = Vec::new();
    for (member, tags) in desired {
        for (tag, want) in tags {
            let key = format!("members.{member}.tags.{tag}");
            if ignore.iter().any(|g| glob(g, &key)) {
                continue;
            }
            let rec = recorded
                .and_then(|r| r.get(member))
                .and_then(|m| m.get(tag))
                .cloned()
                .unwrap_or(Value::Null);
            let differs = |live: &Value| {
                if want.is_null() {
                    false // a null stops managing the tag
                } else {
                    !same(want, live)
                }
            };
            let drift = |live: Value| Drift {
                key: key.clone(),
                git: want.clone(),
                live,
                policy: "alert".into(),
            };
            if recorded.is_some() && differs(&rec) {
                out.push((drift(rec), TagSource::Recorded));
            } else if let Some(pubd) = published.get(member) {
                let live = pubd.get(tag).cloned().unwrap_or(Value::Null);
                if differs(&live) {
                    out.push((drift(live), TagSource::Published));
                }
            }
        }
    }
    out
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
    fn a_slot_added_behind_gits_back_is_drift() {
        let git = json!({"slots": {"a": {"type": "physical"}}});
        let live = json!({"slots": {"a": {"type": "physical"}, "b": {"type": "physical"}}});
        let d = detect(&git, &live, &[], |_| "alert".into());
        assert_eq!(d.len(), 1, "{d:?}");
        assert_eq!(d[0].key, "slots.b");
        assert_eq!(d[0].git, Value::Null);
        assert_eq!(d[0].live, json!({"type": "physical"}));
        // Without `slots` in git, live slots are not managed.
        assert!(detect(&json!({}), &live, &[], |_| "alert".into()).is_empty());
    }

    #[test]
    fn a_standby_cluster_key_added_behind_gits_back_is_drift() {
        let git = json!({"standby_cluster": {"host": "10.0.0.1"}});
        let live = json!({"standby_cluster": {"host": "10.0.0.1", "primary_slot_name": "x"}});
        let d = detect(&git, &live, &[], |_| "alert".into());
        assert_eq!(d.len(), 1, "{d:?}");
        assert_eq!(d[0].key, "standby_cluster.primary_slot_name");
        // Removed live (the cluster was promoted by hand): drift on the managed keys.
        let d = detect(&git, &json!({}), &[], |_| "alert".into());
        assert_eq!(d[0].key, "standby_cluster.host");
    }

    #[test]
    fn globs() {
        assert!(glob("a.*", "a.b"));
        assert!(glob("*.work_mem", "postgresql.parameters.work_mem"));
        assert!(!glob("a.b", "a.c"));
        assert!(glob("*", ""));
        assert!(glob("a*b*c", "a-x-b-y-c"));
        assert!(!glob("a*b*c", "a-x-c-y-b"));
        assert!(glob("**", "anything.at.all"));
        assert!(!glob("a.*.c", "a.b.d"));
    }

    #[test]
    fn globs_on_non_ascii_names_never_panic() {
        // A multi-byte character right after the star's prefix used to be sliced mid-char.
        let key = "postgresql.parameters.é_mem";
        assert!(glob("postgresql.parameters.*", key));
        assert!(glob("*_mem", key));
        assert!(glob("postgresql.parameters.é*", key));
        assert!(!glob("postgresql.parameters.e*", key));
        assert!(glob("*ü*", "x.ü.y"));
        assert!(glob("日本*語", "日本の語"));
        assert!(!glob("*語", "日本の"));
        assert!(glob("🐘*", "🐘.work_mem"));
        let git = json!({"postgresql": {"parameters": {"ñandú": "1", "work_mem": "8MB"}}});
        let live = json!({"postgresql": {"parameters": {"ñandú": "2", "work_mem": "4MB"}}});
        let d = detect(&git, &live, &["postgresql.parameters.ñ*".into()], |_| {
            "alert".into()
        });
        assert_eq!(d.len(), 1);
        assert_eq!(d[0].key, "postgresql.parameters.work_mem");
    }

    #[test]
    fn member_tags_are_drift_checked() {
        let tags = |v: Value| v.as_object().cloned().unwrap();
        let desired = BTreeMap::from([(
            "node3".to_string(),
            tags(json!({"nofailover": true, "clonefrom": null})),
        )]);
        let recorded = json!({"node3": {"nofailover": true}});
        let mut published = BTreeMap::from([(
            "node3".to_string(),
            tags(json!({"nofailover": true, "clonefrom": true})),
        )]);
        assert!(tag_drift(&desired, Some(&recorded), &published, &[]).is_empty());
        // The gitops key edited behind git's back.
        let edited = json!({"node3": {"nofailover": false}});
        let d = tag_drift(&desired, Some(&edited), &published, &[]);
        assert_eq!(d.len(), 1);
        assert_eq!(d[0].0.key, "members.node3.tags.nofailover");
        assert_eq!(
            (d[0].0.live.clone(), d[0].1),
            (json!(false), TagSource::Recorded)
        );
        // A member that does not publish the desired tag.
        published.insert("node3".into(), tags(json!({})));
        let d = tag_drift(&desired, Some(&recorded), &published, &[]);
        assert_eq!(
            (d[0].0.live.clone(), d[0].1),
            (Value::Null, TagSource::Published)
        );
        assert!(tag_drift(&desired, Some(&recorded), &published, &["members.*".into()]).is_empty());
        assert!(tag_drift(&desired, Some(&recorded), &BTreeMap::new(), &[]).is_empty());
    }
}
