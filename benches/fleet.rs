//! A fleet of clusters under one reconciler: 200 clusters' DCS state in one etcd on loopback
//! (agents simulated: member and leader keys kept alive with leases, as agents do), plus one
//! real 3-member cluster (real agents and PostgreSQL) on its own etcd, named by its
//! `cluster.yaml`'s `dcs:` override; a desired-state repository of the 201, the real
//! `patronus reconcile` binary; one commit changing all of them → time until every `config`
//! key carries the new value and every real member shows it; the reconciler's
//! idle CPU and RSS (from /proc); then the offline `patronus plan --observed` over 1,000
//! clusters. Goals: ≤ 2 s, ≤ 64 MB RSS, ≤ 1 s.
//!
//! Run: `cargo bench --bench fleet -- [--clusters N] [--runs N] [--concurrency N]`
//! (`FLEET_LOG=/tmp/fleet.log` keeps the reconciler's log, with timestamps).

#[path = "../tests/common/mod.rs"]
mod common;
#[path = "support/plan_gen.rs"]
mod plan_gen;

use common::*;
use etcd_client::{Client, PutOptions};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

fn arg(name: &str, default: usize) -> usize {
    std::env::args()
        .skip_while(|a| a != name)
        .nth(1)
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn scope(i: usize) -> String {
    format!("f{i:03}")
}

fn cluster_yaml(work_mem: &str) -> String {
    format!("config:\n  ttl: 30\n  loop_wait: 10\n  retry_timeout: 10\n  postgresql:\n    parameters:\n      work_mem: {work_mem}\n      max_connections: 100\n")
}

/// The real cluster's file: its own etcd through the per-cluster `dcs:` override.
fn real_cluster_yaml(real: &TestCluster, work_mem: &str) -> String {
    format!(
        "dcs:\n  etcd3:\n    hosts: [\"{}\"]\nconfig:\n  postgresql:\n    parameters:\n      work_mem: {work_mem}\n",
        real.etcd.endpoint()
    )
}

/// Writes every cluster's file (the real one too) with `work_mem` and commits.
fn commit_all(dir: &Path, n: usize, real: &TestCluster, work_mem: &str) {
    for i in 0..n {
        let f = dir.join(format!("clusters/{}/cluster.yaml", scope(i)));
        std::fs::create_dir_all(f.parent().unwrap()).unwrap();
        std::fs::write(f, cluster_yaml(work_mem)).unwrap();
    }
    let f = dir.join(format!("clusters/{}/cluster.yaml", real.scope));
    std::fs::create_dir_all(f.parent().unwrap()).unwrap();
    std::fs::write(f, real_cluster_yaml(real, work_mem)).unwrap();
    let repo = git2::Repository::open(dir).unwrap();
    let mut index = repo.index().unwrap();
    index
        .add_all(["*"].iter(), git2::IndexAddOption::DEFAULT, None)
        .unwrap();
    index.write().unwrap();
    let tree = repo.find_tree(index.write_tree().unwrap()).unwrap();
    let sig = git2::Signature::now("bench", "bench@localhost").unwrap();
    let parent = repo.head().ok().and_then(|h| h.peel_to_commit().ok());
    let parents: Vec<&git2::Commit> = parent.iter().collect();
    repo.commit(Some("HEAD"), &sig, &sig, work_mem, &tree, &parents)
        .unwrap();
}

/// The simulated agents: per cluster a leader and a replica, each with its own lease
/// (ttl 30) holding its member key (and the leader key), like Patroni's agents; plus the
/// `initialize` and `config` keys. Returns the leases, to keep alive.
async fn seed(c: &mut Client, n: usize) -> Vec<i64> {
    let mut leases = Vec::new();
    for i in 0..n {
        let s = scope(i);
        let base = format!("/service/{s}");
        c.put(format!("{base}/initialize"), format!("7{i:018}"), None)
            .await
            .unwrap();
        let cfg = r#"{"ttl":30,"loop_wait":10,"retry_timeout":10,"postgresql":{"parameters":{"work_mem":"4MB","max_connections":100}}}"#;
        c.put(format!("{base}/config"), cfg, None).await.unwrap();
        for (m, role) in [("a", "primary"), ("b", "replica")] {
            let lease = c.lease_grant(30, None).await.unwrap().id();
            leases.push(lease);
            let name = format!("{s}-{m}");
            let port = 20000 + i * 2 + usize::from(m == "b");
            let data = format!(
                r#"{{"conn_url":"postgres://127.0.0.1:{port}/postgres","api_url":"http://127.0.0.1:{port}/patroni","state":"running","role":"{role}","version":"4.1.5","timeline":1}}"#
            );
            let opts = || Some(PutOptions::new().with_lease(lease));
            c.put(format!("{base}/members/{name}"), data, opts())
                .await
                .unwrap();
            if m == "a" {
                c.put(format!("{base}/leader"), name, opts()).await.unwrap();
            }
        }
    }
    leases
}

/// Keeps every lease alive (every 10 s) until the bench ends.
fn keep_alive(mut c: Client, leases: Vec<i64>) {
    tokio::spawn(async move {
        loop {
            for id in &leases {
                if let Ok((mut k, mut s)) = c.lease_keep_alive(*id).await {
                    let _ = k.keep_alive().await;
                    let _ = s.message().await;
                }
            }
            tokio::time::sleep(Duration::from_secs(10)).await;
        }
    });
}

/// How many clusters' `config` key carries `work_mem`.
async fn count_applied(c: &mut Client, work_mem: &str) -> usize {
    let r = c
        .get(
            "/service/",
            Some(etcd_client::GetOptions::new().with_prefix()),
        )
        .await
        .unwrap();
    r.kvs()
        .iter()
        .filter(|kv| kv.key_str().is_ok_and(|k| k.ends_with("/config")))
        .filter_map(|kv| serde_json::from_slice::<serde_json::Value>(kv.value()).ok())
        .filter(|v| v.pointer("/postgresql/parameters/work_mem") == Some(&work_mem.into()))
        .count()
}

/// Whether every member of the real cluster shows `work_mem` (`SHOW work_mem`).
async fn real_applied(real: &TestCluster, work_mem: &str) -> bool {
    for i in 0..3 {
        if real.query_one(i, "SHOW work_mem").await.as_deref() != Some(work_mem) {
            return false;
        }
    }
    true
}

/// Seconds until all `n` clusters carry `work_mem` and the real cluster's members show it
/// (panics after 60 s), and how many Range requests the bench itself sent to the fleet's
/// etcd meanwhile. One read of every key every 25 ms: the bench's own polling (200
/// clusters' keys per read) must not load the etcd and CPU it measures (it read them twice
/// every 10 ms before).
async fn wait_applied(
    c: &mut Client,
    n: usize,
    real: &TestCluster,
    work_mem: &str,
    t0: Instant,
) -> (f64, u64) {
    let mut polls = 0;
    let mut real_done = false;
    loop {
        polls += 1;
        let got = count_applied(c, work_mem).await;
        real_done = real_done || real_applied(real, work_mem).await;
        if got == n && real_done {
            return (t0.elapsed().as_secs_f64(), polls);
        }
        assert!(
            t0.elapsed() < Duration::from_secs(60),
            "{got}/{n} applied after 60 s"
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// CPU ticks (user + system) and RSS (kB) of a process, from /proc.
fn proc_usage(pid: u32) -> (u64, u64) {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let after = &stat[stat.rfind(')').unwrap() + 2..];
    let f: Vec<&str> = after.split_whitespace().collect();
    let ticks = f[11].parse::<u64>().unwrap() + f[12].parse::<u64>().unwrap();
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let rss = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0);
    (ticks, rss)
}

/// The reconciler's log: the file named by `FLEET_LOG` (timestamps to profile a run), else
/// discarded.
fn log_target() -> Stdio {
    match std::env::var_os("FLEET_LOG") {
        Some(path) => std::fs::File::create(path).map_or_else(|_| Stdio::null(), Stdio::from),
        None => Stdio::null(),
    }
}

/// Range (read) requests etcd has answered so far, from its Prometheus metrics: every DCS
/// read of a cluster is one Range over the cluster's prefix.
async fn ranges(endpoint: &str) -> u64 {
    let text = reqwest::get(format!("http://{endpoint}/metrics"))
        .await
        .expect("etcd /metrics")
        .text()
        .await
        .unwrap_or_default();
    text.lines()
        .filter(|l| {
            l.starts_with("grpc_server_handled_total{") && l.contains("grpc_method=\"Range\"")
        })
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum::<f64>() as u64
}

/// Idle CPU (% of one core over `secs`) and RSS (MB) of the reconciler.
async fn idle(d: &Child, secs: u64) -> (f64, f64) {
    let hz = 100.0; // USER_HZ on Linux
    let (t0, _) = proc_usage(d.id());
    tokio::time::sleep(Duration::from_secs(secs)).await;
    let (t1, rss) = proc_usage(d.id());
    (
        (t1 - t0) as f64 / hz / secs as f64 * 100.0,
        rss as f64 / 1024.0,
    )
}

fn main() {
    let n = arg("--clusters", 200);
    let runs = arg("--runs", 5);
    let concurrency = arg("--concurrency", 16);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        let real = TestCluster::start("fleetreal", ClusterOpts::default()).await;
        real.wait_healthy(Duration::from_secs(120)).await;
        let etcd = Etcd::start().await;
        let mut c = etcd.client().await.expect("etcd client");
        let leases = seed(&mut c, n).await;
        keep_alive(etcd.client().await.unwrap(), leases);
        let dir = temp_dir("fleet-repo");
        git2::Repository::init(&dir).unwrap();
        let settings = format!("dcs:\n  etcd3:\n    hosts: [\"{}\"]\n", etcd.endpoint());
        std::fs::write(dir.join("patronus.yaml"), settings).unwrap();
        commit_all(&dir, n, &real, "4MB");
        let mut d = Command::new(env!("CARGO_BIN_EXE_patronus"))
            .args(["reconcile", "--no-commit-back", "--repo"])
            .arg(&dir)
            .args(["--concurrency", &concurrency.to_string()])
            .stdout(Stdio::null())
            .stderr(log_target())
            .spawn()
            .expect("run patronus reconcile");
        // The first commit adopts every cluster (its `gitops` key records the applied state).
        let t = Instant::now();
        while etcd.get_prefix("/service/").await.iter().filter(|(k, _)| k.ends_with("/gitops")).count() < n
            || !real_applied(&real, "4MB").await
        {
            assert!(t.elapsed() < Duration::from_secs(120), "first commit not applied to all");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        println!("{n} clusters: first commit applied (adopted) in {:.2} s", t.elapsed().as_secs_f64());
        tokio::time::sleep(Duration::from_secs(3)).await;
        let r0 = ranges(&etcd.endpoint()).await;
        let (cpu, rss) = idle(&d, 20).await;
        let reads = ranges(&etcd.endpoint()).await.saturating_sub(r0);
        println!("reconciler idle over {n} clusters: CPU {cpu:.1} % of one core, RSS {rss:.1} MB, {:.1} DCS reads/s", reads as f64 / 20.0);
        let mut times = Vec::new();
        for r in 0..runs {
            let v = format!("{}MB", 5 + r);
            let r0 = ranges(&etcd.endpoint()).await;
            let t0 = Instant::now();
            commit_all(&dir, n, &real, &v);
            let (secs, polls) = wait_applied(&mut c, n, &real, &v, t0).await;
            times.push(secs);
            // Settle (our own writes are observed once more), then count the reconciler's reads.
            tokio::time::sleep(Duration::from_millis(1500)).await;
            let reads = ranges(&etcd.endpoint()).await.saturating_sub(r0 + polls);
            println!("run {r}: applied to all (and on the real members) in {secs:.3} s; {reads} DCS reads ({:.2} per cluster) until 1.5 s later", reads as f64 / n as f64);
        }
        let (cpu, rss) = idle(&d, 20).await;
        println!("reconciler idle after the commits: CPU {cpu:.1} % of one core, RSS {rss:.1} MB");
        let _ = d.kill();
        let _ = d.wait();
        let mut sorted = times.clone();
        sorted.sort_by(|a, b| a.total_cmp(b));
        println!(
            "one commit changing all {n} clusters + 1 real -> every config key carries it, every real member shows it: median {:.3} s, runs {times:?}",
            sorted[sorted.len() / 2]
        );
    });
    let dir = std::env::temp_dir().join(format!("patronus-fleet-plan-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let obs = plan_gen::generate(&dir, 1000);
    let times = plan_gen::time_plan(&dir, &obs, 5);
    println!(
        "offline plan of 1000 clusters: median {:.3} s, runs {times:?}",
        times[times.len() / 2]
    );
    let _ = std::fs::remove_dir_all(&dir);
}
