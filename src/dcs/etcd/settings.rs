//! How to reach etcd: endpoints, TLS (Patroni's `protocol: https`, `cacert`, `cert`, `key`,
//! `key_password`) and authentication (`username`, `password`); the etcd-client options
//! built from them, and errors that name the endpoint and say what is wrong.

use crate::config::node::EtcdConfig;
use crate::dcs::error::DcsError;
use base64::Engine;
use etcd_client::{Certificate, ConnectOptions, Identity, TlsOptions};
use serde_json::Value;
use std::path::PathBuf;
use std::time::Duration;

/// How to reach etcd.
#[derive(Clone, Default)]
pub struct EtcdSettings {
    /// `host:port` endpoints (scheme added from `protocol`), or full URLs.
    pub hosts: Vec<String>,
    /// `http` or `https`.
    pub protocol: String,
    /// Optional user name for etcd auth.
    pub username: Option<String>,
    /// Optional password for etcd auth (never logged).
    pub password: Option<String>,
    /// TLS settings, used with `https` endpoints.
    pub tls: EtcdTls,
}

/// TLS towards etcd (Patroni's `etcd3` keys of the same names).
#[derive(Clone, Default, PartialEq, Eq)]
pub struct EtcdTls {
    /// CA to trust; the system's roots when absent.
    pub cacert: Option<PathBuf>,
    /// Client certificate (for etcd's `--client-cert-auth`).
    pub cert: Option<PathBuf>,
    /// Its key (defaults to `cert`, a file holding both).
    pub key: Option<PathBuf>,
    /// Password of an encrypted PKCS#8 key (never logged).
    pub key_password: Option<String>,
}

fn redacted(v: &Option<String>) -> &'static str {
    if v.is_some() {
        "Some(<redacted>)"
    } else {
        "None"
    }
}

impl std::fmt::Debug for EtcdSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EtcdSettings")
            .field("hosts", &self.hosts)
            .field("protocol", &self.protocol)
            .field("username", &self.username)
            .field("password", &redacted(&self.password))
            .field("tls", &self.tls)
            .finish()
    }
}

impl std::fmt::Debug for EtcdTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EtcdTls")
            .field("cacert", &self.cacert)
            .field("cert", &self.cert)
            .field("key", &self.key)
            .field("key_password", &redacted(&self.key_password))
            .finish()
    }
}

fn text(section: &Value, key: &str) -> Option<String> {
    match section.get(key)? {
        Value::String(s) if !s.is_empty() => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

impl EtcdTls {
    /// The TLS keys of an `etcd3` (or `etcd`) section as a YAML/JSON tree.
    pub fn from_section(section: &Value) -> EtcdTls {
        EtcdTls {
            cacert: text(section, "cacert").map(PathBuf::from),
            cert: text(section, "cert").map(PathBuf::from),
            key: text(section, "key").map(PathBuf::from),
            key_password: text(section, "key_password"),
        }
    }
}

impl EtcdSettings {
    /// The settings of a node's (normalised) `etcd3` section.
    pub fn from_config(c: &EtcdConfig) -> EtcdSettings {
        EtcdSettings {
            hosts: c.hosts.clone(),
            protocol: c.protocol.clone(),
            username: c.username.clone(),
            password: c.password.clone(),
            tls: EtcdTls {
                cacert: c.cacert.clone(),
                cert: c.cert.clone(),
                key: c.key.clone(),
                key_password: c.key_password.clone(),
            },
        }
    }

    /// The endpoints as URLs (`protocol://host:port` for those given without a scheme).
    pub fn urls(&self) -> Vec<String> {
        let protocol = match self.protocol.trim().to_ascii_lowercase() {
            p if p.is_empty() => "http".to_string(),
            p => p,
        };
        self.hosts
            .iter()
            .map(|h| {
                if h.contains("://") {
                    h.clone()
                } else {
                    format!("{protocol}://{h}")
                }
            })
            .collect()
    }

    /// The etcd-client options: timeouts, credentials (with the token re-requested when etcd
    /// answers that it expired) and, for https endpoints, TLS. A certificate or key file that
    /// cannot be used is an error naming the file.
    pub fn connect_options(&self) -> Result<ConnectOptions, DcsError> {
        // A member cut off from the quorum answers nothing (and its watches stay silent):
        // with `require_leader` it refuses at once, and the call moves to another member.
        let mut opts = ConnectOptions::new()
            .with_connect_timeout(Duration::from_secs(2))
            .with_timeout(Duration::from_secs(5))
            .with_keep_alive(Duration::from_secs(2), Duration::from_secs(2))
            .with_require_leader(true);
        if let Some(user) = &self.username {
            let password = self.password.clone().unwrap_or_default();
            opts = opts
                .with_user(user.clone(), password)
                .with_auto_token_refresh(true);
        }
        if self.urls().iter().any(|u| u.starts_with("https://")) {
            crate::tls::install_provider();
            opts = opts.with_tls(self.tls_options()?);
        }
        Ok(opts)
    }

    fn tls_options(&self) -> Result<TlsOptions, DcsError> {
        let bad = |e: crate::tls::TlsError| DcsError::Refused(format!("etcd TLS: {e}"));
        let tls = &self.tls;
        let mut opts = TlsOptions::new().assume_http2(true);
        let roots = match &tls.cacert {
            Some(ca) => crate::tls::load_certs(ca).map_err(bad)?,
            None => rustls_native_certs::load_native_certs().certs,
        };
        opts = opts.ca_certificates(
            roots
                .iter()
                .map(|c| Certificate::from_pem(pem("CERTIFICATE", c.as_ref()))),
        );
        if let Some(cert) = &tls.cert {
            let key_path = tls.key.as_ref().unwrap_or(cert);
            let chain = crate::tls::load_certs(cert).map_err(bad)?;
            let key = crate::tls::load_key(key_path, tls.key_password.as_deref()).map_err(bad)?;
            let label = match &key {
                rustls::pki_types::PrivateKeyDer::Pkcs1(_) => "RSA PRIVATE KEY",
                rustls::pki_types::PrivateKeyDer::Sec1(_) => "EC PRIVATE KEY",
                _ => "PRIVATE KEY",
            };
            let chain_pem: String = chain
                .iter()
                .map(|c| pem("CERTIFICATE", c.as_ref()))
                .collect();
            opts = opts.identity(Identity::from_pem(chain_pem, pem(label, key.secret_der())));
        }
        Ok(opts)
    }
}

/// DER → PEM (tonic takes PEM; the key may have been decrypted from an encrypted file).
fn pem(label: &str, der: &[u8]) -> String {
    let b64 = base64::engine::general_purpose::STANDARD.encode(der);
    let mut out = format!("-----BEGIN {label}-----\n");
    for chunk in b64.as_bytes().chunks(64) {
        out.push_str(&String::from_utf8_lossy(chunk));
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out
}

/// An etcd-client error in words: the gRPC code and etcd's message, or a transport error
/// with its causes (where a TLS failure says what it is).
pub(crate) fn describe(e: &etcd_client::Error) -> String {
    match e {
        etcd_client::Error::GRpcStatus(st) => {
            with_causes(format!("{:?}: {}", st.code(), st.message()), st)
        }
        etcd_client::Error::TransportError(t) => with_causes(t.to_string(), t),
        other => other.to_string(),
    }
}

/// `head` followed by the causes of `e` that it does not already say.
fn with_causes(mut head: String, e: &dyn std::error::Error) -> String {
    let mut cur = e.source();
    while let Some(c) = cur {
        let s = c.to_string();
        if !head.contains(&s) {
            head.push_str(": ");
            head.push_str(&s);
        }
        cur = c.source();
    }
    head
}

/// What an error says about the settings, when a retry cannot fix it: a TLS handshake
/// refused (certificate not trusted, client certificate missing or refused) or etcd refusing
/// the credentials. None for errors that may go away.
pub(crate) fn settings_problem(e: &etcd_client::Error) -> Option<String> {
    let text = describe(e);
    let lower = text.to_ascii_lowercase();
    // Words of rustls's and tonic's TLS errors only: a connection that breaks for another
    // reason (etcd restarting, an HTTP/2 handshake cut) stays an outage to retry.
    let tls = [
        "certificate",
        "unknownissuer",
        "fatal alert",
        "http/2 was not negotiated",
    ];
    // tonic reports a failed TLS handshake as a transport error, or as an `Unavailable`
    // status carrying the rustls error.
    let connection_level = match e {
        etcd_client::Error::TransportError(_) => true,
        etcd_client::Error::GRpcStatus(st) => {
            matches!(st.code(), tonic::Code::Unavailable | tonic::Code::Unknown)
        }
        _ => false,
    };
    if connection_level && tls.iter().any(|t| lower.contains(t)) {
        return Some(format!(
            "TLS handshake failed ({text}); check cacert, cert and key"
        ));
    }
    if lower.contains("authentication failed") || lower.contains("invalid user id or password") {
        return Some(format!(
            "authentication failed ({text}); check username and password"
        ));
    }
    if lower.contains("user name is empty") {
        return Some(format!(
            "etcd requires authentication ({text}); set username and password"
        ));
    }
    if lower.contains("permission denied") {
        return Some(format!(
            "permission denied ({text}); the user needs read-write access to the prefix"
        ));
    }
    None
}

/// An `etcd3` section as patronictl and the GitOps commands read it (lenient): the first of
/// `urls`, `url`, `hosts`, `host` that is set (a list or a comma-separated string; `port`,
/// else 2379, for items without one; a URL's scheme sets the protocol), `protocol`,
/// credentials and TLS keys.
pub fn settings_of_section(section: &Value) -> EtcdSettings {
    let port = text(section, "port")
        .and_then(|p| p.trim().parse::<u16>().ok())
        .unwrap_or(crate::config::node::DEFAULT_ETCD_PORT);
    let items: Vec<String> = ["urls", "url", "hosts", "host"]
        .iter()
        .find_map(|k| section.get(*k).filter(|v| !v.is_null()))
        .map(|v| match v {
            Value::Array(a) => a
                .iter()
                .filter_map(Value::as_str)
                .map(str::to_string)
                .collect(),
            Value::String(x) => x.split(',').map(str::to_string).collect(),
            _ => vec![],
        })
        .unwrap_or_default();
    let mut protocol = text(section, "protocol");
    let mut hosts = Vec::new();
    for item in items.iter().map(|s| s.trim()).filter(|h| !h.is_empty()) {
        let rest = match item.split_once("://") {
            Some((scheme, rest)) => {
                protocol = Some(scheme.to_ascii_lowercase());
                rest
            }
            None => item,
        };
        let rest = rest.split('/').next().unwrap_or_default();
        let rest = rest.rsplit('@').next().unwrap_or_default();
        if rest.contains(':') && !rest.ends_with(']') {
            hosts.push(rest.to_string());
        } else if !rest.is_empty() {
            hosts.push(format!("{rest}:{port}"));
        }
    }
    EtcdSettings {
        hosts,
        protocol: protocol.unwrap_or_else(|| "http".into()),
        username: text(section, "username"),
        password: text(section, "password"),
        tls: EtcdTls::from_section(section),
    }
}

#[cfg(test)]
#[path = "settings_tests.rs"]
mod tests;
