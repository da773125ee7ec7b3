//! The HA loop: observe → step the agent machine (pure) → run its effects → publish → wait
//! for a DCS change, an API wake-up, a finished task or the machine's next wake-up.

use super::lock_budget::{lock_deadline, until_deadline};
use super::observe::{fetch_peers, observe_pg};
use super::shared::{Command, Shared};
use super::tasks::TaskOutcome;
use crate::config::timing;
use crate::config::{DynamicConfig, NodeConfig};
use crate::dcs::{Cluster, Status};
use crate::ha::machine::{Effect, Input, Output, RequestId, TaskResult};
use crate::ha::{AgentMachine, LockState, NodeFacts, Observation, PgRole, TaskKind};
use crate::postgres::PgRuntime;
use serde_json::{Map, Value};
use std::collections::HashMap;
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

/// The HA loop state: the agent machine (task, requests, last failure) and what the effects
/// need between cycles.
pub struct Driver {
    pub(super) sh: Arc<Shared>,
    /// The agent's state between cycles and its decisions (pure).
    pub(super) machine: AgentMachine,
    /// The background task the machine knows as running.
    pub(super) task: Option<JoinHandle<TaskOutcome>>,
    /// Reply channels of the operator requests the machine has not answered yet.
    pub(super) replies: HashMap<RequestId, tokio::sync::oneshot::Sender<super::reply::Reply>>,
    /// The name of the next operator request.
    pub(super) next_request: RequestId,
    pub(super) applied_config_version: Option<i64>,
    /// The role whose settings the configuration was last resolved for.
    pub(super) config_role: super::config_role::RoleTracker,
    pub(super) last_status: Option<Status>,
    pub(super) fatal: Option<String>,
    pub(super) commands: tokio::sync::mpsc::UnboundedReceiver<Command>,
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
    /// The last `config` key read from the DCS (in force while the DCS is away).
    pub(super) last_config: Option<Value>,
    /// The userspace fence (None when `fence.mode` is off).
    pub(super) fence: Option<Box<dyn super::ports::Fence>>,
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
    /// Sees every input of the machine with its output (the simulator's trace).
    pub(super) observer: Option<StepObserver>,
}

/// A watcher of the machine's steps: each input with the machine's output.
pub type StepObserver = Box<dyn FnMut(&Input, &Output) + Send>;

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

/// What the first part of a cycle read from the DCS.
struct DcsView {
    cluster: Option<Cluster>,
    dynamic: DynamicConfig,
    lock: LockState,
    cycle_start: tokio::time::Instant,
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
            machine: AgentMachine::new(),
            task: None,
            replies: HashMap::new(),
            next_request: 0,
            applied_config_version: None,
            config_role: Default::default(),
            last_status: None,
            fatal: None,
            commands,
            pending_restart: (None, Default::default()),
            recheck_pending: true,
            config_notices: Default::default(),
            dcs_notices: Default::default(),
            lock_renewed_at: None,
            lock_timing: (30, 10),
            last_config: None,
            fence,
            fence_problem: watchdog_problem.clone(),
            watchdog,
            watchdog_failed: watchdog_problem.is_some(),
            slots: Default::default(),
            sync_mark: None,
            observer: None,
        }
    }

    /// The same loop with `fence` as its fence (None: none), instead of the node file's.
    pub fn with_fence(mut self, fence: Option<Box<dyn super::ports::Fence>>) -> Self {
        self.fence = fence;
        self
    }

    /// The same loop, showing each step of its machine to `observer`.
    pub fn with_observer(mut self, observer: StepObserver) -> Self {
        self.observer = Some(observer);
        self
    }

    /// One step of the machine, shown to the observer.
    fn step(&mut self, input: Input) -> Output {
        let seen = self.observer.is_some().then(|| input.clone());
        let out = self.machine.step(input);
        if let (Some(f), Some(input)) = (self.observer.as_mut(), seen) {
            f(&input, &out);
        }
        out
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
            // `biased`: the same inputs give the same order (the simulator replays runs);
            // an operator request is never starved by DCS changes.
            tokio::select! {
                biased;
                _ = shutdown.changed() => return Ok(()),
                cmd = self.commands.recv() => {
                    if let Some(cmd) = cmd {
                        self.accept_command(cmd);
                    }
                }
                _ = changes.changed() => {}
                _ = self.sh.wake.notified() => {}
                _ = tokio::time::sleep(loop_wait) => {}
            }
        }
    }

    /// Hands an operator request to the machine (which refuses it at once when another one
    /// or a task is running, or cancels the task for a forced reinitialize).
    fn accept_command(&mut self, cmd: Command) {
        let id = self.next_request;
        self.next_request += 1;
        self.replies.insert(id, cmd.reply);
        let out = self.step(Input::Request {
            id,
            request: cmd.request,
            reply_on_start: cmd.reply_on_start,
        });
        for effect in &out.effects {
            if let Effect::CancelTask(kind) = effect {
                tracing::warn!("cancelling {} for a forced reinitialize", kind.describe());
                if let Some(h) = self.task.take() {
                    h.abort();
                }
            }
        }
        self.send_replies(out.replies);
    }

    /// Sends the machine's answers to the requests' channels.
    fn send_replies(&mut self, replies: Vec<(RequestId, super::reply::Reply)>) {
        for (id, reply) in replies {
            if let Some(tx) = self.replies.remove(&id) {
                let _ = tx.send(reply);
            }
        }
    }

    /// Feeds a finished background task's outcome to the machine.
    async fn reap_task(&mut self) {
        if !self.task.as_ref().is_some_and(|h| h.is_finished()) {
            return;
        }
        let (Some(handle), Some(kind)) = (self.task.take(), self.machine.task()) else {
            return;
        };
        let result = match handle.await {
            Ok(out) if out.ok => {
                tracing::info!("{}", out.message);
                TaskResult::Succeeded(out.message)
            }
            Ok(out) => {
                tracing::error!("{}", out.message);
                TaskResult::Failed {
                    message: out.message,
                    fatal: out.fatal,
                }
            }
            Err(e) => {
                let message = format!("{} task panicked: {e}", kind.describe());
                tracing::error!("{message}");
                TaskResult::Failed {
                    message,
                    fatal: false,
                }
            }
        };
        let at_ms = self.sh.clock.now_ms();
        let out = self.step(Input::TaskFinished {
            kind,
            result,
            at_ms,
        });
        for effect in &out.effects {
            if let Effect::Stop(reason) = effect {
                self.fatal = Some(reason.clone());
            }
        }
        self.send_replies(out.replies);
    }

    /// Starts a background task that wakes the loop when it ends, and tells the machine.
    pub(super) fn spawn_task<F>(&mut self, kind: TaskKind, fut: F)
    where
        F: std::future::Future<Output = TaskOutcome> + Send + 'static,
    {
        if let (Some(h), Some(old)) = (self.task.take(), self.machine.task()) {
            tracing::warn!("cancelling {} to {}", old.describe(), kind.describe());
            h.abort();
        }
        let at_ms = self.sh.clock.now_ms();
        let sh = self.sh.clone();
        let h = tokio::spawn(async move {
            let out = fut.await;
            sh.wake.notify_one();
            out
        });
        self.task = Some(h);
        self.step(Input::TaskStarted { kind, at_ms });
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
        let view = self.read_dcs().await;
        let cycle_start = view.cycle_start;
        let (obs, runtime) = self.observe(view).await;
        let out = self.step(Input::Observed(Box::new(obs.clone())));
        let message = out.message.clone().unwrap_or_default();
        let prefix = if obs.config.pause { "PAUSE: " } else { "" };
        tracing::info!("{prefix}{message}");
        let mut ctx = CycleContext {
            cluster: obs.cluster.clone(),
            dynamic: obs.config.clone(),
            runtime,
            obs,
            acquired_lock: false,
            cycle_start,
        };
        self.run_effects(&out, &mut ctx).await;
        if ctx.acquired_lock {
            self.lock_renewed_at = Some(cycle_start);
        }
        self.first_on_start(&ctx);
        self.update_pending_restart(&ctx).await;
        self.publish(&ctx, &message).await;
        self.send_replies(out.replies);
        self.sleep_after(&ctx, out.wake_at_ms)
    }

    /// Runs the effects of an observation's step, in order.
    async fn run_effects(&mut self, out: &Output, ctx: &mut CycleContext) {
        for effect in &out.effects {
            match effect {
                Effect::Act(action) => self.execute(action.clone(), ctx).await,
                Effect::Stop(reason) => self.fatal = Some(reason.clone()),
                Effect::CancelTask(_) => {
                    if let Some(h) = self.task.take() {
                        h.abort();
                    }
                }
            }
        }
    }

    /// How long to sleep: `loop_wait`, or less when the decision or a scheduled restart
    /// wants a cycle earlier.
    fn sleep_after(&self, ctx: &CycleContext, wake_at_ms: Option<u64>) -> Duration {
        let loop_wait = timing::duration(ctx.dynamic.loop_wait.max(1));
        let restart_at = self
            .sh
            .scheduled_restart
            .read()
            .ok()
            .and_then(|s| s.as_ref().map(|s| s.at_ms));
        match wake_at_ms.into_iter().chain(restart_at).min() {
            Some(at) => loop_wait.min(Duration::from_millis(
                at.saturating_sub(self.sh.clock.now_ms()),
            )),
            None => loop_wait,
        }
    }

    /// Reads the cluster within the lock's budget, settles the dynamic configuration in force
    /// and refreshes the leader lock we hold.
    async fn read_dcs(&mut self) -> DcsView {
        let name = self.sh.name();
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
        DcsView {
            cluster,
            dynamic,
            lock,
            cycle_start,
        }
    }

    /// Builds the observation: local PostgreSQL, the role's configuration, peers when the
    /// leader race needs them, failsafe and fence facts. The machine adds what it owns.
    async fn observe(&mut self, view: DcsView) -> (Observation, Option<PgRuntime>) {
        let node = self.sh.node();
        let name = node.name.clone();
        let DcsView {
            cluster,
            dynamic,
            lock,
            ..
        } = view;
        let (mut pg, runtime) = observe_pg(
            self.sh.ctl.as_ref(),
            self.sh.sql.as_ref(),
            self.sh.following(),
        )
        .await;
        let pg_lsn = pg.lsn.filter(|_| pg.role == Some(PgRole::Primary));
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
            Some(c) if c.leader.is_none() && pg.running && self.machine.task().is_none() => {
                fetch_peers(self.sh.peers.as_ref(), c, &name).await
            }
            _ => vec![],
        };
        let tags = super::member::merged_tags(&node.tags, cluster.as_ref(), &name);
        // The standby leader's recovery follows the remote primary, not a member.
        pg.following_remote = self.sh.following_remote();
        let mut obs = Observation {
            now_ms: self.sh.clock.now_ms(),
            node: self.node_facts(&node, &tags, &dynamic),
            cluster,
            config: dynamic,
            pg,
            // Filled in by the machine, which owns them.
            task: None,
            task_started_ms: None,
            request: None,
            last_failure: None,
            lock,
            applied_config_version: self.applied_config_version,
            peers,
            scheduled_restart_ms: self.due_scheduled_restart(runtime.as_ref()),
            sync_names_applied: self.sh.ctl.sync_names(),
            sync_names_since_lsn: self.sync_names_mark(pg_lsn),
            failsafe: Default::default(),
        };
        self.failsafe_cycle(&mut obs).await;
        self.guard(&mut obs).await;
        (obs, runtime)
    }

    /// This member's own facts: configuration, tags, fence and callback state.
    fn node_facts(
        &self,
        node: &NodeConfig,
        tags: &Map<String, Value>,
        dynamic: &DynamicConfig,
    ) -> NodeFacts {
        let t = crate::config::Tags::of(tags);
        NodeFacts {
            name: node.name.clone(),
            can_bootstrap: node.bootstrap.is_some(),
            nofailover: t.nofailover(),
            failover_priority: t.failover_priority(),
            use_pg_rewind: node
                .postgresql
                .use_pg_rewind
                .unwrap_or(dynamic.use_pg_rewind),
            fence_problem: self.fence_problem.clone(),
            pre_promote_failed_ms: self.sh.callbacks.pre_promote_failed_ms(),
            clone_without_leader: super::replica_methods::any_without_leader(&node.postgresql),
            stream: crate::ha::upstream::StreamTags::from_tags(tags),
        }
    }

    /// Patroni fires `on_start` once when the agent finds PostgreSQL running and no
    /// callback has been fired yet (an agent restarted on a running instance, a bootstrap).
    fn first_on_start(&self, ctx: &CycleContext) {
        if self.sh.callbacks.fired() || self.machine.task().is_some() || !ctx.obs.pg.running {
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
}
