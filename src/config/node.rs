//! Typed model of Patroni's node YAML file and helpers on it.
//!
//! Loading (YAML parsing, environment overrides, normalisation, validation) lives in
//! [`super::load`]; this file only holds the data model.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::path::PathBuf;

/// Default PostgreSQL port used when an address has none.
pub const DEFAULT_PG_PORT: u16 = 5432;
/// Default REST API port used when an address has none.
pub const DEFAULT_RESTAPI_PORT: u16 = 8008;
/// Default etcd client port appended to hosts given without one.
pub const DEFAULT_ETCD_PORT: u16 = 2379;
/// Directory searched for PostgreSQL binaries when `postgresql.bin_dir` is not set.
pub const DEFAULT_BIN_DIR: &str = "/usr/lib/postgresql/15/bin";

/// A whole node configuration (one Patroni YAML file).
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(default)]
pub struct NodeConfig {
    /// Member name, unique in the cluster (required).
    pub name: String,
    /// Cluster name (required).
    pub scope: String,
    /// DCS namespace, normalised to a leading `/` and no trailing `/`.
    pub namespace: String,
    /// REST API settings.
    pub restapi: RestApiConfig,
    /// etcd v3 connection settings (also filled from a legacy `etcd:` section).
    pub etcd3: EtcdConfig,
    /// Settings used when this node bootstraps a new cluster.
    pub bootstrap: Option<BootstrapConfig>,
    /// Local PostgreSQL settings.
    pub postgresql: PostgresqlConfig,
    /// Member tags (`nofailover`, `failover_priority`, `clonefrom`, ...).
    pub tags: Map<String, Value>,
    /// Logging settings.
    pub log: LogConfig,
    /// Watchdog settings.
    pub watchdog: WatchdogConfig,
    /// The userspace fence (an extension of patronus, `fence:`).
    pub fence: FenceConfig,
    /// `patronictl` settings, kept opaque.
    pub ctl: Option<Value>,
}

impl Default for NodeConfig {
    fn default() -> Self {
        Self {
            name: String::new(),
            scope: String::new(),
            namespace: "/service".to_string(),
            restapi: RestApiConfig::default(),
            etcd3: EtcdConfig::default(),
            bootstrap: None,
            postgresql: PostgresqlConfig::default(),
            tags: Map::new(),
            log: LogConfig::default(),
            watchdog: WatchdogConfig::default(),
            fence: FenceConfig::default(),
            ctl: None,
        }
    }
}

/// REST API settings (`restapi:`).
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
#[serde(default)]
pub struct RestApiConfig {
    /// Address to listen on, `host:port` (required).
    pub listen: String,
    /// Address other members and clients use; defaults to `listen`.
    pub connect_address: String,
    /// Basic authentication required for unsafe endpoints.
    pub authentication: Option<BasicAuth>,
    /// Certificate chain (PEM): when set, the API is served over HTTPS only.
    pub certfile: Option<PathBuf>,
    /// Private key (PEM, PKCS#8 may be encrypted); defaults to `certfile`.
    pub keyfile: Option<PathBuf>,
    /// Password of an encrypted `keyfile` (never logged).
    pub keyfile_password: Option<String>,
    /// CA of the client certificates (`verify_client`); also trusted by the agent's own calls.
    pub cafile: Option<PathBuf>,
    /// Whether client certificates are asked for (`none`, `optional`, `required`).
    pub verify_client: crate::tls::ClientCertMode,
    /// OpenSSL cipher string: rustls cannot take one, so it is accepted with a warning.
    pub ciphers: Option<String>,
    /// Addresses, networks (CIDR) and host names allowed to call unsafe endpoints.
    pub allowlist: Vec<String>,
    /// Also allow the hosts of the other members' `api_url` and `conn_url`.
    pub allowlist_include_members: bool,
}

/// HTTP basic-auth credentials.
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
pub struct BasicAuth {
    /// User name.
    pub username: String,
    /// Password.
    pub password: String,
}

/// etcd v3 connection settings.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(default)]
pub struct EtcdConfig {
    /// Endpoints, each `host:port`.
    pub hosts: Vec<String>,
    /// `http` or `https`.
    pub protocol: String,
    /// Optional etcd user.
    pub username: Option<String>,
    /// Optional etcd password.
    pub password: Option<String>,
    /// CA certificate to trust for `https` endpoints (the system's roots when absent).
    pub cacert: Option<PathBuf>,
    /// Client certificate presented to etcd.
    pub cert: Option<PathBuf>,
    /// Key of the client certificate (defaults to `cert`).
    pub key: Option<PathBuf>,
    /// Password of an encrypted (PKCS#8) `key`.
    pub key_password: Option<String>,
}

impl Default for EtcdConfig {
    fn default() -> Self {
        Self {
            hosts: Vec::new(),
            protocol: "http".to_string(),
            username: None,
            password: None,
            cacert: None,
            cert: None,
            key: None,
            key_password: None,
        }
    }
}

/// Bootstrap settings (`bootstrap:`).
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(default)]
pub struct BootstrapConfig {
    /// Initial dynamic configuration written to the DCS (an object).
    pub dcs: Value,
    /// Rendered `initdb` arguments, e.g. `--encoding=UTF8`, `--data-checksums`.
    pub initdb: Vec<String>,
    /// `pg_hba.conf` lines used right after bootstrap.
    pub pg_hba: Vec<String>,
    /// Script run after the cluster is initialised (alias `post_init`).
    #[serde(alias = "post_init")]
    pub post_bootstrap: Option<String>,
    /// `initdb` (default) or the name of a custom bootstrap section.
    pub method: Option<String>,
    /// Every other key: the custom bootstrap method sections.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl Default for BootstrapConfig {
    fn default() -> Self {
        Self {
            dcs: Value::Object(Map::new()),
            initdb: Vec::new(),
            pg_hba: Vec::new(),
            post_bootstrap: None,
            method: None,
            extra: Map::new(),
        }
    }
}

impl BootstrapConfig {
    /// The custom bootstrap method in force: its name and section (None for `initdb`).
    pub fn custom_method(&self) -> Option<(&str, Option<&Value>)> {
        let m = self
            .method
            .as_deref()
            .filter(|m| !m.is_empty() && *m != "initdb")?;
        Some((m, self.extra.get(m)))
    }
}

/// Local PostgreSQL settings (`postgresql:`).
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(default)]
pub struct PostgresqlConfig {
    /// Listen address(es) and port, e.g. `127.0.0.1, 192.168.1.11:5432` (required).
    pub listen: String,
    /// Address other members use to reach this server, `host:port` (required).
    pub connect_address: String,
    /// Data directory (required).
    pub data_dir: PathBuf,
    /// Directory holding the configuration files, when not the data directory.
    pub config_dir: Option<PathBuf>,
    /// Directory holding PostgreSQL binaries.
    pub bin_dir: Option<PathBuf>,
    /// Path of the pgpass file written by the agent.
    pub pgpass: Option<PathBuf>,
    /// Role credentials.
    pub authentication: Authentication,
    /// Local server parameters (any scalar values).
    pub parameters: Map<String, Value>,
    /// Local `pg_hba.conf` lines, overriding the dynamic configuration.
    pub pg_hba: Option<Vec<String>>,
    /// Local `pg_ident.conf` lines, overriding the dynamic configuration.
    pub pg_ident: Option<Vec<String>>,
    /// Extra recovery settings of a replica (`restore_command`, `recovery_min_apply_delay`,
    /// …), written beside `primary_conninfo` while it runs as a replica.
    pub recovery_conf: Map<String, Value>,
    /// Local override of `use_pg_rewind`.
    pub use_pg_rewind: Option<bool>,
    /// Seconds to wait for `pg_ctl start/stop`.
    pub pg_ctl_timeout: u64,
    /// Wipe the data directory when pg_rewind fails.
    pub remove_data_directory_on_rewind_failure: bool,
    /// Wipe the data directory when timelines diverged and rewind is impossible.
    pub remove_data_directory_on_diverged_timelines: bool,
    /// Callback scripts by event name.
    pub callbacks: Map<String, Value>,
    /// Script run before a promotion; a non-zero exit cancels it.
    pub pre_promote: Option<String>,
    /// Script run before PostgreSQL is stopped (its exit status is only logged).
    pub before_stop: Option<String>,
    /// Replica creation methods, in order of preference.
    pub create_replica_methods: Option<Vec<String>>,
    /// Options for `pg_basebackup` (list or map, kept opaque).
    pub basebackup: Option<Value>,
    /// The agent's own superuser connections go through the Unix socket (the first of
    /// `unix_socket_directories`) instead of TCP.
    pub use_unix_socket: bool,
    /// The same for its local replication connections (the standby's `IDENTIFY_SYSTEM`).
    pub use_unix_socket_repl: bool,
    /// Every other key of the section: custom replica method sections (e.g. `pgbackrest`)
    /// and tolerated Patroni keys that are not modelled.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl Default for PostgresqlConfig {
    fn default() -> Self {
        Self {
            listen: String::new(),
            connect_address: String::new(),
            data_dir: PathBuf::new(),
            config_dir: None,
            bin_dir: None,
            pgpass: None,
            authentication: Authentication::default(),
            parameters: Map::new(),
            pg_hba: None,
            pg_ident: None,
            recovery_conf: Map::new(),
            use_pg_rewind: None,
            pg_ctl_timeout: 60,
            remove_data_directory_on_rewind_failure: false,
            remove_data_directory_on_diverged_timelines: false,
            callbacks: Map::new(),
            pre_promote: None,
            before_stop: None,
            create_replica_methods: None,
            basebackup: None,
            use_unix_socket: false,
            use_unix_socket_repl: false,
            extra: Map::new(),
        }
    }
}

/// Credentials of the roles the agent uses.
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
#[serde(default)]
pub struct Authentication {
    /// Superuser role (required).
    pub superuser: Credentials,
    /// Replication role (required).
    pub replication: Credentials,
    /// Role used by pg_rewind, when not the superuser.
    pub rewind: Option<Credentials>,
}

/// A PostgreSQL role name and optional password.
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
#[serde(default)]
pub struct Credentials {
    /// Role name.
    pub username: String,
    /// Password, if any.
    pub password: Option<String>,
    /// libpq TLS keys (`sslmode`, `sslrootcert`, `sslcert`, `sslkey`, ...).
    #[serde(flatten)]
    pub ssl: super::pg_ssl::PgSsl,
}

/// Logging settings (`log:`), Patroni's semantics: with `dir` the log goes to
/// `<dir>/patroni.log` (the name Patroni's handler uses), rotated at `file_size` bytes keeping
/// `file_num` older files (`patroni.log.1` …); without it, to stderr.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(default)]
pub struct LogConfig {
    /// DEBUG, INFO, WARNING, ERROR or CRITICAL.
    pub level: String,
    /// `plain` or `json`.
    #[serde(rename = "type")]
    pub kind: String,
    /// Directory for log files; stderr when absent.
    pub dir: Option<PathBuf>,
    /// Python `logging` format string (`%(asctime)s %(levelname)s: %(message)s`).
    pub format: Option<String>,
    /// strftime format of `asctime` (Python's default `2024-01-31 12:00:00,123` when absent).
    pub dateformat: Option<String>,
    /// Size in bytes at which the log file is rotated (Patroni: 25000000).
    pub file_size: u64,
    /// Rotated files kept (Patroni: 4).
    pub file_num: u32,
}

impl Default for LogConfig {
    fn default() -> Self {
        Self {
            level: "INFO".to_string(),
            kind: "plain".to_string(),
            dir: None,
            format: None,
            dateformat: None,
            file_size: 25_000_000,
            file_num: 4,
        }
    }
}

/// Watchdog settings (`watchdog:`).
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(default)]
pub struct WatchdogConfig {
    /// `off`, `automatic` or `required`.
    pub mode: String,
    /// Watchdog device path.
    pub device: String,
    /// Seconds between watchdog expiry and leader key expiry.
    pub safety_margin: i64,
}

impl Default for WatchdogConfig {
    fn default() -> Self {
        Self {
            mode: "automatic".to_string(),
            device: "/dev/watchdog".to_string(),
            safety_margin: 5,
        }
    }
}

/// The userspace fence (`fence:`, an extension): a separate process that stops
/// PostgreSQL when the leader lease could expire without the agent having renewed it.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(default)]
pub struct FenceConfig {
    /// `on` (default) or `off`.
    pub mode: String,
    /// Seconds between the fence's deadline and the earliest possible lease expiry.
    pub safety_margin: i64,
    /// Unix socket between agent and fence (default: beside the data directory,
    /// `patronus-fence-<name>.sock`).
    pub socket: Option<String>,
}

impl Default for FenceConfig {
    fn default() -> Self {
        Self {
            mode: "on".to_string(),
            safety_margin: 2,
            socket: None,
        }
    }
}

impl FenceConfig {
    /// True unless `mode` is `off` (or YAML's false).
    pub fn enabled(&self) -> bool {
        !matches!(self.mode.as_str(), "off" | "false")
    }
}

/// Splits `host:port` at the last `:`; returns `default_port` when there is no port
/// or the port does not parse (validation reports bad ports separately).
pub fn split_host_port(addr: &str, default_port: u16) -> (String, u16) {
    match addr.rsplit_once(':') {
        Some((host, port)) => (
            host.trim().to_string(),
            port.trim().parse().unwrap_or(default_port),
        ),
        None => (addr.trim().to_string(), default_port),
    }
}

/// Checks the port of a `host:port` string: `Ok(None)` when there is no port,
/// `Ok(Some(p))` for a port in 1..=65535, `Err(reason)` otherwise.
pub fn check_port(addr: &str) -> Result<Option<u16>, String> {
    let Some((_, port)) = addr.rsplit_once(':') else {
        return Ok(None);
    };
    match port.trim().parse::<u16>() {
        Ok(p) if p >= 1 => Ok(Some(p)),
        _ => Err(format!(
            "invalid port '{}' in '{addr}' (expected 1..=65535)",
            port.trim()
        )),
    }
}

impl RestApiConfig {
    /// Host and port of `listen` (port 8008 when absent).
    pub fn listen_host_port(&self) -> (String, u16) {
        split_host_port(&self.listen, DEFAULT_RESTAPI_PORT)
    }

    /// Host and port of `connect_address` (port 8008 when absent).
    pub fn connect_host_port(&self) -> (String, u16) {
        split_host_port(&self.connect_address, DEFAULT_RESTAPI_PORT)
    }

    /// `https` when a certificate is configured, else `http`.
    pub fn scheme(&self) -> &'static str {
        if self.certfile.is_some() {
            "https"
        } else {
            "http"
        }
    }

    /// The server TLS settings, when a certificate is configured.
    pub fn server_tls(&self) -> Option<crate::tls::ServerTls> {
        Some(crate::tls::ServerTls {
            certfile: self.certfile.clone()?,
            keyfile: self.keyfile.clone(),
            keyfile_password: self.keyfile_password.clone(),
            cafile: self.cafile.clone(),
            verify_client: self.verify_client,
        })
    }
}

impl PostgresqlConfig {
    /// Hosts of `listen`: the comma-separated, trimmed part before the last `:`.
    pub fn listen_hosts(&self) -> Vec<String> {
        let (hosts, _) = split_host_port(&self.listen, DEFAULT_PG_PORT);
        hosts
            .split(',')
            .map(str::trim)
            .filter(|h| !h.is_empty())
            .map(str::to_string)
            .collect()
    }

    /// Port of `listen` (5432 when absent).
    pub fn listen_port(&self) -> u16 {
        split_host_port(&self.listen, DEFAULT_PG_PORT).1
    }

    /// Host and port of `connect_address` (port 5432 when absent).
    pub fn connect_host_port(&self) -> (String, u16) {
        split_host_port(&self.connect_address, DEFAULT_PG_PORT)
    }

    /// Full path of the PostgreSQL binary `name`.
    pub fn bin(&self, name: &str) -> PathBuf {
        match &self.bin_dir {
            Some(dir) if !dir.as_os_str().is_empty() => dir.join(name),
            _ => PathBuf::from(DEFAULT_BIN_DIR).join(name),
        }
    }

    /// The socket directory the agent's local connections use: the first entry of the local
    /// `unix_socket_directories`, else libpq's Debian default `/var/run/postgresql`.
    pub fn socket_dir(&self) -> String {
        self.parameters
            .get("unix_socket_directories")
            .and_then(Value::as_str)
            .and_then(|v| v.split(',').map(str::trim).find(|d| !d.is_empty()))
            .map(str::to_string)
            .unwrap_or_else(|| "/var/run/postgresql".to_string())
    }

    /// The directory of the PostgreSQL binaries: `bin_dir` when set; else, as Patroni (which
    /// runs them by name), the first directory of `path` (the `PATH` value) that holds both
    /// `pg_ctl` and `postgres`; else [`DEFAULT_BIN_DIR`].
    pub fn resolved_bin_dir(&self, path: Option<&std::ffi::OsStr>) -> PathBuf {
        if let Some(dir) = self.bin_dir.as_ref().filter(|d| !d.as_os_str().is_empty()) {
            return dir.clone();
        }
        path.into_iter()
            .flat_map(std::env::split_paths)
            .find(|d| d.join("pg_ctl").is_file() && d.join("postgres").is_file())
            .unwrap_or_else(|| PathBuf::from(DEFAULT_BIN_DIR))
    }

    /// Path of the pgpass file: the configured one, else `/tmp/pgpass_<node_name>`.
    pub fn pgpass_path(&self, node_name: &str) -> PathBuf {
        match &self.pgpass {
            Some(p) if !p.as_os_str().is_empty() => p.clone(),
            _ => PathBuf::from(format!("/tmp/pgpass_{node_name}")),
        }
    }

    /// Configuration section of a custom replica method (e.g. `pgbackrest`), if any.
    pub fn replica_method_config(&self, method: &str) -> Option<&Value> {
        self.extra.get(method)
    }
}

impl NodeConfig {
    /// The `tags` section read with Patroni's rules.
    pub fn tag_view(&self) -> super::tags::Tags<'_> {
        super::tags::Tags::of(&self.tags)
    }

    /// Boolean value of tag `key` (false when absent), see [`super::tags::is_true`].
    pub fn tag_bool(&self, key: &str) -> bool {
        self.tag_view().flag(key)
    }

    /// Failover priority, see [`super::tags::Tags::failover_priority`].
    pub fn failover_priority(&self) -> i64 {
        self.tag_view().failover_priority()
    }

    /// `nofailover`, see [`super::tags::Tags::nofailover`].
    pub fn nofailover(&self) -> bool {
        self.tag_view().nofailover()
    }

    /// DCS key prefix of this cluster: `<namespace>/<scope>` with `//` collapsed.
    pub fn dcs_prefix(&self) -> String {
        normalize_namespace(&format!("{}/{}", self.namespace, self.scope))
    }
}

/// Normalises a DCS namespace: leading `/`, no trailing `/`, no `//`
/// (`"/db/"` → `"/db"`, `"service"` → `"/service"`, `""` → `"/"`).
pub fn normalize_namespace(ns: &str) -> String {
    let parts: Vec<&str> = ns.split('/').filter(|p| !p.is_empty()).collect();
    format!("/{}", parts.join("/"))
}

#[cfg(test)]
#[path = "node_tests.rs"]
mod tests;
