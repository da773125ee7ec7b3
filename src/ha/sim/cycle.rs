//! The HA loop of one simulated member: observe → step the real agent machine
//! ([`crate::ha::AgentMachine`]) → execute → publish, as `agent/driver.rs` and
//! `agent/executor.rs` do it.

use super::{Agent, CyclePhase, DcsLink, EventKind, Published, Sim, SimTask, Stage, TraceEntry};
use crate::config::dynamic::DynamicConfig;
use crate::config::timing::secs_to_ms;
use crate::dcs::{Cluster, HistoryLine};
use crate::ha::action::{Action, DemoteMode};
use crate::ha::machine::{Effect, Input, Output};
use crate::ha::observation::{LockState, NodeFacts, Observation, PeerStatus, PgRole, TaskKind};

impl Sim {
    pub(super) fn advance_loop(&mut self, i: usize) {
        if self.members[i].agent != Agent::Alive {
            return;
        }
        match self.members[i].phase {
            CyclePhase::Deciding(at) if at <= self.now => self.run_cycle(i),
            CyclePhase::Publishing(at) if at <= self.now => self.end_cycle(i, at),
            CyclePhase::Idle if self.members[i].next_cycle_at <= self.now => self.start_cycle(i),
            _ => {}
        }
    }

    pub(super) fn start_cycle(&mut self, i: usize) {
        let timeout = self.cfg.dcs_timeout_ms();
        let m = &mut self.members[i];
        m.wake = false;
        let delay = match &m.link {
            DcsLink::Up => 0,
            DcsLink::Down => timeout,
            DcsLink::Stale(c) if c.is_leader(&m.name) => timeout * self.cfg.refresh_timeouts,
            DcsLink::Stale(_) => 0,
        };
        if delay == 0 {
            self.run_cycle(i);
        } else {
            m.phase = CyclePhase::Deciding(self.now + delay);
        }
    }

    pub(super) fn end_cycle(&mut self, i: usize, at: u64) {
        let m = &mut self.members[i];
        m.phase = CyclePhase::Idle;
        m.next_cycle_at = if m.wake { at } else { at + m.sleep_ms };
        m.wake = false;
    }

    /// Observe → decide → execute → publish, as `Driver::cycle`.
    pub(super) fn run_cycle(&mut self, i: usize) {
        let now = self.now;
        self.members[i].phase = CyclePhase::Deciding(now);
        let name = self.members[i].name.clone();
        let link = self.members[i].link.clone();
        let (cluster, lock) = match &link {
            DcsLink::Up => {
                let c = self.dcs.snapshot();
                let mut lock = LockState::NotHeld;
                if c.is_leader(&name) {
                    let (held, changed) = self.dcs.update_leader(&name, self.lease_until());
                    if changed {
                        self.notify_watchers();
                    }
                    lock = if held {
                        LockState::Held
                    } else {
                        LockState::NotHeld
                    };
                }
                (Some(c), lock)
            }
            DcsLink::Down => (None, LockState::NotHeld),
            DcsLink::Stale(c) => {
                let lock = if c.is_leader(&name) {
                    LockState::RefreshFailed
                } else {
                    LockState::NotHeld
                };
                (Some((**c).clone()), lock)
            }
        };
        let config_value = cluster
            .as_ref()
            .and_then(|c| c.config.as_ref().map(|v| v.value.clone()))
            .unwrap_or_else(|| self.cfg.dynamic_json());
        let m = &self.members[i];
        let mut pg = m.pg.observe();
        pg.standbys = self.standbys_of(i);
        let task = m.machine.task();
        let peers = match &cluster {
            Some(c) if c.leader.is_none() && pg.running && task.is_none() => self.peers(c, &name),
            _ => vec![],
        };
        let obs = Observation {
            now_ms: now,
            node: NodeFacts {
                name: name.clone(),
                can_bootstrap: true,
                nofailover: m.nofailover_tag(),
                failover_priority: m.priority(),
                use_pg_rewind: true,
                fence_problem: None,
                pre_promote_failed_ms: None,
                clone_without_leader: false,
                stream: Default::default(),
            },
            cluster,
            config: DynamicConfig::from_value(&config_value),
            pg,
            // The machine fills in what it owns: task, request, last failure.
            task: None,
            task_started_ms: None,
            lock,
            applied_config_version: m.applied_config_version,
            peers,
            request: None,
            scheduled_restart_ms: None,
            sync_names_applied: m.pg.sync_names.clone(),
            sync_names_since_lsn: None,
            last_failure: None,
            failsafe: Default::default(),
        };
        self.feed_fence(i, &obs, now);
        let out = self.members[i]
            .machine
            .step(Input::Observed(Box::new(obs.clone())));
        let actions = actions_of(&out);
        self.record_replies(i, out.replies.clone());
        self.trace.push(TraceEntry {
            at: now,
            member: name.clone(),
            message: out.message.clone().unwrap_or_default(),
            actions: actions.clone(),
        });
        let mut acquired = false;
        for a in &actions {
            if acquired_promotion(a) {
                // The real executor arms the fence before it promotes.
                self.arm_fence(i, now);
            }
            self.execute(i, a, &obs, &mut acquired);
        }
        self.publish(i, &obs, acquired);
        let loop_ms = secs_to_ms(obs.config.loop_wait.max(1));
        let m = &mut self.members[i];
        m.sleep_ms = out
            .wake_at_ms
            .map_or(loop_ms, |at| loop_ms.min(at.saturating_sub(now)));
        if m.agent != Agent::Alive {
            m.phase = CyclePhase::Idle;
        } else if matches!(link, DcsLink::Stale(_)) {
            let cost = self.cfg.dcs_timeout_ms() * self.cfg.refresh_timeouts;
            m.phase = CyclePhase::Publishing(now + cost);
        } else {
            self.end_cycle(i, now);
        }
    }

    /// `fetch_peers`: every other member key's `/patroni`, answered by live agents.
    pub(super) fn peers(&self, c: &Cluster, me: &str) -> Vec<PeerStatus> {
        let others = c.members.iter().filter(|e| e.name != me);
        others
            .map(|e| {
                let live = self
                    .member(&e.name)
                    .filter(|m| m.agent == Agent::Alive && m.pg.has_data);
                let Some(m) = live else {
                    return PeerStatus {
                        name: e.name.clone(),
                        reachable: false,
                        is_primary: false,
                        wal_position: 0,
                        timeline: None,
                        nofailover: e.data.nofailover(),
                        failover_priority: e.data.failover_priority(),
                    };
                };
                let p = &m.published;
                let running = p.state == "running";
                let wal = match (running, m.pg.running) {
                    (true, true) => m.pg.lsn,
                    (true, false) => p.lsn.unwrap_or(0),
                    _ => 0,
                };
                PeerStatus {
                    name: e.name.clone(),
                    reachable: true,
                    is_primary: running && p.role == "primary",
                    wal_position: wal,
                    timeline: p.timeline,
                    nofailover: m.nofailover_tag(),
                    failover_priority: m.priority(),
                }
            })
            .collect()
    }

    /// The member key and `/patroni` status, as `Driver::publish`.
    pub(super) fn publish(&mut self, i: usize, obs: &Observation, acquired: bool) {
        let has_lock = obs.has_lock() || acquired;
        let m = &mut self.members[i];
        let state = match (m.machine.task(), obs.pg.running) {
            (Some(TaskKind::Demote), true) => "stopping",
            (Some(TaskKind::Restart), _) => "restarting",
            (_, true) => "running",
            (Some(TaskKind::Bootstrap), false) => "initializing new cluster",
            (Some(TaskKind::CreateReplica | TaskKind::Reinitialize), false) => "creating replica",
            (Some(TaskKind::Start | TaskKind::Promote), false) => "starting",
            (Some(TaskKind::Rewind), false) => "stopped",
            (Some(TaskKind::Demote), false) => "stopping",
            (None, false) => "stopped",
        };
        let role = match (m.pg.has_data, obs.pg.role) {
            (false, _) => "uninitialized",
            (_, Some(PgRole::Primary)) => "primary",
            (_, Some(PgRole::Replica)) => "replica",
            _ if has_lock => "primary",
            _ => "replica",
        };
        m.published = Published {
            state: state.into(),
            role: role.into(),
            timeline: obs.pg.timeline,
            lsn: obs.pg.lsn,
        };
        if obs.cluster.is_some() && m.link == DcsLink::Up {
            let value = m.member_value();
            let until = self.lease_until();
            self.dcs.touch_member(&self.members[i].name, value, until);
        }
    }

    /// Starts a task's work in virtual time and tells the machine, as `Driver::spawn_task`.
    pub(super) fn spawn(&mut self, i: usize, kind: TaskKind, stages: Vec<(u64, Stage)>) {
        let m = &mut self.members[i];
        m.task = Some(SimTask::new(self.now, stages));
        m.machine.step(Input::TaskStarted {
            kind,
            at_ms: self.now,
        });
    }

    /// One action, as `Driver::execute`.
    pub(super) fn execute(
        &mut self,
        i: usize,
        action: &Action,
        obs: &Observation,
        acquired: &mut bool,
    ) {
        let up = self.members[i].link == DcsLink::Up;
        let name = self.members[i].name.clone();
        let seen_failover = obs
            .cluster
            .as_ref()
            .and_then(|c| c.failover.as_ref().map(|f| f.version));
        let c = self.cfg.clone();
        let (stop, start) = (c.stop_ms, c.start_ms);
        match action {
            Action::AcquireLock { promote } => {
                if up && self.dcs.try_acquire(&name, self.lease_until()) {
                    *acquired = true;
                    self.event(i, EventKind::LockAcquired);
                    if seen_failover.is_some() {
                        self.dcs.clear_failover(seen_failover);
                    }
                    self.notify_watchers();
                    if *promote {
                        self.spawn(i, TaskKind::Promote, vec![(c.promote_ms, Stage::Promote)]);
                    }
                }
            }
            Action::ReleaseLock => self.release_lock(i),
            Action::StartPrimary | Action::StartReplica { .. } => {
                let leader = match action {
                    Action::StartReplica { leader } => leader.clone(),
                    _ => None,
                };
                let primary = matches!(action, Action::StartPrimary);
                self.spawn(
                    i,
                    TaskKind::Start,
                    vec![(start, Stage::Start { primary, leader })],
                );
            }
            Action::Promote => {
                self.spawn(i, TaskKind::Promote, vec![(c.promote_ms, Stage::Promote)]);
            }
            Action::Demote { mode } => {
                let clean = matches!(mode, DemoteMode::Offline | DemoteMode::Graceful);
                let mut stages = vec![(stop, Stage::Stop { clean })];
                if matches!(mode, DemoteMode::Graceful | DemoteMode::Immediate) {
                    stages.push((0, Stage::ReleaseLock));
                }
                let leader = match mode {
                    DemoteMode::Offline => None,
                    _ => obs.cluster.as_ref().and_then(|c| c.leader_name()),
                };
                let leader = leader.filter(|l| *l != name).map(str::to_string);
                let primary = false;
                stages.push((start, Stage::Start { primary, leader }));
                self.spawn(i, TaskKind::Demote, stages);
            }
            Action::Follow { leader } => self.members[i].pg.following = Some(leader.clone()),
            Action::StopStreaming => self.members[i].pg.following = None,
            // The simulator models one cluster and no remote primary: no standby clusters.
            Action::BootstrapStandbyLeader
            | Action::FollowRemote
            | Action::StartFollowingRemote => {}
            Action::PublishStatus => {
                let pg = &self.members[i].pg;
                if up && pg.writable() && self.dcs.optime != pg.lsn {
                    self.dcs.set_optime(pg.lsn);
                }
            }
            Action::UpdateHistory if up => self.update_history(i, obs),
            Action::ApplyConfig => {
                let v = obs.cluster.as_ref().and_then(|c| c.config.as_ref());
                self.members[i].applied_config_version = v.map(|v| v.version);
            }
            Action::HandOver { candidate } => {
                let Some(cluster) = obs.cluster.as_ref() else {
                    return;
                };
                // The agent's own candidate filter.
                let candidates = crate::ha::handover::handover_candidates(
                    cluster,
                    &name,
                    candidate.as_deref(),
                    obs.config.synchronous_mode,
                );
                let candidates = candidates.into_iter().map(|c| c.name).collect();
                let wait = Stage::AwaitCandidate {
                    candidates,
                    deadline: None,
                };
                let stages = vec![(stop, Stage::Stop { clean: true }), (0, wait)];
                self.spawn(i, TaskKind::Demote, stages);
            }
            Action::WriteSync { standbys } if up => {
                self.dcs.set_sync(&name, standbys.as_deref());
            }
            Action::SetSyncNames { value } => self.members[i].pg.sync_names = value.clone(),
            // Quorum mode and failsafe mode are covered by their decision-table tests
            // (src/ha/tests/quorum.rs, failsafe.rs) and integration tests.
            Action::WriteSync { .. } | Action::WriteQuorum { .. } | Action::WriteFailsafe { .. } => {}
            Action::ClearFailover => {
                if up && seen_failover.is_some() && self.dcs.clear_failover(seen_failover) {
                    self.notify_watchers();
                }
            }
            Action::Rewind { leader } => {
                let rewind = Stage::Rewind {
                    leader: leader.clone(),
                };
                let leader = Some(leader.clone());
                let stages = vec![
                    (stop, Stage::Stop { clean: true }),
                    (c.rewind_ms, rewind),
                    (
                        start,
                        Stage::Start {
                            primary: false,
                            leader,
                        },
                    ),
                ];
                self.spawn(i, TaskKind::Rewind, stages);
            }
            Action::Reinitialize { leader } | Action::CreateReplica { source: leader } => {
                let kind = match action {
                    Action::Reinitialize { .. } => TaskKind::Reinitialize,
                    _ => TaskKind::CreateReplica,
                };
                let clone = Stage::Clone {
                    leader: leader.clone(),
                };
                let leader = Some(leader.clone());
                let stages = vec![
                    (stop, Stage::Stop { clean: false }),
                    (0, Stage::Wipe),
                    (c.clone_ms, clone),
                    (
                        start,
                        Stage::Start {
                            primary: false,
                            leader,
                        },
                    ),
                ];
                self.spawn(i, kind, stages);
            }
            Action::Restart => {
                let pg = &self.members[i].pg;
                let primary = pg.role == PgRole::Primary;
                let leader = pg.following.clone();
                let stages = vec![
                    (stop, Stage::Stop { clean: true }),
                    (start, Stage::Start { primary, leader }),
                ];
                self.spawn(i, TaskKind::Restart, stages);
            }
            Action::Fatal { reason } => {
                self.members[i].fatal = Some(reason.clone());
                self.members[i].agent = Agent::Dead;
            }
            Action::UpdateHistory
            | Action::Bootstrap
            | Action::WriteInitialize { .. }
            | Action::SeedConfig
            // The simulated members configure no `no_leader` method.
            | Action::CreateReplicaWithoutLeader
            | Action::SyncSlots => {}
        }
    }

    /// `update_history`: the timeline history file, newest line stamped with us.
    pub(super) fn update_history(&mut self, i: usize, obs: &Observation) {
        let previous: &[HistoryLine] = obs.cluster.as_ref().map_or(&[], |c| &c.history);
        let m = &self.members[i];
        let n = m.pg.history.len();
        let lines = m.pg.history.iter().enumerate().map(|(k, l)| {
            let mut l = l.clone();
            if k + 1 == n {
                l.timestamp = Some(format!("{}ms", self.now));
                l.new_leader = Some(m.name.clone());
            } else if let Some(p) = previous.iter().find(|p| p.timeline == l.timeline) {
                l.timestamp = p.timestamp.clone();
                l.new_leader = p.new_leader.clone();
            }
            l
        });
        let lines = lines.collect();
        self.dcs.set_history(lines);
    }

    pub(super) fn release_lock(&mut self, i: usize) {
        let name = self.members[i].name.clone();
        if self.members[i].link == DcsLink::Up && self.dcs.release(&name) {
            self.event(i, EventKind::LockReleased);
            self.notify_watchers();
        }
    }
}

/// The actions of an observation's step, in order.
fn actions_of(out: &Output) -> Vec<Action> {
    let acts = out.effects.iter().filter_map(|e| match e {
        Effect::Act(a) => Some(a.clone()),
        Effect::CancelTask(_) | Effect::Stop(_) => None,
    });
    acts.collect()
}

/// True for the action that takes the lock to promote.
fn acquired_promotion(a: &crate::ha::Action) -> bool {
    matches!(
        a,
        crate::ha::Action::AcquireLock { promote: true } | crate::ha::Action::Promote
    )
}

impl Sim {
    /// The fence step of this cycle, as the agent's `guard` applies it.
    fn feed_fence(&mut self, i: usize, obs: &Observation, now: u64) {
        match crate::ha::fence_step(obs) {
            crate::ha::FenceStep::Feed => self.arm_fence(i, now),
            crate::ha::FenceStep::Keep => {}
            crate::ha::FenceStep::Disarm => self.members[i].fence_deadline = None,
        }
    }

    /// Arms the fence: the lease was renewed at `now`, the fence fires a margin before it
    /// can expire.
    fn arm_fence(&mut self, i: usize, now: u64) {
        if let Some(margin) = self.cfg.fence_margin_ms {
            let until = (now + secs_to_ms(self.cfg.ttl_s)).saturating_sub(margin);
            self.members[i].fence_deadline = Some(until);
        }
    }
}
