//! Issue #17 item 6: drift is never overwritten in silence. A commit that only touches
//! cluster `b` leaves a drifted `alert` key of cluster `a` as it is live (and the drift is in
//! `status/a/history.yaml`); a commit that changes another key of `a` applies that key and
//! still keeps the drifted one.
//!
//! Cluster `a` is a real member on real etcd; cluster `b` is DCS state only (its `initialize`
//! and `config` keys in the same etcd), which is all the reconciler reads and writes for it.

mod common;

use common::git::{commit, Daemon};
use common::*;
use serde_json::Value;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

const T: Duration = Duration::from_secs(60);

async fn live_config(c: &TestCluster, scope: &str) -> Option<Value> {
    let kv = c.etcd.get_prefix(&format!("/service/{scope}/config")).await;
    serde_json::from_str(&kv.first()?.1).ok()
}

fn write_cluster(repo: &Path, scope: &str, params: &str) {
    let f = repo.join(format!("clusters/{scope}/cluster.yaml"));
    std::fs::create_dir_all(f.parent().unwrap()).unwrap();
    std::fs::write(
        f,
        format!("config:\n  postgresql:\n    parameters:\n{params}"),
    )
    .unwrap();
}

fn drift_recorded(repo: &Path, scope: &str, key: &str, live: &str) -> bool {
    let text = std::fs::read_to_string(repo.join(format!("status/{scope}/history.yaml")))
        .unwrap_or_default();
    let Ok(v) = patronus::config::yaml::parse_yaml_str(&text) else {
        return false;
    };
    v.as_array().into_iter().flatten().any(|e| {
        e["event"] == "drift" && e["key"] == key && e["live"] == live && e["policy"] == "alert"
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_commit_to_another_cluster_never_overwrites_drift() {
    let c = TestCluster::start(
        "rdrift",
        ClusterOpts {
            members: 1,
            ..ClusterOpts::default()
        },
    )
    .await;
    c.wait_healthy(T).await;
    let (a, b) = (c.scope.clone(), format!("{}-b", c.scope));
    let mut etcd = c.etcd.member(0).client().await.expect("etcd client");
    for (k, v) in [("initialize", "7000000000000000001"), ("config", "{}")] {
        etcd.put(format!("/service/{b}/{k}"), v, None)
            .await
            .unwrap();
    }

    let repo = temp_dir("driftrepo");
    git2::Repository::init(&repo).unwrap();
    std::fs::write(
        repo.join("patronus.yaml"),
        format!(
            "dcs:\n  etcd3:\n    hosts: [\"{}\"]\n  namespace: /service\ndrift:\n  default: alert\n",
            c.etcd.endpoint()
        ),
    )
    .unwrap();
    write_cluster(
        &repo,
        &a,
        "      work_mem: 8MB\n      maintenance_work_mem: 64MB\n",
    );
    write_cluster(&repo, &b, "      work_mem: 4MB\n");
    commit(&repo, "initial desired state");
    let log = std::fs::File::create(c.dir.join("reconcile.log")).unwrap();
    let _daemon = Daemon(
        Command::new(env!("CARGO_BIN_EXE_patronus"))
            .args(["reconcile", "--repo"])
            .arg(&repo)
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .stdin(Stdio::null())
            .spawn()
            .unwrap(),
    );
    wait_for("initial state applied to a", T, || async {
        (c.query_one(0, "SHOW work_mem").await? == "8MB").then_some(())
    })
    .await;
    wait_for("initial state applied to b", T, || async {
        let v = live_config(&c, &b).await?;
        (v["postgresql"]["parameters"]["work_mem"] == "4MB").then_some(())
    })
    .await;

    // Drift on a (policy alert), and right away a commit that only touches b: the commit may
    // be seen before the drift check, and must still leave a alone.
    let http = reqwest::Client::new();
    let r = http
        .patch(format!("http://127.0.0.1:{}/config", c.nodes[0].api_port))
        .body(r#"{"postgresql":{"parameters":{"work_mem":"64MB"}}}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    write_cluster(&repo, &b, "      work_mem: 16MB\n");
    commit(&repo, "b: work_mem 16MB");
    wait_for("the commit applied to b", T, || async {
        let v = live_config(&c, &b).await?;
        (v["postgresql"]["parameters"]["work_mem"] == "16MB").then_some(())
    })
    .await;
    wait_for("the drift of a in its history.yaml", T, || async {
        drift_recorded(&repo, &a, "postgresql.parameters.work_mem", "64MB").then_some(())
    })
    .await;
    let v = live_config(&c, &a).await.unwrap();
    assert_eq!(
        v["postgresql"]["parameters"]["work_mem"], "64MB",
        "a commit to b re-applied a and overwrote its drift"
    );
    wait_for("a's drifted value live on its member", T, || async {
        (c.query_one(0, "SHOW work_mem").await? == "64MB").then_some(())
    })
    .await;

    // A commit changing another key of a applies that key and keeps the drifted one.
    write_cluster(
        &repo,
        &a,
        "      work_mem: 8MB\n      maintenance_work_mem: 128MB\n",
    );
    commit(&repo, "a: maintenance_work_mem 128MB");
    wait_for("a's own change applied on its member", T, || async {
        (c.query_one(0, "SHOW maintenance_work_mem").await? == "128MB").then_some(())
    })
    .await;
    let v = live_config(&c, &a).await.unwrap();
    assert_eq!(
        v["postgresql"]["parameters"]["work_mem"], "64MB",
        "a commit to a that does not change work_mem overwrote its drift"
    );
    assert_eq!(
        c.query_one(0, "SHOW work_mem").await.as_deref(),
        Some("64MB")
    );
    let logs = std::fs::read_to_string(c.dir.join("reconcile.log")).unwrap();
    assert!(
        logs.contains("postgresql.parameters.work_mem keeps its live value"),
        "{logs}"
    );
}
