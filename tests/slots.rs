//! Issue #15 items 1–2: permanent physical and logical slots (created on the leader, the
//! logical one copied to and advanced on the replicas so that a consumer continues on the
//! new leader after a switchover and after a kill -9 failover), stale member slots dropped
//! on the demoted primary, slots created by hand dropped unless `ignore_slots` matches them,
//! slots in the desired state (plan, reconciler, drift).

mod common;

use common::git::{commit, start_reconciler};
use common::*;
use reqwest::Method;
use serde_json::json;
use std::process::Command;
use std::time::{Duration, Instant};

const T: Duration = Duration::from_secs(90);

/// `(slot_name, slot_type)` of the non-temporary slots of member `i`.
async fn slots(c: &TestCluster, i: usize) -> Option<Vec<(String, String)>> {
    let s = c.sql(i).await?;
    let rows = s
        .query(
            "SELECT slot_name::text, slot_type FROM pg_replication_slots \
             WHERE NOT temporary ORDER BY 1",
            &[],
        )
        .await
        .ok()?;
    Some(rows.iter().map(|r| (r.get(0), r.get(1))).collect())
}

async fn has_slot(c: &TestCluster, i: usize, name: &str, kind: &str) -> bool {
    slots(c, i)
        .await
        .is_some_and(|v| v.iter().any(|(n, k)| n == name && k == kind))
}

/// `confirmed_flush_lsn` of a logical slot on member `i`, in bytes.
async fn confirmed(c: &TestCluster, i: usize, slot: &str) -> Option<u64> {
    let s = c.sql(i).await?;
    let row = s
        .query_one(
            "SELECT (confirmed_flush_lsn - '0/0')::bigint FROM pg_replication_slots \
             WHERE slot_name = $1",
            &[&slot],
        )
        .await
        .ok()?;
    row.get::<_, Option<i64>>(0).map(|v| v as u64)
}

/// The rows decoded (and consumed) from `perm_logi` on member `i`.
async fn consume(c: &TestCluster, i: usize) -> Vec<String> {
    let s = c.sql(i).await.expect("session");
    s.query(
        "SELECT data FROM pg_logical_slot_get_changes('perm_logi', NULL, NULL) \
         WHERE data LIKE 'table public.t:%'",
        &[],
    )
    .await
    .expect("pg_logical_slot_get_changes")
    .iter()
    .map(|r| r.get(0))
    .collect()
}

async fn exec(c: &TestCluster, i: usize, sql: &str) {
    let s = c.sql(i).await.expect("session");
    s.batch_execute(sql)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn permanent_slots_follow_the_leader_and_stale_slots_are_dropped() {
    let opts = ClusterOpts {
        dcs_parameters_extra: "        wal_level: logical\n".to_string(),
        ..ClusterOpts::default()
    };
    let mut c = TestCluster::start("slots", opts).await;
    let li = c.wait_healthy(T).await;
    exec(&c, li, "CREATE TABLE t (id int PRIMARY KEY)").await;

    // PATCH /config adds a physical and a logical permanent slot: on the leader within a
    // loop or two (loop_wait is 1 s).
    let started = Instant::now();
    c.patch_config(
        li,
        &json!({"slots": {
            "perm_phys": {"type": "physical"},
            "perm_logi": {"type": "logical", "database": "postgres", "plugin": "test_decoding"}
        }})
        .to_string(),
    )
    .await;
    wait_for("both permanent slots on the leader", T, || async {
        (has_slot(&c, li, "perm_phys", "physical").await
            && has_slot(&c, li, "perm_logi", "logical").await)
            .then_some(())
    })
    .await;
    let took = started.elapsed();
    println!("permanent slots on the leader {took:?} after the PATCH");
    assert!(
        took < Duration::from_secs(15),
        "slots created only after {took:?} (a loop or two expected)"
    );

    // The replicas get both: the physical one created, the logical one copied.
    let replicas: Vec<usize> = (0..3).filter(|i| *i != li).collect();
    for &r in &replicas {
        wait_for("permanent slots on a replica", T, || async {
            (has_slot(&c, r, "perm_phys", "physical").await
                && has_slot(&c, r, "perm_logi", "logical").await)
                .then_some(())
        })
        .await;
    }
    let status = c.key_json("status").await.expect("status key");
    assert!(status["slots"]["perm_logi"].is_u64(), "{status}");
    assert!(status["slots"]["perm_phys"].is_u64(), "{status}");

    // A consumer reads rows 1 and 2 on the old leader.
    exec(&c, li, "INSERT INTO t VALUES (1), (2)").await;
    let before = consume(&c, li).await;
    assert_eq!(before.len(), 2, "{before:?}");
    let pos = confirmed(&c, li, "perm_logi").await.expect("position");
    let cand_i = replicas[0];
    wait_for(
        "the candidate's copy advanced to the consumer's position",
        T,
        || async {
            let published = c.key_json("status").await?["slots"]["perm_logi"].as_u64()?;
            let there = confirmed(&c, cand_i, "perm_logi").await?;
            (published >= pos && there >= pos).then_some(())
        },
    )
    .await;

    // Switchover.
    let old = c.nodes[li].name.clone();
    let cand = c.nodes[cand_i].name.clone();
    let (code, body) = c
        .send(
            li,
            Method::POST,
            "/switchover",
            &json!({"leader": old, "candidate": cand}).to_string(),
        )
        .await;
    assert_eq!(code, 200, "{body}");
    let li2 = c.wait_healthy(T).await;
    assert_eq!(c.nodes[li2].name, cand);
    assert!(has_slot(&c, li2, "perm_phys", "physical").await);
    assert!(has_slot(&c, li2, "perm_logi", "logical").await);

    // The consumer continues on the new leader: row 3, not rows 1 and 2 again.
    exec(&c, li2, "INSERT INTO t VALUES (3)").await;
    let after = consume(&c, li2).await;
    assert_eq!(
        after,
        vec!["table public.t: INSERT: id[integer]:3".to_string()],
        "changes on the new leader"
    );

    // The demoted primary holds no stale member slot (issue #15's defect), only the
    // permanent ones.
    wait_for("no stale member slot on the demoted primary", T, || async {
        let s = slots(&c, li).await?;
        let names: Vec<&str> = s.iter().map(|(n, _)| n.as_str()).collect();
        (names == ["perm_logi", "perm_phys"]).then_some(())
    })
    .await;
    assert!(c
        .log_text(li)
        .contains("Dropped unknown replication slot '"));

    // Slots created by hand: dropped on the leader and on a replica unless ignored.
    c.patch_config(
        li2,
        &json!({"ignore_slots": [{"name": "hand_kept"}]}).to_string(),
    )
    .await;
    let other = (0..3).find(|i| *i != li2).expect("a replica");
    wait_for("ignore_slots in the DCS", T, || async {
        let v = c.get(li2, "/config").await?.1;
        v.contains("hand_kept").then_some(())
    })
    .await;
    // A cycle that began before the change may still list slots with the old config: wait
    // for one that read the DCS after it.
    c.wait_cycle_after_now(li2).await;
    exec(
        &c,
        li2,
        "SELECT pg_create_physical_replication_slot('hand_drop'); \
         SELECT pg_create_physical_replication_slot('hand_kept')",
    )
    .await;
    exec(
        &c,
        other,
        "SELECT pg_create_physical_replication_slot('hand_replica')",
    )
    .await;
    wait_for("slots made by hand dropped", T, || async {
        let l = slots(&c, li2).await?;
        let r = slots(&c, other).await?;
        let gone =
            !l.iter().any(|(n, _)| n == "hand_drop") && !r.iter().any(|(n, _)| n == "hand_replica");
        gone.then_some(())
    })
    .await;
    // Several loops later the ignored one is still there.
    let seen = c.log_text(li2).matches("no action.").count();
    wait_for("three more loops", T, || async {
        (c.log_text(li2).matches("no action.").count() >= seen + 3).then_some(())
    })
    .await;
    assert!(has_slot(&c, li2, "hand_kept", "physical").await);

    // Failover (kill -9 of the leader's agent and postmaster): once the consumer's position
    // is published and reached by the replicas' copies, the new leader continues from it.
    exec(&c, li2, "INSERT INTO t VALUES (4)").await;
    assert_eq!(consume(&c, li2).await, vec![row(4)]);
    let pos = confirmed(&c, li2, "perm_logi").await.expect("position");
    for r in (0..3).filter(|i| *i != li2) {
        wait_for("both copies advanced before the failover", T, || async {
            let published = c.key_json("status").await?["slots"]["perm_logi"].as_u64()?;
            let there = confirmed(&c, r, "perm_logi").await?;
            (published >= pos && there >= pos).then_some(())
        })
        .await;
    }
    c.kill_agent(li2);
    c.kill_postmaster(li2);
    let li3 = c.wait_leader_writable(T).await;
    assert_ne!(li3, li2);
    exec(&c, li3, "INSERT INTO t VALUES (5)").await;
    assert_eq!(consume(&c, li3).await, vec![row(5)], "after the failover");

    desired_state_through_the_reconciler(&c, li3).await;
}

fn row(id: i32) -> String {
    format!("table public.t: INSERT: id[integer]:{id}")
}

/// A git commit adds a slot (plan shows it, the reconciler applies it); a slot added by
/// `PATCH /config` behind git's back is drift.
async fn desired_state_through_the_reconciler(c: &TestCluster, li: usize) {
    let dir = temp_dir("slotsrepo");
    git2::Repository::init(&dir).unwrap();
    std::fs::write(
        dir.join("patronus.yaml"),
        format!(
            "dcs:\n  etcd3:\n    hosts: [\"{}\"]\n  namespace: /service\ndrift:\n  default: alert\n",
            c.etcd.endpoint()
        ),
    )
    .unwrap();
    let file = dir.join(format!("clusters/{}/cluster.yaml", c.scope));
    std::fs::create_dir_all(file.parent().unwrap()).unwrap();
    std::fs::write(
        &file,
        "config:\n  slots:\n    perm_phys: {type: physical}\n    perm_logi: {type: logical, \
         database: postgres, plugin: test_decoding}\n    git_phys: {type: physical}\n  \
         ignore_slots:\n    - name: hand_kept\n",
    )
    .unwrap();
    commit(dir.as_path(), "a physical slot for the archiver");
    let plan = Command::new(env!("CARGO_BIN_EXE_patronus"))
        .args(["plan", "--repo"])
        .arg(&dir)
        .env("PATRONUS_MIN_TTL", "5")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&plan.stdout).to_string();
    assert_eq!(plan.status.code(), Some(2), "{text}");
    assert!(text.contains("added git_phys: physical"), "{text}");
    let status_port = free_port();
    let _daemon = start_reconciler(&c.dir, &dir, status_port);
    wait_for("the slot from git on the leader", T, || async {
        has_slot(c, li, "git_phys", "physical").await.then_some(())
    })
    .await;
    c.patch_config(
        li,
        &json!({"slots": {"behind_git": {"type": "physical"}}}).to_string(),
    )
    .await;
    wait_for(
        "a drift event for the slot added behind git's back",
        T,
        || async {
            let url = format!("http://127.0.0.1:{status_port}/status");
            let (_, body) = http_get_url(&url).await?;
            let v: serde_json::Value = serde_json::from_str(&body).ok()?;
            (v["clusters"][&c.scope]["drift_events"].as_u64()? >= 1).then_some(())
        },
    )
    .await;
    let _ = std::fs::remove_dir_all(&dir);
}
