//! Applying a new desired commit: only the clusters whose own desired state changed, each
//! after its drift was recorded, keeping the live value of drifted keys the commit did not
//! touch (see [`super::reapply`]).

use super::daemon::{now, Reconciler};
use super::reapply::{on_commit, Base, CommitEffect};
use crate::dcs::Dcs;
use crate::gitops::apply;
use crate::gitops::desired::{DesiredCluster, DesiredState};
use crate::gitops::guc::GucCatalog;
use crate::gitops::observed::ObservedCluster;
use crate::gitops::plan::{plan_cluster_as, recorded_desired};
use serde_json::{json, Value};

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

impl Reconciler {
    /// Applies the current desired commit to every cluster whose desired state changed since
    /// it was last applied.
    pub(super) async fn apply_all(&mut self) {
        let Some((state, _)) = self.desired.clone() else {
            return;
        };
        for c in &state.clusters {
            self.apply_cluster(&state, c).await;
        }
    }

    /// One cluster of [`Self::apply_all`]; failures clear `seen` so the commit is retried.
    async fn apply_cluster(&mut self, state: &DesiredState, c: &DesiredCluster) {
        let Some((_, commit)) = self.desired.clone() else {
            return;
        };
        if let Err(e) = self.connect(state, &c.scope).await {
            tracing::error!("cluster {}: DCS unavailable: {e}; retrying", c.scope);
            self.seen = None;
            return;
        }
        let Some(dcs) = self.active_dcs(&c.scope) else {
            // Another reconciler is active for it; when we take over, `seen` is cleared
            // and the commit is applied here if that one had not.
            tracing::debug!("cluster {}: not the active reconciler; observing", c.scope);
            return;
        };
        let live = match dcs.fresh_cluster().await {
            Ok(l) => l,
            Err(e) => {
                self.seen = None;
                tracing::error!("cluster {}: cannot read the DCS: {e}", c.scope);
                return;
            }
        };
        let obs = ObservedCluster::from_cluster(&c.scope, &live);
        if !obs.exists {
            tracing::warn!(
                "cluster {} does not exist in the DCS yet; will retry",
                c.scope
            );
            self.seen = None;
            return;
        }
        let applied_commit = obs
            .gitops
            .as_ref()
            .and_then(|g| g.pointer("/applied/commit"));
        if applied_commit.and_then(Value::as_str) == Some(commit.sha.as_str()) {
            // Applied already (by us before a restart, or before a retry for another cluster).
            return;
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
            return;
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
        match apply::apply_plan(
            dcs.as_ref() as &dyn Dcs,
            &plan,
            obs.gitops.as_ref(),
            Some(&commit),
        )
        .await
        {
            Ok(true) => {
                let params: Vec<String> = plan.params.iter().map(|p| p.name.clone()).collect();
                tracing::info!(
                    "cluster {}: applied commit {} (commit); parameters changed: {params:?}",
                    c.scope,
                    &commit.sha[..12]
                );
                self.emit(&c.scope, json!({"event": "applied", "at": now(), "commit": commit.sha, "author": commit.author,
                    "summary": commit.summary, "reason": "commit", "parameters": params}));
                if let Some(cs) = self.clusters.get_mut(&c.scope) {
                    cs.reported.retain(|k, _| kept.contains(k));
                }
            }
            Ok(false) => {}
            Err(e) => {
                tracing::warn!("cluster {}: {e}; retrying", c.scope);
                self.seen = None;
            }
        }
    }
}
