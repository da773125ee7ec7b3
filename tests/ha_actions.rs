//! Issue: REST actions (`/restart`, `/reload`, `/reinitialize`) and crash recovery of the
//! leader's PostgreSQL while its agent lives.

mod common;

use common::workload::SplitBrainProbe;
use common::*;
use reqwest::Method;
use serde_json::Value;
use std::time::Duration;

const T: Duration = Duration::from_secs(90);

async fn start_time(c: &TestCluster, i: usize) -> Option<String> {
    c.query_one(i, "SELECT pg_postmaster_start_time()::text")
        .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restart_reload_reinitialize_and_crash_recovery() {
    let c = TestCluster::start(
        "act",
        ClusterOpts {
            rest_auth: Some(("u".into(), "p".into())),
            ..ClusterOpts::default()
        },
    )
    .await;
    let li = c.wait_healthy(T).await;
    let probe = SplitBrainProbe::start(&c);
    let ri = (li + 1) % 3;

    // POST /restart on a replica: a new postmaster, still streaming.
    let before = start_time(&c, ri).await.expect("replica start time");
    // The replica may still be finishing its clone task: Patroni answers 503 "… already in
    // progress" then, and a client retries.
    let (code, body) = wait_for("restart accepted", T, || async {
        let (code, body) = c.send(ri, Method::POST, "/restart", "").await;
        (!(code == 503 && body.contains("in progress"))).then_some((code, body))
    })
    .await;
    assert_eq!((code, body.as_str()), (200, "restarted successfully"));
    assert_ne!(start_time(&c, ri).await.expect("start time"), before);
    // Role filter that does not match.
    let (code, _) = c
        .send(ri, Method::POST, "/restart", r#"{"role":"primary"}"#)
        .await;
    assert_eq!(code, 503);
    // POST /restart on the leader keeps the lock.
    let (code, _) = c.send(li, Method::POST, "/restart", "{}").await;
    assert_eq!(code, 200);
    assert_eq!(c.wait_healthy(T).await, li);

    // POST /reload answers 202 and re-reads the file (new tag shows up in /patroni).
    let cfg = std::fs::read_to_string(&c.nodes[ri].config).unwrap();
    std::fs::write(&c.nodes[ri].config, format!("{cfg}  reloaded: yes\n")).unwrap();
    let (code, body) = c.send(ri, Method::POST, "/reload", "").await;
    assert_eq!((code, body.as_str()), (202, "reload scheduled"));
    wait_for("the reloaded tag", T, || async {
        let (_, b) = c.get(ri, "/patroni").await?;
        let v: Value = serde_json::from_str(&b).ok()?;
        (v["tags"]["reloaded"] == "yes").then_some(())
    })
    .await;
    // Unauthenticated action → 401.
    let r = reqwest::Client::new()
        .post(format!("http://127.0.0.1:{}/restart", c.nodes[ri].api_port))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 401);

    // POST /reinitialize: refused on the leader, re-clones a replica.
    let (code, body) = c.send(li, Method::POST, "/reinitialize", "").await;
    assert_eq!(
        (code, body.as_str()),
        (503, "I am the leader, can not reinitialize")
    );
    let marker = c.nodes[ri].data_dir.join("marker-before-reinit");
    std::fs::write(&marker, "x").unwrap();
    let (code, body) = c
        .send(ri, Method::POST, "/reinitialize", r#"{"force": true}"#)
        .await;
    assert_eq!((code, body.as_str()), (200, "reinitialize started"));
    wait_for("the re-clone to finish", T, || async {
        (!marker.exists() && c.log_text(ri).contains("reinitialized")).then_some(())
    })
    .await;
    assert_eq!(c.wait_healthy(T).await, li);

    // The leader's postmaster crashes while its agent lives: restarted in place as primary,
    // same leader, same timeline.
    let tl_before = c
        .query_one(li, "SELECT timeline_id::text FROM pg_control_checkpoint()")
        .await
        .unwrap();
    c.kill_postmaster(li);
    wait_for("primary restarted after crash", T, || async {
        let s = c.sql(li).await?;
        let ro: bool = s
            .query_one("SELECT pg_is_in_recovery()", &[])
            .await
            .ok()?
            .get(0);
        (!ro).then_some(())
    })
    .await;
    assert!(c.log_text(li).contains("starting primary after failure"));
    assert_eq!(c.leader().await.as_deref(), Some(c.nodes[li].name.as_str()));
    let tl_after = c
        .query_one(li, "SELECT timeline_id::text FROM pg_control_checkpoint()")
        .await
        .unwrap();
    assert_eq!(
        tl_before, tl_after,
        "no timeline bump for an in-place crash recovery"
    );
    c.wait_healthy(T).await;
    let violations = probe.stop().await;
    assert!(
        violations.is_empty(),
        "two writable primaries: {violations:?}"
    );
}
