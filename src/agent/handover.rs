//! Planned switchover without losing an acknowledged write.
//!
//! The primary stops cleanly (shutdown checkpoint written and streamed), then waits until a
//! candidate reports it has received WAL past that checkpoint. Only then is the leader key
//! released, so the candidate takes over at once. If no candidate confirms in time, the old
//! primary starts again as primary while still holding the lock: nothing was lost, and the
//! request fails with the reason.

use super::shared::Shared;
use super::tasks::{recovery_for, start, TaskOutcome};
use crate::config::DynamicConfig;
use crate::dcs::{Cluster, Status};
use crate::postgres::lsn::format_lsn;
use serde_json::Value;
use std::sync::Arc;
use std::time::Duration;
use tokio::time::Instant;

/// How long the stopped primary waits for a candidate to confirm the shutdown checkpoint.
fn confirm_timeout(dynamic: &DynamicConfig) -> Duration {
    Duration::from_secs((dynamic.ttl / 2).clamp(3, 15))
}

/// The WAL position a member reports in `/patroni` (received or replayed).
pub fn reported_position(body: &Value) -> Option<u64> {
    crate::wire::PatroniStatus::from_value(body)?.replica_position()
}

/// What the candidates last reported while the stopped primary waited.
#[derive(Debug, Default)]
struct Positions(Vec<(String, Option<u64>)>);

impl Positions {
    fn record(&mut self, name: &str, pos: Option<u64>) {
        match self.0.iter_mut().find(|(n, _)| n == name) {
            Some(entry) => entry.1 = pos.or(entry.1),
            None => self.0.push((name.to_string(), pos)),
        }
    }

    /// `m2 at 0/5000028, m3 unreachable`.
    fn describe(&self) -> String {
        self.0
            .iter()
            .map(|(n, p)| match p {
                Some(p) => format!("{n} at {}", format_lsn(*p)),
                None => format!("{n} unreachable"),
            })
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// Polls the candidates' `/patroni` until one has WAL beyond `ckpt`; on timeout, what each
/// one last reported.
async fn await_checkpoint(
    peers: &dyn super::ports::Peers,
    urls: &[(String, String)],
    ckpt: u64,
    timeout: Duration,
) -> Result<String, Positions> {
    let deadline = Instant::now() + timeout;
    let mut seen = Positions::default();
    loop {
        for (name, url) in urls {
            let body = peers.get_json(url, Duration::from_millis(500)).await;
            let pos = body.as_ref().and_then(reported_position);
            seen.record(name, pos);
            if pos.is_some_and(|p| p > ckpt) {
                return Ok(name.clone());
            }
        }
        if Instant::now() >= deadline {
            return Err(seen);
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Waits (up to `timeout`) until at least one candidate streams from this primary, and
/// keeps only those that do: a candidate fed from an archive gets the shutdown checkpoint
/// only once its segment is archived, long after the hand-over gave up.
async fn streaming_candidates(
    sh: &Shared,
    urls: Vec<(String, String)>,
    timeout: Duration,
) -> Result<Vec<(String, String)>, String> {
    let deadline = Instant::now() + timeout;
    loop {
        let rows = sh.sql.replication().await.unwrap_or_default();
        let streaming = |name: &str| {
            rows.iter().any(|r| {
                r.application_name.as_deref() == Some(name)
                    && r.state.as_deref() == Some("streaming")
            })
        };
        let ready: Vec<_> = urls.iter().filter(|(n, _)| streaming(n)).cloned().collect();
        if !ready.is_empty() {
            return Ok(ready);
        }
        if Instant::now() >= deadline {
            let names: Vec<&str> = urls.iter().map(|(n, _)| n.as_str()).collect();
            return Err(format!(
                "switchover failed: no candidate streams from this primary ({}); postgres was not stopped",
                if names.is_empty() { "none eligible".to_string() } else { names.join(", ") }
            ));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Runs the hand-over. `candidate` None means any healthy member.
pub async fn hand_over(
    sh: Arc<Shared>,
    cluster: Cluster,
    candidate: Option<String>,
    dynamic: DynamicConfig,
) -> TaskOutcome {
    let me = sh.name();
    let urls: Vec<(String, String)> = crate::ha::handover::handover_candidates(
        &cluster,
        &me,
        candidate.as_deref(),
        dynamic.synchronous_mode,
    )
    .into_iter()
    .map(|c| (c.name, c.api_url))
    .collect();
    let urls = match streaming_candidates(&sh, urls, confirm_timeout(&dynamic)).await {
        Ok(urls) => urls,
        Err(reason) => return refuse(&sh, reason).await,
    };
    if let Err(e) = sh.stop_postgres(crate::ha::StopMode::Fast).await {
        return resume(
            &sh,
            &dynamic,
            format!("switchover failed: could not stop postgres: {e}"),
        )
        .await;
    }
    let Some(ckpt) = clean_shutdown_checkpoint(&sh).await else {
        return resume(
            &sh,
            &dynamic,
            "switchover failed: postgres did not shut down cleanly".into(),
        )
        .await;
    };
    let timeout = confirm_timeout(&dynamic);
    let chosen = match await_checkpoint(sh.peers.as_ref(), &urls, ckpt, timeout).await {
        Ok(chosen) => chosen,
        Err(seen) => {
            let reason = format!(
                "switchover failed: no candidate received WAL past the shutdown checkpoint {} within {} s ({}); resuming as primary",
                format_lsn(ckpt),
                timeout.as_secs(),
                seen.describe()
            );
            return resume(&sh, &dynamic, reason).await;
        }
    };
    release_leader_to(&sh, &me, &chosen, ckpt).await;
    follow_new_leader(&sh, &cluster, chosen, &dynamic).await
}

/// The shutdown checkpoint's position when `pg_controldata` says PostgreSQL shut down
/// cleanly, else None.
async fn clean_shutdown_checkpoint(sh: &Shared) -> Option<u64> {
    let control = sh.ctl.controldata().await;
    let clean = control
        .as_ref()
        .and_then(|c| c.state())
        .map(crate::ha::ControlState::parse)
        == Some(crate::ha::ControlState::ShutDown);
    control
        .as_ref()
        .and_then(|c| c.checkpoint_lsn())
        .filter(|_| clean)
}

/// Publishes the shutdown checkpoint as the last optime, then releases the leader key so
/// `chosen`, which has it, wins the race.
async fn release_leader_to(sh: &Shared, me: &str, chosen: &str, ckpt: u64) {
    let _ = sh
        .dcs
        .write_status(&Status {
            optime: ckpt,
            ..Status::default()
        })
        .await;
    match sh.dcs.release_leader(me).await {
        Ok(true) => tracing::info!(
            "Leader key released: {chosen} has the shutdown checkpoint {}",
            format_lsn(ckpt)
        ),
        Ok(false) => tracing::warn!("leader key was no longer ours when handing over"),
        Err(e) => tracing::error!("failed to release leader key: {e}"),
    }
}

/// Starts PostgreSQL again as a replica of `chosen`, the new leader.
async fn follow_new_leader(
    sh: &Shared,
    cluster: &Cluster,
    chosen: String,
    dynamic: &DynamicConfig,
) -> TaskOutcome {
    let rec = recovery_for(sh, Some(cluster), Some(&chosen), dynamic);
    match start(sh, dynamic, Some(&rec)).await {
        Ok(()) => {
            super::tasks::record_following(sh, &rec, Some(chosen.clone()));
            sh.callback(super::callbacks::Effect::Demoted);
            TaskOutcome::ok(format!("switchover: demoted myself, {chosen} takes over"))
        }
        Err(e) => TaskOutcome::failed(format!(
            "failed to start as a replica after switchover: {e}"
        )),
    }
}

/// Gives the request up: records the reason and clears the `failover` key, so the leader
/// does not try the same hand-over again.
async fn refuse(sh: &Shared, reason: String) -> TaskOutcome {
    tracing::warn!("{reason}");
    if let Ok(mut e) = sh.last_handover_error.write() {
        *e = Some(reason.clone());
    }
    if let Ok(c) = sh.dcs.fresh_cluster().await {
        if let Some(f) = c.failover {
            let cleared = sh
                .dcs
                .write_failover(&Default::default(), Some(f.version))
                .await;
            if matches!(cleared, Ok(true)) {
                await_cleared_in_view(sh, f.version).await;
            }
        }
    }
    TaskOutcome::failed(reason)
}

/// Waits (a few seconds at most) until the cluster view the HA loop reads no longer holds
/// the refused `failover` key (version `refused`): the cycle that follows this task must not
/// see the request again and start the refused hand-over a second time.
async fn await_cleared_in_view(sh: &Shared, refused: i64) {
    let deadline = Instant::now() + Duration::from_secs(3);
    while Instant::now() < deadline {
        match sh.dcs.cluster().await {
            Ok(c) if c.failover.as_ref().is_some_and(|f| f.version == refused) => {}
            _ => return,
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Starts again as primary (we still hold the lock) and gives the request up.
async fn resume(sh: &Shared, dynamic: &DynamicConfig, reason: String) -> TaskOutcome {
    if !sh.ctl.is_running() {
        if let Err(e) = start(sh, dynamic, None).await {
            return refuse(sh, format!("{reason}; restarting as primary failed: {e}")).await;
        }
    }
    refuse(sh, reason).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn positions_name_each_candidate() {
        let mut p = Positions::default();
        p.record("m2", Some(0x5000028));
        p.record("m3", None);
        p.record("m2", None);
        assert_eq!(p.describe(), "m2 at 0/5000028, m3 unreachable");
    }

    #[test]
    fn position_from_patroni_body() {
        assert_eq!(
            reported_position(&json!({"xlog": {"received_location": 10, "replayed_location": 8}})),
            Some(10)
        );
        assert_eq!(reported_position(&json!({"xlog": {"location": 10}})), None);
        assert_eq!(reported_position(&json!({"state": "stopped"})), None);
    }
}
