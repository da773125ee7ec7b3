//! Webhook targets (`notify.webhooks` of patronus.yaml) and their HTTP clients: https with
//! the system's roots, plus the CA file of a hook's `cacert` when set.

use crate::gitops::desired::RepoSettings;
use crate::gitops::GitopsError;
use crate::tls::ClientTls;
use serde_json::Value;
use std::path::PathBuf;
use std::time::Duration;

/// How long one webhook delivery may take.
const TIMEOUT: Duration = Duration::from_secs(3);

/// One webhook of `notify.webhooks`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Webhook {
    /// Where events are POSTed.
    pub(super) url: String,
    /// Extra CA to trust for an https URL.
    pub(super) cacert: Option<PathBuf>,
    /// `events`: the event types sent (None: [`DEFAULT_EVENTS`]).
    pub(super) events: Option<Vec<String>>,
}

/// Event types sent to a webhook without an `events` list.
pub const DEFAULT_EVENTS: [&str; 2] = ["drift", "invalid_commit"];

impl Webhook {
    /// Whether this webhook takes events of type `event`.
    pub(super) fn wants(&self, event: &str) -> bool {
        match &self.events {
            Some(list) => list.iter().any(|e| e == event),
            None => DEFAULT_EVENTS.contains(&event),
        }
    }
}

/// The webhooks of a repository's settings.
pub(super) fn targets(settings: &RepoSettings) -> Vec<Webhook> {
    let Some(hooks) = settings
        .raw
        .pointer("/notify/webhooks")
        .and_then(Value::as_array)
    else {
        return vec![];
    };
    hooks
        .iter()
        .filter_map(|h| {
            Some(Webhook {
                url: h.get("url").and_then(Value::as_str)?.to_string(),
                cacert: h
                    .get("cacert")
                    .and_then(Value::as_str)
                    .filter(|s| !s.is_empty())
                    .map(PathBuf::from),
                events: h.get("events").and_then(Value::as_array).map(|a| {
                    a.iter()
                        .filter_map(Value::as_str)
                        .map(str::to_string)
                        .collect()
                }),
            })
        })
        .collect()
}

/// An HTTP client trusting the system's roots plus `cacert`.
pub(super) fn client(cacert: Option<PathBuf>) -> Result<reqwest::Client, GitopsError> {
    let tls = ClientTls {
        cacert,
        ..ClientTls::default()
    };
    crate::tls::http_client(&tls, TIMEOUT)
        .map_err(|e| GitopsError::Other(format!("webhook TLS: {e}")))
}

/// The client for `hook`: `default` without a CA file, else one trusting it (None, with a
/// warning naming the hook and the file, when the CA file cannot be used).
pub(super) fn client_for(hook: &Webhook, default: &reqwest::Client) -> Option<reqwest::Client> {
    match &hook.cacert {
        None => Some(default.clone()),
        Some(ca) => match client(Some(ca.clone())) {
            Ok(c) => Some(c),
            Err(e) => {
                tracing::warn!("webhook {}: not sent: {e}", hook.url);
                None
            }
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn targets_carry_their_ca_file() {
        let s = RepoSettings {
            raw: json!({"notify": {"webhooks": [
                {"url": "https://hooks.example/a", "cacert": "/etc/ssl/hooks-ca.pem"},
                {"url": "http://b", "events": ["drift"]},
                {"events": ["no url"]}
            ]}}),
        };
        assert_eq!(
            targets(&s),
            vec![
                Webhook {
                    url: "https://hooks.example/a".into(),
                    cacert: Some("/etc/ssl/hooks-ca.pem".into()),
                    events: None,
                },
                Webhook {
                    url: "http://b".into(),
                    cacert: None,
                    events: Some(vec!["drift".into()]),
                },
            ]
        );
        assert!(targets(&RepoSettings::default()).is_empty());
    }

    #[test]
    fn events_filter_what_a_hook_receives() {
        let s = RepoSettings {
            raw: json!({"notify": {"webhooks": [
                {"url": "http://all"},
                {"url": "http://ops", "events": ["operation", "restart"]}
            ]}}),
        };
        let t = targets(&s);
        assert!(t[0].wants("drift") && t[0].wants("invalid_commit"));
        assert!(
            !t[0].wants("operation"),
            "the default set is drift and invalid_commit"
        );
        assert!(t[1].wants("operation") && t[1].wants("restart"));
        assert!(!t[1].wants("drift"));
    }

    #[test]
    fn a_missing_ca_file_names_the_file() {
        let e = client(Some("/nonexistent/ca.pem".into())).unwrap_err();
        assert!(e.to_string().contains("/nonexistent/ca.pem"), "{e}");
        let hook = Webhook {
            url: "https://x".into(),
            cacert: Some("/nonexistent/ca.pem".into()),
            events: None,
        };
        let default = client(None).unwrap();
        assert!(client_for(&hook, &default).is_none());
    }
}
