//! Gathering the observation: local PostgreSQL and, for a leader race, the peers.

use super::pg_port::PgControl;
use super::sql_port::Sql;
use crate::config::Tags;
use crate::dcs::Cluster;
use crate::ha::observation::StandbyConn;
use crate::ha::{DataDir, PeerStatus, PgObservation, PgRole};
use crate::postgres::PgRuntime;
use crate::wire::PatroniStatus;
use serde_json::{Map, Value};
use std::time::Duration;

/// Observes the local instance: data directory, postmaster, and its SQL-visible state.
pub async fn observe_pg(
    pg: &dyn PgControl,
    sql: &dyn Sql,
    following: Option<String>,
) -> (PgObservation, Option<PgRuntime>) {
    let control = pg.controldata().await;
    let data = if pg.data_dir_empty() {
        DataDir::Empty
    } else {
        match control.as_ref().and_then(|c| c.sysid()) {
            Some(s) => DataDir::Initialized {
                sysid: s.to_string(),
            },
            None => DataDir::Invalid,
        }
    };
    let position = control
        .as_ref()
        .map_or((None, None), |c| c.local_position());
    let mut obs = PgObservation {
        data,
        running: false,
        postmaster_alive: false,
        role: None,
        following,
        following_remote: false,
        timeline: position.0,
        timeline_from_receiver: false,
        lsn: None,
        control_state: control
            .as_ref()
            .and_then(|c| c.state().map(crate::ha::ControlState::parse)),
        control_lsn: position.1,
        rewind_possible: control.as_ref().is_some_and(|c| c.rewind_possible()),
        rewind_failures: 0,
        standbys: vec![],
    };
    if !pg.is_running() {
        sql.reset().await;
        return (obs, None);
    }
    obs.postmaster_alive = true;
    match sql.state().await {
        Ok(rt) => {
            obs.running = true;
            obs.role = Some(if rt.in_recovery {
                PgRole::Replica
            } else {
                PgRole::Primary
            });
            // Only a receiver that streams got its timeline from upstream; one that is
            // starting or retrying may still report the timeline it asked for.
            obs.timeline_from_receiver =
                rt.in_recovery && rt.receiver_status.as_deref() == Some("streaming");
            obs.timeline = if rt.in_recovery && rt.receiver_status.is_none() {
                replay_timeline(pg).await
            } else {
                rt.timeline.or(obs.timeline)
            };
            obs.lsn = rt.wal_position();
            if !rt.in_recovery {
                obs.standbys = standbys(sql).await;
            }
            (obs, Some(rt))
        }
        Err(e) => {
            tracing::debug!(error = %e, "postgres is not answering queries");
            (obs, None)
        }
    }
}

/// The timeline a standby without a WAL receiver replays. SQL only shows its latest
/// checkpoint's, stale until the next restartpoint, so it is asked with `IDENTIFY_SYSTEM`;
/// when that fails the timeline is unknown (None): no divergence is decided on a guess.
async fn replay_timeline(pg: &dyn PgControl) -> Option<u64> {
    match pg.replay_timeline().await {
        Ok(tl) => Some(tl),
        Err(e) => {
            tracing::warn!("cannot tell the timeline this standby replays: {e}");
            None
        }
    }
}

/// The primary's `pg_stat_replication`, as the sync-mode logic needs it.
async fn standbys(sql: &dyn Sql) -> Vec<StandbyConn> {
    match sql.replication().await {
        Ok(rows) => rows
            .into_iter()
            .filter_map(|r| {
                Some(StandbyConn {
                    name: r.application_name?,
                    streaming: r.state.as_deref() == Some("streaming"),
                    sync_state: r.sync_state.unwrap_or_default(),
                    flush_lsn: r.flush_lsn.unwrap_or(0),
                })
            })
            .collect(),
        Err(e) => {
            tracing::debug!(error = %e, "failed to read pg_stat_replication");
            vec![]
        }
    }
}

/// The members to ask in a race: (name, api_url, member-key tags) of every other member
/// with an api_url and, in failsafe mode, of every member of the `failsafe` key (Patroni
/// races among those too).
pub fn race_peers(cluster: &Cluster, me: &str) -> Vec<(String, String, Map<String, Value>)> {
    let mut peers: Vec<(String, String, Map<String, Value>)> = cluster
        .members
        .iter()
        .filter(|m| m.name != me && !m.data.api_url.is_empty())
        .map(|m| (m.name.clone(), m.data.api_url.clone(), m.data.tags.clone()))
        .collect();
    let failsafe_mode = cluster
        .config
        .as_ref()
        .and_then(|c| c.value.get("failsafe_mode"))
        .and_then(crate::config::tags::parse_bool)
        .unwrap_or(false);
    if failsafe_mode {
        for (name, url) in cluster.failsafe_topology().unwrap_or_default() {
            let known = name == me || peers.iter().any(|(n, _, _)| *n == name);
            if !known && !url.is_empty() {
                peers.push((name, url, Map::new()));
            }
        }
    }
    peers
}

/// Asks every peer of [`race_peers`] for its `/patroni` status, in parallel, 2 s timeout.
pub async fn fetch_peers(
    peers: &dyn super::ports::Peers,
    cluster: &Cluster,
    me: &str,
) -> Vec<PeerStatus> {
    let futs = race_peers(cluster, me)
        .into_iter()
        .map(|(name, url, tags)| async move {
            let body = peers.get_json(&url, Duration::from_secs(2)).await;
            peer_from_body(name, &tags, body.as_ref())
        });
    futures::future::join_all(futs).await
}

/// Interprets a `/patroni` body (pure). Its `tags` decide whether the peer may fail over and
/// its rank, as in Patroni; without a body, or a body without tags, the tags of its member
/// key do.
pub fn peer_from_body(
    name: String,
    member_tags: &Map<String, Value>,
    body: Option<&Value>,
) -> PeerStatus {
    let Some(b) = body else {
        let tags = Tags::of(member_tags);
        return PeerStatus {
            name,
            reachable: false,
            is_primary: false,
            wal_position: 0,
            timeline: None,
            nofailover: tags.nofailover(),
            failover_priority: tags.failover_priority(),
        };
    };
    let b = PatroniStatus::from_value(b).unwrap_or_default();
    let tags = Tags::of(b.tags.as_ref().unwrap_or(member_tags));
    PeerStatus {
        name,
        reachable: true,
        is_primary: b.is_running_primary(),
        wal_position: b.wal_position(),
        timeline: b.timeline,
        nofailover: tags.nofailover(),
        failover_priority: tags.failover_priority(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::postgres::ReplicationRow;
    use serde_json::json;

    #[test]
    fn peer_body_interpretation() {
        let none = Map::new();
        let p = peer_from_body(
            "a".into(),
            &none,
            Some(&json!({"state":"running","role":"primary","xlog":{"location":5}})),
        );
        assert!(p.is_primary);
        assert_eq!(p.wal_position, 5);
        let p = peer_from_body(
            "b".into(),
            &none,
            Some(
                &json!({"state":"running","role":"replica","xlog":{"received_location":9,"replayed_location":7},"tags":{"nofailover":true}}),
            ),
        );
        assert!(!p.is_primary);
        assert_eq!((p.wal_position, p.failover_priority), (9, 0));
        assert!(p.nofailover);
        let key_tags = json!({"nofailover": false, "failover_priority": 0});
        let key_tags = key_tags.as_object().unwrap();
        let p = peer_from_body("c".into(), key_tags, None);
        assert!(!p.reachable);
        assert_eq!((p.nofailover, p.failover_priority), (false, 0));
        let body = json!({"state": "running", "role": "replica", "xlog": {}});
        let p = peer_from_body("d".into(), key_tags, Some(&body));
        assert_eq!(
            (p.nofailover, p.failover_priority),
            (false, 0),
            "key tags without body tags"
        );
    }

    #[tokio::test]
    async fn peers_are_asked_through_the_port() {
        let mut c = Cluster::default();
        for (name, url) in [
            ("m1", "http://m1/patroni"),
            ("m2", "http://m2/patroni"),
            ("m3", "http://m3/patroni"),
        ] {
            let mut m = crate::dcs::MemberEntry {
                name: name.into(),
                data: Default::default(),
                version: 1,
                lease: 1,
            };
            m.data.api_url = url.into();
            c.members.push(m);
        }
        let mut peers = crate::agent::ports::fake::FakePeers::default();
        peers.bodies.insert(
            "http://m2/patroni".into(),
            json!({"state":"running","role":"replica","xlog":{"received_location":42}}),
        );
        let got = fetch_peers(&peers, &c, "m1").await;
        let seen: Vec<(&str, bool, u64)> = got
            .iter()
            .map(|p| (p.name.as_str(), p.reachable, p.wal_position))
            .collect();
        assert_eq!(seen, [("m2", true, 42), ("m3", false, 0)]);
        let calls = peers.calls.lock().unwrap().clone();
        assert_eq!(calls, ["http://m2/patroni", "http://m3/patroni"]);
    }

    #[test]
    fn failsafe_members_join_the_race() {
        let mut c = Cluster::default();
        let mut m2 = crate::dcs::MemberEntry {
            name: "m2".into(),
            data: Default::default(),
            version: 1,
            lease: 1,
        };
        m2.data.api_url = "http://m2/patroni".into();
        c.members.push(m2);
        c.failsafe = Some(crate::dcs::Versioned {
            value: json!({"m1": "http://m1/patroni", "m2": "http://x/patroni",
                "m3": "http://m3/patroni"}),
            version: 4,
        });
        let names =
            |c: &Cluster| -> Vec<String> { race_peers(c, "m1").into_iter().map(|p| p.0).collect() };
        assert_eq!(names(&c), vec!["m2"], "failsafe mode off");
        c.config = Some(crate::dcs::Versioned {
            value: json!({"failsafe_mode": "on"}),
            version: 2,
        });
        assert_eq!(names(&c), vec!["m2", "m3"]);
        assert_eq!(race_peers(&c, "m1")[0].1, "http://m2/patroni");
    }

    #[test]
    fn standbys_are_read_through_the_sql_port() {
        let row = |name: Option<&str>, state: &str, sync: &str, flush| ReplicationRow {
            usename: Some("replicator".into()),
            application_name: name.map(str::to_string),
            client_addr: None,
            state: Some(state.into()),
            sync_state: Some(sync.into()),
            sync_priority: Some(1),
            flush_lsn: flush,
        };
        let sql = crate::agent::sql_port::fake::FakeSql {
            replication: vec![
                row(Some("m2"), "streaming", "sync", Some(900)),
                row(Some("m3"), "catchup", "async", None),
                row(None, "streaming", "async", Some(5)),
            ],
            ..Default::default()
        };
        let got = futures::executor::block_on(standbys(&sql));
        assert_eq!(
            got,
            vec![
                StandbyConn {
                    name: "m2".into(),
                    streaming: true,
                    sync_state: "sync".into(),
                    flush_lsn: 900,
                },
                StandbyConn {
                    name: "m3".into(),
                    streaming: false,
                    sync_state: "async".into(),
                    flush_lsn: 0,
                },
            ],
            "a row without application_name is no member"
        );
    }
}
