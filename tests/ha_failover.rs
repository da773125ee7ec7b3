//! Issue: failover after kill -9 of the leader (agent + postmaster), rejoin by pg_rewind or
//! re-clone, and demotion when etcd is unreachable.

mod common;

use common::workload::{SplitBrainProbe, Writer};
use common::*;
use std::time::{Duration, Instant};

const T: Duration = Duration::from_secs(120);

async fn crash_leader_and_rejoin(tag: &str, use_pg_rewind: bool, expect_log: &str) {
    let opts = ClusterOpts {
        use_pg_rewind,
        ..ClusterOpts::default()
    };
    let mut c = TestCluster::start(tag, opts).await;
    let li = c.wait_healthy(T).await;
    let probe = SplitBrainProbe::start(&c);
    let writer = Writer::start(&c).await;
    wait_for("some writes", T, || async {
        let n: i64 = c
            .sql(li)
            .await?
            .query_one("SELECT count(*) FROM writes", &[])
            .await
            .ok()?
            .get(0);
        (n > 20).then_some(())
    })
    .await;
    let old = c.nodes[li].name.clone();
    c.kill_agent(li);
    c.kill_postmaster(li);
    let new = wait_for("a new leader", T, || async {
        c.leader().await.filter(|l| *l != old)
    })
    .await;
    let ni = c.index(&new);
    let before = c.sql(ni).await;
    assert!(before.is_some());
    // Writes resume through the multi-host DSN on the new leader.
    wait_for("writes on the new leader", T, || async {
        let s = c.sql(ni).await?;
        let n: i64 = s
            .query_one("SELECT count(*) FROM writes", &[])
            .await
            .ok()?
            .get(0);
        let tl: i64 = s
            .query_one(
                "SELECT timeline_id::bigint FROM pg_control_checkpoint()",
                &[],
            )
            .await
            .ok()?
            .get(0);
        (n > 0 && tl >= 2).then_some(())
    })
    .await;
    let count_now: i64 = c
        .sql(ni)
        .await
        .unwrap()
        .query_one("SELECT count(*) FROM writes", &[])
        .await
        .unwrap()
        .get(0);
    wait_for("writer progress after failover", T, || async {
        let n: i64 = c
            .sql(ni)
            .await?
            .query_one("SELECT count(*) FROM writes", &[])
            .await
            .ok()?
            .get(0);
        (n > count_now + 20).then_some(())
    })
    .await;
    // Exactly one leader among the survivors.
    let others: Vec<usize> = (0..3).filter(|&i| i != li && i != ni).collect();
    for i in others {
        assert_eq!(c.code(i, "/primary").await, 503);
    }
    // The old member comes back and rejoins as a streaming replica.
    c.start_agent(li);
    if use_pg_rewind {
        crash_right_after_rewind(&c, li).await;
    }
    let li2 = c.wait_healthy(T).await;
    assert_eq!(c.nodes[li2].name, new);
    assert!(
        c.log_text(li).contains(expect_log),
        "expected '{expect_log}' in the rejoin log"
    );
    let report = writer.stop().await;
    assert!(!report.acked.is_empty());
    let violations = probe.stop().await;
    assert!(
        violations.is_empty(),
        "two writable primaries: {violations:?}"
    );
}

/// The postmaster's pid from `postmaster.pid`.
fn postmaster_pid(c: &TestCluster, i: usize) -> Option<String> {
    let text = std::fs::read_to_string(c.nodes[i].data_dir.join("postmaster.pid")).ok()?;
    text.lines().next().map(str::to_string)
}

/// The rewound member's postmaster dies right after the rewind, before a restartpoint
/// moves its checkpoint to the new timeline (its minimum recovery point is already there).
/// It must start as a replica and stream again within 30 s, not loop on pg_rewind.
async fn crash_right_after_rewind(c: &TestCluster, i: usize) {
    let done = "rewound from";
    wait_for("the old leader to finish its pg_rewind", T, || async {
        c.log_text(i).contains(done).then_some(())
    })
    .await;
    let rewinds = |c: &TestCluster| c.log_text(i).matches("running pg_rewind from").count();
    let before = rewinds(c);
    let killed_pid = postmaster_pid(c, i);
    c.kill_postmaster(i);
    let killed = Instant::now();
    wait_for(
        "the rewound member to stream again after its postmaster died",
        Duration::from_secs(30),
        || async {
            let (_, body) = c.get(i, "/patroni").await?;
            let v: serde_json::Value = serde_json::from_str(&body).ok()?;
            let restarted = postmaster_pid(c, i).is_some_and(|p| Some(&p) != killed_pid.as_ref());
            (restarted && v["replication_state"] == "streaming").then_some(())
        },
    )
    .await;
    println!(
        "rewound member streaming again {:.1} s after its postmaster was killed",
        killed.elapsed().as_secs_f64()
    );
    assert_eq!(rewinds(c), before, "pg_rewind ran again after the crash");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill9_leader_fails_over_and_old_leader_rejoins_with_pg_rewind() {
    crash_leader_and_rejoin("rw", true, "running pg_rewind from").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill9_leader_fails_over_and_old_leader_rejoins_by_reclone() {
    crash_leader_and_rejoin("rc", false, "reinitializing due to diverged timelines").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn etcd_outage_demotes_primary_before_ttl_and_recovers() {
    let mut c = TestCluster::start("dcs", ClusterOpts::default()).await;
    let li = c.wait_healthy(T).await;
    let probe = SplitBrainProbe::start(&c);
    let ttl = Duration::from_secs(c.opts.ttl);
    c.etcd.kill();
    let t0 = Instant::now();
    // "Stops accepting writes": stopped (demotion in progress) or back in recovery.
    let writable = || c.writable(li);
    wait_for("the primary to stop accepting writes", T, || async {
        (writable().await != Some(true)).then_some(())
    })
    .await;
    assert!(
        t0.elapsed() < ttl,
        "demoted after {:?}, ttl is {ttl:?}",
        t0.elapsed()
    );
    wait_for(
        "the old primary to run as a read-only replica",
        T,
        || async { (writable().await == Some(false)).then_some(()) },
    )
    .await;
    // Replicas keep running read-only.
    for i in (0..3).filter(|&i| i != li) {
        let s = c.sql(i).await.expect("replica still answers");
        let ro: bool = s
            .query_one("SELECT pg_is_in_recovery()", &[])
            .await
            .unwrap()
            .get(0);
        assert!(ro);
    }
    c.etcd.restart().await;
    let li2 = c.wait_leader_writable(T).await;
    let s = c.sql(li2).await.unwrap();
    s.batch_execute(
        "CREATE TABLE IF NOT EXISTS after_outage(x int); INSERT INTO after_outage VALUES (1)",
    )
    .await
    .unwrap();
    c.wait_healthy(T).await;
    let violations = probe.stop().await;
    assert!(
        violations.is_empty(),
        "two writable primaries: {violations:?}"
    );
}
