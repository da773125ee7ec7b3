//! HA benchmark on real etcd + PostgreSQL: write gaps of a planned switchover, a graceful
//! stop and a crash, rejoin time, lost writes, agent RSS and `GET /primary` throughput.
//!
//! Run: `cargo bench --bench ha -- [--runs N] [--peer patroni] [--profile fast]
//! [--soak MINUTES] [--https]` (or `ci/bench.sh`). `--https` only measures `GET /primary`
//! over TLS (keep-alive) on a one-member cluster. `--profile fast` runs ttl 10, loop_wait 2,
//! retry_timeout 4 (the fence makes it safe) instead of Patroni's defaults; `--soak` runs a
//! writer for that long without faults and counts leader changes.
//! With `--peer patroni` the same scenarios run against Patroni from
//! `/opt/patroni-venv/bin/patroni` (installed by `ci/bench.sh`) and both are printed.

#[path = "../tests/common/mod.rs"]
mod common;

use common::workload::Writer;
use common::*;
use reqwest::Method;
use serde_json::json;
use std::path::PathBuf;
use std::time::{Duration, Instant};

const T: Duration = Duration::from_secs(180);

#[derive(Debug, Default, Clone)]
struct Figures {
    switchover_gap: Vec<f64>,
    graceful_gap: Vec<f64>,
    crash_gap: Vec<f64>,
    rejoin: Vec<f64>,
    lost: Vec<f64>,
    rss_mb: Vec<f64>,
    primary_rps: Vec<f64>,
}

fn median(v: &[f64]) -> f64 {
    let mut v = v.to_vec();
    v.sort_by(|a, b| a.total_cmp(b));
    if v.is_empty() {
        return f64::NAN;
    }
    v[v.len() / 2]
}

fn rss_mb(pid: u32) -> f64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|kb| kb.parse::<f64>().ok())
        .map_or(f64::NAN, |kb| kb / 1024.0)
}

/// `GET /primary` requests per second: wrk when installed, else a reqwest loop.
async fn primary_rps(port: u16) -> f64 {
    let url = format!("http://127.0.0.1:{port}/primary");
    patronus::tls::install_provider();
    rps(&url, reqwest::Client::new()).await
}

/// Requests per second of `GET url` with 32 keep-alive connections for 5 s: wrk when
/// installed, else a reqwest loop with `client`.
async fn rps(url: &str, client: reqwest::Client) -> f64 {
    match wrk_rps(url) {
        Some(r) => r,
        None => loop_rps(url, client).await,
    }
}

/// `wrk -t2 -c32 -d5s url` (wrk speaks TLS without verifying); None when wrk is missing or
/// completed no request.
fn wrk_rps(url: &str) -> Option<f64> {
    which("wrk")?;
    let out = std::process::Command::new("wrk")
        .args(["-t2", "-c32", "-d5s", url])
        .output()
        .expect("run wrk");
    let text = String::from_utf8_lossy(&out.stdout);
    let rps: f64 = text
        .lines()
        .find(|l| l.starts_with("Requests/sec:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())?;
    if rps > 0.0 {
        return Some(rps);
    }
    eprintln!("wrk completed no request:\n{text}");
    None
}

/// 32 tasks sharing `client` (a pool of keep-alive connections where the server keeps them),
/// each reading whole 200 answers for 5 s.
async fn loop_rps(url: &str, client: reqwest::Client) -> f64 {
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut tasks = Vec::new();
    for _ in 0..32 {
        let (c, u) = (client.clone(), url.to_string());
        tasks.push(tokio::spawn(async move {
            let mut n = 0u64;
            while Instant::now() < deadline {
                let Ok(r) = c.get(&u).send().await else {
                    continue;
                };
                let ok = r.status() == 200;
                if r.bytes().await.is_ok() && ok {
                    n += 1;
                }
            }
            n
        }));
    }
    let mut total = 0;
    for t in tasks {
        total += t.await.unwrap_or(0);
    }
    total as f64 / 5.0
}

/// `GET /primary` over HTTPS on a one-member cluster whose REST API serves a certificate of
/// a test CA (patronus, or Patroni with `patroni`): (the reqwest loop verifying the CA,
/// wrk when it manages).
async fn https_primary_rps(patroni: Option<PathBuf>) -> (f64, f64) {
    let dir = temp_dir("bench-tls-ca");
    let ca = common::certs::TestCa::new(&dir, "bench");
    let tls = RestTls {
        ca: ca.ca_file.clone(),
        server: ca.server("api"),
        client: None,
        verify_client: "none".into(),
    };
    let opts = ClusterOpts {
        members: 1,
        rest_tls: Some(tls.clone()),
        ..opts_for("default", patroni)
    };
    let c = TestCluster::start("benchtls", opts).await;
    let li = c.wait_healthy(T).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let url = c.api_url(li, "/primary");
    let (code, _) = c
        .get(li, "/primary")
        .await
        .expect("GET /primary over HTTPS");
    assert_eq!(code, 200, "{url}");
    let looped = loop_rps(&url, tls.http_client(false)).await;
    (looped, wrk_rps(&url).unwrap_or(f64::NAN))
}

/// `--https`: GET /primary over TLS, patronus then Patroni, `runs` times each.
async fn https_bench(runs: usize, peer: Option<&str>) {
    let (mut ours, mut theirs) = (Vec::new(), Vec::new());
    for r in 0..runs {
        eprintln!("https run {}/{runs}: patronus", r + 1);
        ours.push(https_primary_rps(None).await);
        if peer == Some("patroni") {
            eprintln!("https run {}/{runs}: patroni", r + 1);
            let patroni = PathBuf::from("/opt/patroni-venv/bin/patroni");
            theirs.push(https_primary_rps(Some(patroni)).await);
        }
    }
    let looped = |v: &[(f64, f64)]| v.iter().map(|x| x.0).collect::<Vec<_>>();
    let wrk = |v: &[(f64, f64)]| v.iter().map(|x| x.1).collect::<Vec<_>>();
    println!("\nGET /primary over HTTPS, one member, 32 connections, 5 s (median of {runs} runs)");
    println!("  client: reqwest loop (rustls, CA verified, keep-alive where the server allows)");
    println!(
        "    patronus       {:>8.0} req/s   {:?}",
        median(&looped(&ours)),
        looped(&ours)
    );
    if peer == Some("patroni") {
        let ratio = median(&looped(&ours)) / median(&looped(&theirs));
        println!(
            "    Patroni 4.1.5  {:>8.0} req/s   {:?}",
            median(&looped(&theirs)),
            looped(&theirs)
        );
        println!("    ratio          {ratio:>8.1}x");
    }
    println!("  client: wrk -t2 -c32 (NaN: wrk completed no request)");
    println!(
        "    patronus       {:>8.0} req/s   {:?}",
        median(&wrk(&ours)),
        wrk(&ours)
    );
    if peer == Some("patroni") {
        println!(
            "    Patroni 4.1.5  {:>8.0} req/s   {:?}",
            median(&wrk(&theirs)),
            wrk(&theirs)
        );
    }
}

/// ttl, loop_wait, retry_timeout of a profile.
fn timings(profile: &str) -> (u64, u64, u64) {
    match profile {
        "fast" => (10, 2, 4),
        _ => (30, 10, 10),
    }
}

fn opts_for(profile: &str, patroni: Option<PathBuf>) -> ClusterOpts {
    let (ttl, loop_wait, retry_timeout) = timings(profile);
    ClusterOpts {
        ttl,
        loop_wait,
        retry_timeout,
        patroni,
        ..ClusterOpts::default()
    }
}

/// A writer for `minutes` without faults: leader changes (polled every second) and the
/// longest write gap.
async fn soak(profile: &str, minutes: u64) {
    let c = TestCluster::start("soak", opts_for(profile, None)).await;
    c.wait_healthy(T).await;
    let writer = Writer::start(&c).await;
    let first = c.leader().await;
    let mut last = first.clone();
    let mut changes = 0;
    let end = Instant::now() + Duration::from_secs(minutes * 60);
    while Instant::now() < end {
        tokio::time::sleep(Duration::from_secs(1)).await;
        let now = c.leader().await;
        if now.is_some() && now != last {
            changes += 1;
            eprintln!("leader change: {last:?} -> {now:?}");
            last = now;
        }
    }
    let report = writer.stop().await;
    println!(
        "soak ({profile} profile, {minutes} min, no faults): {changes} leader changes, {} writes acknowledged, max write gap {:.3} s, {} writer errors",
        report.acked.len(),
        report.max_gap.as_secs_f64(),
        report.errors
    );
}

async fn one_run(profile: &str, patroni: Option<PathBuf>, f: &mut Figures) {
    let opts = opts_for(profile, patroni);
    let mut c = TestCluster::start("bench", opts).await;
    let li = c.wait_healthy(T).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    f.rss_mb.push(
        c.nodes
            .iter()
            .filter_map(|n| n.agent.as_ref())
            .map(|a| rss_mb(a.id()))
            .fold(0.0, f64::max),
    );
    f.primary_rps.push(primary_rps(c.nodes[li].api_port).await);

    let writer = Writer::start(&c).await;
    writes_resume(&writer, "writes flowing", 100).await;

    // 1. Planned switchover.
    let t0 = Instant::now();
    let li = planned_switchover(&c, li).await;
    writes_resume(&writer, "writes after switchover", 50).await;
    let t_sw = (t0, Instant::now());
    c.wait_healthy(T).await;

    // 2. Graceful stop (SIGTERM) of the leader's agent.
    let t1 = Instant::now();
    c.term_agent(li).await;
    let new_li = c.wait_leader_writable(T).await;
    writes_resume(&writer, "writes after graceful stop", 50).await;
    let t_gr = (t1, Instant::now());
    c.start_agent(li);
    c.wait_healthy(T).await;

    // 3. Crash: kill -9 of the leader's agent and postmaster.
    let li = new_li;
    let t2 = Instant::now();
    c.kill_agent(li);
    c.kill_postmaster(li);
    let _ = c.wait_leader_writable(T).await;
    writes_resume(&writer, "writes after crash", 50).await;
    let t_cr = (t2, Instant::now());
    let t3 = Instant::now();
    c.start_agent(li);
    let fin = c.wait_healthy(T).await;
    f.rejoin.push(t3.elapsed().as_secs_f64());

    let report = writer.stop().await;
    f.switchover_gap
        .push(report.max_gap_between(t_sw.0, t_sw.1).as_secs_f64());
    f.graceful_gap
        .push(report.max_gap_between(t_gr.0, t_gr.1).as_secs_f64());
    f.crash_gap
        .push(report.max_gap_between(t_cr.0, t_cr.1).as_secs_f64());
    let missing = common::workload::missing_writes(&c, fin, &report.acked).await;
    f.lost.push(missing.len() as f64);
}

/// Waits until `n` more writes than now are acknowledged.
async fn writes_resume(writer: &Writer, what: &str, n: usize) {
    let target = writer.acked_so_far() + n;
    wait_for(what, T, || async {
        (writer.acked_so_far() >= target).then_some(())
    })
    .await;
}

/// `POST /switchover` from the leader `li` to the next member; the new writable leader.
async fn planned_switchover(c: &TestCluster, li: usize) -> usize {
    let leader = c.nodes[li].name.clone();
    let cand = c.nodes[(li + 1) % c.nodes.len()].name.clone();
    let (code, body) = c
        .send(
            li,
            Method::POST,
            "/switchover",
            &json!({"leader": leader, "candidate": cand}).to_string(),
        )
        .await;
    assert_eq!(code, 200, "switchover: {body}");
    c.wait_leader_writable(T).await
}

fn print(name: &str, f: &Figures) {
    println!("{name}:");
    println!(
        "  planned switchover write gap   {:>8.3} s   {:?}",
        median(&f.switchover_gap),
        f.switchover_gap
    );
    println!(
        "  graceful stop write gap        {:>8.3} s   {:?}",
        median(&f.graceful_gap),
        f.graceful_gap
    );
    println!(
        "  crash (kill -9) write gap      {:>8.3} s   {:?}",
        median(&f.crash_gap),
        f.crash_gap
    );
    println!(
        "  crashed member rejoin time     {:>8.3} s   {:?}",
        median(&f.rejoin),
        f.rejoin
    );
    println!(
        "  acknowledged writes lost       {:>8.0}     {:?}",
        median(&f.lost),
        f.lost
    );
    println!(
        "  agent RSS (max of 3)           {:>8.1} MB  {:?}",
        median(&f.rss_mb),
        f.rss_mb
    );
    println!(
        "  GET /primary                   {:>8.0} req/s",
        median(&f.primary_rps)
    );
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let runs: usize = args
        .iter()
        .position(|a| a == "--runs")
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(3);
    let value = |name: &str| {
        args.iter()
            .position(|a| a == name)
            .and_then(|i| args.get(i + 1))
            .cloned()
    };
    let peer = value("--peer");
    let profile = value("--profile").unwrap_or_else(|| "default".into());
    let soak_minutes: Option<u64> = value("--soak").and_then(|v| v.parse().ok());
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    if let Some(minutes) = soak_minutes {
        rt.block_on(soak(&profile, minutes));
        return;
    }
    if args.iter().any(|a| a == "--https") {
        rt.block_on(https_bench(runs, peer.as_deref()));
        return;
    }
    let (ttl, loop_wait, retry_timeout) = timings(&profile);
    rt.block_on(async {
        let mut ours = Figures::default();
        let mut theirs = Figures::default();
        for r in 0..runs {
            eprintln!("run {}/{runs}: patronus", r + 1);
            one_run(&profile, None, &mut ours).await;
            if peer.as_deref() == Some("patroni") {
                eprintln!("run {}/{runs}: patroni", r + 1);
                let patroni = PathBuf::from("/opt/patroni-venv/bin/patroni");
                one_run(&profile, Some(patroni), &mut theirs).await;
            }
        }
        println!("\nmedians of {runs} runs (ttl {ttl}, loop_wait {loop_wait}, retry_timeout {retry_timeout}; 3 members on loopback)\n");
        print("patronus", &ours);
        if peer.as_deref() == Some("patroni") {
            print("Patroni 4.1.5", &theirs);
        }
    });
}
