//! Issue: the reconciler daemon on a real git repository and a real 3-member cluster —
//! commits applied on every member, drift alerted by webhook and reverted by policy, an
//! invalid commit applies nothing, the next valid one applies, and the committed-back
//! history records a failover.

mod common;

use common::git::{commit, start_reconciler};
use common::*;
use serde_json::Value;
use std::time::Duration;

const T: Duration = Duration::from_secs(120);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reconciler_applies_alerts_reverts_and_records_history() {
    let mut c = TestCluster::start("rec", ClusterOpts::default()).await;
    let li = c.wait_healthy(T).await;

    // A local webhook receiver.
    let (hook, events) = common::webhook::receiver(common::webhook::json).await;

    let dir = temp_dir("recrepo");
    git2::Repository::init(&dir).unwrap();
    std::fs::write(
        dir.join("patronus.yaml"),
        format!("dcs:\n  etcd3:\n    hosts: [\"{}\"]\n  namespace: /service\ndrift:\n  default: alert\n  keys:\n    postgresql.parameters.temp_buffers: revert\n    postgresql.parameters.maintenance_work_mem: adopt\nnotify:\n  webhooks:\n    - url: {hook}\n", c.etcd.endpoint()),
    )
    .unwrap();
    let file = dir.join(format!("clusters/{}/cluster.yaml", c.scope));
    std::fs::create_dir_all(file.parent().unwrap()).unwrap();
    let write = |wm: &str| {
        std::fs::write(&file, format!("config:\n  postgresql:\n    parameters:\n      work_mem: {wm}\n      temp_buffers: 16MB\n      maintenance_work_mem: 64MB\n")).unwrap()
    };
    write("8MB");
    commit(dir.as_path(), "initial desired state");

    let status_port = free_port();
    let _daemon = start_reconciler(&c.dir, &dir, status_port);
    let show = |i: usize, p: &'static str| {
        let c = &c;
        async move { c.query_one(i, &format!("SHOW {p}")).await }
    };
    for i in 0..3 {
        wait_for("initial state applied", T, || async {
            (show(i, "work_mem").await? == "8MB").then_some(())
        })
        .await;
    }

    // A new commit is applied on every member.
    write("12MB");
    commit(dir.as_path(), "work_mem 12MB");
    for i in 0..3 {
        wait_for("commit applied on every member", T, || async {
            (show(i, "work_mem").await? == "12MB").then_some(())
        })
        .await;
    }

    // Drift behind git's back: alert (webhook) for work_mem, revert for temp_buffers.
    let http = reqwest::Client::new();
    let url = format!("http://127.0.0.1:{}/config", c.nodes[li].api_port);
    let r = http
        .patch(&url)
        .body(r#"{"postgresql":{"parameters":{"work_mem":"64MB","temp_buffers":"32MB"}}}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    wait_for("drift webhook", T, || async {
        let ev = events.lock().unwrap().clone();
        ev.iter()
            .any(|e| {
                e["event"] == "drift"
                    && e["key"] == "postgresql.parameters.work_mem"
                    && e["live"] == "64MB"
                    && e["policy"] == "alert"
            })
            .then_some(())
    })
    .await;
    wait_for("temp_buffers reverted to git's value", T, || async {
        let kv = c
            .etcd
            .get_prefix(&format!("/service/{}/config", c.scope))
            .await;
        let v: Value = serde_json::from_str(&kv.first()?.1).ok()?;
        (v["postgresql"]["parameters"]["temp_buffers"] == "16MB").then_some(())
    })
    .await;
    let kv = c
        .etcd
        .get_prefix(&format!("/service/{}/config", c.scope))
        .await;
    let v: Value = serde_json::from_str(&kv[0].1).unwrap();
    assert_eq!(
        v["postgresql"]["parameters"]["work_mem"], "64MB",
        "a revert touches only revert-policy keys"
    );

    // adopt: the live value goes to a review branch; the checked-out branch is untouched.
    let r = http
        .patch(&url)
        .body(r#"{"postgresql":{"parameters":{"maintenance_work_mem":"128MB"}}}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let branch = wait_for("an adopt branch", T, || async {
        let repo = git2::Repository::open(&dir).ok()?;
        let name = repo
            .branches(Some(git2::BranchType::Local))
            .ok()?
            .filter_map(Result::ok)
            .filter_map(|(b, _)| b.name().ok().flatten().map(str::to_string))
            .find(|n| n.starts_with(&format!("patronus/adopt-{}-", c.scope)))?;
        Some(name)
    })
    .await;
    let repo = git2::Repository::open(&dir).unwrap();
    let tip = repo
        .find_branch(&branch, git2::BranchType::Local)
        .unwrap()
        .get()
        .peel_to_commit()
        .unwrap();
    let path = format!("clusters/{}/cluster.yaml", c.scope);
    let entry = tip
        .tree()
        .unwrap()
        .get_path(std::path::Path::new(&path))
        .unwrap();
    let text = String::from_utf8_lossy(repo.find_blob(entry.id()).unwrap().content()).into_owned();
    assert!(text.contains("maintenance_work_mem: 128MB"), "{text}");
    assert!(
        std::fs::read_to_string(&file)
            .unwrap()
            .contains("maintenance_work_mem: 64MB"),
        "working tree untouched"
    );
    // Put the live values back for what follows.
    let r = http
        .patch(&url)
        .body(r#"{"postgresql":{"parameters":{"work_mem":"12MB","maintenance_work_mem":"64MB"}}}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);

    // ALTER SYSTEM on a member bypasses the DCS: reported as drift too.
    let ri = (li + 1) % 3;
    let s = c.sql(ri).await.unwrap();
    s.batch_execute("ALTER SYSTEM SET random_page_cost = 1.5")
        .await
        .unwrap();
    s.batch_execute("SELECT pg_reload_conf()").await.unwrap();
    let key = format!("members.{}.alter_system.random_page_cost", c.nodes[ri].name);
    wait_for("ALTER SYSTEM drift webhook", T, || async {
        events
            .lock()
            .unwrap()
            .iter()
            .any(|e| e["event"] == "drift" && e["key"] == key.as_str() && e["live"] == "1.5")
            .then_some(())
    })
    .await;

    // The reconciler's own status surface.
    let (code, body) = wait_for("GET /status with the drift count", T, || async {
        let (code, body) = http_get_url(&format!("http://127.0.0.1:{status_port}/status")).await?;
        let v: Value = serde_json::from_str(&body).ok()?;
        (v["clusters"][&c.scope]["drift_events"].as_u64()? >= 2).then_some((code, v))
    })
    .await;
    assert_eq!(code, 200);
    assert!(body["desired_commit"]["sha"].is_string(), "{body}");
    let (_, metrics) = http_get_url(&format!("http://127.0.0.1:{status_port}/metrics"))
        .await
        .unwrap();
    assert!(
        metrics.contains(&format!("patronus_drift_events{{scope=\"{}\"}}", c.scope)),
        "{metrics}"
    );
    // The cluster was read (applied, checked for drift): the read counter says so.
    let reads = metrics
        .lines()
        .find_map(|l| l.strip_prefix("patronus_reconcile_cluster_reads_total "))
        .and_then(|v| v.parse::<f64>().ok());
    assert!(reads.is_some_and(|n| n >= 2.0), "{metrics}");
    let r = http
        .post(format!("http://127.0.0.1:{status_port}/hooks/git"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 202);

    // An invalid commit applies nothing and is reported; the next valid one applies.
    std::fs::write(
        &file,
        "config:\n  postgresql:\n    parameters:\n      work_mem: 12 parsecs\n",
    )
    .unwrap();
    commit(dir.as_path(), "oops");
    wait_for("invalid_commit webhook", T, || async {
        events
            .lock()
            .unwrap()
            .iter()
            .any(|e| e["event"] == "invalid_commit")
            .then_some(())
    })
    .await;
    let cfg = c
        .etcd
        .get_prefix(&format!("/service/{}/config", c.scope))
        .await;
    assert!(
        !cfg[0].1.contains("parsecs"),
        "nothing applied from an invalid commit"
    );
    write("10MB");
    commit(dir.as_path(), "work_mem 10MB");
    for i in 0..3 {
        wait_for("next valid commit applied", T, || async {
            (show(i, "work_mem").await? == "10MB").then_some(())
        })
        .await;
    }

    // A failover (kill -9 of the leader) shows up in the committed-back history.
    let old = c.nodes[li].name.clone();
    c.kill_agent(li);
    c.kill_postmaster(li);
    let new = wait_for("a new leader", T, || async {
        c.leader().await.filter(|l| *l != old)
    })
    .await;
    let history = dir.join(format!("status/{}/history.yaml", c.scope));
    let text = wait_for("the failover in status/<scope>/history.yaml", T, || async {
        let text = std::fs::read_to_string(&history).ok()?;
        (text.contains("timeline_switch") && text.contains(&format!("new_leader: {new}")))
            .then_some(text)
    })
    .await;
    assert!(
        text.contains("event: applied") && text.contains("author: Dana DBA <dana@example.com>"),
        "{text}"
    );
    assert!(text.contains("event: drift"), "{text}");
    let repo = git2::Repository::open(&dir).unwrap();
    let head = repo.head().unwrap().peel_to_commit().unwrap();
    assert!(
        head.message().unwrap().contains("Desired-Commit:"),
        "status committed back with the trailer"
    );
    let touched: Vec<String> = {
        let t = head.tree().unwrap();
        let p = head.parent(0).unwrap().tree().unwrap();
        repo.diff_tree_to_tree(Some(&p), Some(&t), None)
            .unwrap()
            .deltas()
            .filter_map(|d| d.new_file().path().map(|p| p.display().to_string()))
            .collect()
    };
    assert!(
        touched.iter().all(|p| p.starts_with("status/")),
        "commit-back touches status/ only: {touched:?}"
    );
}
