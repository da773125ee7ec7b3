//! Applying a new desired commit: only the clusters whose own desired state changed, each
//! after its drift was recorded, keeping the live value of drifted keys the commit did not
//! touch (see [`super::reapply`]).

use super::daemon::{now, Reconciler};
use super::reapply::{on_commit, Base, CommitEffect};
use crate::dcs::etcd::EtcdDcs;
use crate::dcs::Dcs;
use crate::gitops::apply;
use crate::gitops::desired::{DesiredCluster, DesiredState};
use crate::gitops::git::CommitInfo;
use crate::gitops::guc::GucCatalog;
use crate::gitops::observed::ObservedCluster;
use crate::gitops::plan::{plan_cluster_as, recorded_desired, ClusterPlan};
use crate::gitops::GitopsError;
use futures::stream::{self, StreamExt};
use serde_json::{json, Value};
use std::sync::Arc;

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

/// A cluster's plan ready to write, with what to log and record once written.
struct Ready {
    scope: String,
    dcs: Arc<EtcdDcs>,
    plan: ClusterPlan,
    gitops: Option<Value>,
    kept: Vec<String>,
}

impl Reconciler {
    /// Applies the current desired commit to every cluster whose desired state changed since
    /// it was last applied: DCS reads and writes run `concurrency` clusters at a time; the
    /// decisions and drift records in between are taken one cluster after the other.
    pub(super) async fn apply_all(&mut self) {
        let Some((state, commit)) = self.desired.clone() else {
            return;
        };
        let mut targets = Vec::new();
        for (i, c) in state.clusters.iter().enumerate() {
            if let Err(e) = self.connect(&state, &c.scope).await {
                tracing::error!("cluster {}: DCS unavailable: {e}; retrying", c.scope);
                self.seen = None;
                continue;
            }
            match self.active_dcs(&c.scope) {
                Some(dcs) => targets.push((i, dcs)),
                // Another reconciler is active for it; when we take over, `seen` is cleared
                // and the commit is applied here if that one had not.
                None => {
                    tracing::debug!("cluster {}: not the active reconciler; observing", c.scope)
                }
            }
        }
        let n = self.opts.concurrency.max(1);
        let reads: Vec<_> = stream::iter(targets)
            .map(|(i, dcs)| async move {
                let live = dcs.fresh_cluster().await;
                (i, dcs, live)
            })
            .buffer_unordered(n)
            .collect()
            .await;
        let mut ready = Vec::new();
        for (i, dcs, live) in reads {
            let c = &state.clusters[i];
            match live {
                Ok(live) => ready.extend(self.decide_cluster(&state, c, dcs, &live)),
                Err(e) => {
                    self.seen = None;
                    tracing::error!("cluster {}: cannot read the DCS: {e}", c.scope);
                }
            }
        }
        let commit2 = commit.clone();
        let writes: Vec<_> = stream::iter(ready)
            .map(|r| {
                let commit = commit2.clone();
                async move {
                    let res = apply::apply_plan(
                        r.dcs.as_ref() as &dyn Dcs,
                        &r.plan,
                        r.gitops.as_ref(),
                        Some(&commit),
                    )
                    .await;
                    (r, res)
                }
            })
            .buffer_unordered(n)
            .collect()
            .await;
        for (r, res) in writes {
            self.applied(&commit, r, res);
        }
    }

    /// What the commit does to one cluster read `live` (see [`on_commit`]): its drift is
    /// recorded here, before anything is written; returns the plan to write, if any.
    fn decide_cluster(
        &mut self,
        state: &DesiredState,
        c: &DesiredCluster,
        dcs: Arc<EtcdDcs>,
        live: &crate::dcs::Cluster,
    ) -> Option<Ready> {
        let (_, commit) = self.desired.clone()?;
        let obs = ObservedCluster::from_cluster(&c.scope, live);
        if !obs.exists {
            tracing::warn!(
                "cluster {} does not exist in the DCS yet; will retry",
                c.scope
            );
            self.seen = None;
            return None;
        }
        let applied_commit = obs
            .gitops
            .as_ref()
            .and_then(|g| g.pointer("/applied/commit"));
        if applied_commit.and_then(Value::as_str) == Some(commit.sha.as_str()) {
            // Applied already (by us before a restart, or before a retry for another cluster).
            return None;
        }
        let ignore = state.settings.ignore();
        let live_cfg = obs.config.clone().unwrap_or(Value::Null);
        let effect = on_commit(base(&obs), c, &live_cfg, &ignore, |k| {
            state.settings.drift_policy(k)
        });
        let CommitEffect::Apply {
            desired,
            drift,
            kept,
        } = effect
        else {
            tracing::debug!(
                "cluster {}: desired state unchanged by commit {}; not re-applied",
                c.scope,
                &commit.sha[..12]
            );
            return None;
        };
        // Before anything is overwritten, the drift it would hide is on record.
        for d in drift
            .into_iter()
            .filter(|d| !super::pass::is_secret_drift(d))
        {
            self.record_drift(&c.scope, &c.file, d);
        }
        for key in &kept {
            tracing::info!(
                "cluster {}: {key} keeps its live value (drift under policy {}; commit {} does not change it)",
                c.scope,
                state.settings.drift_policy(key),
                &commit.sha[..12]
            );
        }
        let mut plan =
            plan_cluster_as(&desired, &obs, GucCatalog::postgresql15(), c.applied_form());
        // Record what was applied even when the DCS already holds it: the next commit is
        // compared with it.
        plan.changed |= recorded_desired(&obs).is_none();
        Some(Ready {
            scope: c.scope.clone(),
            dcs,
            plan,
            gitops: obs.gitops,
            kept,
        })
    }

    /// Logs and records the outcome of one cluster's write; a failure clears `seen` so the
    /// commit is retried.
    fn applied(&mut self, commit: &CommitInfo, r: Ready, res: Result<bool, GitopsError>) {
        match res {
            Ok(true) => {
                let params: Vec<String> = r.plan.params.iter().map(|p| p.name.clone()).collect();
                tracing::info!(
                    "cluster {}: applied commit {} (commit); parameters changed: {params:?}",
                    r.scope,
                    &commit.sha[..12]
                );
                self.emit(&r.scope, json!({"event": "applied", "at": now(), "commit": commit.sha, "author": commit.author,
                    "summary": commit.summary, "reason": "commit", "parameters": params}));
                if let Some(cs) = self.clusters.get_mut(&r.scope) {
                    cs.reported.retain(|k, _| r.kept.contains(k));
                }
            }
            Ok(false) => {}
            Err(e) => {
                tracing::warn!("cluster {}: {e}; retrying", r.scope);
                self.seen = None;
            }
        }
    }
}
