//! What every operator command needs: the configuration (`-c`, `PATRONICTL_CONFIG_FILE`,
//! `~/.config/patroni/patronictl.yaml`), the DCS (`-d etcd3://host:port/namespace`), REST
//! credentials, and helpers to reach members.

use super::error::{CliError, CliResult};
use crate::dcs::etcd::{EtcdDcs, EtcdSettings};
use crate::dcs::{Cluster, Dcs, Keys, MemberEntry};
use serde_json::Value;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

/// Global options shared by every operator command (patronictl's).
#[derive(Debug, Clone, Default, clap::Args)]
pub struct GlobalOpts {
    /// Configuration file (a node config or a small ctl config with etcd3/ctl sections).
    #[arg(short = 'c', long = "config-file", env = "PATRONICTL_CONFIG_FILE")]
    pub config_file: Option<PathBuf>,
    /// DCS URL, e.g. etcd3://127.0.0.1:2379/service (overrides the config file).
    #[arg(short = 'd', long = "dcs-url", alias = "dcs", env = "DCS_URL")]
    pub dcs_url: Option<String>,
    /// Allow connections to REST APIs without verifying certificates.
    #[arg(short = 'k', long = "insecure")]
    pub insecure: bool,
}

/// Resolved ctl configuration.
#[derive(Debug, Clone, Default)]
pub struct CtlConfig {
    /// Default cluster name (`scope`).
    pub scope: Option<String>,
    /// DCS namespace.
    pub namespace: String,
    /// etcd endpoints.
    pub hosts: Vec<String>,
    /// `http` / `https`.
    pub protocol: String,
    /// etcd auth.
    pub etcd_user: Option<(String, String)>,
    /// TLS towards etcd (`cacert`, `cert`, `key`, `key_password` of the etcd section).
    pub etcd_tls: crate::dcs::etcd::EtcdTls,
    /// REST Basic auth for protected endpoints.
    pub rest_auth: Option<(String, String)>,
    /// Superuser credentials for `query`.
    pub superuser: Option<(String, Option<String>)>,
    /// TLS towards the members' REST APIs (`ctl.*`, else `restapi.*`).
    pub rest_tls: crate::tls::ClientTls,
}

fn s(v: &Value, path: &[&str]) -> Option<String> {
    let mut cur = v;
    for p in path {
        cur = cur.get(*p)?;
    }
    match cur {
        Value::String(x) => Some(x.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

impl CtlConfig {
    /// Reads the ctl configuration from a YAML tree (lenient: only what ctl needs).
    pub fn from_value(v: &Value) -> CtlConfig {
        let dcs = v
            .get("etcd3")
            .or_else(|| v.get("etcd"))
            .cloned()
            .unwrap_or(Value::Null);
        let auth = |p: &str| {
            Some((
                s(v, &[p, "authentication", "username"])?,
                s(v, &[p, "authentication", "password"]).unwrap_or_default(),
            ))
        };
        // One reading of an etcd section for the CLI and the GitOps commands.
        let etcd = crate::dcs::etcd::settings_of_section(&dcs);
        CtlConfig {
            scope: s(v, &["scope"]),
            namespace: s(v, &["namespace"]).unwrap_or_else(|| "/service".into()),
            hosts: etcd.hosts,
            protocol: etcd.protocol,
            etcd_user: etcd
                .username
                .map(|u| (u, etcd.password.unwrap_or_default())),
            etcd_tls: etcd.tls,
            rest_auth: auth("ctl").or_else(|| auth("restapi")),
            rest_tls: crate::tls::security::rest_client_tls(v),
            superuser: s(
                v,
                &["postgresql", "authentication", "superuser", "username"],
            )
            .map(|u| {
                (
                    u,
                    s(
                        v,
                        &["postgresql", "authentication", "superuser", "password"],
                    ),
                )
            }),
        }
    }

    /// Applies `etcd3://host:port[,host:port]/namespace`.
    pub fn apply_dcs_url(&mut self, url: &str) -> CliResult<()> {
        let (scheme, rest) = url.split_once("://").ok_or_else(|| {
            CliError::Config(format!(
                "invalid DCS URL '{url}': expected etcd3://host:port/namespace"
            ))
        })?;
        if !matches!(scheme, "etcd3" | "etcd") {
            return Err(CliError::Config(format!(
                "unsupported DCS '{scheme}' in '{url}': only etcd3 is supported"
            )));
        }
        let (hosts, ns) = rest.split_once('/').unwrap_or((rest, ""));
        if hosts.is_empty() {
            return Err(CliError::Config(format!(
                "invalid DCS URL '{url}': no host"
            )));
        }
        self.hosts = hosts.split(',').map(str::to_string).collect();
        if !ns.is_empty() {
            self.namespace = format!("/{ns}");
        }
        Ok(())
    }
}

/// Loads the configuration named by the global options.
pub fn load_config(g: &GlobalOpts) -> CliResult<CtlConfig> {
    let default =
        std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".config/patroni/patronictl.yaml"));
    let path = g.config_file.clone().or(default.filter(|p| p.exists()));
    let mut tree = match path {
        Some(p) => {
            let text = std::fs::read_to_string(&p)
                .map_err(|e| CliError::Config(format!("cannot read {}: {e}", p.display())))?;
            crate::config::yaml::parse_yaml_str(&text)
                .map_err(|e| CliError::Config(format!("{}: invalid YAML: {e}", p.display())))?
        }
        None => Value::Null,
    };
    // patronictl reads the agent's environment too (`PATRONI_ETCD3_HOSTS`, ...).
    if tree.is_null() {
        tree = Value::Object(Default::default());
    }
    let env: std::collections::BTreeMap<String, String> = std::env::vars_os()
        .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?)))
        .collect();
    crate::config::apply_env_overrides(&mut tree, &env);
    let mut cfg = CtlConfig::from_value(&tree);
    if let Some(url) = &g.dcs_url {
        cfg.apply_dcs_url(url)?;
    }
    cfg.rest_tls.insecure |= g.insecure;
    if cfg.hosts.is_empty() {
        cfg.hosts = vec!["127.0.0.1:2379".into()];
    }
    Ok(cfg)
}

/// A connected command context for one cluster.
pub struct Ctl {
    /// Configuration.
    pub cfg: CtlConfig,
    /// Cluster name.
    pub scope: String,
    /// DCS client (no watch; linearizable reads).
    pub dcs: Arc<EtcdDcs>,
    /// HTTP client for member REST APIs.
    pub http: reqwest::Client,
}

impl Ctl {
    /// Connects for `cluster` (or the config's `scope`).
    pub async fn connect(g: &GlobalOpts, cluster: Option<&str>) -> CliResult<Ctl> {
        let cfg = load_config(g)?;
        let scope = cluster
            .map(str::to_string)
            .or_else(|| cfg.scope.clone())
            .ok_or_else(|| {
                CliError::Config("no cluster name given and no 'scope' in the configuration".into())
            })?;
        let settings = EtcdSettings {
            hosts: cfg.hosts.clone(),
            protocol: cfg.protocol.clone(),
            username: cfg.etcd_user.as_ref().map(|u| u.0.clone()),
            password: cfg.etcd_user.as_ref().map(|u| u.1.clone()),
            tls: cfg.etcd_tls.clone(),
        };
        let dcs = EtcdDcs::connect(&settings, Keys::new(&cfg.namespace, &scope), false).await?;
        let http = crate::tls::http_client(&cfg.rest_tls, Duration::from_secs(600))
            .map_err(|e| CliError::Config(format!("REST API TLS: {e}")))?;
        Ok(Ctl {
            cfg,
            scope,
            dcs,
            http,
        })
    }

    /// A fresh read of the cluster.
    pub async fn cluster(&self) -> CliResult<Cluster> {
        Ok(self.dcs.fresh_cluster().await?)
    }

    /// Sends a REST request to a member's API (`path` like `/restart`), with Basic auth.
    pub async fn request(
        &self,
        m: &MemberEntry,
        method: reqwest::Method,
        path: &str,
        body: Option<&Value>,
    ) -> CliResult<(u16, String)> {
        let base = m
            .data
            .api_url
            .trim_end_matches("/patroni")
            .trim_end_matches('/');
        if base.is_empty() {
            return Err(CliError::Http(format!(
                "member {} publishes no api_url",
                m.name
            )));
        }
        let mut rb = self.http.request(method, format!("{base}{path}"));
        if let Some((u, p)) = &self.cfg.rest_auth {
            rb = rb.basic_auth(u, Some(p));
        }
        if let Some(b) = body {
            rb = rb.json(b);
        }
        let r = rb.send().await.map_err(|e| {
            let why = error_chain(&e);
            if e.is_connect() {
                CliError::Unreachable(format!("{}: REST API unreachable: {why}", m.name))
            } else {
                CliError::Http(format!("{}: {why}", m.name))
            }
        })?;
        let code = r.status().as_u16();
        Ok((code, r.text().await.unwrap_or_default()))
    }
}

/// An error with its causes (a TLS failure is only named in the sources of reqwest's error).
pub fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut cur = e.source();
    while let Some(s) = cur {
        let part = s.to_string();
        if !text.contains(&part) {
            text.push_str(": ");
            text.push_str(&part);
        }
        cur = s.source();
    }
    text
}

/// Role filter of patronictl (`-r/--role`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum RoleFilter {
    /// The leader (primary or standby leader).
    Leader,
    /// The primary.
    Primary,
    /// Standby leader.
    StandbyLeader,
    /// Replicas.
    Replica,
    /// Replicas (alias).
    Standby,
    /// Any member.
    Any,
}

/// Members named in `names` (all when empty), filtered by role.
pub fn select_members<'a>(
    c: &'a Cluster,
    names: &[String],
    role: RoleFilter,
) -> CliResult<Vec<&'a MemberEntry>> {
    for n in names {
        if c.member(n).is_none() {
            return Err(CliError::Failed(format!("{n} is not a member of cluster")));
        }
    }
    let leader = c.leader_name();
    Ok(c.members
        .iter()
        .filter(|m| names.is_empty() || names.contains(&m.name))
        .filter(|m| {
            let is_leader = Some(m.name.as_str()) == leader;
            match role {
                RoleFilter::Any => true,
                RoleFilter::Leader | RoleFilter::Primary => is_leader,
                RoleFilter::StandbyLeader => is_leader && m.data.role == "standby_leader",
                RoleFilter::Replica | RoleFilter::Standby => !is_leader,
            }
        })
        .collect())
}

/// The member `dsn` / `query` act on: `-m NAME`, else the first with `-r ROLE`, else the leader.
pub fn pick_member<'a>(
    c: &'a Cluster,
    member: Option<&str>,
    role: Option<RoleFilter>,
) -> CliResult<(&'a MemberEntry, String, u16)> {
    let names: Vec<String> = member.map(str::to_string).into_iter().collect();
    let role = role.unwrap_or(if names.is_empty() {
        RoleFilter::Leader
    } else {
        RoleFilter::Any
    });
    let m = select_members(c, &names, role)?
        .into_iter()
        .next()
        .ok_or_else(|| CliError::Failed("Can not find a suitable member".into()))?;
    let (host, port) = m
        .data
        .host_port()
        .ok_or_else(|| CliError::Failed(format!("member {} has no conn_url", m.name)))?;
    Ok((m, host, port))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn reads_node_config_and_dcs_url() {
        let v = json!({"scope": "acme", "namespace": "/db/", "etcd3": {"hosts": "h1:2379,h2"},
            "restapi": {"authentication": {"username": "u", "password": "p"}}});
        let mut c = CtlConfig::from_value(&v);
        assert_eq!(c.scope.as_deref(), Some("acme"));
        assert_eq!(c.hosts, vec!["h1:2379", "h2:2379"]);
        assert_eq!(c.rest_auth, Some(("u".into(), "p".into())));
        c.apply_dcs_url("etcd3://10.0.0.1:2379/service").unwrap();
        assert_eq!(c.hosts, vec!["10.0.0.1:2379"]);
        assert_eq!(c.namespace, "/service");
        assert!(c.apply_dcs_url("consul://x").is_err());
        assert!(c.apply_dcs_url("nonsense").is_err());
    }

    #[test]
    fn rest_tls_from_ctl_environment_and_restapi_fallback() {
        let mut tree = json!({"restapi": {"cafile": "/api-ca", "certfile": "/api.crt"}});
        let env: std::collections::BTreeMap<String, String> = [
            ("PATRONI_CTL_CACERT", "/ctl-ca"),
            ("PATRONI_CTL_INSECURE", "true"),
            ("PATRONI_CTL_USERNAME", "dba"),
            ("PATRONI_CTL_PASSWORD", "pw"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        crate::config::apply_env_overrides(&mut tree, &env);
        let c = CtlConfig::from_value(&tree);
        assert_eq!(c.rest_tls.cacert, Some("/ctl-ca".into()));
        assert_eq!(c.rest_tls.certfile, Some("/api.crt".into()));
        assert!(c.rest_tls.insecure);
        assert_eq!(c.rest_auth, Some(("dba".into(), "pw".into())));
    }

    #[test]
    fn every_etcd_endpoint_form_gives_all_endpoints() {
        let hosts = |section: Value| CtlConfig::from_value(&json!({ "etcd3": section }));
        let strings = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let three = vec!["a:2379", "b:2380", "c:2379"];
        assert_eq!(hosts(json!({"hosts": ["a", "b:2380", "c"]})).hosts, three);
        assert_eq!(hosts(json!({"hosts": "a, b:2380,c"})).hosts, three);
        let c = hosts(json!({"urls": ["https://a:2379", "https://b:2380", "https://c"]}));
        assert_eq!((c.hosts, c.protocol.as_str()), (strings(&three), "https"));
        let c = hosts(json!({"urls": "http://a:2379,http://b:2380,http://c:2379"}));
        assert_eq!(c.hosts, three);
        let c = hosts(json!({"url": "https://u:p@a:2379/", "protocol": "http"}));
        assert_eq!(
            (c.hosts, c.protocol.as_str()),
            (vec!["a:2379".into()], "https")
        );
        assert_eq!(hosts(json!({"host": "a"})).hosts, vec!["a:2379"]);
        assert_eq!(
            hosts(json!({"host": "a", "port": 2390})).hosts,
            vec!["a:2390"]
        );
        // The legacy section, and the agent's precedence (urls before hosts).
        let v = json!({"etcd": {"hosts": "x:1", "urls": ["http://a:2379", "http://b:2380"]}});
        assert_eq!(CtlConfig::from_value(&v).hosts, vec!["a:2379", "b:2380"]);
    }
}
