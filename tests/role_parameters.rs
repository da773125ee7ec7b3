//! Role-specific settings of the dynamic configuration (Patroni's `parameters_<role>`,
//! `pg_hba_<role>`): `log_min_duration_statement` only on replicas and a pg_hba line only on
//! replicas are applied on the replica and not on the primary, and follow the roles after a
//! switchover.

mod common;

use common::*;
use reqwest::Method;
use serde_json::json;
use std::time::Duration;

const T: Duration = Duration::from_secs(90);

const HBA: [&str; 2] = [
    "host replication replicator 127.0.0.1/32 scram-sha-256",
    "host all all 127.0.0.1/32 scram-sha-256",
];
const MARKER: &str = "host all replica_only_marker 127.0.0.1/32 reject";

/// (log_min_duration_statement, has the replica-only pg_hba line) of member `i`.
async fn settings(c: &TestCluster, i: usize) -> Option<(String, bool)> {
    let lmds = c.query_one(i, "SHOW log_min_duration_statement").await?;
    let marker = c
        .query_one(
            i,
            "SELECT count(*)::text FROM pg_hba_file_rules \
             WHERE 'replica_only_marker' = ANY(user_name)",
        )
        .await?;
    Some((lmds, marker == "1"))
}

async fn wait_roles(c: &TestCluster, primary: usize, replica: usize, what: &str) {
    wait_for(what, T, || async {
        let p = settings(c, primary).await?;
        let r = settings(c, replica).await?;
        (p == ("-1".to_string(), false) && r == ("250ms".to_string(), true)).then_some(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn role_specific_settings_follow_the_roles() {
    let c = TestCluster::start(
        "roleparams",
        ClusterOpts {
            members: 2,
            ..ClusterOpts::default()
        },
    )
    .await;
    let li = c.wait_healthy(T).await;
    let ri = 1 - li;
    let mut replica_hba: Vec<&str> = HBA.to_vec();
    replica_hba.push(MARKER);
    let patch = json!({"postgresql": {
        "pg_hba": HBA,
        "pg_hba_replica": replica_hba,
        "parameters_replica": {"log_min_duration_statement": "250ms"},
    }});
    let (code, body) = c
        .send(li, Method::PATCH, "/config", &patch.to_string())
        .await;
    assert_eq!(code, 200, "{body}");
    wait_roles(&c, li, ri, "replica-only settings on the replica only").await;

    let (old, cand) = (c.nodes[li].name.clone(), c.nodes[ri].name.clone());
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
    assert_eq!(li2, ri);
    wait_roles(
        &c,
        ri,
        li,
        "the settings follow the roles after the switchover",
    )
    .await;
    wait_for("the role switch logged", T, || async {
        c.log_text(ri)
            .contains("PostgreSQL now runs as primary: applying the primary role-specific settings")
            .then_some(())
    })
    .await;
}
