//! `GET /metrics`: Prometheus text with Patroni's metric names (docs/patroni-behaviour.md §3.3).

use crate::agent::shared::{NodeStatus, PATRONI_COMPAT_VERSION};
use std::fmt::Write;

/// Index of a PostgreSQL state string in Patroni's `patroni_postgres_state` enumeration.
pub fn state_index(state: &str) -> i64 {
    const STATES: [&str; 15] = [
        "initializing new cluster",
        "initdb failed",
        "running custom bootstrap script",
        "custom bootstrap failed",
        "creating replica",
        "running",
        "starting",
        "starting after custom bootstrap",
        "start failed",
        "restarting",
        "restart failed",
        "stopping",
        "stopped",
        "stop failed",
        "crashed",
    ];
    STATES
        .iter()
        .position(|s| *s == state)
        .map_or(-1, |i| i as i64)
}

fn version_number(v: &str) -> i64 {
    v.split('.')
        .take(3)
        .fold(0, |acc, p| acc * 100 + p.parse::<i64>().unwrap_or(0))
}

fn start_epoch(s: &str) -> f64 {
    chrono::DateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S%.f%:z")
        .map(|t| t.timestamp_micros() as f64 / 1e6)
        .unwrap_or(0.0)
}

/// Failsafe gauges (Patroni's `patroni_failsafe_mode_is_active`, `…_enabled`,
/// `patroni_failsafe_member`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FailsafeGauges {
    /// This primary runs on the members' confirmation, or a leader called this replica,
    /// within ttl.
    pub active: bool,
    /// `failsafe_mode` is on in the dynamic configuration.
    pub enabled: bool,
    /// The `failsafe` key lists this member.
    pub member: bool,
}

/// One gauge: name (after `patroni_`), help text, value.
type Gauge = (&'static str, &'static str, f64);

fn flag(x: bool) -> f64 {
    if x {
        1.0
    } else {
        0.0
    }
}

/// The metric names in Patroni's order.
const ORDER: &[&str] = &[
    "version",
    "postgres_running",
    "postmaster_start_time",
    "primary",
    "xlog_location",
    "standby_leader",
    "replica",
    "sync_standby",
    "quorum_standby",
    "xlog_received_location",
    "xlog_replayed_location",
    "xlog_replayed_timestamp",
    "xlog_paused",
    "postgres_streaming",
    "postgres_in_archive_recovery",
    "postgres_server_version",
    "cluster_unlocked",
    "failsafe_mode_is_active",
    "failsafe_mode_enabled",
    "failsafe_member",
    "postgres_timeline",
    "dcs_last_seen",
    "pending_restart",
    "is_paused",
    "postgres_state",
    "failover_priority",
];

/// Renders the metrics of one node, in Patroni's order.
pub fn render(
    st: &NodeStatus,
    scope: &str,
    name: &str,
    failover_priority: i64,
    failsafe: FailsafeGauges,
) -> String {
    let labels = format!("{{scope=\"{scope}\",name=\"{name}\"}}");
    let mut gauges: Vec<Gauge> = postgres_gauges(st, failover_priority);
    gauges.extend(role_gauges(st, name));
    gauges.extend(cluster_gauges(st, failsafe));
    let mut out = String::new();
    for metric in ORDER {
        if let Some((_, help, value)) = gauges.iter().find(|g| g.0 == *metric) {
            let _ = writeln!(out, "# HELP patroni_{metric} {help}\n# TYPE patroni_{metric} gauge\npatroni_{metric}{labels} {value}");
        }
    }
    out
}

/// The PostgreSQL process and this member's own settings.
fn postgres_gauges(st: &NodeStatus, failover_priority: i64) -> Vec<Gauge> {
    let running = st.state == "running";
    let b = flag;
    vec![
        (
            "version",
            "Patroni semver without periods.",
            version_number(PATRONI_COMPAT_VERSION) as f64,
        ),
        (
            "postgres_running",
            "Value is 1 if Postgres is running, 0 otherwise.",
            b(running),
        ),
        (
            "postmaster_start_time",
            "Epoch seconds since Postgres started.",
            st.postmaster_start_time.as_deref().map_or(0.0, start_epoch),
        ),
        (
            "postgres_server_version",
            "Version of Postgres (if running), 0 otherwise.",
            f64::from(st.server_version),
        ),
        (
            "postgres_state",
            "Numeric representation of Postgres state.",
            state_index(&st.state) as f64,
        ),
        (
            "postgres_timeline",
            "Postgres timeline of this node (if running), 0 otherwise.",
            st.timeline.filter(|_| running).unwrap_or(0) as f64,
        ),
        (
            "pending_restart",
            "Value is 1 if the node needs a restart, 0 otherwise.",
            b(st.pending_restart),
        ),
        (
            "failover_priority",
            "Value is used to set the priority of this node for failover.",
            failover_priority as f64,
        ),
    ]
}

/// The member's role and WAL positions.
fn role_gauges(st: &NodeStatus, name: &str) -> Vec<Gauge> {
    let running = st.state == "running";
    let primary = running && st.role == "primary";
    let replica = running && st.role == "replica";
    let sync = st.is_sync_standby(name);
    let quorum = st.is_quorum_standby(name);
    let b = flag;
    vec![
        ("primary",
        "Value is 1 if this node is the leader, 0 otherwise.",
        b(primary && st.has_lock)),
        ("xlog_location",
        "Current location of the Postgres transaction log, 0 if this node is not the leader.",
        st.location.filter(|_| primary).unwrap_or(0) as f64),
        ("standby_leader",
        "Value is 1 if this node is the standby_leader, 0 otherwise.",
        b(st.role == "standby_leader")),
        ("replica",
        "Value is 1 if this node is a replica, 0 otherwise.",
        b(replica)),
        ("sync_standby",
        "Value is 1 if this node is a sync standby, 0 otherwise.",
        b(replica && sync)),
        ("quorum_standby",
        "Value is 1 if this node is a quorum standby, 0 otherwise.",
        b(replica && quorum)),
        ("xlog_received_location", "Current location of the received Postgres transaction log, 0 if this node is not a replica.", st.received.filter(|_| replica).unwrap_or(0) as f64),
        ("xlog_replayed_location", "Current location of the replayed Postgres transaction log, 0 if this node is not a replica.", st.replayed.filter(|_| replica).unwrap_or(0) as f64),
        ("xlog_replayed_timestamp",
        "Current timestamp of the replayed Postgres transaction log, 0 if null.",
        st.replay_timestamp.as_deref().map_or(0.0, start_epoch)),
        ("xlog_paused",
        "Value is 1 if the Postgres xlog is paused, 0 otherwise.",
        b(st.replay_paused)),
        ("postgres_streaming",
        "Value is 1 if Postgres is streaming, 0 otherwise.",
        b(st.replication_state.as_deref() == Some("streaming"))),
        ("postgres_in_archive_recovery",
        "Value is 1 if Postgres is replicating from archive, 0 otherwise.",
        b(st.replication_state.as_deref() == Some("in archive recovery"))),
    ]
}

/// The cluster as this member sees it: lock, failsafe, DCS contact, pause.
fn cluster_gauges(st: &NodeStatus, failsafe: FailsafeGauges) -> Vec<Gauge> {
    let b = flag;
    vec![
        (
            "cluster_unlocked",
            "Value is 1 if the cluster is unlocked, 0 if locked.",
            b(st.cluster.as_ref().is_some_and(|c| c.leader.is_none())),
        ),
        (
            "failsafe_mode_is_active",
            "Value is 1 if failsafe mode is active, 0 if inactive.",
            b(failsafe.active),
        ),
        (
            "failsafe_mode_enabled",
            "Value is 1 if failsafe_mode is enabled, 0 otherwise.",
            b(failsafe.enabled),
        ),
        (
            "failsafe_member",
            "Value is 1 if this node is a member of failsafe, 0 otherwise.",
            b(failsafe.member),
        ),
        (
            "dcs_last_seen",
            "Epoch timestamp when DCS was last contacted successfully by Patroni.",
            st.dcs_last_seen as f64,
        ),
        (
            "is_paused",
            "Value is 1 if auto failover is disabled, 0 otherwise.",
            b(st.dynamic.pause),
        ),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metrics_use_patroni_names() {
        let st = NodeStatus {
            state: "running".into(),
            role: "primary".into(),
            has_lock: true,
            location: Some(42),
            timeline: Some(3),
            ..NodeStatus::default()
        };
        let text = render(&st, "acme", "p1", 1, FailsafeGauges::default());
        assert!(text.contains("patroni_version{scope=\"acme\",name=\"p1\"} 40104"));
        assert!(text.contains("patroni_primary{scope=\"acme\",name=\"p1\"} 1"));
        assert!(text.contains("patroni_xlog_location{scope=\"acme\",name=\"p1\"} 42"));
        assert!(text.contains("patroni_postgres_timeline{scope=\"acme\",name=\"p1\"} 3"));
        assert!(text.contains("patroni_postgres_state{scope=\"acme\",name=\"p1\"} 5"));
        assert_eq!(state_index("crashed"), 14);
        assert!(text.contains("patroni_failsafe_mode_enabled{scope=\"acme\",name=\"p1\"} 0"));
        let on = FailsafeGauges {
            active: true,
            enabled: true,
            member: true,
        };
        let text = render(&st, "acme", "p1", 1, on);
        for g in [
            "failsafe_mode_is_active",
            "failsafe_mode_enabled",
            "failsafe_member",
        ] {
            assert!(text.contains(&format!("patroni_{g}{{scope=\"acme\",name=\"p1\"}} 1")));
        }
    }
}
