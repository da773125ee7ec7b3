//! Where the GitOps commands (`plan`, `apply`, `reconcile`) find etcd and how they talk to
//! the agents, the way patronictl does: a configuration file (`-c`, `PATRONICTL_CONFIG_FILE`,
//! `~/.config/patroni/patronictl.yaml`; its `etcd3`/`etcd`, `ctl`, `restapi` and `namespace`
//! keys) and `PATRONI_ETCD3_*` / `PATRONI_CTL_*` / `PATRONI_NAMESPACE` variables, over the
//! non-secret part `patronus.yaml` may carry (`dcs.etcd3` hosts, protocol, certificate
//! paths; `dcs.namespace`). Precedence: `-d`/`--etcd` > environment > file > patronus.yaml.

use super::desired::RepoSettings;
use super::GitopsError;
use crate::cli::ctl::context::CtlConfig;
use crate::dcs::etcd::{settings_of_section, EtcdSettings};
use crate::tls::ClientTls;
use serde_json::{Map, Value};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Keys of an etcd section that name endpoints: one of them in a later source replaces
/// every one of an earlier source.
const ENDPOINT_KEYS: &[&str] = &["host", "hosts", "url", "urls", "port"];

/// The connection settings of the GitOps commands, before the repository is known.
#[derive(Clone, Default)]
pub struct ConnectionSource {
    /// The configuration file with the environment applied (an object).
    file: Value,
    /// `-d etcd3://host:port/namespace`.
    dcs_url: Option<String>,
    /// `reconcile --etcd host:port,...`.
    hosts: Option<Vec<String>>,
    /// `-k/--insecure`: agents' certificates are not verified.
    insecure: bool,
}

impl std::fmt::Debug for ConnectionSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The file may hold passwords: never printed.
        f.debug_struct("ConnectionSource")
            .field("dcs_url", &self.dcs_url)
            .field("hosts", &self.hosts)
            .finish_non_exhaustive()
    }
}

/// How the reconciler reaches the agents' REST APIs.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct AgentAccess {
    /// Basic auth (`ctl.authentication`, else `restapi.authentication`).
    pub auth: Option<(String, String)>,
    /// TLS (`ctl.cacert`/`certfile`/`keyfile`/`keyfile_password`/`insecure`, else the
    /// `restapi` `cafile`/`certfile`/`keyfile`/`keyfile_password`).
    pub tls: ClientTls,
}

impl std::fmt::Debug for AgentAccess {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AgentAccess")
            .field("user", &self.auth.as_ref().map(|a| &a.0))
            .field("cacert", &self.tls.cacert)
            .field("certfile", &self.tls.certfile)
            .field("insecure", &self.tls.insecure)
            .finish_non_exhaustive()
    }
}

impl AgentAccess {
    /// An HTTP client with these TLS settings and `timeout` per request.
    pub fn http_client(&self, timeout: Duration) -> Result<reqwest::Client, GitopsError> {
        crate::tls::http_client(&self.tls, timeout)
            .map_err(|e| GitopsError::Other(format!("TLS towards the agents: {e}")))
    }
}

/// The process environment (variables that are not UTF-8 are skipped).
pub fn process_env() -> BTreeMap<String, String> {
    std::env::vars_os()
        .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?)))
        .collect()
}

/// The configuration file patronictl would read: `explicit`, else
/// `~/.config/patroni/patronictl.yaml` when it exists.
pub fn config_file_path(explicit: Option<&Path>) -> Option<PathBuf> {
    explicit.map(Path::to_path_buf).or_else(|| {
        let home = std::env::var_os("HOME")?;
        Some(PathBuf::from(home).join(".config/patroni/patronictl.yaml")).filter(|p| p.exists())
    })
}

fn text(v: &Value, path: &[&str]) -> Option<String> {
    let mut cur = v;
    for p in path {
        cur = cur.get(*p)?;
    }
    match cur {
        Value::String(s) if !s.is_empty() => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

impl ConnectionSource {
    /// Reads the configuration file (if any) and applies `env` (`PATRONI_*`) to it.
    pub fn load(
        config_file: Option<&Path>,
        dcs_url: Option<&str>,
        env: &BTreeMap<String, String>,
    ) -> Result<ConnectionSource, GitopsError> {
        let mut file = match config_file_path(config_file) {
            Some(p) => {
                let body = std::fs::read_to_string(&p)
                    .map_err(|e| GitopsError::Other(format!("cannot read {}: {e}", p.display())))?;
                crate::config::yaml::parse_yaml_str(&body).map_err(|e| {
                    GitopsError::Other(format!("{}: invalid YAML: {e}", p.display()))
                })?
            }
            None => Value::Null,
        };
        if !file.is_object() {
            file = Value::Object(Map::new());
        }
        crate::config::apply_env_overrides(&mut file, env);
        Ok(ConnectionSource {
            file,
            dcs_url: dcs_url.map(str::to_string),
            hosts: None,
            insecure: false,
        })
    }

    /// The same with `reconcile --etcd` endpoints (they win over every other source).
    pub fn with_hosts(mut self, hosts: Option<Vec<String>>) -> ConnectionSource {
        self.hosts = hosts.filter(|h| !h.is_empty());
        self
    }

    /// The same with `-k/--insecure` (agents' certificates are not verified).
    pub fn with_insecure(mut self, insecure: bool) -> ConnectionSource {
        self.insecure = insecure;
        self
    }

    /// The etcd settings and namespace for a repository's `patronus.yaml`.
    #[cfg(test)]
    pub fn etcd(&self, repo: &RepoSettings) -> Result<(EtcdSettings, String), GitopsError> {
        self.etcd_for(repo, None)
    }

    /// The etcd settings and namespace of one cluster: its own `dcs` section (from
    /// `clusters/<scope>/cluster.yaml`) is the most specific source. Its keys lie over
    /// `patronus.yaml`'s `dcs.etcd3` (its endpoints replace those), the -c file and the
    /// environment add what it does not say (credentials), and its endpoints and namespace
    /// win over every other source, `-d`/`--etcd` included: a fleet spread over several etcd
    /// clusters is never sent to one by a global default.
    pub fn etcd_for(
        &self,
        repo: &RepoSettings,
        cluster_dcs: Option<&Value>,
    ) -> Result<(EtcdSettings, String), GitopsError> {
        let own = cluster_dcs.and_then(|d| d.get("etcd3"));
        let base = merged_section(repo.raw.pointer("/dcs/etcd3"), own);
        let (mut settings, mut namespace) = self.etcd_over(&base, repo)?;
        if let Some(own) = own.filter(|o| ENDPOINT_KEYS.iter().any(|k| o.get(*k).is_some())) {
            settings.hosts = settings_of_section(own).hosts;
        }
        if let Some(ns) = cluster_dcs.and_then(|d| text(d, &["namespace"])) {
            namespace = ns;
        }
        Ok((settings, namespace))
    }

    /// `base` (the repository's etcd section) under the -c file, the environment and the
    /// command line.
    fn etcd_over(
        &self,
        base: &Value,
        repo: &RepoSettings,
    ) -> Result<(EtcdSettings, String), GitopsError> {
        let section = merged_section(Some(base), self.file_section());
        let mut settings = settings_of_section(&section);
        let mut namespace = text(&self.file, &["namespace"]).unwrap_or_else(|| repo.namespace());
        if let Some(url) = &self.dcs_url {
            let mut c = CtlConfig::default();
            c.apply_dcs_url(url)
                .map_err(|e| GitopsError::Other(e.to_string()))?;
            settings.hosts = c.hosts;
            if !c.namespace.is_empty() {
                namespace = c.namespace;
            }
        }
        if let Some(h) = &self.hosts {
            settings.hosts = h.clone();
        }
        if settings.hosts.is_empty() {
            settings.hosts = vec!["127.0.0.1:2379".into()];
        }
        Ok((settings, namespace))
    }

    fn file_section(&self) -> Option<&Value> {
        self.file
            .get("etcd3")
            .filter(|v| v.is_object())
            .or_else(|| self.file.get("etcd").filter(|v| v.is_object()))
    }

    /// REST credentials and TLS towards the agents, as patronictl reads them.
    pub fn agents(&self) -> AgentAccess {
        let f = &self.file;
        let auth = |s: &str| {
            Some((
                text(f, &[s, "authentication", "username"])?,
                text(f, &[s, "authentication", "password"]).unwrap_or_default(),
            ))
        };
        // patronictl's rule, shared with the CLI and the agent's own calls to its peers.
        let mut tls = crate::tls::security::rest_client_tls(f);
        tls.insecure |= self.insecure;
        AgentAccess {
            auth: auth("ctl").or_else(|| auth("restapi")),
            tls,
        }
    }
}

/// `base` (patronus.yaml's `dcs.etcd3`) with `overlay` (the file's etcd section) on top:
/// keys one by one, except that endpoints given in `overlay` replace those of `base`.
fn merged_section(base: Option<&Value>, overlay: Option<&Value>) -> Value {
    let mut out = base.and_then(Value::as_object).cloned().unwrap_or_default();
    if let Some(over) = overlay.and_then(Value::as_object) {
        if ENDPOINT_KEYS.iter().any(|k| over.contains_key(*k)) {
            for k in ENDPOINT_KEYS {
                out.remove(*k);
            }
        }
        for (k, v) in over {
            out.insert(k.clone(), v.clone());
        }
    }
    Value::Object(out)
}

#[cfg(test)]
#[path = "connection_tests.rs"]
mod tests;
