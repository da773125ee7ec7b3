//! Commit → applied on all members: a watched local repository, the reconciler, and a real
//! 3-member cluster; each run commits a new work_mem and polls every member's `SHOW work_mem`
//! every 10 ms until all three show it.
//!
//! Run: `cargo bench --bench gitops -- [--runs N]`.

#[path = "../tests/common/mod.rs"]
mod common;

use common::*;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn commit(dir: &std::path::Path, msg: &str) {
    for _ in 0..50 {
        let ok = (|| -> Result<(), git2::Error> {
            let repo = git2::Repository::open(dir)?;
            let mut index = repo.index()?;
            index.add_all(["*"].iter(), git2::IndexAddOption::DEFAULT, None)?;
            index.write()?;
            let tree = repo.find_tree(index.write_tree()?)?;
            let sig = git2::Signature::now("bench", "bench@localhost")?;
            let parent = repo.head().ok().and_then(|h| h.peel_to_commit().ok());
            let parents: Vec<&git2::Commit> = parent.iter().collect();
            repo.commit(Some("HEAD"), &sig, &sig, msg, &tree, &parents)?;
            Ok(())
        })();
        if ok.is_ok() {
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    panic!("cannot commit");
}

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
        let mut d = Command::new(env!("CARGO_BIN_EXE_patronus"))
            .args(["reconcile", "--no-commit-back", "--repo"])
            .arg(&dir)
            .env("PATRONUS_MIN_TTL", "5")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let all_show = |v: String| {
            let c = &c;
            async move {
                for i in 0..3 {
                    if c.query_one(i, "SHOW work_mem").await.as_deref() != Some(v.as_str()) {
                        return false;
                    }
                }
                true
            }
        };
        let deadline = Instant::now() + Duration::from_secs(60);
        while !all_show("4MB".into()).await && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let mut times = Vec::new();
        for r in 0..runs {
            let v = format!("{}MB", 5 + r);
            std::fs::write(
                &file,
                format!("config:\n  postgresql:\n    parameters:\n      work_mem: {v}\n"),
            )
            .unwrap();
            let t0 = Instant::now();
            commit(&dir, &format!("work_mem {v}"));
            while !all_show(v.clone()).await {
                assert!(t0.elapsed() < Duration::from_secs(30), "not applied");
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            times.push(t0.elapsed().as_secs_f64());
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
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
