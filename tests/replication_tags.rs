//! Issue #15 items 3–4 on one four-member cluster (real etcd, PostgreSQL, patronus):
//! * `clonefrom`: the members created after the replica `m2` (tagged `clonefrom`) are
//!   cloned from it, not from the leader;
//! * `replicatefrom`: `m3` streams from `m2` (which keeps its slot; the leader keeps none),
//!   moves to the leader when `m2` stops, and back when `m2` returns;
//! * `nostream`: `m4` has no WAL receiver and no slot anywhere, and replays the rows the
//!   leader archives through the `restore_command` of the dynamic
//!   `postgresql.recovery_conf`.

mod common;

use common::*;
use std::time::Duration;

const T: Duration = Duration::from_secs(90);

/// Names of the non-temporary slots of member `i` (None when unreachable).
async fn slot_names(c: &TestCluster, i: usize) -> Option<Vec<String>> {
    let s = c.sql(i).await?;
    let rows = s
        .query(
            "SELECT slot_name::text FROM pg_replication_slots WHERE NOT temporary ORDER BY 1",
            &[],
        )
        .await
        .ok()?;
    Some(rows.iter().map(|r| r.get(0)).collect())
}

/// `(status, sender_port)` of member `i`'s WAL receiver; Some(None) when it has none.
async fn wal_receiver(c: &TestCluster, i: usize) -> Option<Option<(String, i32)>> {
    let s = c.sql(i).await?;
    let rows = s
        .query("SELECT status, sender_port FROM pg_stat_wal_receiver", &[])
        .await
        .ok()?;
    Some(rows.first().map(|r| (r.get(0), r.get(1))))
}

/// Waits until member `i` streams from member `from`.
async fn wait_streaming_from(c: &TestCluster, i: usize, from: usize) {
    let port = i32::from(c.nodes[from].pg_port);
    let what = format!("{} streaming from {}", c.nodes[i].name, c.nodes[from].name);
    wait_for(&what, T, || async {
        match wal_receiver(c, i).await? {
            Some((status, p)) if status == "streaming" && p == port => Some(()),
            _ => None,
        }
    })
    .await;
}

async fn has_slot(c: &TestCluster, i: usize, name: &str) -> bool {
    slot_names(c, i)
        .await
        .is_some_and(|v| v.iter().any(|s| s == name))
}

/// Waits until member `i`'s agent log contains `text`.
async fn wait_log(c: &TestCluster, i: usize, text: &str) {
    let what = format!("'{text}' in the log of {}", c.nodes[i].name);
    wait_for(&what, T, || async {
        c.log_text(i).contains(text).then_some(())
    })
    .await;
}

/// A directory removed when the test ends (declared before the cluster, so removed after it).
struct RemovedOnDrop(std::path::PathBuf);

impl Drop for RemovedOnDrop {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nostream_replicatefrom_and_clonefrom_act() {
    // The archive: segments appear there whole (copied, then renamed).
    let archive = RemovedOnDrop(temp_dir("tags-archive"));
    let archive = &archive.0;
    let restore = format!("cp {}/%f %p", archive.display());
    let opts = ClusterOpts {
        members: 4,
        start_agents: Some(1),
        tags: vec![
            String::new(),
            "  clonefrom: true\n".into(),
            "  replicatefrom: m2\n".into(),
            "  nostream: true\n".into(),
        ],
        // Archiving on the leader; the replicas' restore_command comes from the dynamic
        // postgresql.recovery_conf (a sibling of `parameters` under bootstrap.dcs).
        dcs_parameters_extra: format!(
            "        archive_mode: 'on'\n        archive_command: 'cp %p {a}/%f.tmp && mv {a}/%f.tmp {a}/%f'\n      recovery_conf:\n        restore_command: '{restore}'\n",
            a = archive.display()
        ),
        ..ClusterOpts::default()
    };
    let mut c = TestCluster::start("tags", opts).await;
    let li = c.wait_leader_writable(T).await;
    assert_eq!(li, 0, "m1 is the only member started");
    c.start_agent(1);
    wait_streaming_from(&c, 1, 0).await;
    wait_log(&c, 1, "trying to bootstrap from leader 'm1'").await;
    // The new members choose their source from the member keys: m2's must say running.
    wait_for("m2's member key says running", T, || async {
        let m = c.key_json("members/m2").await?;
        (m["state"] == "running").then_some(())
    })
    .await;
    c.start_agent(2);
    c.start_agent(3);

    // clonefrom: both new members are cloned from m2, the running replica tagged clonefrom.
    for i in [2, 3] {
        wait_log(&c, i, "trying to bootstrap from replica 'm2'").await;
        wait_log(&c, i, "replica has been created using basebackup from m2").await;
    }

    // replicatefrom: m3 streams from m2; its slot is on m2, not on the leader.
    wait_streaming_from(&c, 2, 1).await;
    wait_for("slot m3 on m2", T, || async {
        has_slot(&c, 1, "m3").await.then_some(())
    })
    .await;
    let leader_slots = slot_names(&c, 0).await.expect("leader slots");
    assert!(
        leader_slots.contains(&"m2".to_string()) && !leader_slots.contains(&"m3".to_string()),
        "the leader keeps a slot for m2 only: {leader_slots:?}"
    );

    // nostream: m4 replays from the archive only: no WAL receiver, no slot anywhere.
    wait_for("m4 running in recovery", T, || async {
        (!c.writable(3).await?).then_some(())
    })
    .await;
    assert_eq!(
        c.query_one(3, "SHOW restore_command").await.as_deref(),
        Some(restore.as_str()),
        "the dynamic recovery_conf is rendered"
    );
    let leader = c.sql(0).await.expect("leader session");
    leader
        .batch_execute("CREATE TABLE tagged (v text); INSERT INTO tagged VALUES ('archived')")
        .await
        .expect("write on the leader");
    leader
        .batch_execute("SELECT pg_switch_wal()")
        .await
        .expect("switch wal");
    wait_for("the row replayed on m4 from the archive", T, || async {
        let v = c.query_one(3, "SELECT v FROM tagged").await?;
        (v == "archived").then_some(())
    })
    .await;
    assert_eq!(
        wal_receiver(&c, 3).await,
        Some(None),
        "m4 has no WAL receiver"
    );
    for i in [0, 1] {
        let slots = slot_names(&c, i).await.expect("slots");
        assert!(
            !slots.contains(&"m4".to_string()),
            "no slot for m4 on {}: {slots:?}",
            c.nodes[i].name
        );
    }
    let conninfo = c.query_one(3, "SHOW primary_conninfo").await;
    assert_eq!(conninfo.as_deref(), Some(""), "m4 has no primary_conninfo");

    // m2 stops: m3 falls back to the leader, which now keeps m3's slot.
    c.term_agent(1).await;
    wait_streaming_from(&c, 2, 0).await;
    wait_log(&c, 2, "not streaming from m2 (replicatefrom): ").await;
    wait_for("slot m3 on the leader", T, || async {
        has_slot(&c, 0, "m3").await.then_some(())
    })
    .await;
    assert_eq!(
        wal_receiver(&c, 3).await,
        Some(None),
        "m4 still streams from nobody"
    );

    // m2 back: m3 returns to it, and the leader drops m3's slot at once (a retained,
    // inactive slot would pin the leader's WAL).
    c.start_agent(1);
    wait_streaming_from(&c, 2, 1).await;
    wait_for("no slot m3 on the leader", T, || async {
        (!slot_names(&c, 0).await?.contains(&"m3".to_string())).then_some(())
    })
    .await;
}
