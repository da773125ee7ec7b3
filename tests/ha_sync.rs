//! Synchronous mode on a real cluster: the leader picks a synchronous standby (GUC, then the
//! `sync` key), only that standby may be promoted, strict mode blocks commits without a
//! standby and releases them when one returns, non-strict mode degrades to asynchronous, and
//! switching the mode off removes the key; a strict-mode leader fails over to its synchronous
//! standby, which sets the placeholder before it promotes.

mod common;

use common::*;
use serde_json::Value;
use std::time::Duration;

const T: Duration = Duration::from_secs(120);

/// Waits until the key names `leader` with exactly `standbys`.
async fn await_sync_key(c: &TestCluster, leader: &str, standbys: Option<&str>) {
    wait_for(&format!("sync key {leader}/{standbys:?}"), T, || async {
        let v = c.key_json("sync").await?;
        let ok = v["leader"] == leader && v["sync_standby"].as_str() == standbys;
        ok.then_some(())
    })
    .await;
}

async fn insert(c: &TestCluster, i: usize) -> tokio::task::JoinHandle<bool> {
    let client = c.sql(i).await.expect("connect to the leader");
    tokio::spawn(async move {
        client
            .batch_execute("INSERT INTO sync_probe VALUES (now())")
            .await
            .is_ok()
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sync_mode_promotes_only_the_synchronous_standby() {
    // sync_priority picks the replica with the *lower* failover_priority, so the usual race
    // (same WAL, higher priority wins) would choose the other one without the sync gate.
    let opts = ClusterOpts {
        tags: vec![
            "  failover_priority: 1\n  sync_priority: 3\n".into(),
            "  failover_priority: 2\n  sync_priority: 2\n".into(),
            "  failover_priority: 3\n  sync_priority: 1\n".into(),
        ],
        ..ClusterOpts::default()
    };
    let mut c = TestCluster::start("sync", opts).await;
    let li = c.wait_healthy(T).await;
    let leader = c.nodes[li].name.clone();
    let mut replicas: Vec<usize> = (0..3).filter(|i| *i != li).collect();
    replicas.sort(); // m1 < m2 < m3: the first has the higher sync_priority
    let (si, ai) = (replicas[0], replicas[1]);
    let (sync_name, async_name) = (c.nodes[si].name.clone(), c.nodes[ai].name.clone());

    // Switch synchronous mode on through the REST API.
    c.patch_config(li, r#"{"synchronous_mode": true}"#).await;
    await_sync_key(&c, &leader, Some(&sync_name)).await;
    let states = wait_for("pg_stat_replication sync states", T, || async {
        let rows = c
            .sql(li)
            .await?
            .query(
                "SELECT application_name, sync_state FROM pg_stat_replication ORDER BY 1",
                &[],
            )
            .await
            .ok()?;
        let v: Vec<(String, String)> = rows.iter().map(|r| (r.get(0), r.get(1))).collect();
        (v.len() == 2).then_some(v)
    })
    .await;
    assert!(
        states.contains(&(sync_name.clone(), "sync".into())),
        "{states:?}"
    );
    assert!(
        states.contains(&(async_name.clone(), "async".into())),
        "{states:?}"
    );
    // Each replica answers from its own view of the sync key, updated at its next cycle.
    wait_for(
        "/sync 200 on the sync standby, /sync 503 and /async 200 on the other",
        T,
        || async {
            let codes = (
                c.code(si, "/sync").await,
                c.code(ai, "/sync").await,
                c.code(ai, "/async").await,
            );
            (codes == (200, 503, 200)).then_some(())
        },
    )
    .await;
    let (_, cluster) = c.get(li, "/cluster").await.expect("/cluster");
    let cluster: Value = serde_json::from_str(&cluster).unwrap();
    let role_of = |n: &str| {
        cluster["members"]
            .as_array()
            .unwrap()
            .iter()
            .find(|m| m["name"] == n)
            .map(|m| m["role"].clone())
    };
    assert_eq!(role_of(&sync_name), Some(Value::from("sync_standby")));

    // A switchover to the asynchronous replica is refused with Patroni's message.
    let body = format!(r#"{{"leader":"{leader}","candidate":"{async_name}"}}"#);
    let (code, text) = c
        .send(li, reqwest::Method::POST, "/switchover", &body)
        .await;
    assert_eq!(code, 412, "{text}");
    assert!(text.contains("candidate name does not match with sync_standby"));

    // The leader crashes: only the synchronous standby may take over.
    c.sql(li)
        .await
        .unwrap()
        .batch_execute("CREATE TABLE sync_probe (t timestamptz)")
        .await
        .unwrap();
    c.kill_agent(li);
    c.kill_postmaster(li);
    let new = wait_for("a new leader", T, || async {
        c.leader().await.filter(|l| *l != leader)
    })
    .await;
    assert_eq!(new, sync_name, "the synchronous standby takes over");
    // The asynchronous replica stood aside: it says so when its cycle looked at the race
    // before the synchronous standby took the lock, or it just follows the new leader (its
    // log line is polled: it may come after the leader key).
    let follows = format!("following a leader ({sync_name})");
    wait_for("the asynchronous replica to stand aside", T, || async {
        let log = c.log_text(ai);
        (log.contains("I am not a synchronous standby") || log.contains(&follows)).then_some(())
    })
    .await;
    assert!(
        !c.log_text(ai).contains("promoted self to leader"),
        "the asynchronous replica never took the lock"
    );
    // The new leader makes the remaining replica its synchronous standby.
    await_sync_key(&c, &sync_name, Some(&async_name)).await;

    // Strict mode: with the only standby gone, commits wait for it…
    c.patch_config(si, r#"{"synchronous_mode_strict": true}"#)
        .await;
    wait_for("strict mode in force", T, || async {
        let s = c.query_one(si, "SHOW synchronous_standby_names").await?;
        (s == async_name).then_some(())
    })
    .await;
    // The leader must have decided with the new config before the standby dies, or it would
    // degrade to asynchronous first: wait for a cycle that read the DCS after the change.
    c.wait_cycle_after_now(si).await;
    c.kill_agent(ai);
    c.kill_postmaster(ai);
    let mut blocked = insert(&c, si).await;
    let early = tokio::time::timeout(Duration::from_secs(3), &mut blocked).await;
    assert!(
        early.is_err(),
        "a commit went through without a synchronous standby"
    );
    // …and go through once it is back.
    c.start_agent(ai);
    let done = tokio::time::timeout(T, blocked)
        .await
        .expect("the blocked commit completes when the standby returns");
    assert!(done.unwrap());
    let sk = c.key_json("sync").await.unwrap();
    assert_eq!(sk["sync_standby"].as_str(), Some(async_name.as_str()));

    // Non-strict mode: the leader degrades to asynchronous replication instead.
    c.patch_config(si, r#"{"synchronous_mode_strict": false}"#)
        .await;
    c.kill_agent(ai);
    c.kill_postmaster(ai);
    await_sync_key(&c, &sync_name, None).await;
    let h = insert(&c, si).await;
    let ok = tokio::time::timeout(T, h)
        .await
        .expect("commit not blocked");
    assert!(ok.unwrap());

    // Sync mode off: the key is removed and the GUC returns to the configured value.
    c.patch_config(si, r#"{"synchronous_mode": false}"#).await;
    wait_for("sync key removed", T, || async {
        c.key_json("sync").await.is_none().then_some(())
    })
    .await;
    wait_for("synchronous_standby_names cleared", T, || async {
        let s = c.query_one(si, "SHOW synchronous_standby_names").await?;
        s.is_empty().then_some(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn strict_mode_failover_promotes_with_the_placeholder_set_first() {
    let mut c = TestCluster::start("syncstrict", ClusterOpts::default()).await;
    let li = c.wait_healthy(T).await;
    let leader = c.nodes[li].name.clone();
    c.patch_config(
        li,
        r#"{"synchronous_mode": true, "synchronous_mode_strict": true}"#,
    )
    .await;
    let sync_name = wait_for("a synchronous standby in the key", T, || async {
        let v = c.key_json("sync").await?;
        let s = v["sync_standby"].as_str()?.to_string();
        (v["leader"] == leader.as_str()).then_some(s)
    })
    .await;
    c.kill_agent(li);
    c.kill_postmaster(li);
    let new = wait_for("a new leader", T, || async {
        c.leader().await.filter(|l| *l != leader)
    })
    .await;
    assert_eq!(new, sync_name);
    let ni = c.index(&new);
    // The promotion happens with the strict placeholder already in postgresql.conf (and the
    // standby's recovery settings intact until it has left recovery)…
    wait_for("the new leader is writable", T, || async {
        c.writable(ni).await.filter(|w| *w)
    })
    .await;
    let line = format!(
        "setting synchronous_standby_names to '{}' before promoting",
        patronus::ha::sync::STRICT_PLACEHOLDER
    );
    assert!(c.log_text(ni).contains(&line), "no line: {line}");
    // …and the remaining replica becomes its synchronous standby.
    let other = (0..3).find(|i| *i != li && *i != ni).unwrap();
    await_sync_key(&c, &new, Some(&c.nodes[other].name)).await;
}
