//! Options of a test cluster: members, timing, tags, etcd security, REST TLS and extra YAML
//! per section.

use super::certs;
use super::EtcdSecurity;
use std::path::PathBuf;
use std::time::Duration;

/// Options of a test cluster.
#[derive(Clone)]
pub struct ClusterOpts {
    /// Number of members.
    pub members: usize,
    /// `restapi.authentication` user/password.
    pub rest_auth: Option<(String, String)>,
    /// ttl / loop_wait / retry_timeout.
    pub ttl: u64,
    /// loop_wait.
    pub loop_wait: u64,
    /// retry_timeout.
    pub retry_timeout: u64,
    /// Extra YAML appended under `tags:` per member index.
    pub tags: Vec<String>,
    /// `postgresql.use_pg_rewind`.
    pub use_pg_rewind: bool,
    /// Run this Patroni executable (as the postgres user) instead of patronus.
    pub patroni: Option<PathBuf>,
    /// Members of the etcd cluster (each node's `etcd3.hosts` lists all of them).
    pub etcd_members: usize,
    /// How etcd is secured (TLS, client certificates).
    pub etcd_security: EtcdSecurity,
    /// etcd RBAC: this user and password, read-write on `/service/`, enabled before the
    /// agents start.
    pub etcd_user: Option<(String, String)>,
    /// Lines added to each node's `etcd3` section (indented by two spaces), e.g. the
    /// agents' `protocol`, `cacert`, `cert`, `key`, `username`, `password`.
    pub etcd3_extra: String,
    /// Serve the REST API over HTTPS (the harness's own calls then use TLS too).
    pub rest_tls: Option<RestTls>,
    /// Extra YAML lines appended under `restapi:` (indented by two spaces).
    pub restapi_extra: String,
    /// YAML appended to the `postgresql:` section per member index, right after its local
    /// `parameters:` (lines indented by four spaces add local parameters, by two spaces
    /// keys such as `callbacks:` or `create_replica_methods:`).
    pub postgresql_extra: Vec<String>,
    /// YAML appended to the `bootstrap:` section per member index (two-space indented keys,
    /// e.g. `method:` and the custom method's section).
    pub bootstrap_extra: Vec<String>,
    /// How many agents [`TestCluster::start`] starts (None = all); start the others with
    /// [`TestCluster::start_agent`].
    pub start_agents: Option<usize>,
    /// Lines added to `bootstrap.dcs.postgresql.parameters` (indented by eight spaces),
    /// e.g. `        wal_level: logical\n` (a parameter only the dynamic config sets).
    pub dcs_parameters_extra: String,
    /// Top-level YAML appended at the end of each node file per member index (e.g. `log:`).
    pub node_extra: Vec<String>,
}

/// The REST API's TLS in a test cluster: every member serves `server`, the harness trusts
/// `ca` and presents `client` (when set).
#[derive(Clone)]
pub struct RestTls {
    /// CA that signed `server` and `client`; also `restapi.cafile`.
    pub ca: PathBuf,
    /// Server certificate for 127.0.0.1.
    pub server: certs::CertFiles,
    /// Client certificate the harness presents.
    pub client: Option<certs::CertFiles>,
    /// `restapi.verify_client`.
    pub verify_client: String,
}

impl RestTls {
    /// A reqwest client trusting `ca` (and presenting `client`, when set).
    pub fn http_client(&self, client: bool) -> reqwest::Client {
        let tls = patronus::tls::ClientTls {
            cacert: Some(self.ca.clone()),
            certfile: self
                .client
                .as_ref()
                .filter(|_| client)
                .map(|c| c.cert.clone()),
            keyfile: self
                .client
                .as_ref()
                .filter(|_| client)
                .map(|c| c.key.clone()),
            ..Default::default()
        };
        patronus::tls::install_provider();
        patronus::tls::http_client(&tls, Duration::from_secs(60)).expect("TLS client")
    }
}

impl Default for ClusterOpts {
    fn default() -> Self {
        ClusterOpts {
            members: 3,
            rest_auth: None,
            ttl: 10,
            loop_wait: 1,
            retry_timeout: 3,
            tags: vec![],
            use_pg_rewind: true,
            patroni: None,
            etcd_members: 1,
            etcd_security: EtcdSecurity::default(),
            etcd_user: None,
            etcd3_extra: String::new(),
            rest_tls: None,
            restapi_extra: String::new(),
            postgresql_extra: vec![],
            bootstrap_extra: vec![],
            start_agents: None,
            dcs_parameters_extra: String::new(),
            node_extra: vec![],
        }
    }
}
