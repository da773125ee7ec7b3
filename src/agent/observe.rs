//! Gathering the observation: local PostgreSQL and, for a leader race, the peers.

use crate::dcs::Cluster;
use crate::ha::sync::StandbyConn;
use crate::ha::{DataDir, PeerStatus, PgObservation, PgRole};
use crate::postgres::{LocalSql, PgRuntime, Postgres};
use serde_json::Value;
use std::time::Duration;

/// Observes the local instance: data directory, postmaster, and its SQL-visible state.
pub async fn observe_pg(
    pg: &Postgres,
    sql: &LocalSql,
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
        timeline: position.0,
        lsn: None,
        control_state: control.as_ref().and_then(|c| c.state().map(str::to_string)),
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
async fn replay_timeline(pg: &Postgres) -> Option<u64> {
    match pg.replay_timeline().await {
        Ok(tl) => Some(tl),
        Err(e) => {
            tracing::warn!("cannot tell the timeline this standby replays: {e}");
            None
        }
    }
}

/// The primary's `pg_stat_replication`, as the sync-mode logic needs it.
async fn standbys(sql: &LocalSql) -> Vec<StandbyConn> {
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

/// Asks every other member with an api_url for its `/patroni` status, in parallel, 2 s timeout.
pub async fn fetch_peers(http: &reqwest::Client, cluster: &Cluster, me: &str) -> Vec<PeerStatus> {
    let futs = cluster
        .members
        .iter()
        .filter(|m| m.name != me && !m.data.api_url.is_empty())
        .map(|m| {
            let url = m.data.api_url.clone();
            let name = m.name.clone();
            let priority = m.data.failover_priority();
            async move {
                let body = async {
                    let r = http
                        .get(&url)
                        .timeout(Duration::from_secs(2))
                        .send()
                        .await
                        .ok()?;
                    r.json::<Value>().await.ok()
                }
                .await;
                peer_from_body(name, priority, body.as_ref())
            }
        });
    futures::future::join_all(futs).await
}

/// Interprets a `/patroni` body (pure).
pub fn peer_from_body(name: String, member_priority: i64, body: Option<&Value>) -> PeerStatus {
    let Some(b) = body else {
        return PeerStatus {
            name,
            reachable: false,
            is_primary: false,
            wal_position: 0,
            timeline: None,
            failover_priority: member_priority,
        };
    };
    let xlog = b.get("xlog");
    let get = |k: &str| xlog.and_then(|x| x.get(k)).and_then(Value::as_u64);
    let is_primary =
        get("location").is_some() || b.get("role").and_then(Value::as_str) == Some("primary");
    let wal = get("location")
        .unwrap_or(0)
        .max(get("received_location").unwrap_or(0))
        .max(get("replayed_location").unwrap_or(0));
    let tags = b.get("tags");
    let nofailover = tags
        .and_then(|t| t.get("nofailover"))
        .is_some_and(|v| crate::dcs::model::tag_truthy(Some(v)));
    let priority = if nofailover {
        0
    } else {
        tags.and_then(|t| t.get("failover_priority"))
            .and_then(Value::as_i64)
            .unwrap_or(member_priority)
    };
    PeerStatus {
        name,
        reachable: true,
        is_primary: is_primary && b.get("state").and_then(Value::as_str) == Some("running"),
        wal_position: wal,
        timeline: b.get("timeline").and_then(Value::as_u64),
        failover_priority: priority,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn peer_body_interpretation() {
        let p = peer_from_body(
            "a".into(),
            1,
            Some(&json!({"state":"running","role":"primary","xlog":{"location":5}})),
        );
        assert!(p.is_primary);
        assert_eq!(p.wal_position, 5);
        let p = peer_from_body(
            "b".into(),
            1,
            Some(
                &json!({"state":"running","role":"replica","xlog":{"received_location":9,"replayed_location":7},"tags":{"nofailover":true}}),
            ),
        );
        assert!(!p.is_primary);
        assert_eq!((p.wal_position, p.failover_priority), (9, 0));
        assert!(!peer_from_body("c".into(), 1, None).reachable);
    }
}
