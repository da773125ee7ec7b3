//! Effects of a standby cluster ([`crate::ha::standby`]): the standby leader's bootstrap
//! from the remote primary, pointing its recovery at the remote, starting it, and turning
//! a primary into the standby leader (`demote-cluster`).

use super::callbacks::{CallbackRole, Effect};
use super::replica_methods::{plan_methods, CloneSource};
use super::shared::Shared;
use super::task_error::TaskError;
use super::tasks::{remote_recovery, start, TaskOutcome};
use crate::config::DynamicConfig;
use std::sync::Arc;

/// Clones the remote primary (`standby_cluster.create_replica_methods`, default
/// pg_basebackup), starts following it, then writes `initialize` and `config` and takes
/// the leader key as the standby leader. A failure removes the data and the `initialize`
/// key so that the next cycle tries again.
pub async fn bootstrap_standby_leader(
    sh: Arc<Shared>,
    dynamic: DynamicConfig,
    dcs_config: serde_json::Value,
) -> TaskOutcome {
    match bootstrap_steps(&sh, &dynamic, &dcs_config).await {
        Ok(outcome) => outcome,
        Err(e) => {
            tracing::error!("failed to bootstrap clone from remote member: {e}");
            let _ = sh.ctl.stop(crate::ha::StopMode::Immediate).await;
            let _ = sh.ctl.remove_data_dir();
            sh.set_following(None);
            match sh.dcs.cancel_initialize().await {
                Ok(()) => tracing::info!(
                    "removing initialize key after failed attempt to bootstrap the cluster"
                ),
                Err(e) => tracing::error!("failed to remove initialize key: {e}"),
            }
            TaskOutcome::failed(format!(
                "standby leader bootstrap failed: {e}; trying again in the next cycle"
            ))
        }
    }
}

async fn bootstrap_steps(
    sh: &Shared,
    dynamic: &DynamicConfig,
    dcs_config: &serde_json::Value,
) -> Result<TaskOutcome, TaskError> {
    let node = sh.node();
    let sc = dynamic
        .standby_cluster
        .clone()
        .ok_or("standby_cluster is not configured")?;
    let rec = remote_recovery(sh, dynamic);
    let source = sc.host.as_deref().map(|host| {
        let host = if host.contains(':') {
            format!("[{host}]")
        } else {
            host.to_string()
        };
        CloneSource {
            connstring: format!(
                "postgres://{}@{host}:{}/postgres",
                node.postgresql.authentication.replication.username,
                sc.port.unwrap_or(5432)
            ),
        }
    });
    let pg_config = super::tasks::standby_clone_config(&node.postgresql, dynamic);
    let (plans, warnings) = plan_methods(&pg_config, &node.scope, source.as_ref());
    for w in warnings {
        tracing::warn!("{w}");
    }
    let target = rec
        .conninfo
        .as_deref()
        .map(|c| format!("{c} dbname=postgres"))
        .unwrap_or_default();
    let method = sh
        .ctl
        .clone_data(&plans, &target)
        .await
        .map_err(|failures| {
            TaskError::Refused(format!("every method failed ({})", failures.join("; ")))
        })?;
    start(sh, dynamic, Some(&rec)).await?;
    sh.set_following_remote();
    super::tasks::claim_new_cluster(sh, dcs_config).await?;
    sh.callback(Effect::Started(CallbackRole::StandbyLeader));
    Ok(TaskOutcome::ok(format!(
        "bootstrapped clone from remote member {} using {method}",
        rec.conninfo.as_deref().map_or("(restore_command)", |_| sc
            .host
            .as_deref()
            .unwrap_or_default())
    )))
}

/// Rewrites the recovery settings to follow the remote primary and reloads PostgreSQL
/// when they changed (PostgreSQL ≥ 13 applies `primary_conninfo` on reload).
pub async fn follow_remote(sh: &Shared, dynamic: &DynamicConfig) {
    let rec = remote_recovery(sh, dynamic);
    match sh
        .ctl
        .write_config(&dynamic.parameters, dynamic.pg_hba.as_deref(), Some(&rec))
    {
        Ok(changed) => {
            let became = !sh.following_remote();
            sh.set_following_remote();
            if became {
                // A replica that won the race: Patroni fires on_role_change standby_leader.
                sh.callback(Effect::Started(CallbackRole::StandbyLeader));
            }
            if changed {
                if let Err(e) = sh.reload_postgres(CallbackRole::StandbyLeader).await {
                    tracing::error!("failed to reload postgres: {e}");
                }
            }
        }
        Err(e) => tracing::error!("failed to write recovery configuration: {e}"),
    }
}

/// Starts PostgreSQL in recovery following the remote primary, as the standby leader when
/// `leader` (we hold the lock), else as a replica waiting for the race.
pub async fn start_following_remote(
    sh: Arc<Shared>,
    dynamic: DynamicConfig,
    leader: bool,
) -> TaskOutcome {
    let rec = remote_recovery(&sh, &dynamic);
    match start(&sh, &dynamic, Some(&rec)).await {
        Ok(()) => {
            sh.set_following_remote();
            let role = if leader {
                CallbackRole::StandbyLeader
            } else {
                CallbackRole::Replica
            };
            sh.callback(Effect::Started(role));
            TaskOutcome::ok("postgres started following the remote primary")
        }
        Err(e) => TaskOutcome::failed(format!("failed to start postgres: {e}")),
    }
}

/// `demote-cluster`: clean stop (shutdown checkpoint), keep the leader key, start again in
/// recovery following the remote primary as the standby leader.
pub async fn demote_cluster(sh: Arc<Shared>, dynamic: DynamicConfig) -> TaskOutcome {
    if let Err(e) = sh.stop_postgres(crate::ha::StopMode::Fast).await {
        return TaskOutcome::failed(format!("failed to stop postgres while demoting: {e}"));
    }
    let rec = remote_recovery(&sh, &dynamic);
    match start(&sh, &dynamic, Some(&rec)).await {
        Ok(()) => {
            sh.set_following_remote();
            // on_role_change standby_leader, as Patroni after demote-cluster.
            sh.callback(Effect::Started(CallbackRole::StandbyLeader));
            TaskOutcome::ok("demoted the cluster: running as the standby leader")
        }
        Err(e) => TaskOutcome::failed(format!(
            "failed to start postgres as the standby leader: {e}"
        )),
    }
}
