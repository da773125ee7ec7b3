//! Writing the applies a pass decided ([`super::controller::ClusterStep::Apply`]): only the
//! clusters whose own desired state changed, each after its drift was recorded, keeping the
//! live value of drifted keys the commit did not touch (see [`super::reapply`]). The writes
//! run `concurrency` clusters at a time.

use super::daemon::{now, Reconciler};
use crate::dcs::etcd::EtcdDcs;
use crate::dcs::Dcs;
use crate::gitops::apply;
use crate::gitops::git::CommitInfo;
use crate::gitops::plan::ClusterPlan;
use crate::gitops::GitopsError;
use futures::stream::{self, StreamExt};
use serde_json::{json, Value};
use std::sync::Arc;

/// A cluster's plan ready to write, with what to log and record once written.
pub(super) struct Ready {
    scope: String,
    dcs: Arc<EtcdDcs>,
    plan: ClusterPlan,
    gitops: Option<Value>,
    kept: Vec<String>,
}

impl Ready {
    /// The plan of `scope`, decided on a read whose `gitops` key was `gitops`.
    pub(super) fn new(
        scope: String,
        dcs: Arc<EtcdDcs>,
        plan: ClusterPlan,
        gitops: Option<Value>,
        kept: Vec<String>,
    ) -> Ready {
        Ready {
            scope,
            dcs,
            plan,
            gitops,
            kept,
        }
    }
}

impl Reconciler {
    /// Writes the plans (config and `gitops` in one transaction each, guarded by the
    /// revisions read), `concurrency` clusters at a time.
    pub(super) async fn write_applies(&mut self, commit: &CommitInfo, ready: Vec<Ready>) {
        if ready.is_empty() {
            return;
        }
        let n = self.opts.concurrency.max(1);
        let writes: Vec<_> = stream::iter(ready)
            .map(|r| async move {
                let res = apply::apply_plan(
                    r.dcs.as_ref() as &dyn Dcs,
                    &r.plan,
                    r.gitops.as_ref(),
                    Some(commit),
                )
                .await;
                (r, res)
            })
            .buffer_unordered(n)
            .collect()
            .await;
        for (r, res) in writes {
            self.applied(commit, r, res);
        }
    }

    /// Logs and records the outcome of one cluster's write; a failure clears `seen` so the
    /// commit is retried (with backoff).
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
            Err(GitopsError::Stale(e)) => {
                // Written meanwhile (an agent, an operator): decided again on a fresh read.
                tracing::info!("{e}; deciding again");
                if let Some(cs) = self.clusters.get_mut(&r.scope) {
                    cs.commit_due = true;
                }
            }
            Err(e) => {
                tracing::warn!("cluster {}: {e}; retrying", r.scope);
                self.seen = None;
            }
        }
    }
}
