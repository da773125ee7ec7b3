//! Building our member key value and effective tags.

use super::shared::{NodeStatus, PATRONI_COMPAT_VERSION};
use crate::config::NodeConfig;
use crate::dcs::Member;
use crate::ha::{DataDir, PgRole, TaskKind};
use serde_json::{Map, Value};

/// Effective tags as Patroni publishes them, see [`crate::config::Tags::published`].
pub fn effective_tags(local: &Map<String, Value>) -> Map<String, Value> {
    crate::config::Tags::of(local).published()
}

/// Local `tags` with the desired tags of this member from our `gitops` key merged over them
/// (declarative tags from the repository; `null` removes a local tag).
pub fn merged_tags(
    local: &Map<String, Value>,
    cluster: Option<&crate::dcs::Cluster>,
    name: &str,
) -> Map<String, Value> {
    let mut out = local.clone();
    let desired = cluster
        .and_then(|c| c.gitops.as_ref())
        .and_then(|g| g.value.pointer(&format!("/tags/{name}")))
        .and_then(Value::as_object);
    for (k, v) in desired.into_iter().flatten() {
        if v.is_null() {
            out.remove(k);
        } else {
            out.insert(k.clone(), v.clone());
        }
    }
    out
}

/// Our PostgreSQL URL as published in the member key (`conn_url`).
pub fn conn_url(node: &NodeConfig) -> String {
    let (ch, cp) = node.postgresql.connect_host_port();
    format!("postgres://{ch}:{cp}/postgres")
}

/// Our REST API URL as published in the member key (`api_url`): `https://` when the API is
/// served over TLS.
pub fn api_url(node: &NodeConfig) -> String {
    format!(
        "{}://{}/patroni",
        node.restapi.scheme(),
        node.restapi.connect_address
    )
}

/// The member key value for this cycle.
pub fn build_member(node: &NodeConfig, st: &NodeStatus, paused: bool) -> Member {
    let replica = st.role == "replica" || st.role == "standby_leader";
    let mut m = Member {
        conn_url: conn_url(node),
        api_url: api_url(node),
        state: st.state.clone(),
        role: st.role.clone(),
        version: PATRONI_COMPAT_VERSION.to_string(),
        xlog_location: if replica {
            match (st.received, st.replayed) {
                (Some(a), Some(b)) => Some(a.max(b)),
                (a, b) => a.or(b),
            }
        } else {
            st.location
        },
        receive_lsn: if replica { st.received } else { None },
        replay_lsn: if replica { st.replayed } else { None },
        replication_state: if replica {
            st.replication_state.clone()
        } else {
            None
        },
        timeline: st.timeline,
        tags: st.tags.clone(),
        pending_restart: st.pending_restart.then_some(true),
        pending_restart_reason: (st.pending_restart && !st.pending_restart_reason.is_empty())
            .then(|| st.pending_restart_reason.clone()),
        pause: paused.then_some(true),
        ..Member::default()
    };
    if let Some(t) = &st.postmaster_start_time {
        let key = crate::dcs::model::POSTMASTER_START_KEY.to_string();
        m.extra.insert(key, Value::String(t.clone()));
    }
    m
}

/// The member key's `state`: what PostgreSQL is doing, or the task that runs.
pub(super) fn published_state(task: Option<TaskKind>, running: bool) -> &'static str {
    match (task, running) {
        (Some(TaskKind::Demote), true) => "stopping",
        (Some(TaskKind::Restart), _) => "restarting",
        // The clone wipes the running instance: say so from the cycle that started it.
        (Some(TaskKind::Reinitialize), _) => "creating replica",
        (_, true) => "running",
        (Some(TaskKind::Bootstrap), false) => "initializing new cluster",
        (Some(TaskKind::CreateReplica), false) => "creating replica",
        (Some(TaskKind::Start | TaskKind::Promote), false) => "starting",
        (Some(TaskKind::Rewind), false) => "stopped",
        (Some(TaskKind::Demote), false) => "stopping",
        (None, false) => "stopped",
    }
}

/// The member key's `role`.
pub(super) fn published_role(
    data: &DataDir,
    role: Option<PgRole>,
    has_lock: bool,
    standby_cluster: bool,
) -> &'static str {
    match (data, role) {
        (DataDir::Empty, _) => "uninitialized",
        (_, Some(PgRole::Primary)) => "primary",
        (_, Some(PgRole::Replica)) if has_lock && standby_cluster => "standby_leader",
        (_, Some(PgRole::Replica)) => "replica",
        _ if has_lock => "primary",
        _ => "replica",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn desired_tags_merge_over_local_ones() {
        let c = crate::dcs::Cluster {
            gitops: Some(crate::dcs::Versioned {
                value: json!({"tags": {"m1": {"nofailover": true, "dc": null}}}),
                version: 3,
            }),
            ..Default::default()
        };
        let local = json!({"dc": "east", "clonefrom": true});
        let t = merged_tags(local.as_object().unwrap(), Some(&c), "m1");
        assert_eq!(
            serde_json::Value::Object(t.clone()),
            json!({"clonefrom": true, "nofailover": true})
        );
        assert_eq!(crate::config::Tags::of(&t).failover_priority(), 0);
        assert_eq!(
            merged_tags(local.as_object().unwrap(), Some(&c), "m2").len(),
            2
        );
    }

    #[test]
    fn tags_follow_patroni_publication_rules() {
        let local = json!({"nofailover": false, "noloadbalance": true, "clonefrom": false, "failover_priority": 2, "dc": "east", "nosync": false});
        let t = effective_tags(local.as_object().unwrap());
        assert_eq!(
            serde_json::Value::Object(t),
            json!({"nofailover": false, "noloadbalance": true, "failover_priority": 2, "dc": "east"})
        );
    }
}
