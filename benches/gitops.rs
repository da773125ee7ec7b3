//! Commit → applied on all members: a watched local repository, the reconciler, and a real
//! 3-member cluster; each run commits a new work_mem and polls every member's `SHOW work_mem`
//! every 10 ms until all three show it.
//!
//! Run: `cargo bench --bench gitops -- [--runs N]`.

#[path = "../tests/common/mod.rs"]
mod common;

use common::git::commit;
use common::*;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let runs: usize = args
        .iter()
        .position(|a| a == "--runs")
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(7);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        let c = TestCluster::start("gbench", ClusterOpts::default()).await;
        c.wait_healthy(Duration::from_secs(120)).await;
        let (dir, file) = desired_repo(&c);
        let mut d = Command::new(env!("CARGO_BIN_EXE_patronus"))
            .args(["reconcile", "--no-commit-back", "--repo"])
            .arg(&dir)
            .env("PATRONUS_MIN_TTL", "5")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(60);
        while !all_show(&c, "4MB").await && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let times = measure(&c, &dir, &file, runs).await;
        let _ = d.kill();
        let _ = d.wait();
        let mut sorted = times.clone();
        sorted.sort_by(|a, b| a.total_cmp(b));
        println!(
            "commit -> applied on all 3 members: median {:.3} s, runs {:?}",
            sorted[sorted.len() / 2],
            times
        );
    });
}

/// A desired-state repository for the cluster (work_mem 4MB), committed; its directory and
/// the cluster file.
fn desired_repo(c: &TestCluster) -> (PathBuf, PathBuf) {
    let dir = temp_dir("gbench-repo");
    git2::Repository::init(&dir).unwrap();
    std::fs::write(
        dir.join("patronus.yaml"),
        format!("dcs:\n  etcd3:\n    hosts: [\"{}\"]\n", c.etcd.endpoint()),
    )
    .unwrap();
    let file = dir.join(format!("clusters/{}/cluster.yaml", c.scope));
    std::fs::create_dir_all(file.parent().unwrap()).unwrap();
    std::fs::write(
        &file,
        "config:\n  postgresql:\n    parameters:\n      work_mem: 4MB\n",
    )
    .unwrap();
    commit(&dir, "initial");
    (dir, file)
}

/// Whether every member shows `work_mem` = `v`.
async fn all_show(c: &TestCluster, v: &str) -> bool {
    for i in 0..3 {
        if c.query_one(i, "SHOW work_mem").await.as_deref() != Some(v) {
            return false;
        }
    }
    true
}

/// Each run commits a new work_mem and polls every 10 ms until all members show it: the
/// seconds from commit to applied.
async fn measure(c: &TestCluster, dir: &Path, file: &Path, runs: usize) -> Vec<f64> {
    let mut times = Vec::new();
    for r in 0..runs {
        let v = format!("{}MB", 5 + r);
        std::fs::write(
            file,
            format!("config:\n  postgresql:\n    parameters:\n      work_mem: {v}\n"),
        )
        .unwrap();
        let t0 = Instant::now();
        commit(dir, &format!("work_mem {v}"));
        while !all_show(c, &v).await {
            assert!(t0.elapsed() < Duration::from_secs(30), "not applied");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        times.push(t0.elapsed().as_secs_f64());
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    times
}
