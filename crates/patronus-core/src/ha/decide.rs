//! The HA decision: one pure function from an [`Observation`] to a [`Decision`].
//!
//! Reference: patroni/ha.py `_run_cycle`, `process_healthy_cluster`,
//! `process_unhealthy_cluster`, `follow`, `bootstrap`.

use super::action::{Action, Decision, DemoteMode};
use super::adopt::Takeover;
use super::eligibility::{self, is_healthiest, Ineligible};
use super::failsafe;
use super::observation::{DataDir, LockState, Observation, PgRole, Request, TaskKind};
use super::rejoin::{self, Divergence};
use super::standby;
use super::switchover;
use super::sync;
use super::upstream::{self, CloneSource};
use crate::config::timing::secs_to_ms;
use crate::dcs::Cluster;

/// Decides what this member does this cycle.
pub fn decide(o: &Observation) -> Decision {
    let Some(cluster) = &o.cluster else {
        return dcs_unavailable(o);
    };
    if o.lock == LockState::RefreshFailed {
        return lock_refresh_failed(o);
    }
    if let Some(task) = o.task {
        if startup_timed_out(o, cluster, task) {
            return Decision::new(
                "stopped PostgreSQL because of startup timeout",
                vec![Action::Demote {
                    mode: DemoteMode::Immediate,
                }],
            );
        }
        return if o.has_lock() {
            Decision::new(
                format!("updated leader lock during {}", task.describe()),
                vec![],
            )
        } else {
            Decision::new(format!("{} in progress", task.describe()), vec![])
        };
    }
    if let Some(d) = handle_request(o, cluster) {
        return d;
    }
    if let Some(d) = scheduled_restart(o) {
        return d;
    }
    match &o.pg.data {
        DataDir::Empty => return empty_data_dir(o, cluster),
        DataDir::Invalid => {
            return Decision::new(
                "data directory has no valid pg_control, consider doing reinitialize",
                vec![],
            )
        }
        DataDir::Initialized { sysid } => {
            if let Some(d) = check_sysid(o, cluster, sysid) {
                return d;
            }
            match super::adopt::takeover(o, cluster) {
                Takeover::NotNeeded => {}
                Takeover::StandbyWaits => return super::adopt::standby_waits(),
                Takeover::Adopt => {
                    let create_new = cluster.initialize.is_none();
                    return super::adopt::adopt(sysid, create_new, with_data_dir(o, cluster));
                }
            }
        }
    }
    with_data_dir(o, cluster)
}

/// The decision once the data directory is usable: recover a stopped PostgreSQL, else the
/// leader race or following.
fn with_data_dir(o: &Observation, cluster: &Cluster) -> Decision {
    if !o.pg.running {
        if o.pg.postmaster_alive {
            // Starting up, shutting down, or refusing our login: never start a second
            // postmaster over it.
            return Decision::new(
                "Error communicating with PostgreSQL. Will try again later",
                vec![],
            );
        }
        return recover(o, cluster);
    }
    let mut d = match cluster.leader_name() {
        None => match failsafe::heard_leader(o, cluster) {
            Some(leader) => follow(o, cluster, leader),
            None => unhealthy_cluster(o, cluster),
        },
        Some(_) if o.has_lock() => healthy_leader(o, cluster),
        Some(leader) => follow(o, cluster, leader),
    };
    if o.pg.running && cluster.config.as_ref().map(|c| c.version) != o.applied_config_version {
        d.actions.push(Action::ApplyConfig);
    }
    d
}

/// The leader's PostgreSQL has been starting for longer than `primary_start_timeout` while
/// another member could take over (docs/patroni-behaviour.md §2.2 step 5).
fn startup_timed_out(o: &Observation, cluster: &Cluster, task: TaskKind) -> bool {
    let limit = secs_to_ms(o.config.primary_start_timeout);
    let started = o.task_started_ms.unwrap_or(o.now_ms);
    o.has_lock()
        && task == TaskKind::Start
        && limit > 0
        && o.now_ms.saturating_sub(started) > limit
        && sync::failover_possible(
            o,
            cluster,
            cluster.members.iter().filter(|m| {
                m.name != o.name()
                    && switchover::is_viable_candidate(cluster, &m.name)
                    && sync::may_promote(o, cluster, &m.name)
            }),
        )
}

/// An operator request from the REST API (restart, reinitialize).
fn handle_request(o: &Observation, cluster: &Cluster) -> Option<Decision> {
    match o.request.as_ref()? {
        Request::Restart => Some(Decision::new(
            "restarting after a REST API request",
            vec![Action::Restart],
        )),
        Request::Reinitialize { from_leader, .. } => {
            if o.has_lock() {
                return Some(Decision::new(
                    "I am the leader, can not reinitialize",
                    vec![],
                ));
            }
            let leader = cluster.leader_name()?.to_string();
            let source = match from_leader {
                true => CloneSource::Leader(leader),
                false => upstream::clone_source(cluster, o.name())?,
            };
            Some(Decision::new(
                format!("reinitializing from {}", source.describe()),
                vec![Action::Reinitialize {
                    leader: source.name().to_string(),
                }],
            ))
        }
    }
}

/// A restart scheduled through `POST /restart` (docs/patroni-behaviour.md §2.7); refused while paused.
fn scheduled_restart(o: &Observation) -> Option<Decision> {
    let at = o.scheduled_restart_ms?;
    if !o.pg.running || o.config.pause || at > o.now_ms {
        return None;
    }
    Some(Decision::new(
        "restarting after a scheduled restart",
        vec![Action::Restart],
    ))
}

/// Divergence of this member from the leader's timeline (docs/patroni-behaviour.md §2.12).
fn divergence(o: &Observation, cluster: &Cluster, running: bool) -> Divergence {
    let Some(leader_tl) = rejoin::leader_timeline(cluster) else {
        return Divergence::No;
    };
    let Some(local_tl) = o.pg.timeline else {
        return Divergence::No;
    };
    if running {
        if local_tl > leader_tl && o.pg.timeline_from_receiver {
            // Our WAL receiver got this timeline from upstream: the leader promoted and has
            // not published its new timeline yet (a demoted primary following it at once).
            return Divergence::Unknown;
        }
        return rejoin::check(local_tl, o.pg.lsn, leader_tl, &cluster.history);
    }
    let state = o.pg.control_state.as_ref();
    let crashed = state.is_some_and(super::vocab::ControlState::crashed_primary);
    let was_primary = state.is_some_and(super::vocab::ControlState::was_primary);
    if was_primary && local_tl == leader_tl {
        // Somebody else holds the lock, so it promoted: it has not published its new
        // timeline yet. Starting now could stream a diverged history.
        return Divergence::Unknown;
    }
    let lsn = if crashed { None } else { o.pg.control_lsn };
    rejoin::check(local_tl, lsn, leader_tl, &cluster.history)
}

/// Failed pg_rewind runs in a row after which a diverged member stops trying.
pub(crate) const MAX_REWIND_FAILURES: u32 = 2;

/// pg_rewind failed [`MAX_REWIND_FAILURES`] times in a row (with
/// `remove_data_directory_on_rewind_failure` the data would be gone and the member cloned
/// instead): a stopped member starts as a replica and is left to recover what it can, a
/// running one is left alone; `reinit` re-clones it.
fn rewind_gave_up(o: &Observation, leader: &str) -> Decision {
    let why = format!(
        "pg_rewind from {leader} failed {} times in a row; not retrying it (reinitialize this member to re-clone it)",
        o.pg.rewind_failures
    );
    if o.pg.running {
        return Decision::new(why, vec![]);
    }
    Decision::new(
        format!("{why}; starting as a secondary"),
        vec![Action::StartReplica {
            leader: Some(leader.to_string()),
        }],
    )
}

/// True when the leader's member key says its PostgreSQL runs (a rewind or clone source).
fn leader_running(cluster: &Cluster, leader: &str) -> bool {
    cluster.member(leader).is_some_and(|m| m.data.is_running())
}

/// Rewind when possible, otherwise re-clone; both need the leader's PostgreSQL running
/// (stopping a replica to rewind from a leader that is down helps nobody).
fn rejoin_diverged(o: &Observation, cluster: &Cluster, leader: &str) -> Decision {
    if !leader_running(cluster, leader) {
        return Decision::new(
            format!("diverged from leader {leader}; waiting for it to run before rejoining"),
            vec![],
        );
    }
    if o.pg.rewind_failures >= MAX_REWIND_FAILURES && o.node.use_pg_rewind {
        return rewind_gave_up(o, leader);
    }
    if o.node.use_pg_rewind && o.pg.rewind_possible {
        return Decision::new(
            format!(
                "running pg_rewind from {leader} ({})",
                rejoin::describe(o.pg.timeline, o.pg.lsn.or(o.pg.control_lsn), cluster)
            ),
            vec![Action::Rewind {
                leader: leader.to_string(),
            }],
        );
    }
    Decision::new(
        "reinitializing due to diverged timelines",
        vec![Action::Reinitialize {
            leader: leader.to_string(),
        }],
    )
}

fn dcs_unavailable(o: &Observation) -> Decision {
    if o.pg.is_primary() && !o.config.pause {
        if let Some(d) = failsafe::keep_primary(o) {
            return d;
        }
        return Decision::new(
            "demoted self because DCS is not accessible and I was a leader",
            vec![Action::Demote {
                mode: DemoteMode::Offline,
            }],
        );
    }
    Decision::new("DCS is not accessible", vec![])
}

fn lock_refresh_failed(o: &Observation) -> Decision {
    if o.pg.is_primary() {
        if o.config.pause {
            return Decision::new(
                "continue to run as primary after failing to update leader lock in DCS",
                vec![],
            );
        }
        if let Some(d) = failsafe::keep_primary(o) {
            return d;
        }
        return Decision::new(
            "demoted self because failed to update leader lock in DCS",
            vec![Action::Demote {
                mode: DemoteMode::ImmediateNolock,
            }],
        );
    }
    Decision::new(
        "not promoting because failed to update leader lock in DCS",
        vec![],
    )
}

fn empty_data_dir(o: &Observation, cluster: &Cluster) -> Decision {
    if o.config.pause {
        let actions = if o.has_lock() {
            vec![Action::ReleaseLock]
        } else {
            vec![]
        };
        return Decision::new("running with empty data directory", actions);
    }
    if o.has_lock() {
        return Decision::new(
            "released leader key voluntarily as data dir empty and currently leader",
            vec![Action::ReleaseLock],
        );
    }
    if let Some(d) = standby::empty_data_dir(o, cluster) {
        return d;
    }
    if cluster.initialize.is_none() && cluster.leader.is_none() {
        if o.node.can_bootstrap && !o.node.nofailover && o.node.fence_problem.is_none() {
            return Decision::new("trying to bootstrap a new cluster", vec![Action::Bootstrap]);
        }
        return Decision::new("waiting for leader to bootstrap", vec![]);
    }
    if let Some(leader) = cluster.leader_name() {
        let running = cluster.member(leader).is_some_and(|m| m.data.is_running());
        let source = upstream::clone_source(cluster, o.name());
        if let Some(source) = source.filter(|_| running && cluster.is_initialized()) {
            return Decision::new(
                format!("trying to bootstrap from {}", source.describe()),
                vec![Action::CreateReplica {
                    source: source.name().to_string(),
                }],
            );
        }
    }
    let initialized = cluster.initialize.as_deref().is_some_and(|i| !i.is_empty());
    if cluster.leader.is_none() && initialized && o.node.clone_without_leader {
        return Decision::new(
            "trying to bootstrap (without leader)",
            vec![Action::CreateReplicaWithoutLeader],
        );
    }
    Decision::new("waiting for leader to bootstrap", vec![])
}

fn check_sysid(o: &Observation, cluster: &Cluster, sysid: &str) -> Option<Decision> {
    match cluster.initialize.as_deref() {
        Some(init) if !init.is_empty() && init != sysid => {
            let reason = format!(
                "system ID mismatch, node {} belongs to a different cluster: {} != {}",
                o.name(),
                init,
                sysid
            );
            Some(Decision::new(
                reason.clone(),
                vec![Action::Fatal { reason }],
            ))
        }
        _ => None,
    }
}

/// PostgreSQL is not running (docs/patroni-behaviour.md §2.10).
fn recover(o: &Observation, cluster: &Cluster) -> Decision {
    if o.config.pause {
        let mut actions = vec![];
        if o.has_lock() {
            actions.push(Action::ReleaseLock);
        }
        return Decision::new("postgres is not running", actions);
    }
    if let Some(d) = standby::recover(o, cluster) {
        return d;
    }
    if o.has_lock() {
        let candidates = cluster.members.iter().filter(|m| {
            m.name != o.name()
                && switchover::is_caught_up_candidate(
                    cluster,
                    &m.name,
                    o.config.maximum_lag_on_failover,
                )
                && sync::may_promote(o, cluster, &m.name)
        });
        let failover_possible = sync::failover_possible(o, cluster, candidates);
        if o.config.primary_start_timeout == 0 && failover_possible {
            return Decision::new(
                "stopped PostgreSQL to fail over after a crash",
                vec![Action::Demote {
                    mode: DemoteMode::Immediate,
                }],
            );
        }
        let was_primary =
            o.pg.control_state
                .as_ref()
                .is_some_and(super::vocab::ControlState::was_primary);
        if was_primary {
            return Decision::new("starting primary after failure", vec![Action::StartPrimary]);
        }
        return Decision::new(
            "starting as readonly because i had the session lock",
            vec![Action::StartReplica { leader: None }],
        );
    }
    let leader = cluster
        .leader_name()
        .filter(|l| *l != o.name())
        .map(str::to_string);
    if let Some(l) = &leader {
        match divergence(o, cluster, false) {
            Divergence::Yes => return rejoin_diverged(o, cluster, l),
            Divergence::Unknown => {
                return Decision::new(
                    format!("waiting for leader {l} to record its timeline switch"),
                    vec![],
                )
            }
            Divergence::No => {}
        }
    }
    let leader = upstream::upstream(cluster, o.name(), &o.node.stream, leader.as_deref());
    Decision::new(
        "starting as a secondary",
        vec![Action::StartReplica { leader }],
    )
}

/// A leader holds the lock and it is us (docs/patroni-behaviour.md §2.3).
fn healthy_leader(o: &Observation, cluster: &Cluster) -> Decision {
    let mut actions = Vec::new();
    if let Some(why) = o.node.fence_problem.as_deref().filter(|_| !o.config.pause) {
        return Decision::new(
            format!("demoting self because the primary cannot be fenced: {why}"),
            vec![Action::Demote {
                mode: DemoteMode::Immediate,
            }],
        );
    }
    if o.config.is_standby_cluster() {
        return standby::leader(o, cluster);
    }
    if o.pg.role == Some(PgRole::Primary) {
        if let Some(d) = switchover::from_leader(o, cluster) {
            return d;
        }
        if let DataDir::Initialized { sysid } = &o.pg.data {
            if !cluster.is_initialized() {
                actions.push(Action::WriteInitialize {
                    sysid: sysid.clone(),
                    create_new: false,
                });
            }
        }
        if cluster.config.is_none() {
            actions.push(Action::SeedConfig);
        }
        let tl_ahead = o.pg.timeline.is_some_and(|tl| tl > cluster.timeline());
        if tl_ahead || (cluster.history_raw.is_none() && o.pg.timeline == Some(1)) {
            actions.push(Action::UpdateHistory);
        }
        actions.push(Action::SyncSlots);
        actions.push(Action::PublishStatus);
        actions.extend(failsafe::key_action(o, cluster));
        actions.extend(sync::leader_step(o, cluster));
        return Decision::new(
            format!("no action. I am ({}), the leader with the lock", o.name()),
            actions,
        );
    }
    if o.config.pause {
        return Decision::new(
            "removed leader lock because postgres is not running as primary",
            vec![Action::ReleaseLock],
        );
    }
    if eligibility::pre_promote_backoff(o) {
        // Our own release after the failed script may not be in this view of the DCS yet
        // (Patroni resets its cluster cache there): never promote again within the back-off.
        return Decision::new(
            "released leader lock because the pre-promote script failed less than ttl seconds ago",
            vec![Action::ReleaseLock],
        );
    }
    actions.push(Action::Promote);
    match o
        .last_failure
        .as_ref()
        .filter(|f| f.kind == TaskKind::Promote)
    {
        // The last promote failed and we still hold the lock as a replica: try again, and
        // say why, so the operator sees the failure in the HA loop's line too.
        Some(f) => Decision::new(
            format!(
                "retrying promote because I have the session lock; last attempt failed: {}",
                f.message
            ),
            actions,
        ),
        None => Decision::new(
            "promoted self to leader because I had the session lock",
            actions,
        ),
    }
}

/// Somebody else holds the lock (docs/patroni-behaviour.md §2.3 `follow`).
fn follow(o: &Observation, cluster: &Cluster, leader: &str) -> Decision {
    if o.pg.role == Some(PgRole::Primary) {
        if o.config.pause {
            return Decision::new("continue to run as primary without lock", vec![]);
        }
        return Decision::new(
            standby::demote_without_lock_message(o),
            vec![Action::Demote {
                mode: DemoteMode::ImmediateNolock,
            }],
        );
    }
    if divergence(o, cluster, true) == Divergence::Yes {
        return rejoin_diverged(o, cluster, leader);
    }
    let mut actions = vec![];
    let upstream = upstream::upstream(cluster, o.name(), &o.node.stream, Some(leader));
    if o.pg.following != upstream {
        actions.push(match upstream {
            Some(leader) => Action::Follow { leader },
            None => Action::StopStreaming,
        });
    }
    if o.pg.role == Some(PgRole::Replica) {
        // Replicas drop stale slots (a demoted primary's member slots) and keep the
        // permanent ones (docs/patroni-behaviour.md §2.14).
        actions.push(Action::SyncSlots);
    }
    Decision::new(standby::following_message(o, leader), actions)
}

/// Nobody holds the lock: the leader race (docs/patroni-behaviour.md §2.4).
fn unhealthy_cluster(o: &Observation, cluster: &Cluster) -> Decision {
    let promote = standby::promote_after_race(o);
    match switchover::race_with_failover_key(o, cluster) {
        Some(true) => {
            return Decision::new(
                "trying to acquire the leader lock as the requested candidate",
                vec![Action::AcquireLock { promote }],
            )
        }
        Some(false) => {
            return Decision::new(
                "following a different leader because i am not the healthiest node (a failover candidate is named)",
                vec![],
            )
        }
        None => {}
    }
    match is_healthiest(o, cluster) {
        Ok(()) => Decision::new(
            "trying to acquire the leader lock",
            vec![Action::AcquireLock { promote }],
        ),
        Err(why) => {
            let msg = match &why {
                Ineligible::NotAllowed => {
                    "following a different leader because I am not allowed to promote".to_string()
                }
                other => format!(
                    "following a different leader because i am not the healthiest node ({})",
                    other.reason()
                ),
            };
            if o.pg.role == Some(PgRole::Primary) && !o.config.pause {
                return Decision::new(
                    format!(
                        "demoting self because i am not the healthiest node: {}",
                        why.reason()
                    ),
                    vec![Action::Demote {
                        mode: DemoteMode::Immediate,
                    }],
                );
            }
            Decision::new(msg, vec![])
        }
    }
}
