//! Logs, once per change of the DCS `config` key, the keys the agent stores but does
//! not act on, the keys it cannot honour safely (`standby_cluster`), and the values it
//! replaced by defaults.

use crate::config::{dynamic_key_findings, DynamicConfig};
use crate::dcs::Versioned;
use serde_json::Value;

/// Remembers which version of the dynamic configuration was last reported.
#[derive(Debug, Default)]
pub struct ConfigNotices {
    reported: Option<i64>,
}

impl ConfigNotices {
    /// Logs the findings of `config` when its version differs from the last one reported;
    /// `dynamic` is the view read from it (its warnings are logged too).
    pub fn check(&mut self, config: Option<&Versioned<Value>>, dynamic: &DynamicConfig) {
        let Some(config) = config else {
            return;
        };
        if self.reported == Some(config.version) {
            return;
        }
        self.reported = Some(config.version);
        for line in notices(&crate::secrets::redact_json(&config.value), dynamic) {
            match line {
                Notice::Warn(text) => tracing::warn!("dynamic configuration: {text}"),
                Notice::Unsafe(text) => tracing::error!(
                    "dynamic configuration: {text} (cannot be honoured; this agent runs \
                     without it)"
                ),
            }
        }
    }
}

/// One line to log about a dynamic configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Notice {
    /// A key stored but not acted on, or a value replaced by its default.
    Warn(String),
    /// A key that cannot be honoured and makes the cluster unsafe.
    Unsafe(String),
}

/// Everything worth logging about `value` (read into `dynamic`).
pub fn notices(value: &Value, dynamic: &DynamicConfig) -> Vec<Notice> {
    let findings = dynamic_key_findings(value);
    let unsafe_keys = findings.refusals.into_iter().map(Notice::Unsafe);
    let ignored = findings
        .warnings
        .into_iter()
        .map(|w| Notice::Warn(w.to_string()));
    let replaced = dynamic.warnings.iter().cloned().map(Notice::Warn);
    unsafe_keys.chain(ignored).chain(replaced).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn versioned(value: Value, version: i64) -> Versioned<Value> {
        Versioned { value, version }
    }

    #[test]
    fn lists_unsafe_ignored_and_replaced() {
        let v = json!({"standby_cluster": {"host": "h", "port": "x"}, "primary_race_backoff": 1, "ttl": "soon"});
        let n = notices(&v, &DynamicConfig::from_value(&v));
        assert_eq!(n.len(), 3, "{n:?}");
        assert!(
            n.iter().any(|x| matches!(x, Notice::Warn(t) if t.starts_with("primary_race_backoff: not implemented")))
        );
        assert!(n
            .iter()
            .any(|x| matches!(x, Notice::Warn(t) if t.starts_with("ttl: invalid value"))));
        assert!(n.iter().any(
            |x| matches!(x, Notice::Warn(t) if t.starts_with("standby_cluster.port: expected a port"))
        ));
        let clean = json!({"ttl": 30});
        assert!(notices(&clean, &DynamicConfig::from_value(&clean)).is_empty());
    }

    #[test]
    fn reports_once_per_version() {
        let mut c = ConfigNotices::default();
        let d = DynamicConfig::default();
        c.check(None, &d);
        assert_eq!(c.reported, None);
        c.check(Some(&versioned(json!({"slots": {}}), 7)), &d);
        assert_eq!(c.reported, Some(7));
        c.check(Some(&versioned(json!({}), 9)), &d);
        assert_eq!(c.reported, Some(9));
    }
}
