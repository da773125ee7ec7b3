//! Issue: HA foundation — bootstrap of a 3-member cluster on real etcd + PostgreSQL, the REST
//! API, config changes through `PATCH /config`, and agent restarts.

mod common;

use common::*;
use serde_json::Value;
use std::time::Duration;

const BOOT: Duration = Duration::from_secs(90);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_members_bootstrap_stream_and_serve_patroni_api() {
    let opts = ClusterOpts {
        rest_auth: Some(("admin".into(), "s3cret".into())),
        tags: vec![
            String::new(),
            "  dc: west\n".into(),
            "  noloadbalance: true\n".into(),
        ],
        ..ClusterOpts::default()
    };
    let mut c = TestCluster::start("boot", opts).await;
    let li = c.wait_healthy(BOOT).await;
    let leader = c.nodes[li].name.clone();

    // Both other members stream from the leader: pg_stat_replication and GET /cluster agree.
    let names: Vec<String> = c
        .nodes
        .iter()
        .filter(|n| n.name != leader)
        .map(|n| n.name.clone())
        .collect();
    let rows = wait_for("two streaming standbys in pg_stat_replication", BOOT, || async {
        let s = c.sql(li).await?;
        let rows = s
            .query("SELECT application_name FROM pg_stat_replication WHERE state = 'streaming' ORDER BY 1", &[])
            .await
            .ok()?;
        let got: Vec<String> = rows.iter().map(|r| r.get(0)).collect();
        (got == names).then_some(got)
    })
    .await;
    assert_eq!(rows, names);
    // /cluster reads the member keys, which follow each member's local status by one put.
    let roles = wait_for("/cluster showing the streaming replicas", BOOT, || async {
        let (code, body) = c.get(li, "/cluster").await?;
        assert_eq!(code, 200);
        let cl: Value = serde_json::from_str(&body).ok()?;
        let roles: Vec<(String, String, String)> = cl["members"]
            .as_array()?
            .iter()
            .map(|m| {
                (
                    m["name"].as_str().unwrap_or_default().into(),
                    m["role"].as_str().unwrap_or_default().into(),
                    m["state"].as_str().unwrap_or_default().into(),
                )
            })
            .collect();
        let streaming = roles.iter().filter(|(_, _, s)| s == "streaming").count();
        (roles.len() == 3 && streaming == 2).then_some(roles)
    })
    .await;
    for (name, role, state) in &roles {
        if *name == leader {
            assert_eq!((role.as_str(), state.as_str()), ("leader", "running"));
        } else {
            assert_eq!(
                (role.as_str(), state.as_str()),
                ("replica", "streaming"),
                "{roles:?}"
            );
        }
    }

    // DCS keys and JSON as Patroni's.
    let prefix = format!("/service/{}/", c.scope);
    let kvs = c.etcd.get_prefix(&prefix).await;
    let keys: Vec<String> = kvs
        .iter()
        .map(|(k, _)| k.trim_start_matches(&prefix).to_string())
        .collect();
    for k in [
        "config",
        "history",
        "initialize",
        "leader",
        "members/m1",
        "members/m2",
        "members/m3",
        "status",
    ] {
        assert!(keys.contains(&k.to_string()), "missing key {k} in {keys:?}");
    }
    let get = |k: &str| {
        kvs.iter()
            .find(|(kk, _)| kk.ends_with(k))
            .map(|(_, v)| v.clone())
            .unwrap()
    };
    assert_eq!(
        get("/leader"),
        leader,
        "leader key holds the bare member name"
    );
    assert!(
        get("/initialize").parse::<u64>().is_ok(),
        "initialize holds the sysid"
    );
    assert_eq!(get("/history"), "[]");
    let status: Value = serde_json::from_str(&get("/status")).unwrap();
    assert!(status["optime"].as_u64().unwrap() > 0);
    let m: Value = serde_json::from_str(&get(&format!("/members/{leader}"))).unwrap();
    for f in [
        "conn_url",
        "api_url",
        "state",
        "role",
        "version",
        "xlog_location",
        "timeline",
    ] {
        assert!(m.get(f).is_some(), "member key lacks {f}: {m}");
    }
    assert_eq!(m["role"], "primary");
    let replica_key: Value = serde_json::from_str(&get(&format!("/members/{}", names[0]))).unwrap();
    assert_eq!(replica_key["role"], "replica");
    assert_eq!(replica_key["replication_state"], "streaming");

    // Health endpoints: /primary only on the leader, /replica only on replicas, /health everywhere.
    for i in 0..3 {
        let is_leader = i == li;
        assert_eq!(
            c.code(i, "/primary").await,
            if is_leader { 200 } else { 503 },
            "/primary on {}",
            c.nodes[i].name
        );
        assert_eq!(
            c.code(i, "/health").await,
            200,
            "/health on {}: {:?}",
            c.nodes[i].name,
            c.get(i, "/patroni").await
        );
        let noloadbalance = c.nodes[i].name == "m3";
        let ro = if noloadbalance && !is_leader {
            503
        } else {
            200
        };
        assert_eq!(
            c.code(i, "/read-only").await,
            ro,
            "/read-only on {}",
            c.nodes[i].name
        );
        let want = if is_leader || noloadbalance { 503 } else { 200 };
        assert_eq!(
            c.code(i, "/replica").await,
            want,
            "/replica on {}",
            c.nodes[i].name
        );
    }
    let west = c.index("m2");
    if west != li {
        assert_eq!(c.code(west, "/replica?tag_dc=west").await, 200);
        assert_eq!(c.code(west, "/replica?tag_dc=east").await, 503);
        assert_eq!(c.code(west, "/replica?lag=10MB").await, 200);
        let head = reqwest::Client::new()
            .head(format!(
                "http://127.0.0.1:{}/replica",
                c.nodes[west].api_port
            ))
            .send()
            .await
            .unwrap();
        assert_eq!(head.status().as_u16(), 200);
        assert!(head.text().await.unwrap().is_empty());
    }

    // PATCH /config: auth required, malformed JSON → 400, a work_mem change reaches all members.
    let url = format!("http://127.0.0.1:{}/config", c.nodes[(li + 1) % 3].api_port);
    let http = reqwest::Client::new();
    let r = http
        .patch(&url)
        .body(r#"{"postgresql":{"parameters":{"work_mem":"7MB"}}}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 401);
    let r = http
        .patch(&url)
        .basic_auth("admin", Some("wrong"))
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 401);
    let r = http
        .patch(&url)
        .basic_auth("admin", Some("s3cret"))
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 400);
    let r = http
        .patch(&url)
        .basic_auth("admin", Some("s3cret"))
        .body(r#"{"postgresql":{"parameters":{"work_mem":"7MB"}}}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["postgresql"]["parameters"]["work_mem"], "7MB");
    assert_eq!(
        body["postgresql"]["parameters"]["shared_buffers"], "16MB",
        "PATCH merges, keeps other keys"
    );
    for i in 0..3 {
        wait_for("work_mem = 7MB on every member", BOOT, || async {
            (c.query_one(i, "SHOW work_mem").await? == "7MB").then_some(())
        })
        .await;
    }
    // null deletes the key again.
    let r = http
        .patch(&url)
        .basic_auth("admin", Some("s3cret"))
        .body(r#"{"postgresql":{"parameters":{"work_mem":null}}}"#)
        .send()
        .await
        .unwrap();
    let body: Value = r.json().await.unwrap();
    assert!(body["postgresql"]["parameters"].get("work_mem").is_none());
    for i in 0..3 {
        wait_for("work_mem back to the default", BOOT, || async {
            (c.query_one(i, "SHOW work_mem").await? == "4MB").then_some(())
        })
        .await;
    }

    // Restarting a replica's agent (SIGTERM stops its PostgreSQL) leaves it streaming again.
    let ri = (li + 1) % 3;
    c.term_agent(ri).await;
    c.start_agent(ri);
    let li2 = c.wait_healthy(BOOT).await;
    assert_eq!(li2, li, "a replica restart does not move the leader");

    // Restarting the leader's agent with PostgreSQL still running keeps the same leader.
    c.kill_agent(li);
    assert_eq!(
        c.code(li, "/health").await,
        0,
        "the killed agent no longer answers"
    );
    c.start_agent(li);
    let li3 = c.wait_healthy(BOOT).await;
    assert_eq!(
        c.nodes[li3].name, leader,
        "the leader keeps the lock across an agent restart"
    );
    assert_eq!(c.leader().await.as_deref(), Some(leader.as_str()));
}
