//! A real etcd on loopback for the integration harness: start, kill, restart, freeze, thaw;
//! one member ([`Etcd`]) or several ([`EtcdCluster`]); optionally secured
//! ([`EtcdSecurity`]: TLS for clients and peers, client certificates, RBAC users).

use super::certs::CertFiles;
use super::{free_port, http_get_url, signal_pid, temp_dir, wait_for, which};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

/// The password of etcd's `root` user once [`EtcdCluster::enable_auth`] ran (the harness
/// reads keys as root).
pub const ROOT_PASSWORD: &str = "root-it-pw";

/// TLS of a test etcd: clients and peers over https with `server` (issued by the CA of
/// `ca`), client certificates required with `client_cert_auth`.
#[derive(Clone, Debug)]
pub struct EtcdTlsFiles {
    /// The CA that issued every certificate (trusted by etcd for clients and peers).
    pub ca: PathBuf,
    /// etcd's own certificate (server and peer).
    pub server: CertFiles,
    /// `--client-cert-auth`: clients must present a certificate issued by the CA.
    pub client_cert_auth: bool,
    /// The certificate the harness itself presents.
    pub harness: CertFiles,
}

/// How a test etcd is secured (the default: plain HTTP, no auth).
#[derive(Clone, Debug, Default)]
pub struct EtcdSecurity {
    /// TLS for clients and peers.
    pub tls: Option<EtcdTlsFiles>,
}

impl EtcdSecurity {
    fn scheme(&self) -> &'static str {
        if self.tls.is_some() {
            "https"
        } else {
            "http"
        }
    }
}

/// A real etcd on loopback, killed on drop.
pub struct Etcd {
    /// Client port.
    pub port: u16,
    peer: u16,
    child: Child,
    dir: PathBuf,
    /// Member name and `--initial-cluster` (`it` alone for a single etcd).
    name: String,
    initial_cluster: String,
    sec: EtcdSecurity,
    /// Auth enabled: the harness connects as root.
    auth: bool,
}

impl Etcd {
    /// Starts etcd and waits until it answers.
    pub async fn start() -> Etcd {
        Self::start_secured(&EtcdSecurity::default()).await
    }

    /// Starts etcd secured by `sec` and waits until it answers.
    pub async fn start_secured(sec: &EtcdSecurity) -> Etcd {
        let (port, peer) = (free_port(), free_port());
        let initial = format!("it={}://127.0.0.1:{peer}", sec.scheme());
        let e = Self::spawn_member("it", port, peer, initial, sec);
        e.wait_ready().await;
        e
    }

    /// Spawns one member of a cluster described by `initial_cluster` (not waiting for it).
    fn spawn_member(
        name: &str,
        port: u16,
        peer: u16,
        initial_cluster: String,
        sec: &EtcdSecurity,
    ) -> Etcd {
        let dir = temp_dir("etcd");
        let child = Self::spawn(&dir, name, port, peer, &initial_cluster, sec);
        Etcd {
            port,
            peer,
            child,
            dir,
            name: name.to_string(),
            initial_cluster,
            sec: sec.clone(),
            auth: false,
        }
    }

    /// An etcd-client connection to this member with the harness's TLS identity and, once
    /// auth is enabled, root's credentials (None when it does not connect within 3 s).
    pub async fn client(&self) -> Option<etcd_client::Client> {
        let mut opts = etcd_client::ConnectOptions::new();
        if let Some(t) = &self.sec.tls {
            let read = |p: &PathBuf| std::fs::read(p).expect("read a test certificate");
            let tls = etcd_client::TlsOptions::new()
                .ca_certificate(etcd_client::Certificate::from_pem(read(&t.ca)))
                .identity(etcd_client::Identity::from_pem(
                    read(&t.harness.cert),
                    read(&t.harness.key),
                ));
            opts = opts.with_tls(tls);
        }
        if self.auth {
            opts = opts.with_user("root", ROOT_PASSWORD);
        }
        let url = format!("{}://{}", self.sec.scheme(), self.endpoint());
        let connect = etcd_client::Client::connect([url], Some(opts));
        tokio::time::timeout(Duration::from_secs(3), connect)
            .await
            .ok()?
            .ok()
    }

    /// Starts etcd again on the same ports and data (after [`Etcd::kill`]).
    pub async fn restart(&mut self) {
        self.respawn();
        self.wait_ready().await;
    }

    /// Starts the process again on the same ports and data, not waiting for it.
    fn respawn(&mut self) {
        self.child = Self::spawn(
            &self.dir,
            &self.name,
            self.port,
            self.peer,
            &self.initial_cluster,
            &self.sec,
        );
    }

    async fn wait_ready(&self) {
        if self.sec.tls.is_some() || self.auth {
            wait_for(
                "etcd to answer a status request",
                Duration::from_secs(20),
                || async { self.client().await?.status().await.ok().map(|_| ()) },
            )
            .await;
            return;
        }
        let url = format!("http://127.0.0.1:{}/health", self.port);
        wait_for("etcd to answer /health", Duration::from_secs(20), || {
            let url = url.clone();
            async move {
                http_get_url(&url)
                    .await
                    .filter(|(c, _)| *c == 200)
                    .map(|_| ())
            }
        })
        .await;
    }

    fn spawn(
        dir: &Path,
        name: &str,
        port: u16,
        peer: u16,
        initial_cluster: &str,
        sec: &EtcdSecurity,
    ) -> Child {
        let etcd = which("etcd").unwrap_or_else(|| {
            panic!("etcd is not installed: apt-get install etcd-server (run ci/install-deps.sh)")
        });
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(dir.join("etcd.log"))
            .expect("etcd log");
        let scheme = sec.scheme();
        Command::new(etcd)
            .args(["--name", name, "--data-dir"])
            .arg(dir.join("data"))
            .arg(format!("--listen-client-urls={scheme}://127.0.0.1:{port}"))
            .arg(format!(
                "--advertise-client-urls={scheme}://127.0.0.1:{port}"
            ))
            .arg(format!("--listen-peer-urls={scheme}://127.0.0.1:{peer}"))
            .arg(format!(
                "--initial-advertise-peer-urls={scheme}://127.0.0.1:{peer}"
            ))
            .arg(format!("--initial-cluster={initial_cluster}"))
            .args(tls_args(sec))
            .args(["--logger=zap", "--log-level=error"])
            .args(election_timing(initial_cluster))
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("spawn etcd")
    }

    /// Stops etcd (SIGKILL) without removing its data (for outage tests).
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Freezes etcd (SIGSTOP): its sockets stay open and nothing answers, like a stalled
    /// disk or a paused VM.
    pub fn freeze(&self) {
        signal_pid(self.child.id(), nix::sys::signal::Signal::SIGSTOP);
    }

    /// Resumes etcd after [`Etcd::freeze`] (SIGCONT).
    pub fn thaw(&self) {
        signal_pid(self.child.id(), nix::sys::signal::Signal::SIGCONT);
    }

    /// etcd's own log file (errors only).
    pub fn log_path(&self) -> PathBuf {
        self.dir.join("etcd.log")
    }

    /// `host:port` endpoint.
    pub fn endpoint(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// Reads every key under `prefix` (key → value) with etcd-client. A failed range is
    /// asked again (a loaded machine sees an occasional transient error) for up to 10 s.
    pub async fn get_prefix(&self, prefix: &str) -> Vec<(String, String)> {
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        loop {
            let read = async {
                let mut c = self.client().await.ok_or("cannot connect to etcd")?;
                let opts = etcd_client::GetOptions::new().with_prefix();
                let r = c
                    .get(prefix, Some(opts))
                    .await
                    .map_err(|e| format!("range: {e}"))?;
                Ok::<_, String>(r.kvs().iter().map(key_value).collect())
            };
            match read.await {
                Ok(kvs) => return kvs,
                Err(e) if std::time::Instant::now() >= deadline => {
                    panic!("etcd range on {prefix} kept failing: {e}")
                }
                Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
            }
        }
    }

    /// This member's id and the id of the Raft leader it knows (0: none), None when it
    /// does not answer within 3 s.
    async fn status(&self) -> Option<(u64, u64)> {
        let ask = async {
            let mut c = self.client().await?;
            let s = c.status().await.ok()?;
            Some((s.header()?.member_id(), s.leader()))
        };
        tokio::time::timeout(Duration::from_secs(3), ask)
            .await
            .ok()
            .flatten()
    }

    /// [`Etcd::get_prefix`] answering None when this member does not answer within 3 s.
    async fn try_get_prefix(&self, prefix: &str) -> Option<Vec<(String, String)>> {
        let read = async {
            let mut c = self.client().await?;
            let opts = etcd_client::GetOptions::new().with_prefix();
            let r = c.get(prefix, Some(opts)).await.ok()?;
            Some(r.kvs().iter().map(key_value).collect())
        };
        tokio::time::timeout(Duration::from_secs(3), read)
            .await
            .ok()
            .flatten()
    }
}

/// etcd's TLS flags for `sec` (none without TLS).
fn tls_args(sec: &EtcdSecurity) -> Vec<String> {
    let Some(t) = &sec.tls else {
        return vec![];
    };
    let (ca, cert, key) = (
        t.ca.display(),
        t.server.cert.display(),
        t.server.key.display(),
    );
    let mut args = vec![
        format!("--cert-file={cert}"),
        format!("--key-file={key}"),
        format!("--trusted-ca-file={ca}"),
        format!("--peer-cert-file={cert}"),
        format!("--peer-key-file={key}"),
        format!("--peer-trusted-ca-file={ca}"),
        "--peer-client-cert-auth".to_string(),
    ];
    if t.client_cert_auth {
        args.push("--client-cert-auth".to_string());
    }
    args
}

/// Raft timing of a member. Several members: elections twice as fast as etcd's defaults
/// (heartbeat 100 ms, election timeout 1 s, measured 2.5-2.9 s without a leader after the
/// leader was killed), in proportion to the tests' compressed timings (`retry_timeout` 3 s
/// where Patroni's default is 10 s), so that a lost Raft leader is replaced within the
/// agents' retry budget. One member: etcd's defaults.
fn election_timing(initial_cluster: &str) -> &'static [&'static str] {
    if initial_cluster.contains(',') {
        &["--heartbeat-interval=50", "--election-timeout=500"]
    } else {
        &[]
    }
}

fn key_value(kv: &etcd_client::KeyValue) -> (String, String) {
    (
        String::from_utf8_lossy(kv.key()).into(),
        String::from_utf8_lossy(kv.value()).into(),
    )
}

impl Drop for Etcd {
    fn drop(&mut self) {
        self.thaw();
        self.kill();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// One etcd or a cluster of several members on loopback, each with its own data dir and
/// ports. Whole-cluster methods mirror [`Etcd`]'s (so one member behaves exactly like a
/// plain [`Etcd`]); `*_member` methods act on one member.
pub struct EtcdCluster {
    /// Client port of the first member.
    pub port: u16,
    members: Vec<Etcd>,
    /// Members killed or frozen by the test (not asked by the harness's reads).
    down: Vec<AtomicBool>,
}

impl EtcdCluster {
    /// Starts `n` members (`--initial-cluster` names all of them) and waits until each
    /// answers `/health`. One member is started exactly like [`Etcd::start`].
    pub async fn start(n: usize) -> EtcdCluster {
        Self::start_secured(n, &EtcdSecurity::default()).await
    }

    /// [`EtcdCluster::start`] with every member secured by `sec`.
    pub async fn start_secured(n: usize, sec: &EtcdSecurity) -> EtcdCluster {
        let members = if n <= 1 {
            vec![Etcd::start_secured(sec).await]
        } else {
            let ports: Vec<(u16, u16)> = (0..n).map(|_| (free_port(), free_port())).collect();
            let scheme = sec.scheme();
            let initial = ports
                .iter()
                .enumerate()
                .map(|(i, (_, peer))| format!("e{}={scheme}://127.0.0.1:{peer}", i + 1))
                .collect::<Vec<_>>()
                .join(",");
            let members: Vec<Etcd> = ports
                .iter()
                .enumerate()
                .map(|(i, (port, peer))| {
                    let name = format!("e{}", i + 1);
                    Etcd::spawn_member(&name, *port, *peer, initial.clone(), sec)
                })
                .collect();
            for m in &members {
                m.wait_ready().await;
            }
            members
        };
        EtcdCluster {
            port: members[0].port,
            down: members.iter().map(|_| AtomicBool::new(false)).collect(),
            members,
        }
    }

    /// Enables etcd's RBAC: a `root` user ([`ROOT_PASSWORD`], which the harness uses from
    /// then on) and `user` with `password`, granted read-write on every key under `prefix`
    /// through a role of the same name.
    pub async fn enable_auth(&mut self, user: &str, password: &str, prefix: &str) {
        use etcd_client::Permission;
        let mut c = self.members[0].client().await.expect("connect etcd");
        c.user_add("root", ROOT_PASSWORD, None)
            .await
            .expect("add root");
        c.user_grant_role("root", "root").await.expect("grant root");
        c.user_add(user, password, None)
            .await
            .expect("add the user");
        c.role_add(user).await.expect("add the role");
        let perm = Permission::read_write(prefix).with_prefix();
        c.role_grant_permission(user, perm)
            .await
            .expect("grant read-write on the prefix");
        c.user_grant_role(user, user).await.expect("grant the role");
        c.auth_enable().await.expect("enable auth");
        for m in &mut self.members {
            m.auth = true;
        }
    }

    /// The URL of every member (`https://` with TLS), comma-separated.
    pub fn urls(&self) -> String {
        let all: Vec<String> = self
            .members
            .iter()
            .map(|m| format!("{}://{}", m.sec.scheme(), m.endpoint()))
            .collect();
        all.join(",")
    }

    /// Number of members.
    pub fn len(&self) -> usize {
        self.members.len()
    }

    /// Member `i`.
    pub fn member(&self, i: usize) -> &Etcd {
        &self.members[i]
    }

    /// Every member's `host:port`, comma-separated (what a node's `etcd3.hosts` takes).
    pub fn endpoints(&self) -> String {
        let all: Vec<String> = self.members.iter().map(Etcd::endpoint).collect();
        all.join(",")
    }

    /// Same as [`EtcdCluster::endpoints`] (the name [`Etcd`] uses).
    pub fn endpoint(&self) -> String {
        self.endpoints()
    }

    /// The first member's log file.
    pub fn log_path(&self) -> PathBuf {
        self.members[0].log_path()
    }

    /// SIGKILLs member `i` (its data is kept).
    pub fn kill_member(&mut self, i: usize) {
        self.members[i].thaw();
        self.members[i].kill();
        self.down[i].store(true, Ordering::SeqCst);
    }

    /// Starts member `i` again after [`EtcdCluster::kill_member`] and waits until it
    /// answers `/health` (it needs a quorum with the members still up).
    pub async fn restart_member(&mut self, i: usize) {
        self.members[i].restart().await;
        self.down[i].store(false, Ordering::SeqCst);
    }

    /// SIGSTOPs member `i`.
    pub fn freeze_member(&self, i: usize) {
        self.members[i].freeze();
        self.down[i].store(true, Ordering::SeqCst);
    }

    /// SIGCONTs member `i` after [`EtcdCluster::freeze_member`].
    pub fn thaw_member(&self, i: usize) {
        self.members[i].thaw();
        self.down[i].store(false, Ordering::SeqCst);
    }

    /// SIGKILLs every member.
    pub fn kill(&mut self) {
        for i in 0..self.len() {
            self.kill_member(i);
        }
    }

    /// Starts every member again (all before waiting: a quorum needs several) and waits
    /// until each answers `/health`.
    pub async fn restart(&mut self) {
        for m in &mut self.members {
            m.respawn();
        }
        for m in &self.members {
            m.wait_ready().await;
        }
        self.down
            .iter()
            .for_each(|d| d.store(false, Ordering::SeqCst));
    }

    /// Freezes every member.
    pub fn freeze(&self) {
        for i in 0..self.len() {
            self.freeze_member(i);
        }
    }

    /// Thaws every member.
    pub fn thaw(&self) {
        for i in 0..self.len() {
            self.thaw_member(i);
        }
    }

    /// Reads every key under `prefix` from the first member up that answers (one member:
    /// exactly [`Etcd::get_prefix`]). Panics when none answers.
    pub async fn get_prefix(&self, prefix: &str) -> Vec<(String, String)> {
        if self.len() == 1 {
            return self.members[0].get_prefix(prefix).await;
        }
        let up = self.members.iter().zip(&self.down);
        for (m, _) in up.filter(|(_, d)| !d.load(Ordering::SeqCst)) {
            if let Some(kvs) = m.try_get_prefix(prefix).await {
                return kvs;
            }
        }
        panic!("no etcd member answered a range on {prefix}");
    }

    /// The index of the member etcd's Raft currently has as leader (asked of the members
    /// up; None when none of them knows a leader).
    pub async fn leader_member(&self) -> Option<usize> {
        let mut ids = vec![None; self.len()];
        let mut leader = None;
        for (i, m) in self
            .members
            .iter()
            .enumerate()
            .filter(|(i, _)| !self.down[*i].load(Ordering::SeqCst))
        {
            if let Some((id, lead)) = m.status().await {
                ids[i] = Some(id);
                leader = leader.or((lead != 0).then_some(lead));
            }
        }
        let leader = leader?;
        ids.iter().position(|id| *id == Some(leader))
    }
}
