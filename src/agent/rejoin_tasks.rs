//! Rejoining the leader: pg_rewind, re-clone, and restart.

use super::callbacks::{CallbackRole, Effect};
use super::shared::Shared;
use super::tasks::{create_replica, recovery_for, start, TaskOutcome};
use crate::config::DynamicConfig;
use crate::dcs::Cluster;
use crate::postgres::render::{render_conninfo, ConninfoInput};
use std::sync::Arc;

/// Stops PostgreSQL, runs pg_rewind against `leader`, starts as its replica.
pub async fn rewind(
    sh: Arc<Shared>,
    cluster: Cluster,
    leader: String,
    dynamic: DynamicConfig,
) -> TaskOutcome {
    let node = sh.node();
    if let Err(e) = sh.stop_postgres(crate::ha::StopMode::Fast).await {
        return TaskOutcome::failed(format!("failed to stop postgres before pg_rewind: {e}"));
    }
    let Some((host, port)) = cluster.member(&leader).and_then(|m| m.data.host_port()) else {
        return TaskOutcome::failed(format!("cannot find the address of {leader}"));
    };
    let auth = &node.postgresql.authentication;
    let role = auth.rewind.as_ref().unwrap_or(&auth.superuser);
    let user = role.username.clone();
    let passfile = sh.pg.settings.pgpass.display().to_string();
    let conninfo = render_conninfo(&ConninfoInput {
        host: &host,
        port,
        user: &user,
        passfile: Some(&passfile),
        application_name: &node.name,
        ssl: &role.ssl,
        dbname: Some("postgres"),
    });
    if let Err(e) = sh.ctl.rewind(&conninfo, &dynamic.parameters).await {
        if node.postgresql.remove_data_directory_on_rewind_failure {
            let _ = sh.ctl.remove_data_dir();
            return TaskOutcome::failed(format!(
                "pg_rewind failed, data directory removed for a re-clone: {e}"
            ));
        }
        return TaskOutcome::failed(format!("pg_rewind failed: {e}"));
    }
    let rec = recovery_for(&sh, Some(&cluster), Some(&leader), &dynamic);
    match start(&sh, &dynamic, Some(&rec)).await {
        Ok(()) => {
            super::tasks::record_following(&sh, &rec, Some(leader.clone()));
            sh.callback(Effect::Started(CallbackRole::Replica));
            TaskOutcome::ok(format!("rewound from {leader} and following it"))
        }
        Err(e) => TaskOutcome::failed(format!("failed to start after pg_rewind: {e}")),
    }
}

/// Stops PostgreSQL, wipes the data directory, clones from `leader` again.
pub async fn reinitialize(
    sh: Arc<Shared>,
    cluster: Cluster,
    source: String,
    follow: Option<String>,
    dynamic: DynamicConfig,
) -> TaskOutcome {
    if let Err(e) = sh.stop_postgres(crate::ha::StopMode::Immediate).await {
        return TaskOutcome::failed(format!("failed to stop postgres before reinitialize: {e}"));
    }
    sh.sql.reset().await;
    if let Err(e) = sh.ctl.remove_data_dir() {
        if e.kind() != std::io::ErrorKind::NotFound {
            return TaskOutcome::failed(format!("failed to remove the data directory: {e}"));
        }
    }
    let out = create_replica(sh, cluster, source, follow, dynamic).await;
    if out.ok {
        TaskOutcome::ok(format!("reinitialized: {}", out.message))
    } else {
        out
    }
}

/// Restarts PostgreSQL in its current role (fast stop, start).
pub async fn restart(
    sh: Arc<Shared>,
    cluster: Option<Cluster>,
    replica: bool,
    dynamic: DynamicConfig,
) -> TaskOutcome {
    if let Err(e) = sh.stop_postgres(crate::ha::StopMode::Fast).await {
        return TaskOutcome::failed(format!("restart failed: {e}"));
    }
    let rec = replica.then(|| super::tasks::current_recovery(&sh, cluster.as_ref(), &dynamic));
    match start(&sh, &dynamic, rec.as_ref()).await {
        Ok(()) => {
            sh.callback(Effect::Restarted(CallbackRole::of(!replica)));
            TaskOutcome::ok("restarted successfully")
        }
        Err(e) => TaskOutcome::failed(format!("restart failed: {e}")),
    }
}
