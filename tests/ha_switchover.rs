//! Issue: switchover without losing acknowledged writes, scheduled switchover, refusal for a
//! candidate that cannot receive the shutdown checkpoint, graceful stop (SIGTERM).

mod common;

use common::workload::{missing_writes, SplitBrainProbe, Writer};
use common::*;
use reqwest::Method;
use serde_json::{json, Value};
use std::time::Duration;

const T: Duration = Duration::from_secs(90);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn switchover_hands_over_without_losing_writes() {
    let mut c = TestCluster::start("sw", ClusterOpts::default()).await;
    let li = c.wait_healthy(T).await;
    let probe = SplitBrainProbe::start(&c);
    let writer = Writer::start(&c).await;
    let old = c.nodes[li].name.clone();
    let cand_i = (li + 1) % 3;
    let cand = c.nodes[cand_i].name.clone();

    // Unknown candidate → 412; missing leader → 400.
    let (code, body) = c
        .send(
            li,
            Method::POST,
            "/switchover",
            &json!({"leader": old, "candidate": "nosuch"}).to_string(),
        )
        .await;
    assert_eq!((code, body.as_str()), (412, "candidate does not exists"));
    let (code, _) = c
        .send(
            li,
            Method::POST,
            "/switchover",
            &json!({"candidate": cand}).to_string(),
        )
        .await;
    assert_eq!(code, 400);

    // Planned switchover under a continuous writer.
    let (code, body) = c
        .send(
            li,
            Method::POST,
            "/switchover",
            &json!({"leader": old, "candidate": cand}).to_string(),
        )
        .await;
    assert_eq!(code, 200, "{body}");
    assert_eq!(body, format!("Successfully switched over to \"{cand}\""));
    let li2 = c.wait_healthy(T).await;
    assert_eq!(c.nodes[li2].name, cand);
    // The old leader streams from the new one.
    wait_for("old leader streaming from the new leader", T, || async {
        let s = c.sql(li2).await?;
        let rows = s
            .query(
                "SELECT application_name FROM pg_stat_replication WHERE state = 'streaming'",
                &[],
            )
            .await
            .ok()?;
        rows.iter()
            .any(|r| r.get::<_, String>(0) == old)
            .then_some(())
    })
    .await;
    assert!(c.log_text(li).contains("switchover: demoting myself"));
    // A clean hand-over leaves nothing to rewind: the demoted primary's WAL receiver may reach
    // the new timeline before the new leader publishes it, which is no divergence.
    assert!(
        !c.log_text(li).contains("running pg_rewind"),
        "the demoted primary was rewound: {}",
        c.log_text(li)
    );

    // A candidate that cannot stream: the hand-over refuses before stopping anything (a
    // candidate that does not stream would get the shutdown checkpoint only from an archive,
    // once its segment is complete) and the old primary stays the leader.
    let blocked_i = (li2 + 1) % 3;
    let blocked = c.nodes[blocked_i].name.clone();
    let s = c.sql(blocked_i).await.expect("sql to candidate");
    s.batch_execute("ALTER SYSTEM SET primary_conninfo = 'host=127.0.0.1 port=1'")
        .await
        .unwrap();
    s.batch_execute("SELECT pg_reload_conf()").await.unwrap();
    wait_for("candidate's WAL receiver to stop", T, || async {
        let s = c.sql(blocked_i).await?;
        let n: i64 = s
            .query_one("SELECT count(*) FROM pg_stat_wal_receiver", &[])
            .await
            .ok()?
            .get(0);
        (n == 0).then_some(())
    })
    .await;
    let (code, body) = c
        .send(
            li2,
            Method::POST,
            "/switchover",
            &json!({"leader": cand, "candidate": blocked}).to_string(),
        )
        .await;
    assert_eq!(code, 503, "{body}");
    assert!(
        body.contains(&format!(
            "no candidate streams from this primary ({blocked})"
        )),
        "{body}"
    );
    let li3 = c.wait_leader_writable(T).await;
    assert_eq!(c.nodes[li3].name, cand, "the old primary stayed the leader");
    assert!(
        c.log_text(li2).contains("postgres was not stopped"),
        "the refusal is logged"
    );
    let s = c.sql(blocked_i).await.expect("sql to candidate");
    s.batch_execute("ALTER SYSTEM RESET primary_conninfo")
        .await
        .unwrap();
    s.batch_execute("SELECT pg_reload_conf()").await.unwrap();
    // Let it stream again (and report it) before it is picked as a switchover target.
    assert_eq!(c.wait_healthy(T).await, li3);
    wait_for(
        "the unblocked replica to publish a caught-up position",
        T,
        || async {
            let kv = c.etcd.get_prefix(&format!("/service/{}/", c.scope)).await;
            let optime: u64 = kv
                .iter()
                .find(|(k, _)| k.ends_with("/status"))
                .and_then(|(_, v)| serde_json::from_str::<Value>(v).ok())?["optime"]
                .as_u64()?;
            let m: Value = serde_json::from_str(
                &kv.iter()
                    .find(|(k, _)| k.ends_with(&format!("/members/{blocked}")))?
                    .1,
            )
            .ok()?;
            (optime.saturating_sub(m["xlog_location"].as_u64()?) <= 1_048_576).then_some(())
        },
    )
    .await;

    // Scheduled switchover: shown in /cluster, cancelled by DELETE, or run at its time.
    let at = (chrono::Utc::now() + chrono::Duration::seconds(60)).to_rfc3339();
    let (code, _) = c
        .send(
            li3,
            Method::POST,
            "/switchover",
            &json!({"leader": cand, "scheduled_at": at}).to_string(),
        )
        .await;
    assert_eq!(code, 202);
    let (_, cl) = c.get(li3, "/cluster").await.unwrap();
    let cl: Value = serde_json::from_str(&cl).unwrap();
    assert_eq!(cl["scheduled_switchover"]["from"], cand.as_str());
    let (code, body) = c.send(li3, Method::DELETE, "/switchover", "").await;
    assert_eq!((code, body.as_str()), (200, "scheduled switchover deleted"));
    let (code, _) = c.send(li3, Method::DELETE, "/switchover", "").await;
    assert_eq!(code, 404);
    let target = c.nodes[(li3 + 1) % 3].name.clone();
    let at = (chrono::Utc::now() + chrono::Duration::seconds(8)).to_rfc3339();
    let (code, _) = c
        .send(
            li3,
            Method::POST,
            "/switchover",
            &json!({"leader": cand, "candidate": target, "scheduled_at": at}).to_string(),
        )
        .await;
    assert_eq!(code, 202);
    assert_eq!(
        c.leader().await.as_deref(),
        Some(cand.as_str()),
        "not before its time"
    );
    wait_for("scheduled switchover to run", T, || async {
        (c.leader().await? == target).then_some(())
    })
    .await;
    let li4 = c.wait_healthy(T).await;

    // Graceful stop of the leader's agent: another member leads within seconds.
    c.term_agent(li4).await;
    let li5 = c.wait_leader_writable(T).await;
    assert_ne!(li5, li4);
    c.start_agent(li4);
    let li6 = c.wait_healthy(T).await;

    let report = writer.stop().await;
    assert!(
        report.acked.len() > 50,
        "the writer made progress: {report:?}"
    );
    let missing = missing_writes(&c, li6, &report.acked).await;
    assert!(missing.is_empty(), "acknowledged writes lost: {missing:?}");
    let violations = probe.stop().await;
    assert!(
        violations.is_empty(),
        "two writable primaries: {violations:?}"
    );
}
