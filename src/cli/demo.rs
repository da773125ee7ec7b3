//! `patronus demo`: etcd + 3 members + HAProxy (when installed) + the reconciler over a fresh
//! git repository, on loopback, until Ctrl-C.

use crate::gitops::reconcile::daemon::{ReconcileOptions, Reconciler};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Arguments of `demo`.
#[derive(Debug, Clone, clap::Args)]
#[command(
    after_help = "Example:\n  sudo patronus demo\n\nPorts: etcd 2379, REST 8001-8003, PostgreSQL 5432-5434, HAProxy 5000 (primary) / 5001\n(replicas) / 7000 (stats), dashboard 8080; --port-offset N shifts them all."
)]
pub struct DemoArgs {
    /// Working directory (data, logs, the desired-state repository).
    #[arg(long, default_value = "/var/tmp/patronus-demo")]
    pub dir: PathBuf,
    /// Added to every port; at most 24687, so that the highest port (the dashboard's,
    /// 8080 + offset) stays below 32768, where the kernel's ephemeral ports begin (an
    /// outgoing connection may hold one of those and a listener could not bind it).
    #[arg(long, default_value_t = 0, value_parser = clap::value_parser!(u16).range(0..=MAX_OFFSET))]
    pub port_offset: u16,
}

/// The largest `--port-offset`: 8080 + it is the last port below the ephemeral range.
const MAX_OFFSET: i64 = 32767 - 8080;

const CLUSTER_YAML: &str = include_str!("../../examples/gitops/clusters/demo/cluster.yaml");
const HAPROXY: &str = include_str!("../../examples/haproxy.cfg");

struct Procs(Vec<(String, Child)>);

impl Procs {
    fn stop(&mut self) {
        // Agents first (each stops its PostgreSQL cleanly and releases the leader key while
        // etcd still answers), then HAProxy, then etcd.
        let groups: [&dyn Fn(&str) -> bool; 3] =
            [&|n| n.starts_with("node"), &|n| n == "haproxy", &|_| true];
        for in_group in groups {
            for (_, c) in self.0.iter().filter(|(n, _)| in_group(n)) {
                let _ = nix::sys::signal::kill(
                    nix::unistd::Pid::from_raw(c.id() as i32),
                    nix::sys::signal::Signal::SIGTERM,
                );
            }
            let deadline = Instant::now() + Duration::from_secs(60);
            for (name, c) in self.0.iter_mut().filter(|(n, _)| in_group(n)) {
                while !matches!(c.try_wait(), Ok(Some(_))) {
                    if Instant::now() > deadline {
                        eprintln!("{name} did not stop; killing it");
                        let _ = c.kill();
                        let _ = c.wait();
                        break;
                    }
                    std::thread::sleep(Duration::from_millis(100));
                }
            }
            self.0.retain(|(n, _)| !in_group(n));
        }
    }
}

impl Drop for Procs {
    fn drop(&mut self) {
        self.stop();
    }
}

fn spawn(name: &str, cmd: &mut Command, log: &Path) -> Result<(String, Child), String> {
    let f = std::fs::File::create(log).map_err(|e| format!("{}: {e}", log.display()))?;
    let f2 = f.try_clone().map_err(|e| e.to_string())?;
    let child = cmd
        .stdout(f)
        .stderr(f2)
        .stdin(Stdio::null())
        .process_group(0)
        .spawn()
        .map_err(|e| format!("cannot start {name}: {e}"))?;
    Ok((name.to_string(), child))
}

fn node_yaml(i: u16, off: u16, dir: &Path) -> String {
    format!(
        "scope: demo\nnamespace: /service/\nname: node{i}\nrestapi:\n  listen: 127.0.0.1:{api}\n  connect_address: 127.0.0.1:{api}\netcd3:\n  hosts:\n    - 127.0.0.1:{etcd}\nbootstrap:\n  dcs:\n    ttl: 30\n    loop_wait: 10\n    retry_timeout: 10\n    maximum_lag_on_failover: 1048576\n    postgresql:\n      use_pg_rewind: true\n      use_slots: true\n      parameters:\n        wal_log_hints: 'on'\n        max_connections: 100\n        shared_buffers: 32MB\n  initdb:\n    - encoding: UTF8\n    - data-checksums\n  pg_hba:\n    - host replication replicator 127.0.0.1/32 scram-sha-256\n    - host all all 127.0.0.1/32 scram-sha-256\npostgresql:\n  listen: 127.0.0.1:{pg}\n  connect_address: 127.0.0.1:{pg}\n  data_dir: {d}/node{i}\n  bin_dir: /usr/lib/postgresql/15/bin\n  pgpass: {d}/pgpass-node{i}\n  authentication:\n    superuser:\n      username: postgres\n      password: postgres\n    replication:\n      username: replicator\n      password: replicator\n    rewind:\n      username: rewind_user\n      password: rewind\n  parameters:\n    unix_socket_directories: {d}\ntags:\n  nofailover: false\n",
        api = 8000 + i + off,
        etcd = 2379 + off,
        pg = 5431 + i + off,
        d = dir.display()
    )
}

fn init_repo(repo: &Path, etcd_port: u16) -> Result<(), String> {
    std::fs::create_dir_all(repo.join("clusters/demo")).map_err(|e| e.to_string())?;
    std::fs::write(
        repo.join("patronus.yaml"),
        format!("dcs:\n  etcd3:\n    hosts: [\"127.0.0.1:{etcd_port}\"]\n  namespace: /service\ncommit_back:\n  enabled: true\n  author: \"patronus <patronus@localhost>\"\n"),
    )
    .map_err(|e| e.to_string())?;
    std::fs::write(repo.join("clusters/demo/cluster.yaml"), CLUSTER_YAML)
        .map_err(|e| e.to_string())?;
    let r = git2::Repository::init(repo).map_err(|e| e.message().to_string())?;
    let mut index = r.index().map_err(|e| e.message().to_string())?;
    index
        .add_all(["*"].iter(), git2::IndexAddOption::DEFAULT, None)
        .map_err(|e| e.message().to_string())?;
    index.write().map_err(|e| e.message().to_string())?;
    let tree = r
        .find_tree(index.write_tree().map_err(|e| e.message().to_string())?)
        .map_err(|e| e.message().to_string())?;
    let sig = git2::Signature::now("patronus demo", "demo@localhost")
        .map_err(|e| e.message().to_string())?;
    r.commit(
        Some("HEAD"),
        &sig,
        &sig,
        "Initial desired state of the demo cluster",
        &tree,
        &[],
    )
    .map_err(|e| e.message().to_string())?;
    Ok(())
}

fn haproxy_cfg(off: u16) -> String {
    let mut s = HAPROXY.to_string();
    for (from, to) in [("*:5000", 5000), ("*:5001", 5001), ("*:7000", 7000)] {
        s = s.replace(from, &format!("127.0.0.1:{}", to + off));
    }
    for i in 1..=3u16 {
        s = s.replace(
            &format!("127.0.0.1:{} maxconn 100 check port {}", 5431 + i, 8000 + i),
            &format!(
                "127.0.0.1:{} maxconn 100 check port {}",
                5431 + i + off,
                8000 + i + off
            ),
        );
    }
    s
}

async fn healthy(http: &reqwest::Client, off: u16) -> (usize, bool) {
    let mut running = 0;
    let mut leader = false;
    for i in 1..=3u16 {
        if let Ok(r) = http
            .get(format!("http://127.0.0.1:{}/health", 8000 + i + off))
            .send()
            .await
        {
            running += usize::from(r.status().is_success());
        }
        if let Ok(r) = http
            .get(format!("http://127.0.0.1:{}/primary", 8000 + i + off))
            .send()
            .await
        {
            leader |= r.status().is_success();
        }
    }
    (running, leader)
}

/// Runs the demo until SIGINT/SIGTERM; every process started is stopped before returning.
pub async fn run(a: &DemoArgs) -> Result<(), String> {
    let (off, dir) = (a.port_offset, &a.dir);
    let etcd = prerequisites()?;
    prepare_dir(dir)?;
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    let mut procs = Procs(Vec::new());
    procs.0.push(start_etcd(etcd, dir, off)?);
    for i in 1..=3u16 {
        procs.0.push(start_agent(&exe, i, dir, off)?);
    }
    wait_healthy(dir, off).await?;
    let haproxy = start_haproxy(dir, off).await?;
    let with_haproxy = haproxy.is_some();
    procs.0.extend(haproxy);
    let repo = dir.join("repo");
    init_repo(&repo, 2379 + off)?;
    let (tx, rx) = tokio::sync::watch::channel(false);
    let rec = Reconciler::new(ReconcileOptions {
        repo: repo.clone(),
        hosts: Some(vec![format!("127.0.0.1:{}", 2379 + off)]),
        connection: Default::default(),
        commit_back: true,
        remote: None,
        fetch_interval: Duration::from_secs(10),
        id: crate::gitops::reconcile::lock::default_id(),
        lock_ttl: 15,
        concurrency: crate::gitops::reconcile::daemon::DEFAULT_CONCURRENCY,
    })
    .map_err(|e| e.to_string())?;
    let dashboard = format!("127.0.0.1:{}", 8080 + off);
    crate::gitops::dashboard::listen::serve(&dashboard, rec.board.clone(), None)
        .await
        .map_err(|e| e.to_string())?;
    let rec_task = tokio::spawn(async move { rec.run(rx).await });
    print_ready(&exe, dir, &repo, &dashboard, off, with_haproxy);
    wait_for_stop_signal().await?;
    println!("stopping the demo...");
    let _ = tx.send(true);
    let _ = rec_task.await;
    tokio::task::spawn_blocking(move || procs.stop())
        .await
        .map_err(|e| e.to_string())?;
    println!("demo stopped");
    Ok(())
}

/// The etcd binary, once etcd and PostgreSQL 15 are known to be installed.
fn prerequisites() -> Result<&'static str, String> {
    let etcd = ["/usr/bin/etcd", "/usr/local/bin/etcd"]
        .into_iter()
        .find(|p| Path::new(p).exists())
        .ok_or("etcd is not installed (apt-get install etcd-server)")?;
    if !Path::new("/usr/lib/postgresql/15/bin/initdb").exists() {
        return Err("PostgreSQL 15 is not installed (apt-get install postgresql-15)".into());
    }
    Ok(etcd)
}

/// A fresh demo directory every OS user can write (PostgreSQL runs as `postgres`).
fn prepare_dir(dir: &Path) -> Result<(), String> {
    use std::os::unix::fs::PermissionsExt;
    let _ = std::fs::remove_dir_all(dir);
    std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o1777))
        .map_err(|e| e.to_string())
}

/// A one-member etcd on 2379 + offset (peers on 2380 + offset).
fn start_etcd(etcd: &str, dir: &Path, off: u16) -> Result<(String, Child), String> {
    let (client, peer) = (
        format!("http://127.0.0.1:{}", 2379 + off),
        format!("http://127.0.0.1:{}", 2380 + off),
    );
    println!("starting etcd on 127.0.0.1:{}", 2379 + off);
    spawn(
        "etcd",
        Command::new(etcd)
            .args(["--name", "demo", "--data-dir"])
            .arg(dir.join("etcd"))
            .arg(format!("--listen-client-urls={client}"))
            .arg(format!("--advertise-client-urls={client}"))
            .arg(format!("--listen-peer-urls={peer}"))
            .arg(format!("--initial-advertise-peer-urls={peer}"))
            .arg(format!("--initial-cluster=demo={peer}"))
            .args(["--logger=zap", "--log-level=error"]),
        &dir.join("etcd.log"),
    )
}

/// Member `node{i}`: its config file, then its agent.
fn start_agent(exe: &Path, i: u16, dir: &Path, off: u16) -> Result<(String, Child), String> {
    let cfg = dir.join(format!("node{i}.yml"));
    std::fs::write(&cfg, node_yaml(i, off, dir)).map_err(|e| e.to_string())?;
    println!(
        "starting agent node{i}: REST 127.0.0.1:{}, PostgreSQL 127.0.0.1:{}",
        8000 + i + off,
        5431 + i + off
    );
    spawn(
        &format!("node{i}"),
        Command::new(exe).arg("agent").arg("-c").arg(&cfg),
        &dir.join(format!("agent-node{i}.log")),
    )
}

/// Waits (3 minutes at most) for three running members and an elected leader, printing
/// each change.
async fn wait_healthy(dir: &Path, off: u16) -> Result<(), String> {
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(2))
        .build()
        .map_err(|e| e.to_string())?;
    let deadline = Instant::now() + Duration::from_secs(180);
    let mut last = (usize::MAX, false);
    loop {
        let h = healthy(&http, off).await;
        if h != last {
            let leader = if h.1 { "elected" } else { "not yet" };
            println!("members running: {}/3, leader: {leader}", h.0);
            last = h;
        }
        if h == (3, true) {
            return Ok(());
        }
        if Instant::now() > deadline {
            return Err(format!(
                "the cluster did not come up; see the logs in {}",
                dir.display()
            ));
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// HAProxy in front of the members, when it is installed.
async fn start_haproxy(dir: &Path, off: u16) -> Result<Option<(String, Child)>, String> {
    let Some(h) = ["/usr/sbin/haproxy", "/usr/bin/haproxy"]
        .into_iter()
        .find(|p| Path::new(p).exists())
    else {
        return Ok(None);
    };
    let cfg = dir.join("haproxy.cfg");
    std::fs::write(&cfg, haproxy_cfg(off)).map_err(|e| e.to_string())?;
    let log = dir.join("haproxy.log");
    let mut child = spawn(
        "haproxy",
        Command::new(h).arg("-db").arg("-f").arg(&cfg),
        &log,
    )?;
    if let Err(e) = wait_listening(&mut child.1, 7000 + off, &log).await {
        let _ = child.1.kill();
        let _ = child.1.wait();
        return Err(e);
    }
    Ok(Some(child))
}

/// Waits (10 s at most) until a process listens on `port`; Err with the end of its log
/// when it exits first (a port already in use) or never listens.
async fn wait_listening(child: &mut Child, port: u16, log: &Path) -> Result<(), String> {
    let deadline = Instant::now() + Duration::from_secs(10);
    let tail = || {
        let text = std::fs::read_to_string(log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(5)..].join("\n")
    };
    while Instant::now() < deadline {
        if let Ok(Some(status)) = child.try_wait() {
            return Err(format!("haproxy exited ({status}):\n{}", tail()));
        }
        if tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_ok()
        {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Err(format!(
        "haproxy does not listen on 127.0.0.1:{port} after 10 s:\n{}",
        tail()
    ))
}

/// Where everything is and what to try.
fn print_ready(exe: &Path, dir: &Path, repo: &Path, dashboard: &str, off: u16, haproxy: bool) {
    let (p1, p2, p3) = (5432 + off, 5433 + off, 5434 + off);
    println!("\npatronus demo is ready");
    println!("  primary (libpq):  psql \"postgresql://postgres:postgres@127.0.0.1:{p1},127.0.0.1:{p2},127.0.0.1:{p3}/postgres?target_session_attrs=read-write\"");
    if haproxy {
        println!("  HAProxy:          primary 127.0.0.1:{}, replicas 127.0.0.1:{}, stats http://127.0.0.1:{}/", 5000 + off, 5001 + off, 7000 + off);
    }
    println!("  dashboard:        http://{dashboard}/");
    println!("  desired state:    {} (git)", repo.display());
    println!("  logs:             {}", dir.display());
    println!("Try:");
    let (me, node1) = (exe.display(), dir.join("node1.yml"));
    println!("  {me} -c {} list", node1.display());
    println!(
        "  edit {}/clusters/demo/cluster.yaml, then git -C {} commit -am 'work_mem 16MB'",
        repo.display(),
        repo.display()
    );
    println!(
        "  {me} -c {} switchover --candidate node2 --force",
        node1.display()
    );
    println!("Press Ctrl-C to stop everything.");
}

/// Returns on SIGTERM or SIGINT (Ctrl-C).
async fn wait_for_stop_signal() -> Result<(), String> {
    use tokio::signal::unix::{signal, SignalKind};
    let (mut t, mut i) = (
        signal(SignalKind::terminate()).map_err(|e| e.to_string())?,
        signal(SignalKind::interrupt()).map_err(|e| e.to_string())?,
    );
    tokio::select! {
        _ = t.recv() => {}
        _ = i.recv() => {}
    }
    Ok(())
}
