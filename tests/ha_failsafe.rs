//! Issue 13 item 3: `failsafe_mode`. With etcd down the primary keeps accepting writes while
//! every member of the `failsafe` key confirms it through `POST /failsafe`; with one member
//! gone it demotes before ttl, as without failsafe mode.

mod common;

use common::workload::Writer;
use common::*;
use serde_json::Value;
use std::time::{Duration, Instant};

const T: Duration = Duration::from_secs(120);
const CONTINUE: &str =
    "continue to run as a leader because failsafe mode is enabled and all members are accessible";

/// The value of a `patroni_<name>` gauge on member `i`.
async fn gauge(c: &TestCluster, i: usize, name: &str) -> Option<f64> {
    let (_, body) = c.get(i, "/metrics").await?;
    let prefix = format!("patroni_{name}{{");
    body.lines()
        .find(|l| l.starts_with(&prefix))?
        .rsplit(' ')
        .next()?
        .parse()
        .ok()
}

/// The timeline member `i` reports in `/patroni`.
async fn timeline(c: &TestCluster, i: usize) -> Option<u64> {
    let (_, body) = c.get(i, "/patroni").await?;
    serde_json::from_str::<Value>(&body).ok()?["timeline"].as_u64()
}

/// One write on member `i` through `slot` (reconnecting when needed): true when it was
/// acknowledged by a primary that is not in recovery.
async fn write_once(c: &TestCluster, i: usize, slot: &mut Option<tokio_postgres::Client>) -> bool {
    if slot.as_ref().is_none_or(|s| s.is_closed()) {
        *slot = c.sql(i).await;
    }
    let Some(s) = slot.as_ref() else {
        return false;
    };
    let q = s.query_one(
        "INSERT INTO failsafe_probe VALUES (now()) RETURNING NOT pg_is_in_recovery()",
        &[],
    );
    match tokio::time::timeout(Duration::from_secs(5), q).await {
        Ok(Ok(row)) => row.get::<_, bool>(0),
        _ => {
            *slot = None;
            false
        }
    }
}

/// Turns failsafe mode on and waits until the key lists every member and every member
/// knows the mode.
async fn enable_failsafe(c: &TestCluster, li: usize) {
    c.patch_config(li, r#"{"failsafe_mode": true}"#).await;
    let names: Vec<String> = c.nodes.iter().map(|n| n.name.clone()).collect();
    let key = wait_for("the failsafe key to list every member", T, || async {
        let v = c.key_json("failsafe").await?;
        let listed = v.as_object()?;
        names
            .iter()
            .all(|n| {
                listed
                    .get(n)
                    .is_some_and(|u| u.as_str().is_some_and(|u| u.ends_with("/patroni")))
            })
            .then_some(v)
    })
    .await;
    println!("failsafe key: {key}");
    for i in 0..c.nodes.len() {
        wait_for("failsafe mode enabled on every member", T, || async {
            let on = gauge(c, i, "failsafe_mode_enabled").await == Some(1.0)
                && gauge(c, i, "failsafe_member").await == Some(1.0);
            on.then_some(())
        })
        .await;
    }
}

/// Phase (a): etcd down for 3 x ttl, every member confirms: the primary writes throughout.
async fn survives_an_etcd_outage(c: &mut TestCluster, li: usize) {
    let ttl = Duration::from_secs(c.opts.ttl);
    let leader = c.nodes[li].name.clone();
    let tl = timeline(c, li).await.expect("leader timeline");
    let mut slot = None;
    assert!(
        write_once(c, li, &mut slot).await,
        "probe writes before the outage"
    );
    c.etcd.kill();
    let t0 = Instant::now();
    let (mut writes, mut checked_api) = (0, false);
    while t0.elapsed() < 3 * ttl {
        let ok = write_once(c, li, &mut slot).await;
        assert!(
            ok,
            "the primary stopped accepting writes {:.1} s into the etcd outage",
            t0.elapsed().as_secs_f64()
        );
        writes += 1;
        if !checked_api && t0.elapsed() > ttl {
            let (code, body) = c.get(li, "/failsafe").await.expect("GET /failsafe");
            assert_eq!(code, 200, "{body}");
            let v: Value = serde_json::from_str(&body).expect("JSON");
            assert_eq!(v.as_object().map(|o| o.len()), Some(3), "{v}");
            assert_eq!(gauge(c, li, "failsafe_mode_is_active").await, Some(1.0));
            checked_api = true;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(checked_api);
    println!(
        "primary acknowledged {writes} probe writes during {:.1} s without etcd",
        t0.elapsed().as_secs_f64()
    );
    let log = c.log_text(li);
    let rounds = log.matches(CONTINUE).count();
    println!("the leader was confirmed by every member {rounds} times");
    assert!(rounds >= 3, "{rounds} confirmations");
    c.etcd.restart().await;
    let back = c.wait_healthy(T).await;
    assert_eq!(c.nodes[back].name, leader, "same leader after the outage");
    assert_eq!(timeline(c, back).await, Some(tl), "same timeline");
}

/// Phase (b): etcd down with one replica (agent and postmaster) gone: the primary cannot
/// be confirmed and stops accepting writes before ttl.
async fn demotes_when_a_member_is_missing(c: &mut TestCluster, li: usize) {
    let ttl = Duration::from_secs(c.opts.ttl);
    let ri = (0..c.nodes.len()).find(|&i| i != li).expect("a replica");
    c.kill_agent(ri);
    c.kill_postmaster(ri);
    c.etcd.kill();
    let t0 = Instant::now();
    wait_for("the primary to stop accepting writes", T, || async {
        (c.writable(li).await != Some(true)).then_some(())
    })
    .await;
    let took = t0.elapsed();
    println!(
        "primary stopped accepting writes {:.1} s after etcd and {} went away",
        took.as_secs_f64(),
        c.nodes[ri].name
    );
    assert!(took < ttl, "demoted after {took:?}, ttl is {ttl:?}");
    wait_for("the old primary to run read-only", T, || async {
        (c.writable(li).await == Some(false)).then_some(())
    })
    .await;
    assert!(c
        .log_text(li)
        .contains("demoted self because DCS is not accessible and I was a leader"));
    c.etcd.restart().await;
    c.start_agent(ri);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failsafe_keeps_the_primary_only_while_every_member_confirms() {
    let mut c = TestCluster::start("failsafe", ClusterOpts::default()).await;
    let li = c.wait_healthy(T).await;
    enable_failsafe(&c, li).await;
    let s = c.sql(li).await.expect("leader SQL");
    s.batch_execute("CREATE TABLE failsafe_probe(at timestamptz)")
        .await
        .expect("probe table");
    let writer = Writer::start(&c).await;
    let t0 = Instant::now();
    survives_an_etcd_outage(&mut c, li).await;
    let report_gap = t0.elapsed();
    demotes_when_a_member_is_missing(&mut c, li).await;
    let li2 = c.wait_healthy(T).await;
    c.wait_leader_writable(T).await;
    let report = writer.stop().await;
    let gap = report.max_gap_between(t0, t0 + report_gap);
    println!(
        "writer: {} acknowledged, longest gap during the first outage {:.1} s, final leader {}",
        report.acked.len(),
        gap.as_secs_f64(),
        c.nodes[li2].name
    );
    assert!(gap < Duration::from_secs(3), "writer stalled {gap:?}");
}
