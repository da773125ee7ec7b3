//! Snapshot tests of what operators and other tools read: the `/patroni` and `/cluster` bodies,
//! `/metrics`, the four `list` formats and the three plan formats. A change to any of them shows up as a
//! diff of the files in `src/snapshots/` (review with `cargo insta review`, or delete the
//! `.snap` file and run the test again to accept a deliberate change).

use crate::agent::shared::NodeStatus;
use crate::api::views::{cluster_json, patroni_status};
use crate::cli::ctl::output::{render_list, Format, ListOptions};
use crate::dcs::{Cluster, Keys, RawKv};
use crate::gitops::desired::DesiredCluster;
use crate::gitops::guc::GucCatalog;
use crate::gitops::observed::{ObservedCluster, ObservedMember};
use crate::gitops::plan::{plan_cluster, ClusterPlan};
use crate::gitops::render;
use crate::postgres::sql::ReplicationRow;
use serde_json::{json, Value};
use std::collections::BTreeMap;

fn kv(value: Value, rev: i64, lease: i64) -> RawKv {
    let value = match value {
        Value::String(s) => s,
        v => v.to_string(),
    };
    RawKv {
        value,
        mod_revision: rev,
        create_revision: rev,
        lease,
    }
}

/// A three-member cluster in synchronous mode: leader m1, sync standby m2, m3 tagged.
fn cluster() -> Cluster {
    let keys = Keys::new("/service", "acme");
    let member = |host: &str, port: u16, extra: Value| {
        let mut m = json!({
            "conn_url": format!("postgres://{host}:{port}/postgres"),
            "api_url": format!("http://{host}:8008/patroni"),
            "state": "running", "role": "replica", "version": "4.1.4",
            "xlog_location": 83_886_080u64, "timeline": 2,
        });
        if let (Some(m), Value::Object(extra)) = (m.as_object_mut(), extra) {
            m.extend(extra);
        }
        m
    };
    let mut kvs = BTreeMap::new();
    let mut put = |k: &str, v: Value, lease: i64| {
        let rev = kvs.len() as i64 + 1;
        kvs.insert(keys.key(k), kv(v, rev, lease));
    };
    put("initialize", json!("7301234567890123456"), 0);
    put(
        "config",
        json!({"ttl": 30, "loop_wait": 10, "synchronous_mode": true}),
        0,
    );
    put("leader", json!("m1"), 7);
    put(
        "members/m1",
        member("10.0.0.1", 5432, json!({"role": "primary"})),
        7,
    );
    put(
        "members/m2",
        member(
            "10.0.0.2",
            5432,
            json!({"replication_state": "streaming", "receive_lsn": 83_886_080u64,
                   "replay_lsn": 83_886_000u64}),
        ),
        8,
    );
    put(
        "members/m3",
        member(
            "10.0.0.3",
            5433,
            json!({"replication_state": "streaming", "tags": {"nofailover": true},
                   "pending_restart": true,
                   "pending_restart_reason": {"max_connections": {"old_value": "100", "new_value": "200"}}}),
        ),
        9,
    );
    put("sync", json!({"leader": "m1", "sync_standby": "m2"}), 0);
    put(
        "history",
        json!([[
            1,
            50_331_808u64,
            "no recovery target specified",
            "2026-11-30T06:00:00+00:00",
            "m1"
        ]]),
        0,
    );
    put("status", json!({"optime": 83_886_080u64, "slots": {}}), 0);
    Cluster::from_kvs(&keys, &kvs, 20)
}

fn pretty(v: &Value) -> String {
    serde_json::to_string_pretty(v).unwrap_or_default()
}

#[test]
fn cluster_body() {
    insta::assert_snapshot!(pretty(&cluster_json(&cluster(), "acme")));
}

fn leader_status() -> NodeStatus {
    NodeStatus {
        state: "running".into(),
        role: "primary".into(),
        has_lock: true,
        location: Some(83_886_080),
        timeline: Some(2),
        server_version: 150_010,
        postmaster_start_time: Some("2026-11-30 06:00:00.000000+00:00".into()),
        sysid: Some("7301234567890123456".into()),
        replication: vec![ReplicationRow {
            usename: Some("replicator".into()),
            application_name: Some("m2".into()),
            client_addr: Some("10.0.0.2".into()),
            state: Some("streaming".into()),
            sync_state: Some("sync".into()),
            sync_priority: Some(1),
            flush_lsn: Some(83_886_080),
        }],
        cluster: Some(cluster()),
        dcs_last_seen: 1_796_000_000,
        ..Default::default()
    }
}

#[test]
fn patroni_body_of_a_leader_and_a_replica() {
    let leader = leader_status();
    let replica = NodeStatus {
        role: "replica".into(),
        has_lock: false,
        location: None,
        received: Some(83_886_080),
        replayed: Some(83_886_000),
        replication_state: Some("streaming".into()),
        replication: vec![],
        ..leader.clone()
    };
    let both = json!({
        "m1": patroni_status(&leader, "acme", "m1"),
        "m2": patroni_status(&replica, "acme", "m2"),
    });
    insta::assert_snapshot!(pretty(&both));
}

#[test]
fn metrics_of_a_leader() {
    let failsafe = crate::api::metrics::FailsafeGauges {
        active: false,
        enabled: true,
        member: true,
    };
    let text = crate::api::metrics::render(&leader_status(), "acme", "m1", 1, failsafe);
    insta::assert_snapshot!(text);
}

#[test]
fn list_in_every_format() {
    let body = cluster_json(&cluster(), "acme");
    let sysid = Some("7301234567890123456");
    let mut out = String::new();
    for (name, fmt) in [
        ("pretty", Format::Pretty),
        ("tsv", Format::Tsv),
        ("json", Format::Json),
        ("yaml", Format::Yaml),
    ] {
        out.push_str(&format!("== {name}\n"));
        out.push_str(&render_list(
            "acme",
            sysid,
            &body,
            &fmt,
            &ListOptions::default(),
        ));
        out.push('\n');
    }
    insta::assert_snapshot!(out);
}

/// A plan with a reload change, a restart change and an unmanaged key.
fn plan() -> ClusterPlan {
    let desired = DesiredCluster {
        scope: "acme".into(),
        file: "clusters/acme/cluster.yaml".into(),
        config: json!({"postgresql": {"parameters": {
            "work_mem": "16MB", "shared_buffers": "256MB"}}}),
        tags: Default::default(),
        prune: false,
        restart_policy: "rolling".into(),
        windows: vec![],
        ops: vec![],
        dcs: None,
    };
    let member = |n: &str, role: &str| ObservedMember {
        name: n.into(),
        role: role.into(),
        state: "running".into(),
        ..Default::default()
    };
    let observed = ObservedCluster {
        scope: "acme".into(),
        exists: true,
        config: Some(json!({"ttl": 30, "postgresql": {"parameters": {
            "work_mem": "8MB", "shared_buffers": "128MB"}}})),
        config_version: 42,
        gitops: None,
        gitops_version: 0,
        leader: Some("m1".into()),
        members: vec![member("m1", "leader"), member("m2", "replica")],
    };
    plan_cluster(&desired, &observed, GucCatalog::postgresql15())
}

#[test]
fn plan_in_three_formats() {
    let plans = [plan()];
    insta::assert_snapshot!("plan_text", render::text(&plans));
    insta::assert_snapshot!("plan_markdown", render::markdown(&plans));
    insta::assert_snapshot!("plan_json", render::json(&plans));
}
