//! Issue: operations run exactly once (and not again after a reconciler restart; a deleted
//! op never runs), and rolling restart waves inside a maintenance window (parked outside).

mod common;

use chrono::Datelike;
use common::git::{commit, Daemon};
use common::workload::{missing_writes, Writer};
use common::*;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

const T: Duration = Duration::from_secs(180);

fn reconciler(repo: &Path, log: &Path) -> Daemon {
    let f = std::fs::File::create(log).unwrap();
    Daemon(
        Command::new(env!("CARGO_BIN_EXE_patronus"))
            .args(["reconcile", "--repo"])
            .arg(repo)
            .env("PATRONUS_MIN_TTL", "5")
            .stdout(f.try_clone().unwrap())
            .stderr(f)
            .stdin(Stdio::null())
            .spawn()
            .unwrap(),
    )
}

fn repo_for(c: &TestCluster, cluster_yaml: &str) -> PathBuf {
    let dir = temp_dir("opsrepo");
    git2::Repository::init(&dir).unwrap();
    std::fs::write(
        dir.join("patronus.yaml"),
        format!(
            "dcs:\n  etcd3:\n    hosts: [\"{}\"]\n  namespace: /service\n",
            c.etcd.endpoint()
        ),
    )
    .unwrap();
    let f = dir.join(format!("clusters/{}/cluster.yaml", c.scope));
    std::fs::create_dir_all(f.parent().unwrap()).unwrap();
    std::fs::write(f, cluster_yaml).unwrap();
    commit(&dir, "initial");
    dir
}

async fn gitops_key(c: &TestCluster) -> Value {
    let kv = c
        .etcd
        .get_prefix(&format!("/service/{}/gitops", c.scope))
        .await;
    kv.first()
        .and_then(|(_, v)| serde_json::from_str(v).ok())
        .unwrap_or(Value::Null)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn switchover_operation_runs_exactly_once() {
    let c = TestCluster::start("ops", ClusterOpts::default()).await;
    let li = c.wait_healthy(T).await;
    let cand = c.nodes[(li + 1) % 3].name.clone();
    let leader = c.nodes[li].name.clone();
    let dir = repo_for(
        &c,
        "config:\n  postgresql:\n    parameters:\n      work_mem: 8MB\n",
    );
    let ops = dir.join(format!("clusters/{}/ops", c.scope));
    std::fs::create_dir_all(&ops).unwrap();
    let at = (chrono::Utc::now() + chrono::Duration::seconds(20)).to_rfc3339();
    std::fs::write(
        ops.join("sw1.yaml"),
        format!(
            "type: switchover\ncandidate: {cand}\nnot_before: \"{at}\"\nreason: kernel upgrade\n"
        ),
    )
    .unwrap();
    commit(&dir, "planned switchover for the kernel upgrade");
    let log1 = c.dir.join("rec1.log");
    let d1 = reconciler(&dir, &log1);
    wait_for("the reconciler to see the op", T, || async {
        std::fs::read_to_string(&log1)
            .ok()?
            .contains("operation sw1 waits")
            .then_some(())
    })
    .await;
    assert_eq!(
        c.leader().await.as_deref(),
        Some(leader.as_str()),
        "not before its time"
    );
    wait_for("the switchover", T, || async {
        (c.leader().await? == cand).then_some(())
    })
    .await;
    wait_for("the op recorded as done", T, || async {
        (gitops_key(&c).await["ops"]["sw1"]["state"] == "done").then_some(())
    })
    .await;
    let history = dir.join(format!("status/{}/history.yaml", c.scope));
    wait_for("the outcome and author in status history", T, || async {
        let h = std::fs::read_to_string(&history).ok()?;
        (h.contains("id: sw1")
            && h.contains("state: done")
            && h.contains("author: Dana DBA <dana@example.com>"))
        .then_some(())
    })
    .await;
    drop(d1);
    c.wait_healthy(T).await;

    // A restarted reconciler does not run it again; a deleted op never runs.
    // Due in 30 s: deleted before then, it must not run when its time comes.
    let due = chrono::Utc::now() + chrono::Duration::seconds(30);
    let at2 = due.to_rfc3339();
    std::fs::write(
        ops.join("sw2.yaml"),
        format!("type: switchover\nnot_before: \"{at2}\"\n"),
    )
    .unwrap();
    commit(&dir, "another one, later");
    let log2 = c.dir.join("rec2.log");
    let _d2 = reconciler(&dir, &log2);
    wait_for("the second reconciler to process the ops", T, || async {
        std::fs::read_to_string(&log2)
            .ok()?
            .contains("operation sw2 waits")
            .then_some(())
    })
    .await;
    let log = std::fs::read_to_string(&log2).unwrap();
    assert!(
        !log.contains("running operation sw1"),
        "sw1 ran again:\n{log}"
    );
    std::fs::remove_file(ops.join("sw2.yaml")).unwrap();
    commit(&dir, "cancel the later switchover");
    wait_for("the deletion to be picked up", T, || async {
        let l = std::fs::read_to_string(&log2).ok()?;
        (l.matches("valid, reconciling").count() >= 2).then_some(())
    })
    .await;
    assert!(
        chrono::Utc::now() < due,
        "the deletion was seen before sw2 was due"
    );
    // Watch the leader until well past sw2's time: it must never move.
    let until = due + chrono::Duration::seconds(5);
    while chrono::Utc::now() < until {
        assert_eq!(
            c.leader().await.as_deref(),
            Some(cand.as_str()),
            "a deleted op never runs"
        );
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    }
    assert!(gitops_key(&c).await["ops"].get("sw2").is_none());
    let log = std::fs::read_to_string(&log2).unwrap();
    assert!(!log.contains("running operation sw2"), "{log}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rolling_restart_inside_the_window_and_parked_outside() {
    let c = TestCluster::start("waves", ClusterOpts::default()).await;
    let li = c.wait_healthy(T).await;
    let leader = c.nodes[li].name.clone();
    // Outside the window: parked and reported.
    let other_day = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"]
        [(chrono::Utc::now().weekday().num_days_from_monday() as usize + 3) % 7];
    let yaml = |window: &str| {
        format!("config:\n  postgresql:\n    parameters:\n      shared_buffers: 24MB\nrestart_policy: rolling\nmaintenance_windows:\n  - \"{window}\"\n")
    };
    let dir = repo_for(&c, &yaml(&format!("{other_day} 02:00-03:00 UTC")));
    let writer = Writer::start(&c).await;
    let _d = reconciler(&dir, &c.dir.join("rec.log"));
    let history = dir.join(format!("status/{}/history.yaml", c.scope));
    wait_for("restart owed and parked", T, || async {
        std::fs::read_to_string(&history)
            .ok()?
            .contains("event: restart_owed")
            .then_some(())
    })
    .await;
    for i in 0..3 {
        assert_eq!(
            c.query_one(i, "SHOW shared_buffers").await.as_deref(),
            Some("16MB"),
            "nothing restarted outside the window"
        );
    }
    // Open window: each member restarted, the primary by switchover, flags cleared.
    let f = dir.join(format!("clusters/{}/cluster.yaml", c.scope));
    std::fs::write(&f, yaml("Daily 00:00-24:00 UTC")).unwrap();
    commit(&dir, "open the window");
    for i in 0..3 {
        wait_for("shared_buffers 24MB everywhere", T, || async {
            (c.query_one(i, "SHOW shared_buffers").await? == "24MB").then_some(())
        })
        .await;
    }
    wait_for("pending flags cleared", T, || async {
        let kvs = c
            .etcd
            .get_prefix(&format!("/service/{}/members/", c.scope))
            .await;
        kvs.iter()
            .all(|(_, v)| !v.contains("pending_restart"))
            .then_some(())
    })
    .await;
    assert_ne!(
        c.leader().await.as_deref(),
        Some(leader.as_str()),
        "the primary was restarted by switchover"
    );
    let li2 = c.wait_healthy(T).await;
    let report = writer.stop().await;
    assert!(report.acked.len() > 20);
    let missing = missing_writes(&c, li2, &report.acked).await;
    assert!(missing.is_empty(), "acknowledged writes lost: {missing:?}");
    // Events reach status/<scope>/history.yaml with the next commit-back (every few seconds).
    let h = wait_for("the waves in the committed history", T, || async {
        let h = std::fs::read_to_string(&history).ok()?;
        (h.contains("event: switchover") && h.matches("event: restart\n").count() >= 3).then_some(h)
    })
    .await;
    assert!(!h.contains("ok: false"), "no wave step failed: {h}");
}
