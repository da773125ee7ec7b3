//! Quorum commit on a real cluster (`synchronous_mode: quorum`, Patroni ≥ 4): the leader
//! renders `ANY k (…)` and writes the `sync` key's `quorum` and `sync_standby` (voters);
//! `synchronous_node_count` changes move both safely; the REST checks and `/cluster` report
//! quorum standbys; after a kill -9 of the leader only a voter takes over and no
//! acknowledged commit is lost.

mod common;

use common::*;
use serde_json::Value;
use std::sync::{Arc, Mutex};
use std::time::Duration;

const T: Duration = Duration::from_secs(90);

/// Waits until the `sync` key names `leader` with `quorum` and these voters.
async fn await_key(c: &TestCluster, leader: &str, quorum: u64, voters: &str) -> Value {
    wait_for(
        &format!("sync key {leader} quorum {quorum} of {voters}"),
        T,
        || async {
            let v = c.key_json("sync").await?;
            let ok = v["leader"] == leader
                && v["quorum"] == quorum
                && v["sync_standby"].as_str() == Some(voters);
            ok.then_some(v)
        },
    )
    .await
}

async fn await_guc(c: &TestCluster, i: usize, want: &str) {
    wait_for(
        &format!("synchronous_standby_names = {want}"),
        T,
        || async {
            let s = c.query_one(i, "SHOW synchronous_standby_names").await?;
            (s == want).then_some(())
        },
    )
    .await;
}

/// Inserts increasing ids on member `i` until a commit fails; returns the acknowledged ids.
fn writer(c: &TestCluster, i: usize, acked: Arc<Mutex<Vec<i64>>>) -> tokio::task::JoinHandle<()> {
    let port = c.nodes[i].pg_port;
    tokio::spawn(async move {
        let Ok((client, conn)) = tokio_postgres::Config::new()
            .host("127.0.0.1")
            .port(port)
            .user("postgres")
            .password(SUPERPASS)
            .dbname("postgres")
            .connect(tokio_postgres::NoTls)
            .await
        else {
            return;
        };
        tokio::spawn(conn);
        for id in 1i64.. {
            let sql = "INSERT INTO quorum_probe VALUES ($1)";
            if client.execute(sql, &[&id]).await.is_err() {
                return;
            }
            acked.lock().unwrap().push(id);
        }
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quorum_commit_fails_over_to_a_voter_without_losing_acknowledged_commits() {
    let mut c = TestCluster::start("quorum", ClusterOpts::default()).await;
    let li = c.wait_healthy(T).await;
    let leader = c.nodes[li].name.clone();
    let replicas: Vec<usize> = (0..3).filter(|i| *i != li).collect();
    let mut voter_names: Vec<String> = replicas.iter().map(|i| c.nodes[*i].name.clone()).collect();
    voter_names.sort();
    let voters = voter_names.join(",");

    c.patch_config(li, r#"{"synchronous_mode": "quorum"}"#)
        .await;
    await_guc(&c, li, &format!("ANY 1 ({voters})")).await;
    let key = await_key(&c, &leader, 1, &voters).await;
    assert_eq!(
        key.as_object().map(|o| o.len()),
        Some(3),
        "Patroni's fields only: {key}"
    );
    let states = wait_for("both standbys quorum", T, || async {
        let rows = c
            .sql(li)
            .await?
            .query("SELECT sync_state FROM pg_stat_replication", &[])
            .await
            .ok()?;
        let v: Vec<String> = rows.iter().map(|r| r.get(0)).collect();
        (v.len() == 2 && v.iter().all(|s| s == "quorum")).then_some(v)
    })
    .await;
    assert_eq!(states.len(), 2);

    // REST: replicas are quorum standbys, not sync standbys; the leader serves both reads.
    // Each replica answers from its own view of the sync key, updated at its next cycle.
    for &r in &replicas {
        let name = &c.nodes[r].name;
        wait_for(
            &format!("{name}: /quorum and /read-only-quorum 200, /sync and /async 503"),
            T,
            || async {
                let codes = [
                    c.code(r, "/quorum").await,
                    c.code(r, "/read-only-quorum").await,
                    c.code(r, "/sync").await,
                    c.code(r, "/async").await,
                ];
                (codes == [200, 200, 503, 503]).then_some(())
            },
        )
        .await;
    }
    assert_eq!(c.code(li, "/quorum").await, 503);
    assert_eq!(c.code(li, "/read-only-quorum").await, 200);
    let (_, cluster) = c.get(li, "/cluster").await.expect("/cluster");
    let cluster: Value = serde_json::from_str(&cluster).unwrap();
    for m in cluster["members"].as_array().unwrap() {
        let want = if m["name"] == leader.as_str() {
            "leader"
        } else {
            "quorum_standby"
        };
        assert_eq!(m["role"], want, "{cluster}");
    }

    // `list` (patronictl's table) names them Quorum Standby.
    let list = std::process::Command::new(env!("CARGO_BIN_EXE_patronus"))
        .arg("-c")
        .arg(&c.nodes[li].config)
        .args(["list", "-f", "json"])
        .env("PATRONUS_MIN_TTL", "5")
        .output()
        .expect("run patronus list");
    let rows: Value = serde_json::from_slice(&list.stdout).expect("list -f json");
    for name in &voter_names {
        let row = rows
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["Member"] == name.as_str());
        assert_eq!(
            row.map(|r| &r["Role"]),
            Some(&Value::from("Quorum Standby")),
            "{rows}"
        );
    }

    // k = 2: PostgreSQL waits for both before the key lowers the quorum; back to 1.
    c.patch_config(li, r#"{"synchronous_node_count": 2}"#).await;
    await_guc(&c, li, &format!("ANY 2 ({voters})")).await;
    await_key(&c, &leader, 0, &voters).await;
    c.patch_config(li, r#"{"synchronous_node_count": 1}"#).await;
    await_key(&c, &leader, 1, &voters).await;
    await_guc(&c, li, &format!("ANY 1 ({voters})")).await;

    // A writer commits with acknowledgement while the leader is killed.
    c.sql(li)
        .await
        .unwrap()
        .batch_execute("CREATE TABLE quorum_probe (id bigint PRIMARY KEY)")
        .await
        .unwrap();
    let acked = Arc::new(Mutex::new(Vec::new()));
    let w = writer(&c, li, acked.clone());
    wait_for("200 acknowledged commits", T, || async {
        (acked.lock().unwrap().len() >= 200).then_some(())
    })
    .await;
    c.kill_agent(li);
    c.kill_postmaster(li);
    let _ = tokio::time::timeout(T, w).await;
    let acked = acked.lock().unwrap().clone();

    let new = wait_for("a new leader", T, || async {
        c.leader().await.filter(|l| *l != leader)
    })
    .await;
    assert!(
        voter_names.contains(&new),
        "{new} took over but was not a voter of {voters}"
    );
    let ni = c.index(&new);
    c.wait_leader_writable(T).await;
    // Commits on the new primary waited for the former quorum from the start: it set
    // `ANY 1 (<the other members>)` before pg_ctl promote.
    let mut others: Vec<&String> = [&leader]
        .into_iter()
        .chain(voter_names.iter())
        .filter(|n| **n != new)
        .collect();
    others.sort();
    let before = format!(
        "setting synchronous_standby_names to 'ANY 1 ({},{})' before promoting",
        others[0], others[1]
    );
    assert!(c.log_text(ni).contains(&before), "no line: {before}");
    let rows = c
        .sql(ni)
        .await
        .unwrap()
        .query("SELECT id FROM quorum_probe", &[])
        .await
        .unwrap();
    let present: std::collections::BTreeSet<i64> = rows.iter().map(|r| r.get(0)).collect();
    let lost: Vec<&i64> = acked.iter().filter(|id| !present.contains(id)).collect();
    assert!(
        lost.is_empty(),
        "{} of {} acknowledged commits lost",
        lost.len(),
        acked.len()
    );

    // The new leader takes the key over and drops the dead leader from both sets.
    let other = voter_names.iter().find(|n| **n != new).unwrap().clone();
    await_key(&c, &new, 0, &other).await;
    await_guc(&c, ni, &format!("ANY 1 ({other})")).await;
    assert_eq!(c.code(c.index(&other), "/quorum").await, 200);
}
