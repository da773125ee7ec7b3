//! The per-cluster controller (pure): one observation of a cluster (one DCS read per pass), its
//! desired state, what this reconciler remembers of it and the time give at most one mutating
//! step. The I/O layer (`cluster_pass.rs`) reads, calls [`decide_cluster`], records the drift
//! and notes, carries the step out and requeues the cluster. Composed of the existing pure
//! pieces: [`super::reapply::on_commit`] (a new commit), [`super::drift`] (drift),
//! [`super::ops::readiness`] and [`super::op_reclaim::reclaim`] (operations) and
//! [`super::wave::decide`] (restart waves).

use super::drift::{detect, Drift};
use super::op_reclaim::{reclaim, Reclaim};
use super::ops::{op_records, readiness, recorded, Readiness, EXPIRY_SECS};
use super::reapply::{on_commit, Base, CommitEffect};
use super::wave::WaveDecision;
use crate::dcs::{Cluster, MemberEntry};
use crate::gitops::desired::DesiredCluster;
use crate::gitops::guc::GucCatalog;
use crate::gitops::observed::ObservedCluster;
use crate::gitops::plan::{plan_cluster_as, recorded_desired, ClusterPlan};
use chrono::{DateTime, Utc};
use serde_json::Value;
use std::collections::BTreeMap;

/// One read of a cluster's keys in a pass (config, members, leader, `gitops`, sync,
/// failover, ...): every decision of the pass about the cluster is taken from it.
#[derive(Debug, Clone)]
pub struct ClusterObservation {
    /// The cluster as read (a linearizable read: it includes our own last write).
    pub live: Cluster,
}

impl ClusterObservation {
    /// The `gitops` key's value, if any.
    pub fn gitops(&self) -> Option<&Value> {
        self.live.gitops.as_ref().map(|g| &g.value)
    }

    /// The live dynamic config (null when absent).
    pub fn config(&self) -> Value {
        self.live
            .config
            .as_ref()
            .map_or(Value::Null, |v| v.value.clone())
    }
}

/// The desired side of one cluster in a pass.
pub struct Desired<'a> {
    /// The cluster's desired state in the current commit.
    pub cluster: &'a DesiredCluster,
    /// The current commit.
    pub sha: &'a str,
    /// `ignore` globs of `patronus.yaml`.
    pub ignore: &'a [String],
    /// Drift policy of a key (`drift:` of `patronus.yaml`).
    pub policy: &'a (dyn Fn(&str) -> String + Sync),
}

/// What the reconciler remembers of a cluster (and what this pass is for).
#[derive(Debug, Clone, Default)]
pub struct Memory {
    /// A followed commit has not been decided for this cluster yet.
    pub commit_due: bool,
    /// Compare the observation with git for drift in this pass.
    pub check_drift: bool,
    /// Member tag drift past its grace period (the grace is tracked by the I/O layer).
    pub tag_drift: Vec<Drift>,
    /// Operations and restart waves are looked at in this pass (at most once a second).
    pub steps_due: bool,
    /// The error of the wave request task that just ended (None: running, none, or worked).
    pub wave_failed: Option<String>,
    /// Operations whose request task runs in this process.
    pub op_running: Vec<String>,
    /// Operations whose request task ended: `Ok(outcome)` or `Err(why)`.
    pub op_outcomes: BTreeMap<String, Result<String, String>>,
    /// Per operation: when its preconditions first failed.
    pub first_blocked: BTreeMap<String, DateTime<Utc>>,
}

/// A non-mutating outcome: logged (once per distinct message) by the I/O layer.
#[derive(Debug, Clone, PartialEq)]
pub enum Note {
    /// No member owes a restart.
    WaveIdle,
    /// Restarts owed on these members, outside every maintenance window.
    WaveParked(Vec<String>),
    /// The `ops` field of the `gitops` key is unreadable: no operation may run.
    OpsUnreadable(String),
    /// An operation is not due yet.
    OpWaiting {
        /// Operation id.
        id: String,
        /// Why.
        why: String,
    },
    /// A due operation's precondition fails (since the time in [`Memory::first_blocked`]).
    OpBlocked {
        /// Operation id.
        id: String,
        /// Why.
        why: String,
    },
    /// A `running` record with no request here: what happened is not known yet.
    OpReclaimWait(String),
}

/// The one mutating step of a pass for a cluster.
#[derive(Debug, Clone, PartialEq)]
pub enum ClusterStep {
    /// Nothing to write.
    Nothing,
    /// The cluster is not in the DCS: the commit is retried.
    Missing,
    /// The commit leaves this cluster's desired state as applied: nothing to write, the commit
    /// counts as decided for it.
    Unchanged,
    /// Write this plan (config and `gitops` in one transaction); `kept` are drifted keys that
    /// keep their live value.
    Apply {
        /// The plan to write.
        plan: Box<ClusterPlan>,
        /// Drifted keys the commit does not touch, kept live.
        kept: Vec<String>,
    },
    /// Write git's value of these `revert`-policy keys back (one CAS on `config`).
    Revert(Vec<(String, Value)>),
    /// Claim operation `id` (`running`) and start its request.
    OpClaim(String),
    /// Record operation `id` expired: its preconditions kept failing past its deadline.
    OpExpire {
        /// Operation id.
        id: String,
        /// The failing precondition.
        why: String,
    },
    /// Record the final state of operation `id`.
    OpFinish {
        /// Operation id.
        id: String,
        /// `done` or `failed`.
        state: &'static str,
        /// What happened.
        outcome: String,
    },
    /// A restart-wave step: [`WaveDecision::Start`] or [`WaveDecision::Finished`].
    Wave(WaveDecision),
}

/// The decision of one pass for one cluster: drift to record first (never written to the
/// DCS, so it goes with any step), notes, and at most one step.
#[derive(Debug, Clone, PartialEq)]
pub struct Decision {
    /// Drift to record before the step (it would be hidden by an apply).
    pub drift: Vec<Drift>,
    /// Non-mutating outcomes to log.
    pub notes: Vec<Note>,
    /// The step.
    pub step: ClusterStep,
}

/// Decides one pass for one cluster. Priority: a new commit (its drift recorded first), then
/// a revert of drifted `revert` keys, then an operation, then a restart-wave step; whatever
/// is left waits for the next pass (the observation it was decided on is stale after a write).
pub fn decide_cluster(
    desired: &Desired<'_>,
    observed: &ClusterObservation,
    memory: &Memory,
    now: DateTime<Utc>,
) -> Decision {
    let mut d = Decision {
        drift: vec![],
        notes: vec![],
        step: ClusterStep::Nothing,
    };
    let obs = ObservedCluster::from_cluster(&desired.cluster.scope, &observed.live);
    if memory.commit_due {
        if !obs.exists {
            d.step = ClusterStep::Missing;
            return d;
        }
        d.step = commit_step(desired, &obs, &mut d.drift);
        if d.step != ClusterStep::Unchanged {
            // The drift check waits for the read after our write (this one predates it).
            return d;
        }
    }
    if memory.check_drift {
        d.drift.extend(drift_of(desired, observed, memory));
        let reverts: Vec<(String, Value)> = d
            .drift
            .iter()
            .filter(|x| x.policy == "revert" && !x.key.starts_with("members."))
            .map(|x| (x.key.clone(), x.git.clone()))
            .collect();
        if !reverts.is_empty() {
            d.step = ClusterStep::Revert(reverts);
            return d;
        }
    }
    if memory.steps_due {
        let live = &observed.live;
        let mut step = op_step(desired.cluster, live, memory, now, &mut d.notes);
        if step == ClusterStep::Nothing {
            step = wave_step(desired.cluster, live, memory, now, &mut d.notes);
        }
        if step != ClusterStep::Nothing {
            d.step = step;
        }
    }
    d
}

/// The base a commit is compared with: the recorded `applied.desired`; unknown when the
/// cluster was applied by a version that did not record it; never applied otherwise.
fn base(obs: &ObservedCluster) -> Base<'_> {
    if let Some(b) = recorded_desired(obs) {
        return Base::Recorded(b);
    }
    let applied_before = obs
        .gitops
        .as_ref()
        .and_then(|g| g.pointer("/applied/commit"))
        .is_some_and(|c| !c.is_null());
    if applied_before {
        Base::Unknown
    } else {
        Base::Never
    }
}

/// What the commit does to the cluster ([`on_commit`]); its drift goes to `drift`.
fn commit_step(
    desired: &Desired<'_>,
    obs: &ObservedCluster,
    drift: &mut Vec<Drift>,
) -> ClusterStep {
    let applied = obs
        .gitops
        .as_ref()
        .and_then(|g| g.pointer("/applied/commit"));
    if applied.and_then(Value::as_str) == Some(desired.sha) {
        // Applied already (by us before a restart, or by the previous active reconciler).
        return ClusterStep::Unchanged;
    }
    let c = desired.cluster;
    let live_cfg = obs.config.clone().unwrap_or(Value::Null);
    let CommitEffect::Apply {
        desired: want,
        drift: found,
        kept,
    } = on_commit(base(obs), c, &live_cfg, desired.ignore, desired.policy)
    else {
        return ClusterStep::Unchanged;
    };
    drift.extend(found.into_iter().filter(|d| !is_secret_drift(d)));
    let mut plan = plan_cluster_as(&want, obs, GucCatalog::postgresql15(), c.applied_form());
    // Record what was applied even when the DCS already holds it: the next commit is
    // compared with it.
    plan.changed |= recorded_desired(obs).is_none();
    ClusterStep::Apply {
        plan: Box::new(plan),
        kept,
    }
}

/// Drift of the observation against git: managed config keys, member tags (past their
/// grace), `ALTER SYSTEM` overrides; secret-bearing values are never reported.
fn drift_of(desired: &Desired<'_>, observed: &ClusterObservation, memory: &Memory) -> Vec<Drift> {
    let mut found = detect(
        &desired.cluster.config,
        &observed.config(),
        desired.ignore,
        desired.policy,
    );
    found.extend(memory.tag_drift.iter().cloned());
    found.extend(alter_system_drift(&observed.live.members, desired.ignore));
    // A drift event is logged, sent to webhooks and committed to the history.
    found.retain(|d| !is_secret_drift(d));
    found
}

/// Whether a drift concerns a secret-bearing setting (by its last key segment or its value).
pub fn is_secret_drift(d: &Drift) -> bool {
    let name = d.key.rsplit('.').next().unwrap_or(&d.key);
    let text = |v: &Value| v.as_str().map_or_else(|| v.to_string(), str::to_string);
    crate::secrets::is_secret_setting(name, &text(&d.live))
        || crate::secrets::is_secret_setting(name, &text(&d.git))
}

/// ALTER SYSTEM on a member bypasses the DCS: always reported (alert).
pub fn alter_system_drift(members: &[MemberEntry], ignore: &[String]) -> Vec<Drift> {
    let mut drifts = Vec::new();
    for m in members {
        let overrides = m
            .data
            .extra
            .get("patronus_alter_system")
            .and_then(Value::as_object);
        for (param, value) in overrides.into_iter().flatten() {
            let key = format!("postgresql.parameters.{param}");
            if !ignore.iter().any(|g| super::drift::glob(g, &key)) {
                drifts.push(Drift {
                    key: format!("members.{}.alter_system.{param}", m.name),
                    git: Value::Null,
                    live: value.clone(),
                    policy: "alert".into(),
                });
            }
        }
    }
    drifts
}

/// The first operation that needs a write, in declaration order (notes for the others).
fn op_step(
    c: &DesiredCluster,
    live: &Cluster,
    memory: &Memory,
    now: DateTime<Utc>,
    notes: &mut Vec<Note>,
) -> ClusterStep {
    if c.ops.is_empty() {
        return ClusterStep::Nothing;
    }
    let records = live.gitops.as_ref().map(|g| &g.value);
    if let Err(e) = op_records(records) {
        notes.push(Note::OpsUnreadable(e.to_string()));
        return ClusterStep::Nothing;
    }
    for op in &c.ops {
        match recorded(records, &op.id).ok().flatten() {
            Some(rec) if rec.get("state").and_then(Value::as_str) == Some("running") => {
                if let Some(out) = memory.op_outcomes.get(&op.id) {
                    let (state, outcome) = match out {
                        Ok(m) => ("done", m.clone()),
                        Err(m) => ("failed", m.clone()),
                    };
                    return ClusterStep::OpFinish {
                        id: op.id.clone(),
                        state,
                        outcome,
                    };
                }
                if memory.op_running.contains(&op.id) {
                    continue;
                }
                match reclaim(&op.kind, &rec, live, now) {
                    Reclaim::Wait => notes.push(Note::OpReclaimWait(op.id.clone())),
                    Reclaim::Finish { state, outcome } => {
                        return ClusterStep::OpFinish {
                            id: op.id.clone(),
                            state,
                            outcome: format!("reclaimed: {outcome}"),
                        }
                    }
                }
                continue;
            }
            Some(_) => continue,
            None => {}
        }
        match readiness(op, live, now) {
            Readiness::Ready => return ClusterStep::OpClaim(op.id.clone()),
            Readiness::Waiting(why) => notes.push(Note::OpWaiting {
                id: op.id.clone(),
                why,
            }),
            Readiness::Blocked(why) => {
                let first = memory.first_blocked.get(&op.id).copied().unwrap_or(now);
                if (now - first).num_seconds() > EXPIRY_SECS {
                    return ClusterStep::OpExpire {
                        id: op.id.clone(),
                        why,
                    };
                }
                notes.push(Note::OpBlocked {
                    id: op.id.clone(),
                    why,
                });
            }
        }
    }
    ClusterStep::Nothing
}

/// The restart wave's step ([`super::wave::decide`]) for a cluster whose policy is not
/// `manual`; idle and parked waves are notes.
fn wave_step(
    c: &DesiredCluster,
    live: &Cluster,
    memory: &Memory,
    now: DateTime<Utc>,
    notes: &mut Vec<Note>,
) -> ClusterStep {
    if c.restart_policy == "manual" {
        return ClusterStep::Nothing;
    }
    let open = crate::gitops::window::open_at(&c.windows, now);
    let now_ms = u64::try_from(now.timestamp_millis()).unwrap_or(0);
    let step = super::wave_exec::recorded_step(live);
    let rolling = c.restart_policy == "rolling";
    let failed = memory.wave_failed.as_deref();
    match super::wave::decide(live, rolling, open, step.as_ref(), failed, now_ms) {
        WaveDecision::Idle => notes.push(Note::WaveIdle),
        WaveDecision::Parked(order) => notes.push(Note::WaveParked(order)),
        WaveDecision::Wait(_) => {}
        d => return ClusterStep::Wave(d),
    }
    ClusterStep::Nothing
}

#[cfg(test)]
#[path = "controller_tests.rs"]
mod tests;
