//! Integration harness: real etcd and real PostgreSQL on loopback, driving the real binary.
//!
//! Every test gets free ports, its own temp dir and its own scope. A missing etcd or
//! PostgreSQL is a failure with a clear message, never a skip. Waiting is polling with a
//! deadline, never a bare sleep.
#![allow(dead_code)]

pub mod certs;
pub mod chaos;
mod etcd;
pub mod git;
mod opts;
pub mod webhook;
pub mod workload;

#[allow(unused_imports)] // for tests that start a bare etcd
pub use etcd::Etcd;
pub use etcd::EtcdCluster;
#[allow(unused_imports)] // for the tests of a secured etcd
pub use etcd::{EtcdSecurity, EtcdTlsFiles, ROOT_PASSWORD};
pub use opts::ClusterOpts;
#[allow(unused_imports)] // for the tests of an HTTPS REST API
pub use opts::RestTls;

use std::future::Future;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// PostgreSQL binaries used by the tests.
pub const PG_BIN: &str = "/usr/lib/postgresql/15/bin";

/// A free TCP port on 127.0.0.1, below the kernel's ephemeral range (32768+): a port from
/// that range can be taken as the source port of an outgoing connection while a member is
/// down, and the restarted agent or postmaster could then not bind it again.
pub fn free_port() -> u16 {
    use std::sync::atomic::{AtomicU16, Ordering};
    static NEXT: AtomicU16 = AtomicU16::new(0);
    let _ = NEXT.compare_exchange(
        0,
        15000 + (std::process::id() % 150) as u16 * 100,
        Ordering::SeqCst,
        Ordering::SeqCst,
    );
    loop {
        let p = NEXT.fetch_add(1, Ordering::SeqCst);
        if p >= 32000 {
            NEXT.store(15000, Ordering::SeqCst);
            continue;
        }
        if std::net::TcpListener::bind(("127.0.0.1", p)).is_ok() {
            return p;
        }
    }
}

/// Polls `f` every 100 ms until it yields Some or `timeout` passes (then panics with `what`).
pub async fn wait_for<T, F, Fut>(what: &str, timeout: Duration, mut f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = f().await {
            return v;
        }
        if Instant::now() > deadline {
            panic!("timed out after {timeout:?} waiting for {what}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A temp directory that postgres (when we are root) can use.
pub fn temp_dir(tag: &str) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let d = std::env::temp_dir().join(format!(
        "patronus-it-{tag}-{}-{}",
        std::process::id(),
        free_port()
    ));
    std::fs::create_dir_all(&d).expect("create temp dir");
    std::fs::set_permissions(&d, std::fs::Permissions::from_mode(0o1777)).expect("chmod temp dir");
    d
}

fn require_binary(path: &str, hint: &str) {
    if !Path::new(path).exists() {
        panic!("{path} is missing: {hint} (run ci/install-deps.sh)");
    }
}

/// Sends `sig` to process `pid` (ignoring a process that is already gone).
pub fn signal_pid(pid: u32, sig: nix::sys::signal::Signal) {
    if let Ok(pid) = i32::try_from(pid) {
        let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), sig);
    }
}

/// Finds a program on PATH.
pub fn which(name: &str) -> Option<PathBuf> {
    std::env::var_os("PATH")?
        .to_str()?
        .split(':')
        .map(|d| Path::new(d).join(name))
        .find(|p| p.exists())
}

/// GET returning (status, body) or None when unreachable.
pub async fn http_get_url(url: &str) -> Option<(u16, String)> {
    // reqwest is built without a default crypto provider: install ring first.
    patronus::tls::install_provider();
    http_get_with(&reqwest::Client::new(), url).await
}

/// GET `url` with `client` (3 s timeout): (status, body), or None when no response came.
pub async fn http_get_with(client: &reqwest::Client, url: &str) -> Option<(u16, String)> {
    let r = client
        .get(url)
        .timeout(Duration::from_secs(3))
        .send()
        .await
        .ok()?;
    let code = r.status().as_u16();
    Some((code, r.text().await.unwrap_or_default()))
}

/// One member of a test cluster.
pub struct Node {
    /// Member name.
    pub name: String,
    /// REST port.
    pub api_port: u16,
    /// PostgreSQL port.
    pub pg_port: u16,
    /// Config file.
    pub config: PathBuf,
    /// Data directory.
    pub data_dir: PathBuf,
    /// Agent log file.
    pub log: PathBuf,
    /// Running agent.
    pub agent: Option<Child>,
}

/// A cluster of agents on one etcd (or an etcd cluster, [`ClusterOpts::etcd_members`]).
pub struct TestCluster {
    /// etcd.
    pub etcd: EtcdCluster,
    /// Scope.
    pub scope: String,
    /// Members.
    pub nodes: Vec<Node>,
    /// Temp dir.
    pub dir: PathBuf,
    /// Options used.
    pub opts: ClusterOpts,
}

/// The superuser password used by test clusters.
pub const SUPERPASS: &str = "supersecret";

/// How long a member may take to run one more cycle on a loaded machine.
const T_CYCLE: Duration = Duration::from_secs(60);

impl TestCluster {
    /// Writes configs and starts every agent.
    pub async fn start(tag: &str, opts: ClusterOpts) -> TestCluster {
        let mut c = TestCluster::prepare(tag, opts).await;
        for i in 0..c.opts.start_agents.unwrap_or(c.nodes.len()) {
            c.start_agent(i);
        }
        c
    }

    /// Starts etcd and writes the member configs (`Node::config`), starting no agent: a test
    /// edits the files, then calls [`TestCluster::start_agent`].
    pub async fn prepare(tag: &str, opts: ClusterOpts) -> TestCluster {
        // reqwest is built without a default rustls provider: the test's clients need one.
        patronus::tls::install_provider();
        require_binary(
            &format!("{PG_BIN}/initdb"),
            "PostgreSQL 15 is not installed: apt-get install postgresql-15",
        );
        let mut etcd = EtcdCluster::start_secured(opts.etcd_members, &opts.etcd_security).await;
        if let Some((user, password)) = &opts.etcd_user {
            etcd.enable_auth(user, password, "/service/").await;
        }
        let dir = temp_dir(tag);
        let scope = format!("{tag}-{}", etcd.port);
        let mut nodes = Vec::new();
        for i in 0..opts.members {
            let name = format!("m{}", i + 1);
            let api_port = free_port();
            let pg_port = free_port();
            let data_dir = dir.join(format!("data-{name}"));
            let config = dir.join(format!("{name}.yml"));
            let auth = opts
                .rest_auth
                .as_ref()
                .map(|(u, p)| format!("  authentication:\n    username: {u}\n    password: {p}\n"))
                .unwrap_or_default();
            let tags = opts.tags.get(i).cloned().unwrap_or_default();
            let pg_extra = opts.postgresql_extra.get(i).cloned().unwrap_or_default();
            let bs_extra = opts.bootstrap_extra.get(i).cloned().unwrap_or_default();
            let node_extra = opts.node_extra.get(i).cloned().unwrap_or_default();
            let tls = opts.rest_tls.as_ref().map(|t| {
                format!(
                    "  certfile: {}\n  keyfile: {}\n  cafile: {}\n  verify_client: {}\n",
                    t.server.cert.display(),
                    t.server.key.display(),
                    t.ca.display(),
                    t.verify_client
                )
            });
            let auth = format!("{auth}{}{}", tls.unwrap_or_default(), opts.restapi_extra);
            let yaml = format!(
                "scope: {scope}\nname: {name}\nnamespace: /service\nrestapi:\n  listen: 127.0.0.1:{api_port}\n  connect_address: 127.0.0.1:{api_port}\n{auth}\
etcd3:\n  hosts: {etcd}\n{etcd3_extra}bootstrap:\n  dcs:\n    ttl: {ttl}\n    loop_wait: {lw}\n    retry_timeout: {rt}\n    maximum_lag_on_failover: 1048576\n    postgresql:\n      use_pg_rewind: {rw}\n      use_slots: true\n      parameters:\n        shared_buffers: 16MB\n        max_connections: 50\n        wal_log_hints: 'on'\n{dcs_extra}  initdb:\n    - encoding: UTF8\n  pg_hba:\n    - host replication replicator 127.0.0.1/32 scram-sha-256\n    - host all all 127.0.0.1/32 scram-sha-256\n{bs_extra}\
postgresql:\n  listen: 127.0.0.1:{pg_port}\n  connect_address: 127.0.0.1:{pg_port}\n  data_dir: {data}\n  bin_dir: {PG_BIN}\n  pgpass: {pgpass}\n  pg_ctl_timeout: 30\n  authentication:\n    superuser:\n      username: postgres\n      password: {SUPERPASS}\n    replication:\n      username: replicator\n      password: replpass\n    rewind:\n      username: rewinder\n      password: rewindpass\n  parameters:\n    unix_socket_directories: {sock}\n    fsync: 'off'\n    synchronous_commit: 'on'\n{pg_extra}tags:\n  role: it\n{tags}{node_extra}",
                etcd = etcd.endpoint(),
                etcd3_extra = opts.etcd3_extra,
                dcs_extra = opts.dcs_parameters_extra,
                ttl = opts.ttl,
                lw = opts.loop_wait,
                rt = opts.retry_timeout,
                rw = opts.use_pg_rewind,
                data = data_dir.display(),
                pgpass = dir.join(format!("pgpass-{name}")).display(),
                sock = dir.display(),
            );
            std::fs::write(&config, yaml).expect("write node config");
            nodes.push(Node {
                log: dir.join(format!("{name}.log")),
                name,
                api_port,
                pg_port,
                config,
                data_dir,
                agent: None,
            });
        }
        TestCluster {
            etcd,
            scope,
            nodes,
            dir,
            opts,
        }
    }

    /// (Re)starts the agent of member `i`.
    pub fn start_agent(&mut self, i: usize) {
        let n = &mut self.nodes[i];
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&n.log)
            .expect("agent log");
        let mut cmd = match &self.opts.patroni {
            Some(exe) => {
                let mut c = Command::new(exe);
                c.arg(&n.config);
                if let Ok(Some(u)) = nix::unistd::User::from_name("postgres") {
                    use std::os::unix::process::CommandExt;
                    c.uid(u.uid.as_raw())
                        .gid(u.gid.as_raw())
                        .current_dir(&self.dir);
                }
                c
            }
            None => {
                let mut c = Command::new(env!("CARGO_BIN_EXE_patronus"));
                c.arg("agent").arg("-c").arg(&n.config);
                c
            }
        };
        let child = cmd
            .env("PATRONUS_MIN_TTL", "5")
            .env("RUST_LOG", "info")
            .stdout(log.try_clone().expect("dup log"))
            .stderr(log)
            .spawn()
            .expect("spawn patronus agent");
        n.agent = Some(child);
    }

    /// SIGKILLs the agent of member `i` (PostgreSQL keeps running).
    pub fn kill_agent(&mut self, i: usize) {
        if let Some(mut c) = self.nodes[i].agent.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// SIGTERMs the agent of member `i` and waits for it to exit.
    pub async fn term_agent(&mut self, i: usize) {
        if let Some(mut c) = self.nodes[i].agent.take() {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(c.id() as i32),
                nix::sys::signal::Signal::SIGTERM,
            );
            wait_for(
                "agent to exit after SIGTERM",
                Duration::from_secs(60),
                || {
                    let done = matches!(c.try_wait(), Ok(Some(_)));
                    async move { done.then_some(()) }
                },
            )
            .await;
        }
    }

    /// SIGSTOPs the agent of member `i` (frozen; its PostgreSQL keeps running).
    pub fn stop_agent(&self, i: usize) {
        if let Some(c) = &self.nodes[i].agent {
            signal_pid(c.id(), nix::sys::signal::Signal::SIGSTOP);
        }
    }

    /// SIGCONTs the agent of member `i` after [`TestCluster::stop_agent`].
    pub fn cont_agent(&self, i: usize) {
        if let Some(c) = &self.nodes[i].agent {
            signal_pid(c.id(), nix::sys::signal::Signal::SIGCONT);
        }
    }

    /// SIGKILLs the postmaster of member `i` (simulated crash).
    pub fn kill_postmaster(&self, i: usize) {
        let pidfile = self.nodes[i].data_dir.join("postmaster.pid");
        if let Some(pid) = std::fs::read_to_string(pidfile)
            .ok()
            .and_then(|t| t.lines().next().and_then(|l| l.trim().parse::<i32>().ok()))
        {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid),
                nix::sys::signal::Signal::SIGKILL,
            );
        }
    }

    /// Text of member `i`'s agent log.
    pub fn log_text(&self, i: usize) -> String {
        std::fs::read_to_string(&self.nodes[i].log).unwrap_or_default()
    }

    /// POST/DELETE with JSON to member `i`, returning (status, body).
    pub async fn send(
        &self,
        i: usize,
        method: reqwest::Method,
        path: &str,
        body: &str,
    ) -> (u16, String) {
        let mut rb = self
            .api_client()
            .request(method, self.api_url(i, path))
            .timeout(Duration::from_secs(60))
            .body(body.to_string());
        if let Some((u, p)) = &self.opts.rest_auth {
            rb = rb.basic_auth(u, Some(p));
        }
        let r = rb.send().await.expect("REST request");
        let code = r.status().as_u16();
        (code, r.text().await.unwrap_or_default())
    }

    /// Index of a member by name.
    pub fn index(&self, name: &str) -> usize {
        self.nodes
            .iter()
            .position(|n| n.name == name)
            .expect("member exists")
    }

    /// GET on a member's REST API.
    pub async fn get(&self, i: usize, path: &str) -> Option<(u16, String)> {
        if self.opts.rest_tls.is_none() {
            return http_get_url(&self.api_url(i, path)).await;
        }
        http_get_with(&self.api_client(), &self.api_url(i, path)).await
    }

    /// `http(s)://127.0.0.1:<port><path>` of member `i`.
    pub fn api_url(&self, i: usize, path: &str) -> String {
        let scheme = if self.opts.rest_tls.is_some() {
            "https"
        } else {
            "http"
        };
        format!("{scheme}://127.0.0.1:{}{path}", self.nodes[i].api_port)
    }

    /// The client of the harness's REST calls (TLS with the test CA when configured).
    pub fn api_client(&self) -> reqwest::Client {
        match &self.opts.rest_tls {
            Some(t) => t.http_client(true),
            None => {
                patronus::tls::install_provider();
                reqwest::Client::new()
            }
        }
    }

    /// Status code of a GET (0 when unreachable).
    pub async fn code(&self, i: usize, path: &str) -> u16 {
        self.get(i, path).await.map_or(0, |(c, _)| c)
    }

    /// The leader key's value.
    pub async fn leader(&self) -> Option<String> {
        self.etcd
            .get_prefix(&format!("/service/{}/leader", self.scope))
            .await
            .into_iter()
            .next()
            .map(|(_, v)| v)
    }

    /// Waits until a leader is elected and it and every member answer as expected:
    /// one `/primary` 200, the others streaming replicas. Returns the leader index.
    pub async fn wait_healthy(&self, timeout: Duration) -> usize {
        wait_for("a leader and streaming replicas", timeout, || async {
            let leader = self.leader().await?;
            let li = self.nodes.iter().position(|n| n.name == leader)?;
            if self.code(li, "/primary").await != 200 {
                return None;
            }
            for (i, n) in self.nodes.iter().enumerate() {
                if i == li || n.agent.is_none() {
                    continue;
                }
                let (_, body) = self.get(i, "/patroni").await?;
                let v: serde_json::Value = serde_json::from_str(&body).ok()?;
                if v["replication_state"] != "streaming" || v["state"] != "running" {
                    return None;
                }
            }
            Some(li)
        })
        .await
    }

    /// Waits until member `i` has run a cycle that read the DCS after now (its `/patroni`
    /// `dcs_last_seen`, in whole seconds, two above now): what it decides from then on
    /// follows a change the test made before the call.
    pub async fn wait_cycle_after_now(&self, i: usize) {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default()
            .as_secs();
        wait_for(
            "a cycle that read the DCS after the change",
            T_CYCLE,
            || async {
                let (_, body) = self.get(i, "/patroni").await?;
                let v: serde_json::Value = serde_json::from_str(&body).ok()?;
                (v["dcs_last_seen"].as_u64()? >= now + 2).then_some(())
            },
        )
        .await
    }

    /// Waits until the leader key's holder accepts writes; returns its index.
    pub async fn wait_leader_writable(&self, timeout: Duration) -> usize {
        wait_for("a writable leader", timeout, || async {
            let leader = self.leader().await?;
            let li = self.nodes.iter().position(|n| n.name == leader)?;
            let s = self.sql(li).await?;
            let ro: bool = s
                .query_one("SELECT pg_is_in_recovery()", &[])
                .await
                .ok()?
                .get(0);
            (!ro).then_some(li)
        })
        .await
    }

    /// A superuser SQL session to member `i`.
    pub async fn sql(&self, i: usize) -> Option<tokio_postgres::Client> {
        let (client, conn) = tokio_postgres::Config::new()
            .host("127.0.0.1")
            .port(self.nodes[i].pg_port)
            .user("postgres")
            .password(SUPERPASS)
            .dbname("postgres")
            .connect_timeout(Duration::from_secs(3))
            .connect(tokio_postgres::NoTls)
            .await
            .ok()?;
        tokio::spawn(async move {
            let _ = conn.await;
        });
        Some(client)
    }

    /// Whether member `i` accepts writes: Some(true) writable, Some(false) read-only,
    /// None unreachable or stopped.
    pub async fn writable(&self, i: usize) -> Option<bool> {
        let s = self.sql(i).await?;
        let ro: bool = s
            .query_one("SELECT pg_is_in_recovery()", &[])
            .await
            .ok()?
            .get(0);
        Some(!ro)
    }

    /// The cluster key `rel` (`sync`, `failsafe`, …) parsed as JSON (None when absent or
    /// not JSON).
    pub async fn key_json(&self, rel: &str) -> Option<serde_json::Value> {
        let key = format!("/service/{}/{rel}", self.scope);
        self.etcd
            .get_prefix(&key)
            .await
            .into_iter()
            .find(|(k, _)| *k == key)
            .and_then(|(_, v)| serde_json::from_str(&v).ok())
    }

    /// `PATCH /config` on member `i`; the answer must be 200.
    pub async fn patch_config(&self, i: usize, body: &str) {
        let (code, text) = self.send(i, reqwest::Method::PATCH, "/config", body).await;
        assert_eq!(code, 200, "PATCH /config {body}: {text}");
    }

    /// First column of a one-row query on member `i`, as text.
    pub async fn query_one(&self, i: usize, sql: &str) -> Option<String> {
        let c = self.sql(i).await?;
        let row = c.query_one(sql, &[]).await.ok()?;
        row.try_get::<_, String>(0).ok()
    }

    /// Prints agent logs (for failed tests).
    pub fn dump_logs(&self) {
        for n in &self.nodes {
            let text = std::fs::read_to_string(&n.log).unwrap_or_default();
            // The steady "no action" lines would hide what happened.
            let tail: Vec<&str> = text
                .lines()
                .rev()
                .filter(|l| {
                    !l.contains("INFO no action.") && !l.contains("updated leader lock during")
                })
                .take(60)
                .collect();
            eprintln!(
                "===== {} =====\n{}",
                n.name,
                tail.into_iter().rev().collect::<Vec<_>>().join("\n")
            );
        }
    }

    fn stop_postgres(&self, n: &Node) {
        if n.data_dir.join("postmaster.pid").exists() {
            let mut cmd = Command::new(format!("{PG_BIN}/pg_ctl"));
            cmd.args(["stop", "-m", "immediate", "-D"]).arg(&n.data_dir);
            if nix::unistd::geteuid().is_root() {
                if let Ok(Some(u)) = nix::unistd::User::from_name("postgres") {
                    use std::os::unix::process::CommandExt;
                    cmd.uid(u.uid.as_raw()).gid(u.gid.as_raw());
                }
            }
            let _ = cmd.stdout(Stdio::null()).stderr(Stdio::null()).status();
        }
    }
}

impl Drop for TestCluster {
    fn drop(&mut self) {
        if std::thread::panicking() {
            self.dump_logs();
        }
        for i in 0..self.nodes.len() {
            self.kill_agent(i);
        }
        for n in &self.nodes {
            self.stop_postgres(n);
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
