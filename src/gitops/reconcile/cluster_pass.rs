//! One pass over the clusters, as a controller: per cluster this reconciler is active for,
//! observe (one linearizable read, `concurrency` clusters at a time) → the pure
//! [`decide_cluster`] → record the drift and notes → carry out at most one step → requeue
//! (the next pass, woken by the cluster's watch, the repository or the 200 ms tick).
//! A cluster is read only when something may have changed: a followed commit, its DCS keys
//! (watch), a member tag drift in its grace period, the periodic full drift check, or its
//! operations and restart wave (once a second, for clusters that declare them).

use super::apply_pass::Ready;
use super::controller::{
    decide_cluster, ClusterObservation, ClusterStep, Decision, Desired, Memory, Note,
};
use super::daemon::Reconciler;
use super::wave::WaveDecision;
use crate::dcs::etcd::EtcdDcs;
use crate::dcs::{Cluster, Dcs};
use crate::gitops::desired::{DesiredCluster, DesiredState};
use futures::stream::{self, StreamExt};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Every cluster is checked for drift at least this often, changed or not.
const FULL_DRIFT_EVERY: Duration = Duration::from_secs(10);

/// Cluster reads (observations) since the process started, for `GET /status`
/// (`cluster_reads`) and `/metrics` (`patronus_reconcile_cluster_reads_total`).
pub(super) static OBSERVATIONS: AtomicU64 = AtomicU64::new(0);

/// A cluster to observe in this pass.
struct Target {
    index: usize,
    dcs: Arc<EtcdDcs>,
}

impl Reconciler {
    /// The clusters to read in this pass (see the module doc); updates their watch mark.
    fn observe_targets(&mut self, state: &DesiredState, sha: &str, steps: bool) -> Vec<Target> {
        let full = self.drift_full.0.elapsed() >= FULL_DRIFT_EVERY
            || self.drift_full.1.as_deref() != Some(sha);
        if full {
            self.drift_full = (Instant::now(), Some(sha.to_string()));
        }
        let mut targets = Vec::new();
        for (index, c) in state.clusters.iter().enumerate() {
            if !self.holds(&c.scope) {
                continue; // another reconciler is active for it: observed through the watch
            }
            let Some(cs) = self.clusters.get_mut(&c.scope) else {
                continue;
            };
            let version = *cs.changes.borrow();
            let has_steps = !c.ops.is_empty() || c.restart_policy != "manual";
            if full
                || cs.commit_due
                || !cs.tag_since.is_empty()
                || cs.drift_seen != Some(version)
                || (steps && has_steps)
            {
                cs.drift_seen = Some(version);
                let dcs = cs.dcs.clone();
                targets.push(Target { index, dcs });
            }
        }
        targets
    }

    /// One controller pass over the clusters of the current desired commit.
    pub(super) async fn reconcile_clusters(&mut self) {
        let Some((state, commit)) = self.desired.clone() else {
            return;
        };
        let steps = self.last_steps.elapsed() >= Duration::from_secs(1);
        if steps {
            self.last_steps = Instant::now();
        }
        let t0 = Instant::now();
        let targets = self.observe_targets(&state, &commit.sha, steps);
        let reads: Vec<_> = stream::iter(targets)
            .map(|t| async move {
                OBSERVATIONS.fetch_add(1, Ordering::Relaxed);
                let live = t.dcs.fresh_cluster().await;
                (t, live)
            })
            .buffer_unordered(self.opts.concurrency.max(1))
            .collect()
            .await;
        let mut applies = Vec::new();
        let ignore = state.settings.ignore();
        let policy = |k: &str| state.settings.drift_policy(k);
        for (t, live) in reads {
            let c = &state.clusters[t.index];
            let live = match live {
                Ok(l) => l,
                Err(e) => {
                    self.read_failed(&c.scope, &e.to_string());
                    continue;
                }
            };
            let desired = Desired {
                cluster: c,
                sha: &commit.sha,
                ignore: &ignore,
                policy: &policy,
            };
            let memory = self.memory_for(c, &live, steps).await;
            let observed = ClusterObservation { live };
            let now = chrono::Utc::now();
            let mut d = decide_cluster(&desired, &observed, &memory, now);
            self.record_decision(c, &t.dcs, &observed.live, &mut d, now)
                .await;
            let step = self
                .carry_out_step(c, t.dcs, observed, d.step, &commit.sha)
                .await;
            applies.extend(step);
        }
        let (n, decided) = (applies.len(), t0.elapsed());
        self.write_applies(&commit, applies).await;
        if n > 0 {
            tracing::info!(
                "{n} cluster(s) read and decided in {} ms, written in {} ms",
                decided.as_millis(),
                (t0.elapsed() - decided).as_millis()
            );
        }
    }

    /// A failed read: the drift check and a due commit are retried (the commit with backoff).
    fn read_failed(&mut self, scope: &str, e: &str) {
        let Some(cs) = self.clusters.get_mut(scope) else {
            return;
        };
        cs.drift_seen = None;
        if std::mem::take(&mut cs.commit_due) {
            tracing::error!("cluster {scope}: cannot read the DCS: {e}");
            self.seen = None;
        }
    }

    /// What this reconciler remembers of the cluster for [`decide_cluster`]: collects the
    /// outcomes of its finished request tasks, member tag drift past its grace period.
    async fn memory_for(&mut self, c: &DesiredCluster, live: &Cluster, steps: bool) -> Memory {
        let prefix = format!("{}/", c.scope);
        let finished: Vec<String> = self
            .op_tasks
            .iter()
            .filter(|(k, t)| k.starts_with(&prefix) && t.is_finished())
            .map(|(k, _)| k.clone())
            .collect();
        for key in finished {
            if let Some(task) = self.op_tasks.remove(&key) {
                let out = task
                    .await
                    .unwrap_or_else(|e| Err(format!("request task failed: {e}")));
                self.op_outcomes.insert(key, out);
            }
        }
        if let Some(why) = self.collect_wave_task(&c.scope).await {
            self.wave_failures.insert(c.scope.clone(), why);
        }
        let ids = |keys: Vec<&String>| -> Vec<String> {
            keys.into_iter()
                .filter_map(|k| k.strip_prefix(&prefix).map(str::to_string))
                .collect()
        };
        let op_running = ids(self.op_tasks.keys().collect());
        let op_outcomes = by_id(&self.op_outcomes, &prefix);
        let first_blocked = by_id(&self.first_blocked, &prefix);
        let ignore = self
            .desired
            .as_ref()
            .map(|(s, _)| s.settings.ignore())
            .unwrap_or_default();
        let wave_failed = self.wave_failures.get(&c.scope).cloned();
        let Some(cs) = self.clusters.get_mut(&c.scope) else {
            return Memory::default();
        };
        let live_cfg = live
            .config
            .as_ref()
            .map_or(serde_json::Value::Null, |v| v.value.clone());
        let tag_drift = super::pass::member_tag_drift(
            cs,
            c,
            &live.members,
            live.gitops.as_ref(),
            &live_cfg,
            &ignore,
        );
        Memory {
            commit_due: cs.commit_due,
            check_drift: true,
            tag_drift,
            steps_due: steps,
            wave_failed,
            op_running,
            op_outcomes,
            first_blocked,
        }
    }

    /// Records what was decided without a write: drift (before any step), notes.
    async fn record_decision(
        &mut self,
        c: &DesiredCluster,
        dcs: &EtcdDcs,
        live: &Cluster,
        d: &mut Decision,
        now: chrono::DateTime<chrono::Utc>,
    ) {
        for drift in std::mem::take(&mut d.drift) {
            self.record_drift(&c.scope, &c.file, drift);
        }
        for note in std::mem::take(&mut d.notes) {
            match note {
                Note::WaveIdle => {
                    self.carry_out(&c.scope, &c.windows, dcs, live, WaveDecision::Idle)
                        .await
                }
                Note::WaveParked(order) => {
                    let parked = WaveDecision::Parked(order);
                    self.carry_out(&c.scope, &c.windows, dcs, live, parked)
                        .await
                }
                other => self.op_note(&c.scope, other, now),
            }
        }
    }

    /// Carries out the step; an apply is returned to be written with the others.
    async fn carry_out_step(
        &mut self,
        c: &DesiredCluster,
        dcs: Arc<EtcdDcs>,
        observed: ClusterObservation,
        step: ClusterStep,
        sha: &str,
    ) -> Option<Ready> {
        let scope = c.scope.as_str();
        let was_due = self
            .clusters
            .get_mut(scope)
            .is_some_and(|cs| std::mem::take(&mut cs.commit_due));
        if was_due && !matches!(step, ClusterStep::Apply { .. } | ClusterStep::Missing) {
            tracing::debug!(
                "cluster {scope}: desired state unchanged by commit {}; not re-applied",
                &sha[..sha.len().min(12)]
            );
        }
        let live = &observed.live;
        match step {
            ClusterStep::Nothing | ClusterStep::Unchanged => {}
            ClusterStep::Missing => {
                tracing::warn!("cluster {scope} does not exist in the DCS yet; will retry");
                self.seen = None;
            }
            ClusterStep::Apply { plan, kept } => {
                for key in &kept {
                    let policy = self
                        .desired
                        .as_ref()
                        .map(|(s, _)| s.settings.drift_policy(key));
                    tracing::info!(
                        "cluster {scope}: {key} keeps its live value (drift under policy {}; commit {} does not change it)",
                        policy.unwrap_or_default(),
                        &sha[..sha.len().min(12)]
                    );
                }
                let gitops = observed.gitops().cloned();
                let (scope, plan) = (scope.to_string(), *plan);
                return Some(Ready::new(scope, dcs, plan, gitops, kept));
            }
            ClusterStep::Revert(keys) => self.revert_keys(scope, &dcs, live, keys).await,
            ClusterStep::OpClaim(id) => self.claim_op(c, dcs, live, &id).await,
            ClusterStep::OpExpire { id, why } => self.expire_op(c, &dcs, live, &id, why).await,
            ClusterStep::OpFinish { id, state, outcome } => {
                self.finish_op(c, &dcs, live, &id, state, outcome).await
            }
            ClusterStep::Wave(d) => {
                self.wave_failures.remove(scope);
                self.carry_out(scope, &c.windows, dcs.as_ref(), live, d)
                    .await
            }
        }
        None
    }
}

/// The entries of a `scope/id` map under `prefix` (`scope/`), by id.
fn by_id<V: Clone>(m: &BTreeMap<String, V>, prefix: &str) -> BTreeMap<String, V> {
    m.iter()
        .filter_map(|(k, v)| Some((k.strip_prefix(prefix)?.to_string(), v.clone())))
        .collect()
}
