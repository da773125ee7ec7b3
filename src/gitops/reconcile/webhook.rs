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
                    cacert: Some("/etc/ssl/hooks-ca.pem".into())
                },
                Webhook {
                    url: "http://b".into(),
                    cacert: None
                },
            ]
        );
        assert!(targets(&RepoSettings::default()).is_empty());
    }

    #[test]
    fn a_missing_ca_file_names_the_file() {
        let e = client(Some("/nonexistent/ca.pem".into())).unwrap_err();
        assert!(e.to_string().contains("/nonexistent/ca.pem"), "{e}");
        let hook = Webhook {
            url: "https://x".into(),
            cacert: Some("/nonexistent/ca.pem".into()),
        };
        let default = client(None).unwrap();
        assert!(client_for(&hook, &default).is_none());
    }
}
