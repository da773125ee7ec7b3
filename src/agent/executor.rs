//! One action → one effect. Long effects become background tasks.

use super::callbacks::CallbackRole;
use super::driver::{CycleContext, Driver};
use super::history::{merge_history, parse_history_file};
use super::tasks::{self, recovery_for};
use super::{handover, rejoin_tasks};
use crate::dcs::{Cluster, Status};
use crate::ha::upstream;
use crate::ha::{Action, PgRole, TaskKind};
use crate::postgres::names::slot_name_for_member;

impl Driver {
    /// Executes one action of this cycle's decision: DCS writes and configuration here, long
    /// effects as background tasks ([`Driver::start_task_for`]).
    pub(super) async fn execute(&mut self, action: Action, ctx: &mut CycleContext) {
        let sh = self.sh.clone();
        match action {
            Action::Bootstrap => self.bootstrap(ctx, false).await,
            Action::BootstrapStandbyLeader => self.bootstrap(ctx, true).await,
            Action::FollowRemote => super::standby_tasks::follow_remote(&sh, &ctx.dynamic).await,
            Action::AcquireLock { promote } => self.acquire_lock(ctx, promote).await,
            Action::ReleaseLock => {
                if let Err(e) = sh.dcs.release_leader(&sh.name()).await {
                    tracing::error!("failed to release the leader lock: {e}");
                }
            }
            Action::Promote => {
                if self.guard_promotion(ctx).await {
                    self.spawn_promote(ctx);
                }
            }
            Action::Follow { leader } => self.follow(ctx, Some(leader)).await,
            Action::StopStreaming => self.follow(ctx, None).await,
            Action::WriteInitialize { sysid, create_new } => {
                self.write_initialize(&sysid, create_new).await
            }
            Action::SeedConfig => self.seed_config().await,
            Action::PublishStatus => self.publish_status(ctx).await,
            Action::UpdateHistory => self.update_history(ctx).await,
            Action::ApplyConfig => self.apply_config(ctx).await,
            Action::SyncSlots => self.sync_slots(ctx).await,
            Action::HandOver { candidate } => self.start_hand_over(ctx, candidate),
            Action::ClearFailover => self.clear_failover(ctx).await,
            Action::WriteSync { standbys } => self.write_sync(ctx, standbys).await,
            Action::WriteQuorum { quorum, voters } => self.write_quorum(ctx, quorum, voters).await,
            Action::SetSyncNames { value } => self.set_sync_names(ctx, value).await,
            Action::WriteFailsafe { topology } => self.write_failsafe(ctx, topology).await,
            Action::Restart => self.restart(ctx),
            Action::Fatal { reason } => self.fatal = Some(reason),
            Action::Warn { message } => tracing::warn!("{message}"),
            task @ (Action::StartFollowingRemote
            | Action::CreateReplica { .. }
            | Action::CreateReplicaWithoutLeader
            | Action::StartPrimary
            | Action::StartReplica { .. }
            | Action::Demote { .. }
            | Action::Rewind { .. }
            | Action::Reinitialize { .. }) => self.start_task_for(task, ctx),
        }
    }

    /// Starts the background task that carries out `action` (start, clone, demote, rewind,
    /// reinitialize).
    fn start_task_for(&mut self, action: Action, ctx: &CycleContext) {
        let sh = self.sh.clone();
        let name = sh.name();
        let dynamic = ctx.dynamic.clone();
        let cluster = ctx.cluster.clone();
        match action {
            Action::StartFollowingRemote => self.spawn_task(
                TaskKind::Start,
                super::standby_tasks::start_following_remote(sh, dynamic, ctx.obs.has_lock()),
            ),
            Action::CreateReplica { source } => {
                let Some(c) = cluster else { return };
                let follow = upstream_after_clone(ctx, &c, &name);
                let task = tasks::create_replica(sh, c, source, follow, dynamic);
                self.spawn_task(TaskKind::CreateReplica, task);
            }
            Action::CreateReplicaWithoutLeader => self.spawn_task(
                TaskKind::CreateReplica,
                tasks::create_replica_without_leader(sh, dynamic),
            ),
            Action::StartPrimary => {
                let task = tasks::start_task(sh, cluster, None, true, dynamic);
                self.spawn_task(TaskKind::Start, task);
            }
            Action::StartReplica { leader } => {
                let task = tasks::start_task(sh, cluster, leader, false, dynamic);
                self.spawn_task(TaskKind::Start, task);
            }
            Action::Demote {
                mode: crate::ha::DemoteMode::Cluster,
            } => self.spawn_task(
                TaskKind::Demote,
                super::standby_tasks::demote_cluster(sh, dynamic),
            ),
            Action::Demote { mode } => {
                self.spawn_task(TaskKind::Demote, tasks::demote(sh, cluster, mode, dynamic));
            }
            Action::Rewind { leader } => {
                let Some(c) = cluster else { return };
                let task = rejoin_tasks::rewind(sh, c, leader, dynamic);
                self.spawn_task(TaskKind::Rewind, task);
            }
            Action::Reinitialize { leader } => {
                let Some(c) = cluster else { return };
                let follow = upstream_after_clone(ctx, &c, &name);
                let task = rejoin_tasks::reinitialize(sh, c, leader, follow, dynamic);
                self.spawn_task(TaskKind::Reinitialize, task);
            }
            // `execute` hands only the task actions above to this function.
            other => tracing::error!("no task carries out {other:?}"),
        }
    }

    /// Races for the `initialize` key; the winner bootstraps the cluster (initdb, or a clone
    /// of the remote primary for the leader of a new standby cluster).
    async fn bootstrap(&mut self, ctx: &CycleContext, standby_leader: bool) {
        let sh = self.sh.clone();
        match sh.dcs.try_initialize().await {
            Ok(true) => {
                let dynamic = ctx.dynamic.clone();
                let dcs_config = bootstrap_dcs(&sh);
                if standby_leader {
                    let task =
                        super::standby_tasks::bootstrap_standby_leader(sh, dynamic, dcs_config);
                    self.spawn_task(TaskKind::Bootstrap, task);
                } else {
                    let task = tasks::bootstrap(sh, dynamic, dcs_config);
                    self.spawn_task(TaskKind::Bootstrap, task);
                }
            }
            Ok(false) => tracing::info!("failed to acquire initialize lock"),
            Err(e) => tracing::error!("failed to race for the initialize key: {e}"),
        }
    }

    /// Races for the leader key; the winner promotes when asked to (after the promotion
    /// guard), else it keeps running as it is (a standby leader, a leader restarting).
    async fn acquire_lock(&mut self, ctx: &mut CycleContext, promote: bool) {
        let sh = self.sh.clone();
        let name = sh.name();
        match sh.dcs.try_acquire_leader(&name).await {
            Ok(true) => {
                ctx.acquired_lock = true;
                self.clear_failover(ctx).await;
                if promote && !self.guard_promotion(ctx).await {
                    let _ = sh.dcs.release_leader(&name).await;
                    ctx.acquired_lock = false;
                } else if promote {
                    tracing::info!("promoted self to leader by acquiring session lock");
                    self.spawn_promote(ctx);
                } else {
                    let standby = ctx.dynamic.is_standby_cluster();
                    tracing::info!("{}", crate::ha::standby::acquired_lock_message(standby));
                }
            }
            Ok(false) => {
                tracing::info!("following new leader after trying and failing to obtain lock")
            }
            Err(e) => tracing::error!("failed to acquire the leader lock: {e}"),
        }
    }

    /// Starts the promotion task (members' slots first, the pre-promote sync names).
    fn spawn_promote(&mut self, ctx: &CycleContext) {
        let sh = self.sh.clone();
        let dynamic = ctx.dynamic.clone();
        let slots = member_slots(ctx, &sh.name());
        let ssn = self.prepromote(ctx, &dynamic);
        self.spawn_task(TaskKind::Promote, tasks::promote(sh, dynamic, slots, ssn));
    }

    /// Writes the `initialize` key when taking over a running cluster.
    async fn write_initialize(&self, sysid: &str, create_new: bool) {
        match self.sh.dcs.set_initialize(sysid, create_new).await {
            Ok(true) => {}
            Ok(false) => {
                tracing::warn!("initialize key created by another member first: not taking over")
            }
            Err(e) => tracing::error!("failed to write initialize key: {e}"),
        }
    }

    /// Writes `bootstrap.dcs` as the `config` key when it is missing.
    async fn seed_config(&self) {
        let v = bootstrap_dcs(&self.sh);
        if let Err(e) = self.sh.dcs.write_config(&v, Some(0)).await {
            tracing::error!("failed to write config key: {e}");
        }
    }

    /// Starts the switchover hand-over to `candidate`.
    fn start_hand_over(&mut self, ctx: &CycleContext, candidate: Option<String>) {
        let Some(c) = ctx.cluster.clone() else { return };
        let sh = self.sh.clone();
        if let Ok(mut e) = sh.last_handover_error.write() {
            *e = None;
        }
        let task = handover::hand_over(sh, c, candidate, ctx.dynamic.clone());
        self.spawn_task(TaskKind::Demote, task);
    }

    /// Starts a restart; a scheduled restart that is due is consumed by it.
    fn restart(&mut self, ctx: &CycleContext) {
        let sh = self.sh.clone();
        if ctx
            .obs
            .scheduled_restart_ms
            .is_some_and(|at| at <= ctx.obs.now_ms)
        {
            if let Ok(mut s) = sh.scheduled_restart.write() {
                *s = None;
            }
        }
        let replica = ctx.obs.pg.role == Some(PgRole::Replica);
        let task = rejoin_tasks::restart(sh, ctx.cluster.clone(), replica, ctx.dynamic.clone());
        self.spawn_task(TaskKind::Restart, task);
    }

    /// Renders the replica's recovery settings for `upstream` (None: no `primary_conninfo`,
    /// `nostream`) and reloads PostgreSQL when they changed.
    async fn follow(&mut self, ctx: &CycleContext, upstream: Option<String>) {
        let sh = &self.sh;
        let dynamic = &ctx.dynamic;
        log_upstream(ctx, &sh.name(), upstream.as_deref());
        let rec = recovery_for(sh, ctx.cluster.as_ref(), upstream.as_deref(), dynamic);
        if upstream.is_some() && rec.conninfo.is_none() {
            // Keep the settings we have until the upstream's address is known.
            tasks::record_following(sh, &rec, upstream);
            return;
        }
        match sh
            .ctl
            .write_config(&dynamic.parameters, dynamic.pg_hba.as_deref(), Some(&rec))
        {
            Ok(changed) => {
                tasks::record_following(sh, &rec, upstream);
                if changed {
                    if let Err(e) = sh.reload_postgres(CallbackRole::Replica).await {
                        tracing::error!("failed to reload postgres: {e}");
                    }
                }
            }
            Err(e) => tracing::error!("failed to write recovery configuration: {e}"),
        }
    }

    /// Clears the `failover` key with CAS on the version we saw.
    async fn clear_failover(&mut self, ctx: &CycleContext) {
        let Some(f) = ctx.cluster.as_ref().and_then(|c| c.failover.as_ref()) else {
            return;
        };
        if let Err(e) = self
            .sh
            .dcs
            .write_failover(&Default::default(), Some(f.version))
            .await
        {
            tracing::warn!("failed to clear the failover key: {e}");
        }
    }

    async fn publish_status(&mut self, ctx: &CycleContext) {
        // A standby leader publishes how far it has received or replayed.
        let flushed = ctx.runtime.as_ref().and_then(|r| r.flush_lsn);
        let Some(optime) = flushed.or(ctx.obs.pg.lsn) else {
            return;
        };
        let previous = ctx.cluster.as_ref().map(|c| c.status.clone());
        let slots = match &self.slots.positions {
            Some(p) => Some(p.iter().map(|(k, v)| (k.clone(), (*v).into())).collect()),
            None => previous.as_ref().and_then(|s| s.slots.clone()),
        };
        let status = Status {
            optime,
            slots: slots.filter(|s: &serde_json::Map<_, _>| !s.is_empty()),
            retain_slots: self.retain_slots_to_publish(ctx),
        };
        if self.last_status.as_ref() == Some(&status) {
            return;
        }
        match self.sh.dcs.write_status(&status).await {
            Ok(()) => self.last_status = Some(status),
            Err(e) => tracing::warn!("failed to write status: {e}"),
        }
    }

    async fn update_history(&mut self, ctx: &CycleContext) {
        let Some(tl) = ctx.obs.pg.timeline else {
            return;
        };
        // Timeline 1 has no history file: Patroni writes `[]`.
        let (text, stamp) = if tl == 1 {
            (String::new(), String::new())
        } else if let Some(file) = self.sh.ctl.history_file(tl) {
            file
        } else {
            return;
        };
        let previous = ctx
            .cluster
            .as_ref()
            .map(|c| c.history.clone())
            .unwrap_or_default();
        let lines = merge_history(
            parse_history_file(&text),
            &previous,
            &stamp,
            &self.sh.name(),
        );
        let value = serde_json::Value::Array(lines.iter().map(|l| l.to_value()).collect());
        if let Err(e) = self.sh.dcs.write_history(&value).await {
            tracing::warn!("failed to write history: {e}");
        }
    }

    async fn apply_config(&mut self, ctx: &CycleContext) {
        let sh = &self.sh;
        let d = &ctx.dynamic;
        if d.synchronous_mode == crate::config::dynamic::SyncMode::Off {
            sh.ctl.set_sync_names(None);
        }
        let rec = match ctx.obs.pg.role {
            Some(PgRole::Replica) => Some(tasks::current_recovery(sh, ctx.cluster.as_ref(), d)),
            _ => None,
        };
        match sh
            .ctl
            .write_config(&d.parameters, d.pg_hba.as_deref(), rec.as_ref())
        {
            Ok(changed) => {
                if changed {
                    tracing::info!("Reloading PostgreSQL configuration.");
                    let primary = ctx.obs.pg.role == Some(PgRole::Primary);
                    if let Err(e) = sh.reload_postgres(CallbackRole::of(primary)).await {
                        tracing::error!("failed to reload postgres: {e}");
                        return;
                    }
                }
                self.applied_config_version = ctx
                    .cluster
                    .as_ref()
                    .and_then(|c| c.config.as_ref().map(|v| v.version));
                self.recheck_pending = true;
            }
            Err(e) => tracing::error!("failed to write postgresql.conf: {e}"),
        }
    }
}

/// Says why a member tagged `replicatefrom` streams from somebody else (or from nobody).
fn log_upstream(ctx: &CycleContext, me: &str, upstream: Option<&str>) {
    let tags = &ctx.obs.node.stream;
    match (tags.replicatefrom.as_deref(), &ctx.cluster) {
        _ if tags.nostream => {
            tracing::info!("nostream: not streaming, replaying from restore_command only")
        }
        (Some(r), Some(c)) if Some(r) != upstream => {
            if let Err(why) = upstream::cascade_check(c, me, r) {
                tracing::warn!(
                    "not streaming from {r} (replicatefrom): {}; streaming from {} instead",
                    why.reason(),
                    upstream.unwrap_or("nobody")
                );
            }
        }
        (Some(r), _) if Some(r) == upstream => tracing::info!("streaming from {r} (replicatefrom)"),
        _ => {}
    }
}

/// Whom a freshly cloned replica streams from: its upstream by its tags (the leader, its
/// `replicatefrom` member, nobody with `nostream`).
fn upstream_after_clone(ctx: &CycleContext, cluster: &Cluster, me: &str) -> Option<String> {
    upstream::upstream(cluster, me, &ctx.obs.node.stream, cluster.leader_name())
}

/// The physical slots the leader keeps for the other members (none without `use_slots`;
/// none for a member tagged `nostream` or streaming from another member,
/// [`upstream::leader_keeps_slot_for`]).
pub(super) fn member_slots(ctx: &CycleContext, me: &str) -> Vec<String> {
    let Some(cluster) = &ctx.cluster else {
        return vec![];
    };
    upstream::slot_members(cluster, me, true, ctx.dynamic.use_slots)
        .into_iter()
        .map(slot_name_for_member)
        .collect()
}

/// `bootstrap.dcs` of the node file (`{}` without one).
fn bootstrap_dcs(sh: &super::Shared) -> serde_json::Value {
    sh.node()
        .bootstrap
        .map(|b| b.dcs)
        .unwrap_or_else(|| serde_json::json!({}))
}
