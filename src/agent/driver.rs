//! The HA loop: observe → decide (pure) → execute → publish → wait for a DCS change, an API
//! wake-up, a finished task or `loop_wait`.

use super::lock_budget::{lock_deadline, until_deadline};
use super::member::{build_member, effective_tags, published_role, published_state};
use super::observe::{fetch_peers, observe_pg};
use super::reply::RequestError;
use super::shared::{Command, NodeStatus, Shared};
use super::tasks::TaskOutcome;
use crate::config::timing;
use crate::config::{DynamicConfig, NodeConfig};
use crate::dcs::{Cluster, Status};
use crate::ha::{decide, LockState, NodeFacts, Observation, PgRole, TaskKind};
use crate::postgres::PgRuntime;
use serde_json::{Map, Value};
use std::sync::Arc;
use std::time::Duration;
use tokio::task::JoinHandle;

/// Member-key field (an extension) saying why the member cannot fence a primary.
pub const FENCE_PROBLEM_KEY: &str = "patronus_fence_problem";

/// Why the agent stopped.
#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    /// A decision or task that must stop the agent (e.g. failed bootstrap, sysid mismatch).
    #[error("{0}")]
    Fatal(String),
}

/// Milliseconds since the epoch.
pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// The HA loop state.
pub struct Driver {
    pub(super) sh: Arc<Shared>,
    pub(super) task: Option<(TaskKind, JoinHandle<TaskOutcome>)>,
    pub(super) task_started_ms: Option<u64>,
    pub(super) applied_config_version: Option<i64>,
    /// The role whose settings the configuration was last resolved for.
    pub(super) config_role: super::config_role::RoleTracker,
    pub(super) last_status: Option<Status>,
    pub(super) fatal: Option<String>,
    pub(super) commands: tokio::sync::mpsc::UnboundedReceiver<Command>,
    /// The request being decided on, with its reply channel.
    pub(super) pending: Option<Command>,
    /// Reply channel handed to the task that carries out a request.
    pub(super) task_reply: Option<tokio::sync::oneshot::Sender<super::reply::Reply>>,
    /// Pending restart reasons and the postmaster start time they were computed for.
    pub(super) pending_restart: (Option<String>, serde_json::Map<String, serde_json::Value>),
    /// Recompute pending restarts at the end of this cycle.
    pub(super) recheck_pending: bool,
    /// Reports ignored and unsafe keys of the DCS `config` key once per change.
    pub(super) config_notices: super::config_notice::ConfigNotices,
    /// Unreadable DCS values already reported.
    pub(super) dcs_notices: super::dcs_notice::DcsNotices,
    /// When the last successful leader-lock refresh (or acquisition) started; None when we
    /// do not hold the lock. The lease lives at least until this instant plus `ttl`.
    pub(super) lock_renewed_at: Option<tokio::time::Instant>,
    /// `ttl` and `retry_timeout` of the last configuration read from the DCS.
    pub(super) lock_timing: (u64, u64),
    /// pg_rewind runs that failed in a row (reset by one that works or by a clone).
    pub(super) rewind_failures: u32,
    /// The last `config` key read from the DCS (in force while the DCS is away).
    pub(super) last_config: Option<Value>,
    /// The userspace fence (None when `fence.mode` is off).
    pub(super) fence: Option<super::fence_client::FenceClient>,
    /// Why the fence cannot guard a primary (a member with a problem does not lead).
    pub(super) fence_problem: Option<String>,
    /// The watchdog device (off unless `watchdog.mode` asks for it).
    pub(super) watchdog: super::watchdog::Watchdog,
    /// The required watchdog could not be used (published as `watchdog_failed`).
    pub(super) watchdog_failed: bool,
    /// Retained member slots, published slot positions, logical slot copies.
    pub(super) slots: super::slots_exec::SlotState,
    /// The managed `synchronous_standby_names` and the flush LSN when first seen in force.
    pub(super) sync_mark: Option<(String, u64)>,
    /// The last finished task, when it failed (an input of the next decision).
    pub(super) last_failure: Option<crate::ha::TaskFailure>,
}

/// What one cycle saw, for the executor and the status.
pub(super) struct CycleContext {
    pub cluster: Option<Cluster>,
    pub dynamic: DynamicConfig,
    pub runtime: Option<PgRuntime>,
    pub obs: Observation,
    pub acquired_lock: bool,
    /// When this cycle started (before any DCS call).
    pub cycle_start: tokio::time::Instant,
}

impl Driver {
    /// Creates the loop around shared state.
    pub fn new(sh: Arc<Shared>, commands: tokio::sync::mpsc::UnboundedReceiver<Command>) -> Self {
        let fence = super::fencing::fence_client(&sh.node());
        let watchdog = super::fencing::watchdog(&sh.node());
        let watchdog_problem = super::fencing::watchdog_problem_at_start(&sh.node());
        if let Some(p) = &watchdog_problem {
            tracing::error!("{p}; this member will not take the leader lock");
        }
        Driver {
            sh,
            task: None,
            task_started_ms: None,
            applied_config_version: None,
            config_role: Default::default(),
            last_status: None,
            fatal: None,
            commands,
            pending: None,
            task_reply: None,
            pending_restart: (None, Default::default()),
            recheck_pending: true,
            config_notices: Default::default(),
            dcs_notices: Default::default(),
            lock_renewed_at: None,
            lock_timing: (30, 10),
            rewind_failures: 0,
            last_config: None,
            fence,
            fence_problem: watchdog_problem.clone(),
            watchdog,
            watchdog_failed: watchdog_problem.is_some(),
            slots: Default::default(),
            sync_mark: None,
            last_failure: None,
        }
    }

    /// Runs until `shutdown` flips to true or a fatal error.
    pub async fn run(
        mut self,
        mut shutdown: tokio::sync::watch::Receiver<bool>,
    ) -> Result<(), AgentError> {
        let mut changes = self.sh.dcs.subscribe();
        loop {
            self.reap_task().await;
            if let Some(f) = self.fatal.take() {
                return Err(AgentError::Fatal(f));
            }
            let loop_wait = self.cycle().await;
            if let Some(f) = self.fatal.take() {
                return Err(AgentError::Fatal(f));
            }
            tokio::select! {
                _ = changes.changed() => {}
                _ = self.sh.wake.notified() => {}
                cmd = self.commands.recv() => {
                    if let Some(cmd) = cmd {
                        self.accept_command(cmd);
                    }
                }
                _ = tokio::time::sleep(loop_wait) => {}
                _ = shutdown.changed() => return Ok(()),
            }
        }
    }

    /// Takes an operator request; refuses it at once when another one or a task is running.
    fn accept_command(&mut self, cmd: Command) {
        let force = matches!(
            cmd.request,
            crate::ha::Request::Reinitialize { force: true, .. }
        );
        if let Some((kind, _)) = &self.task {
            if !force {
                let _ = cmd.reply.send(Err(RequestError::Busy(kind.describe())));
                return;
            }
            tracing::warn!("cancelling {} for a forced reinitialize", kind.describe());
            if let Some((_, h)) = self.task.take() {
                h.abort();
            }
            if let Some(r) = self.task_reply.take() {
                let _ = r.send(Err(RequestError::Cancelled));
            }
        }
        if self.pending.is_some() {
            let _ = cmd.reply.send(Err(RequestError::AnotherRequest));
        } else {
            self.pending = Some(cmd);
        }
    }

    /// Collects a finished background task's outcome.
    async fn reap_task(&mut self) {
        let finished = self.task.as_ref().is_some_and(|(_, h)| h.is_finished());
        if !finished {
            return;
        }
        let Some((kind, handle)) = self.task.take() else {
            return;
        };
        let result = handle.await;
        self.record_outcome(kind, &result);
        if let Some(reply) = self.task_reply.take() {
            let answer = match &result {
                Ok(out) if out.ok => Ok(out.message.clone()),
                Ok(out) => Err(RequestError::Failed(out.message.clone())),
                Err(e) => Err(RequestError::Failed(e.to_string())),
            };
            let _ = reply.send(answer);
        }
        match result {
            Ok(out) if out.ok => tracing::info!("{}", out.message),
            Ok(out) => {
                tracing::error!("{}", out.message);
                if out.fatal {
                    self.fatal = Some(out.message);
                }
            }
            Err(e) => tracing::error!("{} task panicked: {e}", kind.describe()),
        }
    }

    /// Starts a background task that wakes the loop when it ends.
    pub(super) fn spawn_task<F>(&mut self, kind: TaskKind, fut: F)
    where
        F: std::future::Future<Output = TaskOutcome> + Send + 'static,
    {
        if let Some((old, h)) = self.task.take() {
            tracing::warn!("cancelling {} to {}", old.describe(), kind.describe());
            h.abort();
        }
        self.task_started_ms = Some(self.sh.clock.now_ms());
        let sh = self.sh.clone();
        let h = tokio::spawn(async move {
            let out = fut.await;
            sh.wake.notify_one();
            out
        });
        self.task = Some((kind, h));
    }

    /// The dynamic configuration in force: the cluster's `config` key; while the DCS is
    /// away, the last one read (as Patroni: a paused cluster stays paused through an outage);
    /// before any, the local `bootstrap.dcs`.
    fn dynamic_for(&mut self, cluster: Option<&Cluster>) -> DynamicConfig {
        if let Some(v) = cluster.and_then(|c| c.config.as_ref()) {
            self.last_config = Some(v.value.clone());
        }
        let node = self.sh.node();
        let v = self
            .last_config
            .clone()
            .or_else(|| node.bootstrap.as_ref().map(|b| b.dcs.clone()))
            .unwrap_or_else(|| serde_json::json!({}));
        let d = DynamicConfig::from_value_with_min_ttl(&v, self.sh.min_ttl);
        if self.sh.take_local_reload() {
            // The node file changed (reload): render the files again this cycle. A version
            // no `config` key has (etcd revisions are positive) makes the decision re-apply.
            self.applied_config_version = Some(-1);
        }
        d
    }

    /// One HA cycle; returns how long to sleep at most.
    async fn cycle(&mut self) -> Duration {
        let node = self.sh.node();
        let name = node.name.clone();
        let cycle_start = tokio::time::Instant::now();
        let deadline = self.lock_deadline(cycle_start);
        let cluster = match until_deadline(deadline, || self.sh.dcs.cluster()).await {
            Ok(c) => Some(c),
            Err(e) => {
                tracing::warn!("failed to read the cluster from the DCS: {e}");
                None
            }
        };
        if let Some(c) = &cluster {
            self.dcs_notices.check(&c.warnings);
        }
        let dynamic = self.dynamic_for(cluster.as_ref());
        let config = cluster.as_ref().and_then(|c| c.config.as_ref());
        self.config_notices.check(config, &dynamic);
        if cluster.is_some() {
            // Only the cluster's own config sets the lease TTL: a fallback config read while
            // the DCS is away must not make the agent re-grant its lease.
            self.sh.dcs.configure(dynamic.ttl, dynamic.retry_timeout);
            self.lock_timing = (dynamic.ttl, dynamic.retry_timeout);
        }
        let mut lock = LockState::NotHeld;
        if cluster.as_ref().is_some_and(|c| c.is_leader(&name)) {
            lock = self.refresh_lock(&name, deadline).await;
        }
        if lock != LockState::Held {
            self.lock_renewed_at = None;
        }
        let (mut pg, runtime) = observe_pg(&self.sh.pg, &self.sh.sql, self.sh.following()).await;
        pg.rewind_failures = self.rewind_failures;
        let pg_lsn = pg
            .lsn
            .filter(|_| pg.role == Some(crate::ha::PgRole::Primary));
        let role = super::config_role::config_role(
            &pg,
            lock == LockState::Held,
            dynamic.is_standby_cluster(),
        );
        if self.config_role.switched(role, !dynamic.roles.is_empty()) {
            self.applied_config_version = Some(-1);
        }
        let dynamic = dynamic.for_role(role);
        self.sh.pg.set_dynamic_ident(dynamic.pg_ident.clone());
        let peers = match &cluster {
            Some(c) if c.leader.is_none() && pg.running && self.task.is_none() => {
                fetch_peers(self.sh.peers.as_ref(), c, &name).await
            }
            _ => vec![],
        };
        let tags = super::member::merged_tags(&node.tags, cluster.as_ref(), &name);
        // The standby leader's recovery follows the remote primary, not a member.
        pg.following_remote = self.sh.following_remote();
        let mut obs = Observation {
            now_ms: self.sh.clock.now_ms(),
            node: NodeFacts {
                name: name.clone(),
                can_bootstrap: node.bootstrap.is_some(),
                nofailover: crate::config::Tags::of(&tags).nofailover(),
                failover_priority: crate::config::Tags::of(&tags).failover_priority(),
                use_pg_rewind: node
                    .postgresql
                    .use_pg_rewind
                    .unwrap_or(dynamic.use_pg_rewind),
                fence_problem: self.fence_problem.clone(),
                pre_promote_failed_ms: self.sh.callbacks.pre_promote_failed_ms(),
                clone_without_leader: super::replica_methods::any_without_leader(&node.postgresql),
                stream: crate::ha::upstream::StreamTags::from_tags(&tags),
            },
            cluster: cluster.clone(),
            config: dynamic.clone(),
            pg,
            task: self.task.as_ref().map(|(k, _)| *k),
            task_started_ms: self.task_started_ms,
            lock,
            applied_config_version: self.applied_config_version,
            peers,
            request: self.pending.as_ref().map(|c| c.request.clone()),
            scheduled_restart_ms: self.due_scheduled_restart(runtime.as_ref()),
            sync_names_applied: self.sh.pg.sync_names(),
            sync_names_since_lsn: self.sync_names_mark(pg_lsn),
            failsafe: Default::default(),
            last_failure: self.last_failure.clone(),
        };
        self.failsafe_cycle(&mut obs).await;
        self.guard(&mut obs).await;
        let decision = decide(&obs);
        let mut early_reply = None;
        if let Some(cmd) = self.pending.take() {
            use crate::ha::Action;
            let acted = decision
                .actions
                .iter()
                .any(|a| matches!(a, Action::Restart | Action::Reinitialize { .. }));
            if acted && cmd.reply_on_start {
                // Answered once this cycle has run and published, so a client polling
                // `/patroni` after the reply sees the action under way.
                early_reply = Some(cmd.reply);
            } else if acted {
                self.task_reply = Some(cmd.reply);
            } else {
                let _ = cmd
                    .reply
                    .send(Err(RequestError::Declined(decision.message.clone())));
            }
        }
        let prefix = if dynamic.pause { "PAUSE: " } else { "" };
        tracing::info!("{prefix}{}", decision.message);
        let mut ctx = CycleContext {
            cluster,
            dynamic,
            runtime,
            obs,
            acquired_lock: false,
            cycle_start,
        };
        for action in decision.actions.clone() {
            self.execute(action, &mut ctx).await;
        }
        if ctx.acquired_lock {
            self.lock_renewed_at = Some(cycle_start);
        }
        self.first_on_start(&ctx);

        self.update_pending_restart(&ctx).await;
        self.publish(&ctx, &decision.message).await;
        if let Some(reply) = early_reply {
            let _ = reply.send(Ok(decision.message.clone()));
        }
        let loop_wait = timing::duration(ctx.dynamic.loop_wait.max(1));
        let restart_at = self
            .sh
            .scheduled_restart
            .read()
            .ok()
            .and_then(|s| s.as_ref().map(|s| s.at_ms));
        match decision.wake_at_ms.into_iter().chain(restart_at).min() {
            Some(at) => loop_wait.min(Duration::from_millis(
                at.saturating_sub(self.sh.clock.now_ms()),
            )),
            None => loop_wait,
        }
    }

    /// Patroni fires `on_start` once when the agent finds PostgreSQL running and no
    /// callback has been fired yet (an agent restarted on a running instance, a bootstrap).
    fn first_on_start(&self, ctx: &CycleContext) {
        if self.sh.callbacks.fired() || self.task.is_some() || !ctx.obs.pg.running {
            return;
        }
        if let Some(role) = ctx.obs.pg.role {
            use super::callbacks::{CallbackRole, Effect};
            self.sh
                .callback(Effect::Started(CallbackRole::of(role == PgRole::Primary)));
        }
    }

    /// The deadline of this cycle's cluster read and lock refresh (see [`lock_deadline`]).
    /// A primary kept by failsafe mode holds no lease: it gets `retry_timeout`, as Patroni,
    /// so that it asks the members again long before their confirmation runs out.
    fn lock_deadline(&self, now: tokio::time::Instant) -> tokio::time::Instant {
        let (ttl, retry_timeout) = self.lock_timing;
        let on_lease = self
            .lock_renewed_at
            .filter(|_| !self.sh.failsafe.confirmed());
        lock_deadline(
            now,
            on_lease,
            timing::duration(ttl),
            timing::duration(retry_timeout.max(1)),
        )
    }

    /// Refreshes the leader lock we hold, retrying until `deadline`; records when a
    /// successful refresh started.
    async fn refresh_lock(&mut self, name: &str, deadline: tokio::time::Instant) -> LockState {
        let started = tokio::time::Instant::now();
        match until_deadline(deadline, || self.sh.dcs.update_leader(name)).await {
            Ok(true) => {
                self.lock_renewed_at = Some(started);
                LockState::Held
            }
            Ok(false) => LockState::NotHeld,
            Err(e) => {
                tracing::error!("failed to update leader lock: {e}");
                LockState::RefreshFailed
            }
        }
    }

    /// Updates the API status and our member key.
    async fn publish(&mut self, ctx: &CycleContext, message: &str) {
        let node = self.sh.node();
        let st = self.node_status(ctx, &node, message).await;
        let mut member = build_member(&node, &st, ctx.dynamic.pause);
        if !st.alter_system.is_empty() {
            // Our extension (Patroni ignores it): ALTER SYSTEM bypasses the DCS configuration.
            member.extra.insert(
                "patronus_alter_system".into(),
                Value::Object(st.alter_system.clone()),
            );
        }
        if let Some(why) = &st.fence_problem {
            // Our extension: why this member does not lead (`list` shows it).
            member
                .extra
                .insert(FENCE_PROBLEM_KEY.into(), Value::String(why.clone()));
        }
        member.scheduled_restart = st.scheduled_restart.clone();
        if let Ok(mut s) = self.sh.status.write() {
            *s = st;
        }
        if ctx.cluster.is_some() {
            let budget = timing::duration(ctx.dynamic.retry_timeout.max(1));
            match tokio::time::timeout(budget, self.sh.dcs.touch_member(&node.name, &member)).await
            {
                Ok(Ok(())) => {}
                Ok(Err(e)) => tracing::warn!("failed to update member key: {e}"),
                Err(_) => tracing::warn!("failed to update member key in time"),
            }
        }
    }

    /// What this cycle learned, as the REST API serves it.
    async fn node_status(
        &self,
        ctx: &CycleContext,
        node: &NodeConfig,
        message: &str,
    ) -> NodeStatus {
        let rt = ctx.runtime.as_ref();
        let has_lock = ctx.obs.has_lock() || ctx.acquired_lock;
        let task = self.task.as_ref().map(|(k, _)| *k);
        let standby_cluster = ctx.dynamic.is_standby_cluster();
        let in_recovery = rt.is_some_and(|r| r.in_recovery);
        let now_ms = self.sh.clock.now_ms();
        NodeStatus {
            state: published_state(task, ctx.obs.pg.running).into(),
            role: published_role(&ctx.obs.pg.data, ctx.obs.pg.role, has_lock, standby_cluster)
                .into(),
            has_lock,
            lock_expires_ms: if has_lock {
                timing::ms_after(now_ms, ctx.dynamic.ttl)
            } else {
                0
            },
            replication_state: in_recovery.then(|| {
                if rt.and_then(|r| r.receiver_status.as_deref()) == Some("streaming") {
                    "streaming".to_string()
                } else {
                    "in archive recovery".to_string()
                }
            }),
            replayed: rt.filter(|r| r.in_recovery).and_then(|r| r.replay_lsn),
            received: rt.filter(|r| r.in_recovery).and_then(|r| r.receive_lsn),
            location: rt.filter(|r| !r.in_recovery).and_then(|r| r.flush_lsn),
            timeline: ctx.obs.pg.timeline,
            server_version: rt.map_or(0, |r| r.server_version),
            postmaster_start_time: rt.and_then(|r| r.postmaster_start_time.clone()),
            replay_timestamp: rt.and_then(|r| r.replay_timestamp.clone()),
            replay_paused: rt.is_some_and(|r| r.replay_paused),
            sysid: rt.and_then(|r| r.sysid.clone()),
            replication: if rt.is_some_and(|r| !r.in_recovery) {
                self.sh.sql.replication().await.unwrap_or_default()
            } else {
                vec![]
            },
            tags: effective_tags(&super::member::merged_tags(
                &node.tags,
                ctx.cluster.as_ref(),
                &node.name,
            )),
            pending_restart: !self.pending_now(rt).is_empty(),
            watchdog_failed: self.watchdog_failed,
            fence_problem: self.fence_problem.clone(),
            pending_restart_reason: self.pending_now(rt),
            cluster: ctx.cluster.clone(),
            dynamic: ctx.dynamic.clone(),
            dcs_last_seen: if ctx.cluster.is_some() {
                now_ms / 1000
            } else {
                self.sh.status().dcs_last_seen
            },
            next_cycle_ms: timing::ms_after(now_ms, ctx.dynamic.loop_wait),
            last_message: message.to_string(),
            alter_system: self.alter_system(rt.is_some()).await,
            scheduled_restart: self
                .sh
                .scheduled_restart
                .read()
                .ok()
                .and_then(|s| s.as_ref().map(|s| s.to_json())),
        }
    }

    /// Settings changed by ALTER SYSTEM (PostgreSQL running). Secret-bearing ones (a
    /// primary_conninfo with a password, ...) never leave the node: they are not even kept
    /// in the status the REST API serves.
    async fn alter_system(&self, running: bool) -> Map<String, Value> {
        if !running {
            return Map::new();
        }
        let overrides = self
            .sh
            .sql
            .alter_system_overrides()
            .await
            .unwrap_or_default();
        crate::secrets::strip_secret_settings(
            overrides
                .into_iter()
                .map(|(k, v)| (k, Value::String(v)))
                .collect(),
        )
    }
}
