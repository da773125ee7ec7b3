//! Issue #17 item 6: drift is never overwritten in silence. A commit that only touches
//! cluster `b` leaves a drifted `alert` key of cluster `a` as it is live (and the drift is in
//! `status/a/history.yaml`); a commit that changes another key of `a` applies that key and
//! still keeps the drifted one.
//!
//! Also: a stale `running` switchover record is reclaimed from the DCS and not run again;
//! status commits on `commit_back.branch` (the desired branch is not touched), and a
//! webhook with `events: [applied]` receives applies and no drift.
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

async fn live_config_key(c: &TestCluster, scope: &str, key: &str) -> Option<Value> {
    let kv = c.etcd.get_prefix(&format!("/service/{scope}/{key}")).await;
    serde_json::from_str(&kv.first()?.1).ok()
}

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

/// `status/<scope>/history.yaml` on the status branch.
fn history(repo: &Path, scope: &str) -> String {
    let r = git2::Repository::open(repo).unwrap();
    let Ok(tip) = r.find_reference("refs/heads/patronus-status") else {
        return String::new();
    };
    let tree = tip.peel_to_commit().unwrap().tree().unwrap();
    let Ok(entry) = tree.get_path(Path::new(&format!("status/{scope}/history.yaml"))) else {
        return String::new();
    };
    let blob = r.find_blob(entry.id()).unwrap();
    String::from_utf8_lossy(blob.content()).into_owned()
}

fn drift_recorded(repo: &Path, scope: &str, key: &str, live: &str) -> bool {
    let text = history(repo, scope);
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

    // A webhook receiver taking `applied` events only.
    let (hook, events) = common::webhook::receiver(common::webhook::json).await;

    let repo = temp_dir("driftrepo");
    git2::Repository::init(&repo).unwrap();
    std::fs::write(
        repo.join("patronus.yaml"),
        format!(
            "dcs:\n  etcd3:\n    hosts: [\"{}\"]\n  namespace: /service\ndrift:\n  default: alert\n\
             commit_back:\n  branch: patronus-status\nnotify:\n  webhooks:\n    - url: {hook}\n      events: [applied]\n",
            c.etcd.endpoint()
        ),
    )
    .unwrap();
    write_cluster(
        &repo,
        &a,
        "      work_mem: 8MB\n      maintenance_work_mem: 64MB\nmembers:\n  m1:\n    tags:\n      zone: a1\n",
    );
    write_cluster(&repo, &b, "      work_mem: 4MB\n");
    // A switchover operation claimed ('running') by a reconciler that died before recording
    // its outcome; the leader has moved since (m0 led then, m1 leads now).
    let ops = repo.join(format!("clusters/{a}/ops"));
    std::fs::create_dir_all(&ops).unwrap();
    std::fs::write(ops.join("sw0.yaml"), "type: switchover\n").unwrap();
    let claimed = (chrono::Utc::now() - chrono::Duration::seconds(5)).to_rfc3339();
    let stale = serde_json::json!({"ops": {"sw0": {"state": "running", "at": claimed,
        "commit": "0000", "author": "x <x@y>", "leader": "m0"}}});
    etcd.put(format!("/service/{a}/gitops"), stale.to_string(), None)
        .await
        .unwrap();
    commit(&repo, "initial desired state");
    let log = std::fs::File::create(c.dir.join("reconcile.log")).unwrap();
    let _daemon = Daemon(
        Command::new(env!("CARGO_BIN_EXE_patronus"))
            .args(["reconcile", "--repo"])
            .arg(&repo)
            // HEAD read every 60 s only: a commit seen sooner was seen through inotify.
            .env("PATRONUS_REPO_POLL_SECS", "60")
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
    wait_for("the stale switchover reclaimed from the DCS", T, || async {
        let g = live_config_key(&c, &a, "gitops").await?;
        let rec = &g["ops"]["sw0"];
        (rec["state"] == "done"
            && rec["outcome"]
                .as_str()?
                .contains("reclaimed: the leader moved from m0 to m1"))
        .then_some(())
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
    // Woken by inotify on the ref change (the fallback poll is 60 s here).
    // (A deadline well under the fallback poll proves the wake-up; the figure is measured in
    // docs/benchmarks.md.)
    wait_for(
        "the commit applied to b, woken by the commit (not the 60 s poll)",
        Duration::from_secs(15),
        || async {
            let v = live_config(&c, &b).await?;
            (v["postgresql"]["parameters"]["work_mem"] == "16MB").then_some(())
        },
    )
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
        "      work_mem: 8MB\n      maintenance_work_mem: 128MB\nmembers:\n  m1:\n    tags:\n      zone: a1\n",
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
    // The webhook took the applies of b and a (with their cluster) and no drift.
    wait_for("applied events at the webhook", T, || async {
        let ev = events.lock().unwrap().clone();
        let applied = |scope: &str| {
            ev.iter()
                .any(|e| e["event"] == "applied" && e["cluster"] == scope)
        };
        (applied(&a) && applied(&b)).then_some(())
    })
    .await;
    assert!(
        events
            .lock()
            .unwrap()
            .iter()
            .all(|e| e["event"] == "applied"),
        "{:?}",
        events.lock().unwrap()
    );
    // Status commits went to patronus-status only: HEAD holds people's commits.
    let r = git2::Repository::open(&repo).unwrap();
    let head = r.head().unwrap().peel_to_commit().unwrap();
    assert_eq!(
        head.summary().ok().flatten(),
        Some("a: maintenance_work_mem 128MB")
    );
    assert!(!repo.join("status").exists());
    let logs = std::fs::read_to_string(c.dir.join("reconcile.log")).unwrap();
    assert!(
        logs.contains("postgresql.parameters.work_mem keeps its live value"),
        "{logs}"
    );
    assert!(
        !logs.contains("running operation sw0"),
        "a claimed operation ran again: {logs}"
    );

    // Member tags are drift-checked: the gitops key's tags edited behind git's back.
    let key = format!("/service/{a}/gitops");
    let mut g: Value = serde_json::from_str(&c.etcd.get_prefix(&key).await[0].1).unwrap();
    assert_eq!(g["tags"]["m1"]["zone"], "a1", "desired tags recorded");
    g["tags"]["m1"]["zone"] = "b2".into();
    etcd.put(key, g.to_string(), None).await.unwrap();
    wait_for("the member tag drift in a's history.yaml", T, || async {
        drift_recorded(&repo, &a, "members.m1.tags.zone", "b2").then_some(())
    })
    .await;
}
