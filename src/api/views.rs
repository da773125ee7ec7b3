//! Pure builders of the REST bodies: `/patroni` status and `/cluster`.

use crate::agent::shared::{NodeStatus, PATRONI_COMPAT_VERSION};
use crate::config::SyncMode;
use crate::dcs::{Cluster, Failover, Member, MemberEntry};
use crate::postgres::lsn::format_lsn;
use serde_json::{json, Map, Value};

/// Body of `GET /patroni` (and of GET health checks), docs/patroni-behaviour.md §3.2.
pub fn patroni_status(st: &NodeStatus, scope: &str, name: &str) -> Value {
    let mut b = Map::new();
    b.insert("state".into(), json!(st.state));
    if let Some(t) = &st.postmaster_start_time {
        b.insert("postmaster_start_time".into(), json!(t));
    }
    b.insert("role".into(), json!(st.role));
    if st.server_version > 0 {
        b.insert("server_version".into(), json!(st.server_version));
    }
    if st.state == "running" {
        if st.role == "primary" {
            b.insert("xlog".into(), json!({"location": st.location.unwrap_or(0)}));
        } else {
            b.insert(
                "xlog".into(),
                json!({
                    "received_location": st.received.or(st.replayed).unwrap_or(0),
                    "replayed_location": st.replayed.unwrap_or(0),
                    "replayed_timestamp": st.replay_timestamp,
                    "paused": st.replay_paused,
                }),
            );
        }
    }
    if let Some(tl) = st.timeline {
        b.insert("timeline".into(), json!(tl));
    }
    if let Some(rs) = &st.replication_state {
        b.insert("replication_state".into(), json!(rs));
    }
    if !st.replication.is_empty() {
        b.insert("replication".into(), json!(st.replication));
    }
    if let Some(c) = &st.cluster {
        if c.leader.is_none() {
            b.insert("cluster_unlocked".into(), json!(true));
        }
        let sync = c
            .sync
            .as_ref()
            .map(|s| s.value.members())
            .unwrap_or_default();
        if sync.iter().any(|s| s.eq_ignore_ascii_case(name)) {
            b.insert(sync_role(&st.dynamic.synchronous_mode).into(), json!(true));
        }
    }
    if st.dynamic.pause {
        b.insert("pause".into(), json!(true));
    }
    b.insert("dcs_last_seen".into(), json!(st.dcs_last_seen));
    if !st.tags.is_empty() {
        b.insert("tags".into(), Value::Object(st.tags.clone()));
    }
    if let Some(s) = &st.sysid {
        b.insert("database_system_identifier".into(), json!(s));
    }
    if st.pending_restart {
        b.insert("pending_restart".into(), json!(true));
        b.insert(
            "pending_restart_reason".into(),
            Value::Object(st.pending_restart_reason.clone()),
        );
    }
    if let Some(sr) = &st.scheduled_restart {
        b.insert("scheduled_restart".into(), sr.clone());
    }
    if st.watchdog_failed {
        b.insert("watchdog_failed".into(), json!(true));
    }
    if let Some(why) = &st.fence_problem {
        // Our extension: why this member does not lead.
        b.insert("fence_problem".into(), json!(why));
    }
    b.insert(
        "patroni".into(),
        json!({"version": PATRONI_COMPAT_VERSION, "scope": scope, "name": name}),
    );
    Value::Object(b)
}

/// The role a member listed in the `sync` key has: `quorum_standby` in quorum mode, else
/// `sync_standby` (Patroni's `cluster_as_json`, `/patroni`).
fn sync_role(mode: &SyncMode) -> &'static str {
    if *mode == SyncMode::Quorum {
        "quorum_standby"
    } else {
        "sync_standby"
    }
}

/// Body of `GET /cluster` (Patroni's `cluster_as_json`), docs/patroni-behaviour.md §3.3.
pub fn cluster_json(c: &Cluster, scope: &str) -> Value {
    let mode = SyncMode::of_config(c.config.as_ref().map(|v| &v.value));
    let leader = c.leader_name();
    let sync = c
        .sync
        .as_ref()
        .map(|s| s.value.members())
        .unwrap_or_default();
    let optime = c.status.optime;
    let mut members = Vec::new();
    for m in &c.members {
        let is_leader = leader == Some(m.name.as_str());
        let is_sync = sync.iter().any(|s| s.eq_ignore_ascii_case(&m.name));
        let role = cluster_role(&m.data, is_leader, is_sync, &mode);
        members.push(member_json(m, role, is_leader, optime));
    }
    let mut out = Map::new();
    out.insert("members".into(), Value::Array(members));
    out.insert("scope".into(), json!(scope));
    if c.is_paused() {
        out.insert("pause".into(), json!(true));
    }
    if let Some(s) = c
        .failover
        .as_ref()
        .and_then(|f| scheduled_switchover(&f.value))
    {
        out.insert("scheduled_switchover".into(), s);
    }
    Value::Object(out)
}

/// A member's role in `GET /cluster`: `leader` (`standby_leader`), a synchronous role, or
/// `replica`.
fn cluster_role(d: &Member, is_leader: bool, is_sync: bool, mode: &SyncMode) -> &'static str {
    if is_leader {
        if d.role == "standby_leader" {
            "standby_leader"
        } else {
            "leader"
        }
    } else if is_sync {
        sync_role(mode)
    } else {
        "replica"
    }
}

/// One member of `GET /cluster`; replicas carry their WAL positions and lags behind the
/// leader's last published `optime`.
fn member_json(m: &MemberEntry, role: &str, is_leader: bool, optime: u64) -> Value {
    let d = &m.data;
    let mut o = Map::new();
    o.insert("name".into(), json!(m.name));
    o.insert("role".into(), json!(role));
    let state = if is_leader {
        d.state.clone()
    } else {
        d.replication_state.clone().unwrap_or(d.state.clone())
    };
    o.insert("state".into(), json!(state));
    o.insert("api_url".into(), json!(d.api_url));
    if let Some((h, p)) = d.host_port() {
        o.insert("host".into(), json!(h));
        o.insert("port".into(), json!(p));
    }
    if let Some(tl) = d.timeline {
        o.insert("timeline".into(), json!(tl));
    }
    if d.pending_restart == Some(true) {
        o.insert("pending_restart".into(), json!(true));
        if let Some(r) = &d.pending_restart_reason {
            o.insert("pending_restart_reason".into(), Value::Object(r.clone()));
        }
    }
    if let Some(s) = &d.scheduled_restart {
        o.insert("scheduled_restart".into(), s.clone());
    }
    if !d.tags.is_empty() {
        o.insert("tags".into(), Value::Object(d.tags.clone()));
    }
    if let Some(why) = d.extra.get(crate::agent::driver::FENCE_PROBLEM_KEY) {
        o.insert("fence_problem".into(), why.clone());
    }
    if !is_leader {
        insert_replica_lag(&mut o, d, optime);
    }
    Value::Object(o)
}

/// A replica's `receive_lsn`/`replay_lsn` and `lsn` with their lags (`unknown` when it is
/// not running).
fn insert_replica_lag(o: &mut Map<String, Value>, d: &Member, optime: u64) {
    let lag = |lsn: Option<u64>| match lsn {
        Some(l) if d.is_running() => json!(optime.saturating_sub(l)),
        _ => json!("unknown"),
    };
    if d.receive_lsn.is_some() || d.replay_lsn.is_some() {
        o.insert("receive_lsn".into(), json!(d.receive_lsn.map(format_lsn)));
        o.insert("receive_lag".into(), lag(d.receive_lsn));
        o.insert("replay_lsn".into(), json!(d.replay_lsn.map(format_lsn)));
        o.insert("replay_lag".into(), lag(d.replay_lsn));
    }
    o.insert("lsn".into(), json!(d.xlog_location.map(format_lsn)));
    o.insert("lag".into(), lag(d.xlog_location));
}

/// `scheduled_switchover` (`at`, `from`, `to`) of a failover key with a scheduled time.
fn scheduled_switchover(f: &Failover) -> Option<Value> {
    let at = f.scheduled_at.as_ref()?;
    let mut s = Map::new();
    s.insert("at".into(), json!(at));
    if let Some(l) = &f.leader {
        s.insert("from".into(), json!(l));
    }
    if let Some(m) = &f.member {
        s.insert("to".into(), json!(m));
    }
    Some(Value::Object(s))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::PatroniStatus;

    #[test]
    fn reads_what_the_server_writes() {
        let st = NodeStatus {
            state: "running".into(),
            role: "replica".into(),
            received: Some(90),
            replayed: Some(70),
            timeline: Some(3),
            postmaster_start_time: Some("2026-11-30 08:00:00+00:00".into()),
            tags: json!({"nofailover": true}).as_object().cloned().unwrap(),
            ..NodeStatus::default()
        };
        let body = patroni_status(&st, "demo", "m2");
        let p = PatroniStatus::from_value(&body).expect("an object");
        assert!(p.is_running() && !p.is_running_primary());
        assert_eq!((p.wal_position(), p.replica_position()), (90, Some(90)));
        assert_eq!(p.timeline, Some(3));
        assert_eq!(
            p.postmaster_start_time,
            Some(json!("2026-11-30 08:00:00+00:00"))
        );
        let tags = p.tags.unwrap_or_default();
        assert!(crate::config::Tags::of(&tags).nofailover());
        let primary = NodeStatus {
            state: "running".into(),
            role: "primary".into(),
            location: Some(500),
            ..NodeStatus::default()
        };
        let body = patroni_status(&primary, "demo", "m1");
        let p = PatroniStatus::from_value(&body).expect("an object");
        assert!(p.is_running_primary());
        assert_eq!((p.wal_position(), p.replica_position()), (500, None));
    }
}
