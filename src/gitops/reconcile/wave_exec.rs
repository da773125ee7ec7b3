//! Carrying out the wave controller's decisions ([`super::wave::decide`]): each pass reads
//! the cluster once, takes at most one step, records it in the `gitops` key and returns; the
//! member's REST call runs in a background task whose outcome a later pass collects. The
//! reconcile loop thus keeps following commits and checking drift during a rolling restart.

use super::daemon::{now, Reconciler};
use super::wave::{WaveAction, WaveDecision, WaveStep};
use crate::dcs::{Cluster, Dcs};
use serde_json::{json, Value};
use std::time::{Duration, Instant};

/// How long a failed step waits before the wave tries again.
const RETRY_AFTER: Duration = Duration::from_secs(30);

/// The step recorded in the `gitops` key (an unreadable one counts as none, with a warning).
pub(super) fn recorded_step(c: &Cluster) -> Option<WaveStep> {
    let raw = c.gitops.as_ref()?.value.get("wave")?;
    if raw.is_null() {
        return None;
    }
    match serde_json::from_value(raw.clone()) {
        Ok(s) => Some(s),
        Err(e) => {
            tracing::warn!("DCS key 'gitops': field 'wave' is unreadable ({e}); ignored");
            None
        }
    }
}

/// Writes (or clears) `wave` in the `gitops` key, compare-and-swap on the revision read.
async fn record_step(dcs: &dyn Dcs, c: &Cluster, step: Option<&WaveStep>) -> bool {
    let mut v = c
        .gitops
        .as_ref()
        .map(|g| g.value.clone())
        .filter(Value::is_object)
        .unwrap_or_else(|| json!({}));
    match step {
        Some(s) => v["wave"] = json!(s),
        None => {
            if let Some(o) = v.as_object_mut() {
                o.remove("wave");
            }
        }
    }
    let version = c.gitops.as_ref().map_or(0, |g| g.version);
    let key = crate::dcs::keys::GITOPS.to_string();
    dcs.cas_many(&[(key, v.to_string(), version)])
        .await
        .unwrap_or(false)
}

impl Reconciler {
    /// The error of the scope's finished request task (None while it runs, or when it worked).
    pub(super) async fn collect_wave_task(&mut self, scope: &str) -> Option<String> {
        if !self.wave_tasks.get(scope)?.is_finished() {
            return None;
        }
        let task = self.wave_tasks.remove(scope)?;
        match task.await {
            Ok(Ok(_)) => None,
            Ok(Err(e)) => Some(e),
            Err(e) => Some(format!("request task failed: {e}")),
        }
    }

    /// Carries out one decision of [`super::wave::decide`] (taken by [`super::controller`]).
    pub(super) async fn carry_out(
        &mut self,
        scope: &str,
        windows: &[String],
        dcs: &dyn Dcs,
        live: &Cluster,
        d: WaveDecision,
    ) {
        let key = format!("{scope}/restart-waves");
        if matches!(d, WaveDecision::Parked(_)) {
            self.parked.insert(scope.to_string());
        } else {
            self.parked.remove(scope);
        }
        match d {
            WaveDecision::Idle => {
                self.op_notes.remove(&key);
            }
            WaveDecision::Parked(order) => {
                let msg = format!("cluster {scope}: restart owed on {order:?}, parked until a maintenance window {windows:?}");
                if self.op_notes.get(&key) != Some(&msg) {
                    tracing::info!("{msg}");
                    self.op_notes.insert(key, msg);
                    self.emit(scope, json!({"event": "restart_owed", "at": now(), "members": order, "windows": windows}));
                }
            }
            WaveDecision::Wait(_) => {}
            WaveDecision::Start(step) => self.start_step(scope, dcs, live, step).await,
            WaveDecision::Finished {
                step,
                ok,
                outcome,
                then,
            } => {
                // `then`: the old primary's restart right after its switchover, unless its
                // demotion already restarted it (decided in `wave::decide`).
                if !record_step(dcs, live, then.as_ref()).await {
                    return; // the key moved: decided again next pass
                }
                if let Some(t) = self.wave_tasks.remove(scope) {
                    t.abort();
                }
                tracing::info!(
                    "cluster {scope}: rolling restart of {}: {outcome}",
                    step.member
                );
                let ev = match step.action {
                    WaveAction::Restart => {
                        json!({"event": "restart", "at": now(), "member": step.member, "ok": ok, "outcome": outcome})
                    }
                    WaveAction::Switchover => {
                        json!({"event": "switchover", "at": now(), "reason": "rolling restart", "ok": ok, "outcome": outcome})
                    }
                };
                self.emit(scope, ev);
                if ok && step.action == WaveAction::Switchover && then.is_none() {
                    // Its demotion was its restart: the history says so, as for the others.
                    let outcome = format!("{} restarted by its demotion", step.member);
                    self.emit(
                        scope,
                        json!({"event": "restart", "at": now(), "member": step.member, "ok": true, "outcome": outcome}),
                    );
                }
                if !ok {
                    self.wave_retry
                        .insert(scope.to_string(), Instant::now() + RETRY_AFTER);
                }
                if let (Some(next), Some(member)) = (then, live.member(&step.member).cloned()) {
                    self.spawn_request(scope, live, next, member);
                }
            }
        }
    }

    /// Records `step` in the `gitops` key, then sends its request in a background task.
    async fn start_step(&mut self, scope: &str, dcs: &dyn Dcs, live: &Cluster, step: WaveStep) {
        if self
            .wave_retry
            .get(scope)
            .is_some_and(|t| Instant::now() < *t)
        {
            return;
        }
        let Some(member) = live.member(&step.member).cloned() else {
            return;
        };
        if !record_step(dcs, live, Some(&step)).await {
            return;
        }
        self.wave_retry.remove(scope);
        self.op_notes.remove(&format!("{scope}/restart-waves"));
        self.spawn_request(scope, live, step, member);
    }

    /// Sends the REST request of `step` in a background task.
    fn spawn_request(
        &mut self,
        scope: &str,
        live: &Cluster,
        step: WaveStep,
        member: crate::dcs::MemberEntry,
    ) {
        let exec = self.exec.clone();
        let (cluster, name) = (live.clone(), step.member.clone());
        let task = match step.action {
            WaveAction::Restart => {
                tracing::info!("cluster {scope}: rolling restart: restarting {name}");
                tokio::spawn(async move {
                    exec.request_restart(&member, true)
                        .await
                        .map(|m| m.unwrap_or_else(|| format!("{name} restarting")))
                })
            }
            WaveAction::Switchover => {
                tracing::info!(
                    "cluster {scope}: rolling restart: switching over from {name} before its restart"
                );
                tokio::spawn(async move { exec.switchover(&cluster, None).await })
            }
        };
        self.wave_tasks.insert(scope.to_string(), task);
    }
}
