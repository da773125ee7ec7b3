//! Why an https endpoint closes our connections. A server that refuses the client's
//! certificate (missing or not trusted, etcd's `--client-cert-auth`) sends a TLS alert after
//! the handshake; gRPC often reports only `connection closed`, which looks like an outage and
//! is retried. After such a failure one plain TLS connection is opened with the same settings
//! and read from: an alert there is the reason, and a refusal a retry cannot fix.

use super::settings::EtcdSettings;
use crate::dcs::error::DcsError;
use rustls::pki_types::ServerName;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::AsyncReadExt;

/// How long the probe may take.
const PROBE_TIMEOUT: Duration = Duration::from_secs(1);

/// The TLS client configuration of the probe (None without TLS or when it cannot be built;
/// building the connection options reports unusable files already).
pub(super) fn probe_config(settings: &EtcdSettings) -> Option<Arc<rustls::ClientConfig>> {
    if !settings.urls().iter().any(|u| u.starts_with("https://")) {
        return None;
    }
    let tls = crate::tls::ClientTls {
        cacert: settings.tls.cacert.clone(),
        certfile: settings.tls.cert.clone(),
        keyfile: settings.tls.key.clone(),
        keyfile_password: settings.tls.key_password.clone(),
        insecure: false,
    };
    let mut config = crate::tls::client_config(&tls).ok()?;
    config.alpn_protocols = vec![b"h2".to_vec()];
    Some(Arc::new(config))
}

/// Whether an error may hide a TLS refusal: the connection was closed or reset.
pub(super) fn worth_probing(e: &DcsError) -> bool {
    let DcsError::Unavailable(m) = e else {
        return false;
    };
    let m = m.to_ascii_lowercase();
    ["connection closed", "connection reset", "broken pipe"]
        .iter()
        .any(|s| m.contains(s))
}

/// Opens one TLS connection to `url` and reads from it: the TLS error the server sent, if any.
pub(super) async fn probe(url: &str, config: Arc<rustls::ClientConfig>) -> Option<String> {
    let authority = url.split_once("://")?.1.split('/').next()?;
    let (host, _) = authority.rsplit_once(':')?;
    let name = ServerName::try_from(host.trim_matches(['[', ']']).to_string()).ok()?;
    let attempt = async {
        let tcp = tokio::net::TcpStream::connect(authority).await.ok()?;
        let connector = tokio_rustls::TlsConnector::from(config);
        let mut tls = match connector.connect(name, tcp).await {
            Ok(s) => s,
            Err(e) => return Some(e.to_string()),
        };
        let mut buf = [0u8; 64];
        match tokio::time::timeout(PROBE_TIMEOUT / 2, tls.read(&mut buf)).await {
            Ok(Err(e)) => Some(e.to_string()),
            _ => None,
        }
    };
    tokio::time::timeout(PROBE_TIMEOUT, attempt)
        .await
        .ok()
        .flatten()
        .filter(|e| e.contains("alert") || e.contains("certificate"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_closed_connections_are_probed() {
        assert!(worth_probing(&DcsError::Unavailable(
            "range: Cancelled: operation was canceled: transport error: connection closed".into()
        )));
        assert!(!worth_probing(&DcsError::Unavailable(
            "range: transport error: tcp connect error: Connection refused".into()
        )));
        assert!(!worth_probing(&DcsError::Timeout("range".into())));
    }

    #[test]
    fn plain_http_needs_no_probe() {
        let s = EtcdSettings {
            hosts: vec!["e:2379".into()],
            protocol: "http".into(),
            ..Default::default()
        };
        assert!(probe_config(&s).is_none());
    }

    #[tokio::test]
    async fn nothing_listening_is_not_a_tls_refusal() {
        let s = EtcdSettings {
            hosts: vec!["127.0.0.1:1".into()],
            protocol: "https".into(),
            ..Default::default()
        };
        let config = probe_config(&s).expect("a TLS configuration");
        assert!(probe("https://127.0.0.1:1", config).await.is_none());
    }
}
