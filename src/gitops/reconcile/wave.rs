//! Rolling restarts as a controller (pure): from the cluster as observed, the step in flight
//! (persisted as `wave` in the `gitops` key, so a restarted reconciler picks it up) and the
//! time, decide at most one thing to do. Waiting for a member to come back is not a loop: it
//! is a step whose completion a later pass observes.

use super::exec::{primary_first, wave_order};
use crate::dcs::Cluster;
use serde::{Deserialize, Serialize};

/// How long a restarted member may take to run again (streaming when it is a replica).
pub const RESTART_TIMEOUT_MS: u64 = 180_000;
/// How long a switchover away from the primary may take.
pub const SWITCHOVER_TIMEOUT_MS: u64 = 60_000;

/// What a step does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum WaveAction {
    /// `POST /restart` with `restart_pending` on the member.
    Restart,
    /// A switchover away from the member (the primary), before its restart.
    Switchover,
}

/// The step in flight: the `wave` field of the `gitops` key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WaveStep {
    /// Member restarted, or primary switched away from.
    pub member: String,
    /// What was asked.
    pub action: WaveAction,
    /// When it was asked (Unix milliseconds).
    pub started_ms: u64,
    /// The member's postmaster start time when it was asked, from its member key (absent
    /// when the agent does not publish it, e.g. Patroni): a different one later means the
    /// member's PostgreSQL was started again since.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub postmaster_start: Option<String>,
}

impl WaveStep {
    /// A step on `member` asked at `now_ms`, remembering the member's postmaster as seen.
    pub fn new(c: &Cluster, member: &str, action: WaveAction, now_ms: u64) -> WaveStep {
        WaveStep {
            member: member.to_string(),
            action,
            started_ms: now_ms,
            postmaster_start: postmaster_start(c, member).map(str::to_string),
        }
    }
}

/// The decision of one pass for one cluster.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WaveDecision {
    /// No member owes a restart.
    Idle,
    /// Restarts are owed on these members but no maintenance window is open.
    Parked(Vec<String>),
    /// The step in flight has not concluded yet: check again next pass.
    Wait(WaveStep),
    /// Ask for this step now (and record it).
    Start(WaveStep),
    /// The step in flight concluded: record the outcome and clear it.
    Finished {
        /// The step.
        step: WaveStep,
        /// Whether it did what it was asked.
        ok: bool,
        /// What happened, for the log and the history.
        outcome: String,
        /// The step that follows at once (the old primary's restart after its switchover).
        then: Option<WaveStep>,
    },
}

/// The postmaster start time `name` publishes (our member-key extension).
fn postmaster_start<'a>(c: &'a Cluster, name: &str) -> Option<&'a str> {
    c.member(name).and_then(|m| m.data.postmaster_start())
}

/// Whether the member's PostgreSQL was started again since `s` was asked: its member key
/// names another postmaster than the one recorded in the step. Unknown (an agent that does
/// not publish it) counts as not restarted.
fn restarted_since(c: &Cluster, s: &WaveStep) -> bool {
    let now = postmaster_start(c, &s.member);
    s.postmaster_start.is_some() && now.is_some() && now != s.postmaster_start.as_deref()
}

/// Whether the leader is somebody other than `name`.
fn moved(c: &Cluster, name: &str) -> bool {
    c.leader_name().is_some_and(|l| l != name)
}

/// Whether `name` runs and streams from the leader (a replica that has published since).
fn streams(c: &Cluster, name: &str) -> bool {
    c.member(name).is_some_and(|m| {
        m.data.is_running() && m.data.replication_state.as_deref() == Some("streaming")
    })
}

/// True when `name` runs again without a pending restart (and streams when a replica).
fn back(c: &Cluster, name: &str) -> bool {
    let leader = c.leader_name() == Some(name);
    c.member(name).is_some_and(|m| {
        m.data.is_running()
            && m.data.pending_restart != Some(true)
            && (leader || m.data.replication_state.as_deref() == Some("streaming"))
    })
}

/// Decides the next wave step. `rolling` is the `rolling` restart policy (switch the primary
/// over before restarting it; `rolling-in-place` restarts it in place); `failed` is the
/// outcome of the request task when it ended in an error.
pub fn decide(
    c: &Cluster,
    rolling: bool,
    window_open: bool,
    step: Option<&WaveStep>,
    failed: Option<&str>,
    now_ms: u64,
) -> WaveDecision {
    if let Some(s) = step {
        let age = now_ms.saturating_sub(s.started_ms);
        let finished = |ok: bool, outcome: String| WaveDecision::Finished {
            step: s.clone(),
            ok,
            outcome,
            then: None,
        };
        if let Some(why) = failed {
            return finished(false, why.to_string());
        }
        return match s.action {
            WaveAction::Restart if back(c, &s.member) => {
                finished(true, format!("{} restarted", s.member))
            }
            WaveAction::Restart if age > RESTART_TIMEOUT_MS => finished(
                false,
                format!(
                    "{} did not come back within {} s",
                    s.member,
                    RESTART_TIMEOUT_MS / 1000
                ),
            ),
            // The old primary is demoted (its postmaster restarts) after the leader moved: the
            // step ends once it streams as a replica, so its `pending_restart` is the one of
            // the restarted server and it is not restarted a second time.
            WaveAction::Switchover
                if moved(c, &s.member) && !streams(c, &s.member) && age <= RESTART_TIMEOUT_MS =>
            {
                WaveDecision::Wait(s.clone())
            }
            WaveAction::Switchover if moved(c, &s.member) => switched_over(c, s, now_ms),
            WaveAction::Switchover if age > SWITCHOVER_TIMEOUT_MS => finished(
                false,
                format!(
                    "{} is still the leader after {} s",
                    s.member,
                    SWITCHOVER_TIMEOUT_MS / 1000
                ),
            ),
            _ => WaveDecision::Wait(s.clone()),
        };
    }
    let order = wave_order(c);
    let Some(next) = order.first() else {
        return WaveDecision::Idle;
    };
    if !window_open {
        return WaveDecision::Parked(order);
    }
    let is_leader = c.leader_name() == Some(next.as_str());
    let others = c.members.iter().any(|m| m.name != *next);
    let action = if is_leader && rolling && others && !primary_first(c) {
        WaveAction::Switchover
    } else {
        WaveAction::Restart
    };
    WaveDecision::Start(WaveStep::new(c, next, action, now_ms))
}

/// The switchover away from `s.member` concluded (it streams from the new leader). Its
/// demotion stopped and started its PostgreSQL, which applied the new parameters: when its
/// member key shows that new postmaster, its restart is done and it is not restarted again
/// (whatever `pending_restart` an older key said). Otherwise it is restarted now, asking its
/// agent to restart only if a restart is still pending.
fn switched_over(c: &Cluster, s: &WaveStep, now_ms: u64) -> WaveDecision {
    let to = c.leader_name().unwrap_or("");
    let restarted = restarted_since(c, s);
    let outcome = if restarted {
        format!(
            "switched over from {} to {to}; its demotion restarted it",
            s.member
        )
    } else {
        format!("switched over from {} to {to}", s.member)
    };
    WaveDecision::Finished {
        step: s.clone(),
        ok: true,
        outcome,
        then: (!restarted).then(|| WaveStep::new(c, &s.member, WaveAction::Restart, now_ms)),
    }
}

#[cfg(test)]
#[path = "wave_tests.rs"]
mod tests;
