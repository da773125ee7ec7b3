//! DCS faults on a real cluster: short etcd blips (killed, frozen) must not move the leader,
//! and an etcd stall longer than the lease must heal as soon as etcd answers again.

mod common;

use common::workload::{missing_writes, SplitBrainProbe, Writer};
use common::*;
use serde_json::Value;
use std::time::{Duration, Instant};

const T: Duration = Duration::from_secs(120);

/// The leader's `/patroni` document.
async fn patroni(c: &TestCluster, i: usize) -> Value {
    let (_, body) = c.get(i, "/patroni").await.expect("/patroni answers");
    serde_json::from_str(&body).expect("/patroni is JSON")
}

/// The unix time (seconds) now.
fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// Waits until every member has read the DCS after `since` (unix seconds): each one ran a
/// whole cycle after the last fault, so a demotion caused by it would have happened.
async fn wait_every_member_saw_dcs(c: &TestCluster, since: u64) {
    for i in 0..c.nodes.len() {
        wait_for(
            &format!("{} to read the DCS again", c.nodes[i].name),
            T,
            || async move {
                let p = patroni(c, i).await;
                let seen = p["dcs_last_seen"].as_u64().unwrap_or(0);
                (seen > since).then_some(())
            },
        )
        .await;
    }
}

/// Patroni's default timings (ttl 30, loop_wait 10, retry_timeout 10): etcd killed for 2 s
/// three times and frozen for 3 s twice under a writer. Every call is retried inside
/// `retry_timeout`, so the leader keeps its lock: same leader, same timeline, no history
/// entry, every acknowledged write kept.
#[tokio::test(flavor = "multi_thread")]
async fn etcd_blips_keep_the_leader_and_timeline() {
    let opts = ClusterOpts {
        ttl: 30,
        loop_wait: 10,
        retry_timeout: 10,
        ..ClusterOpts::default()
    };
    let mut c = TestCluster::start("blip", opts).await;
    let li = c.wait_healthy(T).await;
    let leader = c.nodes[li].name.clone();
    let timeline = patroni(&c, li).await["timeline"].as_u64();
    let writer = Writer::start(&c).await;
    let probe = SplitBrainProbe::start(&c);
    let started = Instant::now();
    for _ in 0..3 {
        c.etcd.kill();
        tokio::time::sleep(Duration::from_secs(2)).await; // the fault's length, not a wait
        c.etcd.restart().await;
        wait_every_member_saw_dcs(&c, unix_now()).await;
    }
    for _ in 0..2 {
        c.etcd.freeze();
        tokio::time::sleep(Duration::from_secs(3)).await; // the fault's length, not a wait
        c.etcd.thaw();
        wait_every_member_saw_dcs(&c, unix_now()).await;
    }
    let report = writer.stop().await;
    let violations = probe.stop().await;
    let now_leader = c.leader().await;
    let p = patroni(&c, li).await;
    let history = c
        .etcd
        .get_prefix(&format!("/service/{}/history", c.scope))
        .await;
    println!(
        "blips: {:.1} s of faults, {} writes acknowledged, max write gap {:.3} s, {} writer errors",
        started.elapsed().as_secs_f64(),
        report.acked.len(),
        report.max_gap.as_secs_f64(),
        report.errors
    );
    if now_leader.as_deref() != Some(leader.as_str()) || p["timeline"].as_u64() != timeline {
        c.dump_logs();
    }
    assert_eq!(now_leader.as_deref(), Some(leader.as_str()), "leader moved");
    assert_eq!(p["timeline"].as_u64(), timeline, "timeline changed");
    assert_eq!(p["role"], "primary");
    // The leader writes an empty `history` list at bootstrap; a timeline switch adds a line.
    let lines: Vec<Value> = history
        .iter()
        .flat_map(|(_, v)| serde_json::from_str::<Vec<Value>>(v).expect("history is a list"))
        .collect();
    assert!(lines.is_empty(), "a history entry was written: {history:?}");
    assert!(
        violations.is_empty(),
        "two writable members: {violations:?}"
    );
    assert!(
        !report.acked.is_empty(),
        "the writer never got a write through"
    );
    let missing = missing_writes(&c, li, &report.acked).await;
    assert!(missing.is_empty(), "acknowledged writes lost: {missing:?}");
}

/// etcd frozen for 3×ttl: the primary stops accepting writes (it cannot confirm its lock),
/// the leases expire; once etcd answers again every agent re-grants its lease, one member
/// takes the lock and writes go through again within ttl + 5 s.
#[tokio::test(flavor = "multi_thread")]
async fn etcd_stall_longer_than_ttl_heals_after_resume() {
    let c = TestCluster::start("stall", ClusterOpts::default()).await;
    let li = c.wait_healthy(T).await;
    let ttl = Duration::from_secs(c.opts.ttl);
    let writer = Writer::start(&c).await;
    let probe = SplitBrainProbe::start(&c);
    c.etcd.freeze();
    let frozen_at = Instant::now();
    // "Stops accepting writes": stopped (demotion in progress) or back in recovery.
    wait_for("the primary to stop accepting writes", T, || async {
        let writable = match c.sql(li).await {
            None => false,
            Some(s) => match s.query_one("SELECT pg_is_in_recovery()", &[]).await {
                Ok(row) => !row.get::<_, bool>(0),
                Err(_) => false,
            },
        };
        (!writable).then_some(())
    })
    .await;
    let stopped_after = frozen_at.elapsed();
    tokio::time::sleep((ttl * 3).saturating_sub(frozen_at.elapsed())).await; // fault length
    c.etcd.thaw();
    let resumed = Instant::now();
    let acked_at_resume = writer.acked_so_far();
    wait_for(
        "a leader and acknowledged writes after the resume",
        T,
        || async {
            let leader = c.leader().await?;
            (writer.acked_so_far() > acked_at_resume).then_some(leader)
        },
    )
    .await;
    let healed = resumed.elapsed();
    c.wait_healthy(T).await;
    let report = writer.stop().await;
    let violations = probe.stop().await;
    println!(
        "stall: primary read-only {:.1} s after the freeze, writes again {:.1} s after the resume",
        stopped_after.as_secs_f64(),
        healed.as_secs_f64()
    );
    assert!(
        stopped_after < ttl,
        "the primary kept accepting writes for {stopped_after:?} (ttl {ttl:?})"
    );
    assert!(
        violations.is_empty(),
        "two writable members: {violations:?}"
    );
    let li2 = c.wait_leader_writable(T).await;
    let missing = missing_writes(&c, li2, &report.acked).await;
    println!(
        "acknowledged writes not on the new leader: {}",
        missing.len()
    );
}

/// Maintenance mode holds through an etcd outage: the agents keep the last configuration
/// they read (`pause: true`), so the primary is not demoted when etcd goes away, as in
/// Patroni.
#[tokio::test(flavor = "multi_thread")]
async fn a_paused_cluster_keeps_its_primary_through_an_etcd_outage() {
    let mut c = TestCluster::start("pause", ClusterOpts::default()).await;
    let li = c.wait_healthy(T).await;
    let (code, body) = c
        .send(li, reqwest::Method::PATCH, "/config", r#"{"pause": true}"#)
        .await;
    assert_eq!(code, 200, "{body}");
    wait_for("every member to see the pause", T, || async {
        for i in 0..c.nodes.len() {
            if patroni(&c, i).await["pause"] != true {
                return None;
            }
        }
        Some(())
    })
    .await;
    c.etcd.kill();
    let killed = Instant::now();
    let ttl = Duration::from_secs(c.opts.ttl);
    while killed.elapsed() < ttl * 2 {
        let s = c.sql(li).await.expect("the primary answers");
        let ro: bool = s
            .query_one("SELECT pg_is_in_recovery()", &[])
            .await
            .expect("query")
            .get(0);
        assert!(
            !ro,
            "the paused primary was demoted {:?} into the outage",
            killed.elapsed()
        );
        tokio::time::sleep(Duration::from_millis(500)).await; // observation period
    }
    assert!(
        c.log_text(li).contains("PAUSE: "),
        "the agent logs its cycles as paused"
    );
    c.etcd.restart().await;
    let (code, _) = c
        .send(li, reqwest::Method::PATCH, "/config", r#"{"pause": false}"#)
        .await;
    assert_eq!(code, 200);
    assert_eq!(
        c.wait_healthy(T).await,
        li,
        "the same leader after the outage"
    );
}
