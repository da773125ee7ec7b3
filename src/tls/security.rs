//! What the REST server and the agent's own HTTP calls need from the node configuration,
//! read at start and re-read on reload: the server TLS configuration (certificates read
//! from disk), the resolved allowlist, and the client the agent uses towards its peers.
//! A reload that fails keeps the previous settings and logs the file and the reason.

use super::{ClientTls, Network, TlsError};
use crate::config::NodeConfig;
use serde_json::Value;
use std::net::{IpAddr, ToSocketAddrs};
use std::path::PathBuf;
use std::sync::{Arc, RwLock};
use std::time::Duration;

/// Default whole-request timeout of the agent's calls to peers (callers may set their own).
pub const PEER_TIMEOUT: Duration = Duration::from_secs(2);

/// A security setting that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum SecurityError {
    /// A certificate or key of `restapi` (or `ctl`) cannot be used.
    #[error("restapi TLS: {0}")]
    Tls(#[from] TlsError),
    /// An allowlist entry is malformed or does not resolve.
    #[error("restapi.allowlist: {0}")]
    Allowlist(String),
}

/// The current settings; swapped as a whole on a successful reload.
#[derive(Clone)]
struct Current {
    tls: Option<Arc<rustls::ServerConfig>>,
    allowlist: Arc<Vec<Network>>,
    peers: reqwest::Client,
}

/// The REST server's TLS and allowlist, and the agent's peer client, reloadable.
pub struct ApiSecurity {
    current: RwLock<Current>,
}

impl std::fmt::Debug for ApiSecurity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApiSecurity").finish_non_exhaustive()
    }
}

impl ApiSecurity {
    /// Reads every file and resolves the allowlist now.
    pub fn load(node: &NodeConfig) -> Result<ApiSecurity, SecurityError> {
        Ok(ApiSecurity {
            current: RwLock::new(build(node)?),
        })
    }

    /// Re-reads everything from `node`; on failure keeps the old settings and returns why.
    pub fn reload(&self, node: &NodeConfig) -> Result<(), SecurityError> {
        let next = build(node)?;
        if let Ok(mut cur) = self.current.write() {
            *cur = next;
        }
        Ok(())
    }

    fn current(&self) -> Current {
        match self.current.read() {
            Ok(c) => c.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// The server TLS configuration, None for plain HTTP.
    pub fn server_tls(&self) -> Option<Arc<rustls::ServerConfig>> {
        self.current().tls
    }

    /// The resolved `restapi.allowlist`.
    pub fn allowlist(&self) -> Arc<Vec<Network>> {
        self.current().allowlist
    }

    /// The client for the agent's calls to other members (`/patroni`, `/failsafe`, ...).
    pub fn peer_client(&self) -> reqwest::Client {
        self.current().peers
    }
}

fn build(node: &NodeConfig) -> Result<Current, SecurityError> {
    let tls = match node.restapi.server_tls() {
        Some(settings) => Some(Arc::new(crate::tls::server_config(&settings)?)),
        None => None,
    };
    let allowlist = resolve_allowlist(&node.restapi.allowlist)?;
    let peers = peer_client(node)?;
    Ok(Current {
        tls,
        allowlist: Arc::new(allowlist),
        peers,
    })
}

/// The agent's client towards its peers: the `ctl` TLS settings, else the `restapi` ones
/// (the CA of `restapi.cafile`, the server certificate as client identity), as Patroni.
pub fn peer_client(node: &NodeConfig) -> Result<reqwest::Client, TlsError> {
    let tree = serde_json::json!({
        "ctl": node.ctl.clone().unwrap_or(Value::Null),
        "restapi": serde_json::to_value(&node.restapi).unwrap_or(Value::Null),
    });
    let client = crate::tls::client_config(&rest_client_tls(&tree))?;
    reqwest::Client::builder()
        .timeout(PEER_TIMEOUT)
        // Shorter than the server's idle limit, so a pooled connection is never stale.
        .pool_idle_timeout(Duration::from_secs(5))
        .tls_backend_preconfigured(client)
        .build()
        .map_err(|e| TlsError::Config(e.to_string()))
}

/// The TLS settings of a REST client, patronictl's rule: each `ctl` key (`cacert`,
/// `certfile`, `keyfile`, `keyfile_password`, `insecure`), else its `restapi` counterpart
/// (`cafile`, `certfile`, `keyfile`, `keyfile_password`).
pub fn rest_client_tls(tree: &Value) -> ClientTls {
    let get = |section: &str, key: &str| -> Option<String> {
        match tree.get(section)?.get(key)? {
            Value::String(s) if !s.trim().is_empty() => Some(s.clone()),
            _ => None,
        }
    };
    let either = |ctl: &str, api: &str| get("ctl", ctl).or_else(|| get("restapi", api));
    let insecure = tree
        .get("ctl")
        .and_then(|c| c.get("insecure"))
        .and_then(crate::config::tags::parse_bool)
        .unwrap_or(false);
    let certfile = either("certfile", "certfile");
    // A key belongs with its certificate: take `restapi.keyfile` only with `restapi.certfile`.
    let from_ctl = get("ctl", "certfile").is_some();
    let pick = |key: &str| {
        if from_ctl {
            get("ctl", key)
        } else {
            get("restapi", key)
        }
    };
    ClientTls {
        cacert: either("cacert", "cafile").map(PathBuf::from),
        certfile: certfile.map(PathBuf::from),
        keyfile: pick("keyfile").map(PathBuf::from),
        keyfile_password: pick("keyfile_password"),
        insecure,
    }
}

/// Addresses and networks as they are; host names resolved to every address they have.
pub fn resolve_allowlist(entries: &[String]) -> Result<Vec<Network>, SecurityError> {
    let mut out = Vec::new();
    for entry in entries {
        match Network::parse(entry).map_err(SecurityError::Allowlist)? {
            Some(net) => out.push(net),
            None => {
                let ips = resolve_host(entry).map_err(|e| {
                    SecurityError::Allowlist(format!("cannot resolve '{entry}': {e}"))
                })?;
                out.extend(ips.into_iter().map(Network::host));
            }
        }
    }
    Ok(out)
}

/// Every address of `host` (blocking; used at start, on reload and for member hosts).
pub fn resolve_host(host: &str) -> std::io::Result<Vec<IpAddr>> {
    let host = host.trim().trim_matches(['[', ']']);
    if let Ok(ip) = host.parse::<IpAddr>() {
        return Ok(vec![ip]);
    }
    Ok((host, 0).to_socket_addrs()?.map(|a| a.ip()).collect())
}

/// The host part of a URL (`http://h:8008/patroni`, `postgres://u@h:5432/db`).
pub fn url_host(url: &str) -> Option<String> {
    let rest = url.split_once("://")?.1;
    let authority = rest.split('/').next()?;
    let hostport = authority.rsplit('@').next()?;
    let host = if let Some(v6) = hostport.strip_prefix('[') {
        v6.split(']').next()?
    } else {
        hostport.rsplit_once(':').map_or(hostport, |(h, _)| h)
    };
    (!host.is_empty()).then(|| host.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn ctl_settings_win_and_restapi_ones_are_the_fallback() {
        let t = rest_client_tls(&json!({
            "restapi": {"cafile": "/api-ca", "certfile": "/api.crt", "keyfile": "/api.key",
                        "keyfile_password": "p1"},
        }));
        assert_eq!(t.cacert, Some("/api-ca".into()));
        assert_eq!(t.certfile, Some("/api.crt".into()));
        assert_eq!(t.keyfile, Some("/api.key".into()));
        assert_eq!(t.keyfile_password.as_deref(), Some("p1"));
        assert!(!t.insecure);
        let t = rest_client_tls(&json!({
            "ctl": {"cacert": "/ctl-ca", "certfile": "/ctl.crt", "insecure": "on"},
            "restapi": {"cafile": "/api-ca", "certfile": "/api.crt", "keyfile": "/api.key"},
        }));
        assert_eq!(t.cacert, Some("/ctl-ca".into()));
        assert_eq!(t.certfile, Some("/ctl.crt".into()));
        // The restapi key never pairs with the ctl certificate.
        assert_eq!(t.keyfile, None);
        assert!(t.insecure);
        assert_eq!(rest_client_tls(&json!({})), ClientTls::default());
    }

    #[test]
    fn url_hosts() {
        assert_eq!(
            url_host("http://10.0.0.1:8008/patroni").as_deref(),
            Some("10.0.0.1")
        );
        assert_eq!(url_host("https://db1/patroni").as_deref(), Some("db1"));
        assert_eq!(
            url_host("postgres://u:p@db2:5432/postgres").as_deref(),
            Some("db2")
        );
        assert_eq!(
            url_host("http://[::1]:8008/patroni").as_deref(),
            Some("::1")
        );
        assert_eq!(url_host("nonsense"), None);
    }

    #[test]
    fn allowlist_resolves_names_and_refuses_bad_networks() {
        let list = resolve_allowlist(&["127.0.0.2".into(), "localhost".into()]).unwrap();
        assert!(list
            .iter()
            .any(|n| n.contains("127.0.0.2".parse().unwrap())));
        assert!(list
            .iter()
            .any(|n| n.contains("127.0.0.1".parse().unwrap())));
        let err = resolve_allowlist(&["10.0.0.0/40".into()]).unwrap_err();
        assert!(err.to_string().contains("restapi.allowlist"), "{err}");
        let err = resolve_allowlist(&["no-such-host.invalid".into()]).unwrap_err();
        assert!(err.to_string().contains("no-such-host.invalid"), "{err}");
    }
}
