//! Commit-back: `status/<scope>/observed.yaml` and the append-only `history.yaml`, committed on
//! the checked-out branch or on `commit_back.branch`, and pushed for a remote repository.
//! `commit_back.enabled: false` (or `--no-commit-back`) turns it off.

use super::daemon::Reconciler;
use super::history_fill::missing_op_events;
use super::status::{history_yaml, observed_yaml};
use crate::dcs::Dcs;
use crate::gitops::desired::DesiredState;
use crate::gitops::observed::ObservedCluster;
use serde_json::{json, Value};

impl Reconciler {
    /// Pushes the adopt branches created since the last call to the remote (kept for the next
    /// pass when the push fails).
    pub(super) async fn push_adopt_branches(&mut self) {
        for branch in std::mem::take(&mut self.adopt_pushes) {
            let b = branch.clone();
            let pushed = super::source::blocking(&self.source, move |src| src.push_branch(&b))
                .await
                .and_then(|r| r);
            match pushed {
                Ok(()) => tracing::info!("adopt branch {branch} pushed to the remote"),
                Err(e) => {
                    tracing::warn!("adopt branch {branch} not pushed yet: {e}");
                    self.adopt_pushes.push(branch);
                }
            }
        }
    }

    /// Writes status/<scope>/observed.yaml and history.yaml, committing when they changed.
    pub(super) async fn commit_back(&mut self) {
        self.publish_status().await;
        let Some((state, commit)) = self.desired.clone() else {
            return;
        };
        if !self.opts.commit_back || !state.settings.commit_back_enabled() {
            for cs in self.clusters.values_mut() {
                cs.events.clear();
            }
            return;
        }
        self.source.status_branch = state.settings.commit_back_branch();
        let mut files = Vec::new();
        // Events written into this commit, per cluster: dropped from the pending list only
        // once the commit is on our branch for good (a rejected push drops the commit).
        let mut sent: Vec<(String, usize)> = Vec::new();
        // Each cluster's status files have one writer: its active reconciler.
        let held: Vec<String> = self
            .clusters
            .keys()
            .filter(|s| self.holds(s))
            .cloned()
            .collect();
        for scope in held {
            if let Some(n) = self.cluster_status(&state, &scope, &mut files).await {
                sent.push((scope, n));
            }
        }
        let author = state
            .settings
            .raw
            .pointer("/commit_back/author")
            .and_then(Value::as_str)
            .unwrap_or("patronus <patronus@localhost>")
            .to_string();
        if !self.commit_status(files, author, commit.sha.clone()).await {
            let n: usize = sent.iter().map(|(_, n)| n).sum();
            if n > 0 {
                tracing::warn!("{n} history event(s) kept pending; committed again next pass");
            }
            return;
        }
        for (scope, n) in sent {
            if let Some(cs) = self.clusters.get_mut(&scope) {
                cs.events.drain(..n.min(cs.events.len()));
            }
        }
    }

    /// One cluster's status files (pushed to `files`), after adding the events the history
    /// lacks: outcomes a previous holder recorded in the DCS only, timeline switches. Returns
    /// how many pending events the history file carries.
    async fn cluster_status(
        &mut self,
        state: &DesiredState,
        scope: &str,
        files: &mut Vec<(String, String)>,
    ) -> Option<usize> {
        let live = self.clusters.get(scope)?.dcs.cluster().await.ok()?;
        let history = format!("status/{scope}/history.yaml");
        let previous = self.source.status_text(&history);
        let cs = self.clusters.get_mut(scope)?;
        let mut added = Vec::new();
        if cs.recorded_timelines.is_none() {
            // First commit-back since we started or took the cluster over: outcomes a
            // previous holder recorded in the DCS but never committed are added now.
            let kind = |id: &str| {
                let c = state.clusters.iter().find(|c| c.scope == scope)?;
                Some(c.ops.iter().find(|o| o.id == id)?.kind.clone())
            };
            let gitops = live.gitops.as_ref().map(|g| &g.value);
            for ev in missing_op_events(previous.as_deref(), &cs.events, gitops, kind) {
                tracing::info!("cluster {scope}: operation {} outcome added to the history from the DCS record", ev["id"]);
                added.push(ev);
            }
        }
        let recorded = cs
            .recorded_timelines
            .get_or_insert_with(|| recorded_timelines(previous.as_deref()));
        for line in &live.history {
            if recorded.insert(line.timeline) {
                added.push(json!({"event": "timeline_switch", "from_timeline": line.timeline, "lsn": line.lsn,
                    "reason": line.reason, "at": line.timestamp, "new_leader": line.new_leader}));
            }
        }
        for ev in added {
            cs.events.push(ev.clone());
            let mut out = ev;
            out["cluster"] = json!(scope);
            self.outbox.push(out);
        }
        let cs = self.clusters.get_mut(scope)?;
        let obs = ObservedCluster::from_cluster(scope, &live);
        let applied = live.gitops.as_ref().and_then(|g| g.value.get("applied"));
        let observed = observed_yaml(
            &obs,
            applied,
            cs.last_drift.as_ref(),
            self.last_error.as_deref(),
        );
        files.push((format!("status/{scope}/observed.yaml"), observed));
        if cs.events.is_empty() {
            return None;
        }
        // A timeline switch another reconciler committed meanwhile is not repeated.
        let there = recorded_timelines(previous.as_deref());
        cs.events.retain(|e| !is_timeline_in(e, &there));
        files.push((history, history_yaml(previous.as_deref(), &cs.events)));
        Some(cs.events.len())
    }

    /// Commits (and pushes) the status files on a blocking thread; true when the commit is on
    /// our branch for good (or nothing changed).
    async fn commit_status(
        &self,
        files: Vec<(String, String)>,
        author: String,
        sha: String,
    ) -> bool {
        super::source::blocking(&self.source, move |src| {
            match src.commit_status(&files, &author, &sha, "patronus: observed state") {
                Ok(Some(id)) => {
                    tracing::info!("committed observed state {}", &id[..12]);
                    if let Err(e) = src.push() {
                        tracing::warn!("{e}");
                    }
                    src.holds(&id)
                }
                Ok(None) => true,
                Err(e) => {
                    tracing::warn!("commit-back failed: {e}");
                    false
                }
            }
        })
        .await
        .unwrap_or_else(|e| {
            tracing::warn!("commit-back failed: {e}");
            false
        })
    }
}

/// Whether `ev` is a `timeline_switch` from a timeline in `recorded`.
fn is_timeline_in(ev: &Value, recorded: &std::collections::BTreeSet<u64>) -> bool {
    ev.get("event").and_then(Value::as_str) == Some("timeline_switch")
        && ev
            .get("from_timeline")
            .and_then(Value::as_u64)
            .is_some_and(|t| recorded.contains(&t))
}

/// Timelines already recorded as `timeline_switch` events in a history document.
fn recorded_timelines(text: Option<&str>) -> std::collections::BTreeSet<u64> {
    text.and_then(|t| crate::config::yaml::parse_yaml_str(t).ok())
        .and_then(|v| v.as_array().cloned())
        .unwrap_or_default()
        .iter()
        .filter(|e| e.get("event").and_then(Value::as_str) == Some("timeline_switch"))
        .filter_map(|e| e.get("from_timeline").and_then(Value::as_u64))
        .collect()
}
