//! Issue #15 item 5: a standby cluster. A second patronus cluster whose dynamic
//! configuration has `standby_cluster` pointing at the first cluster's primary bootstraps
//! its standby leader from that primary (no initdb), streams from it with the slot named by
//! `primary_slot_name`, and its replica cascades from the standby leader; both receive the
//! rows written on the first cluster. `/standby-leader` answers 200 on the standby leader
//! only, `/primary` 503, `list` shows "Standby Leader", the metric says so. When the standby
//! leader dies, its replica takes over as standby leader without promoting. Then a
//! data-centre switchover: `demote-cluster` turns the first cluster's primary into a standby
//! leader following the second cluster, `promote-cluster` removes `standby_cluster` of the
//! second one, whose standby leader becomes a writable primary that both its replica and
//! the demoted first cluster follow.

mod common;

use common::*;
use std::process::{Command, Output};
use std::time::Duration;

const T: Duration = Duration::from_secs(90);

/// Runs `patronus -c <config> args…`.
fn ctl(c: &TestCluster, i: usize, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_patronus"))
        .arg("-c")
        .arg(&c.nodes[i].config)
        .args(args)
        .output()
        .expect("run patronus")
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

async fn exec(c: &TestCluster, i: usize, sql: &str) {
    let s = c.sql(i).await.expect("session");
    s.batch_execute(sql)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"));
}

/// Member `i` has the row `id` in table `t`.
async fn has_row(c: &TestCluster, i: usize, id: i32) -> bool {
    let Some(s) = c.sql(i).await else {
        return false;
    };
    s.query_opt("SELECT 1 FROM t WHERE id = $1", &[&id])
        .await
        .ok()
        .flatten()
        .is_some()
}

/// `/patroni` of member `i` as JSON.
async fn patroni(c: &TestCluster, i: usize) -> Option<serde_json::Value> {
    let (_, body) = c.get(i, "/patroni").await?;
    serde_json::from_str(&body).ok()
}

/// Prepares the standby cluster: members named s1, s2 (application names must differ from
/// the primary cluster's), `bootstrap.dcs.standby_cluster` pointing at `host:port` with
/// the slot `standby_dr`.
async fn prepare_standby(port: u16) -> TestCluster {
    let opts = ClusterOpts {
        members: 2,
        ..ClusterOpts::default()
    };
    let mut s = TestCluster::prepare("standby", opts).await;
    for (i, n) in s.nodes.iter_mut().enumerate() {
        let name = format!("s{}", i + 1);
        let yaml = std::fs::read_to_string(&n.config).expect("read node config");
        let yaml = yaml
            .replace(
                &format!("\nname: {}\n", n.name),
                &format!("\nname: {name}\n"),
            )
            .replace(
                "bootstrap:\n  dcs:\n",
                &format!(
                    "bootstrap:\n  dcs:\n    standby_cluster:\n      host: 127.0.0.1\n      \
                     port: {port}\n      primary_slot_name: standby_dr\n"
                ),
            );
        std::fs::write(&n.config, yaml).expect("write node config");
        n.name = name;
    }
    s
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn standby_cluster_follows_the_remote_primary_then_switches_over() {
    // The first cluster: one member, with a permanent slot for the standby cluster.
    let p = TestCluster::start(
        "primary",
        ClusterOpts {
            members: 1,
            ..ClusterOpts::default()
        },
    )
    .await;
    let pi = p.wait_leader_writable(T).await;
    p.patch_config(pi, r#"{"slots": {"standby_dr": {"type": "physical"}}}"#)
        .await;
    exec(
        &p,
        pi,
        "CREATE TABLE t (id int PRIMARY KEY); INSERT INTO t VALUES (1)",
    )
    .await;

    let mut s = prepare_standby(p.nodes[pi].pg_port).await;
    s.start_agent(0);
    // The standby leader is bootstrapped from the remote primary, then its replica.
    wait_for("s1 runs as the standby leader", T, || async {
        let v = patroni(&s, 0).await?;
        (v["role"] == "standby_leader" && v["state"] == "running").then_some(())
    })
    .await;
    s.start_agent(1);
    // Both clusters dump their agents' logs if a check fails (TestCluster's Drop).
    checks(&p, pi, &s).await;
    failover_inside(&p, pi, &mut s).await;
    switch_over(&p, pi, &s, 1, 0).await;
}

async fn checks(p: &TestCluster, pi: usize, s: &TestCluster) {
    let log = s.log_text(0);
    assert!(
        log.contains("trying to bootstrap a new standby leader"),
        "the standby leader cloned the remote instead of running initdb"
    );
    assert!(!log.contains("initialized a new cluster"), "no initdb");
    wait_for("s2 streams from the standby leader", T, || async {
        let v = patroni(s, 1).await?;
        (v["role"] == "replica" && v["replication_state"] == "streaming").then_some(())
    })
    .await;

    // Rows written on the first cluster reach the standby leader and its replica.
    exec(p, pi, "INSERT INTO t VALUES (2)").await;
    for i in 0..2 {
        wait_for("row 2 on the standby cluster", T, || async {
            has_row(s, i, 2).await.then_some(())
        })
        .await;
    }
    // The standby leader streams from the remote with `primary_slot_name`, and the replica
    // with its member slot on the standby leader (cascading).
    wait_for(
        "slot standby_dr active on the remote primary",
        T,
        || async {
            let v = p
                .query_one(
                    pi,
                    "SELECT active::text FROM pg_replication_slots WHERE slot_name = 'standby_dr'",
                )
                .await?;
            (v == "true").then_some(())
        },
    )
    .await;
    let upstream = s
        .query_one(1, "SELECT sender_port::text FROM pg_stat_wal_receiver")
        .await;
    assert_eq!(
        upstream,
        Some(s.nodes[0].pg_port.to_string()),
        "s2 cascades from s1"
    );
    wait_for("member slot s2 active on the standby leader", T, || async {
        let v = s
            .query_one(
                0,
                "SELECT active::text FROM pg_replication_slots WHERE slot_name = 's2'",
            )
            .await?;
        (v == "true").then_some(())
    })
    .await;
    assert_eq!(
        s.writable(0).await,
        Some(false),
        "the standby leader is read-only"
    );

    // Health checks, metrics, list, the log line.
    assert_eq!(s.code(0, "/standby-leader").await, 200);
    assert_eq!(s.code(1, "/standby-leader").await, 503);
    assert_eq!(s.code(0, "/primary").await, 503);
    assert_eq!(s.code(0, "/leader").await, 200);
    assert_eq!(s.code(1, "/replica").await, 200);
    assert_eq!(p.code(pi, "/standby-leader").await, 503);
    let (_, metrics) = s.get(0, "/metrics").await.expect("metrics");
    assert!(
        metrics
            .lines()
            .any(|l| l.starts_with("patroni_standby_leader{") && l.ends_with(" 1")),
        "{metrics}"
    );
    let out = ctl(s, 1, &["list"]);
    let listed = text(&out);
    assert!(out.status.success(), "{listed}");
    assert!(
        listed
            .lines()
            .any(|l| l.contains("s1") && l.contains("Standby Leader")),
        "{listed}"
    );
    wait_for("the standby leader's log line", T, || async {
        s.log_text(0)
            .contains("no action. I am (s1), the standby leader with the lock")
            .then_some(())
    })
    .await;
    wait_for("the replica's log line", T, || async {
        s.log_text(1)
            .contains("no action. I am (s2), a secondary, and following a standby leader (s1)")
            .then_some(())
    })
    .await;

    // A standby_cluster the agents could not read is refused, naming the field: it would
    // otherwise turn the standby leader into a second writable primary.
    let (code, body) = s
        .send(
            1,
            reqwest::Method::PATCH,
            "/config",
            r#"{"standby_cluster": {"port": "x5432"}}"#,
        )
        .await;
    assert_eq!(code, 400, "{body}");
    assert!(body.contains("standby_cluster.port"), "{body}");
}

/// Failover inside the standby cluster: s1 (agent and PostgreSQL) dies; s2 takes the key
/// without promoting and follows the remote; s1 comes back as its replica.
async fn failover_inside(p: &TestCluster, pi: usize, s: &mut TestCluster) {
    s.kill_agent(0);
    s.kill_postmaster(0);
    wait_for("s2 becomes the standby leader", T, || async {
        let v = patroni(s, 1).await?;
        (v["role"] == "standby_leader" && v["state"] == "running").then_some(())
    })
    .await;
    assert_eq!(s.writable(1).await, Some(false), "never promoted");
    wait_for("s2's log line", T, || async {
        s.log_text(1)
            .contains("promoted self to a standby leader by acquiring session lock")
            .then_some(())
    })
    .await;
    exec(p, pi, "INSERT INTO t VALUES (4)").await;
    wait_for("row 4 on the new standby leader", T, || async {
        has_row(s, 1, 4).await.then_some(())
    })
    .await;
    s.start_agent(0);
    wait_for("s1 streams from s2", T, || async {
        let v = patroni(s, 0).await?;
        let streaming = v["role"] == "replica" && v["replication_state"] == "streaming";
        (streaming && has_row(s, 0, 4).await).then_some(())
    })
    .await;
    let upstream = s
        .query_one(0, "SELECT sender_port::text FROM pg_stat_wal_receiver")
        .await;
    assert_eq!(
        upstream,
        Some(s.nodes[1].pg_port.to_string()),
        "s1 cascades from s2"
    );
}

/// Refused switchover, then a data-centre switchover with the standby leader `sl` and
/// the replica `sr` of the second cluster.
async fn switch_over(p: &TestCluster, pi: usize, s: &TestCluster, sl: usize, sr: usize) {
    let (lname, rname) = (s.nodes[sl].name.clone(), s.nodes[sr].name.clone());
    // No switchover inside a standby cluster: the standby leader cannot hand over.
    let (code, body) = s
        .send(
            sl,
            reqwest::Method::POST,
            "/switchover",
            &format!(r#"{{"leader": "{lname}", "candidate": "{rname}"}}"#),
        )
        .await;
    assert_eq!(code, 412, "{body}");
    assert!(body.contains("not possible in a standby cluster"), "{body}");

    // A data-centre switchover: demote-cluster turns the first cluster's primary into a
    // standby leader following the second cluster's (clean stop: it receives the shutdown checkpoint) ...
    let port = s.nodes[sl].pg_port.to_string();
    let args = [
        "demote-cluster",
        "--host",
        "127.0.0.1",
        "--port",
        &port,
        "--force",
    ];
    let out = ctl(p, pi, &args);
    let said = text(&out);
    assert!(out.status.success(), "{said}");
    assert!(said.contains("cluster is successfully demoted"), "{said}");
    assert_eq!(
        p.writable(pi).await,
        Some(false),
        "no writable primary left"
    );
    assert_eq!(p.code(pi, "/standby-leader").await, 200);
    wait_for("the demote-cluster log line", T, || async {
        p.log_text(pi)
            .contains("cannot be a real primary in standby cluster")
            .then_some(())
    })
    .await;

    // ... and promote-cluster removes standby_cluster of the second one: its standby
    // leader becomes a writable primary, its replica follows it, and so does the first cluster's standby leader.
    let out = ctl(s, sr, &["promote-cluster", "--force"]);
    let said = text(&out);
    assert!(out.status.success(), "{said}");
    assert!(said.contains("cluster is successfully promoted"), "{said}");
    let config = s.key_json("config").await.expect("config key");
    assert!(config.get("standby_cluster").is_none(), "{config}");
    wait_for(
        "the standby leader writable and /primary 200",
        T,
        || async {
            (s.writable(sl).await == Some(true) && s.code(sl, "/primary").await == 200)
                .then_some(())
        },
    )
    .await;
    assert_eq!(s.code(sl, "/standby-leader").await, 503);
    let v = patroni(s, sl).await.expect("/patroni");
    assert_eq!(v["role"], "primary", "{v}");
    exec(s, sl, "INSERT INTO t VALUES (3)").await;
    wait_for("the replica follows the promoted leader", T, || async {
        has_row(s, sr, 3).await.then_some(())
    })
    .await;
    wait_for(
        "the demoted first cluster follows the new timeline",
        T,
        || async { has_row(p, pi, 3).await.then_some(()) },
    )
    .await;
    assert_eq!(p.writable(pi).await, Some(false));
    let v = patroni(p, pi).await.expect("/patroni");
    assert_eq!(v["role"], "standby_leader", "{v}");
}
