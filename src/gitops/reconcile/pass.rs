//! One reconcile pass: follow the repository, apply, check drift (alert / revert / adopt),
//! and publish the status document.

use super::daemon::{now, Reconciler};
use super::drift::{detect, Drift};
use crate::dcs::Dcs;
use crate::gitops::validate::load_and_validate;
use serde_json::{json, Value};
use std::time::Instant;

/// Whether a drift concerns a secret-bearing setting (by its last key segment or its value).
pub(super) fn is_secret_drift(d: &Drift) -> bool {
    let name = d.key.rsplit('.').next().unwrap_or(&d.key);
    let text = |v: &Value| v.as_str().map_or_else(|| v.to_string(), str::to_string);
    crate::secrets::is_secret_setting(name, &text(&d.live))
        || crate::secrets::is_secret_setting(name, &text(&d.git))
}

/// Member tag drift ([`super::drift::tag_drift`]) to report now: a tag a member publishes
/// differently is reported once it has lasted two `loop_wait`s plus 5 s (agents pick the
/// `gitops` key up within `loop_wait`), one the `gitops` key records differently at once.
fn member_tag_drift(
    cs: &mut super::daemon::ClusterState,
    c: &crate::gitops::desired::DesiredCluster,
    members: &[crate::dcs::MemberEntry],
    gitops: Option<&crate::dcs::Versioned<Value>>,
    live_cfg: &Value,
    ignore: &[String],
) -> Vec<Drift> {
    use super::drift::{tag_drift, TagSource};
    let published = members
        .iter()
        .map(|m| (m.name.clone(), m.data.tags.clone()))
        .collect();
    let recorded = gitops.and_then(|g| g.value.get("tags"));
    let loop_wait = live_cfg
        .get("loop_wait")
        .and_then(crate::config::dynamic::parse_u64)
        .unwrap_or(10);
    let grace = std::time::Duration::from_secs(2 * loop_wait + 5);
    let found = tag_drift(&c.tags, recorded, &published, ignore);
    cs.tag_since.retain(|k, _| {
        found
            .iter()
            .any(|(d, s)| *s == TagSource::Published && &d.key == k)
    });
    let mut out = Vec::new();
    for (d, source) in found {
        let since = *cs
            .tag_since
            .entry(d.key.clone())
            .or_insert_with(Instant::now);
        if source == TagSource::Recorded || since.elapsed() >= grace {
            out.push(d);
        }
    }
    out
}

/// ALTER SYSTEM on a member bypasses the DCS: always reported (alert).
fn alter_system_drift(members: &[crate::dcs::MemberEntry], ignore: &[String]) -> Vec<Drift> {
    let mut drifts = Vec::new();
    for m in members {
        let overrides = m
            .data
            .extra
            .get("patronus_alter_system")
            .and_then(Value::as_object);
        for (param, value) in overrides.into_iter().flatten() {
            if !ignore
                .iter()
                .any(|g| super::drift::glob(g, &format!("postgresql.parameters.{param}")))
            {
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

/// Every cluster is checked for drift at least this often, changed or not.
const FULL_DRIFT_EVERY: std::time::Duration = std::time::Duration::from_secs(10);

impl Reconciler {
    /// Linearizable reads (the watch cache may not have seen our own apply yet), `concurrency`
    /// at a time, of the clusters to check for drift: those whose DCS keys changed since their
    /// last check, those with a member tag drift in its grace period, and every cluster after
    /// a new commit or `FULL_DRIFT_EVERY`. An idle fleet costs no etcd round trip per pass.
    async fn drift_reads(
        &mut self,
        state: &crate::gitops::desired::DesiredState,
        sha: &str,
    ) -> Vec<(usize, Result<crate::dcs::Cluster, crate::dcs::DcsError>)> {
        let full = self.drift_full.0.elapsed() >= FULL_DRIFT_EVERY
            || self.drift_full.1.as_deref() != Some(sha);
        if full {
            self.drift_full = (Instant::now(), Some(sha.to_string()));
        }
        let mut targets = Vec::new();
        for (i, c) in state.clusters.iter().enumerate() {
            let Some(cs) = self.clusters.get_mut(&c.scope) else {
                continue;
            };
            let version = *cs.changes.borrow();
            if full || !cs.tag_since.is_empty() || cs.drift_seen != Some(version) {
                cs.drift_seen = Some(version);
                targets.push((i, cs.dcs.clone()));
            }
        }
        use futures::stream::{self, StreamExt};
        stream::iter(targets)
            .map(|(i, dcs)| async move { (i, dcs.fresh_cluster().await) })
            .buffer_unordered(self.opts.concurrency.max(1))
            .collect()
            .await
    }

    /// Compares live managed keys with git; alert (log + webhook), revert (write git's value back),
    /// adopt (commit the live value to a review branch).
    pub(super) async fn check_drift(&mut self) {
        let Some((state, commit)) = self.desired.clone() else {
            return;
        };
        let ignore = state.settings.ignore();
        let mut reverts: Vec<(String, String, Value)> = Vec::new();
        let mut found = Vec::new();
        for (i, live) in self.drift_reads(&state, &commit.sha).await {
            let c = &state.clusters[i];
            if !self.holds(&c.scope) {
                continue; // drift is recorded by the cluster's active reconciler
            }
            let Some(cs) = self.clusters.get_mut(&c.scope) else {
                continue;
            };
            let Ok(live) = live else {
                cs.drift_seen = None;
                continue;
            };
            let live_cfg = live.config.map(|v| v.value).unwrap_or(Value::Null);
            let mut drifts: Vec<Drift> = detect(&c.config, &live_cfg, &ignore, |k| {
                state.settings.drift_policy(k)
            });
            drifts.extend(member_tag_drift(
                cs,
                c,
                &live.members,
                live.gitops.as_ref(),
                &live_cfg,
                &ignore,
            ));
            drifts.extend(alter_system_drift(&live.members, &ignore));
            // Secret-bearing values (a conninfo with a password, ...) are never reported: a
            // drift event is logged, sent to webhooks and committed to the history.
            drifts.retain(|d| !is_secret_drift(d));
            found.push((c.scope.clone(), c.file.clone(), drifts));
        }
        for (scope, file, drifts) in found {
            for d in drifts {
                let revert = d.policy == "revert";
                let (key, git) = (d.key.clone(), d.git.clone());
                if self.record_drift(&scope, &file, d).is_some() && revert {
                    reverts.push((scope.clone(), key, git));
                }
            }
        }
        for (scope, key, git) in reverts {
            self.revert_key(&scope, &key, git).await;
        }
    }

    /// Records one drift (log, history event, last drift, adopt branch) unless the same live
    /// value of the key was reported already; returns the event for the webhooks.
    pub(super) fn record_drift(&mut self, scope: &str, file: &str, d: Drift) -> Option<Value> {
        let cs = self.clusters.get_mut(scope)?;
        if cs.reported.get(&d.key) == Some(&d.live) {
            return None;
        }
        cs.reported.insert(d.key.clone(), d.live.clone());
        tracing::warn!(
            "drift detected on cluster {scope}: {} is {} live but {} in git (policy {})",
            d.key,
            crate::secrets::redact_json(&d.live),
            crate::secrets::redact_json(&d.git),
            d.policy
        );
        let mut ev = crate::secrets::redact_json(&json!({"event": "drift", "at": now(),
            "cluster": scope, "key": d.key, "git": d.git, "live": d.live, "policy": d.policy}));
        if d.policy == "adopt" {
            let (state, commit) = self.desired.as_ref()?;
            let author = state
                .settings
                .raw
                .pointer("/commit_back/author")
                .and_then(Value::as_str)
                .unwrap_or("patronus <patronus@localhost>");
            match self
                .source
                .adopt(&commit.sha, file, scope, &d.key, &d.live, author)
            {
                Ok(branch) => {
                    tracing::info!(
                        "drift on {}: live value committed to branch {branch} for review",
                        d.key
                    );
                    ev["branch"] = json!(branch);
                    if self.source.remote.is_some() {
                        self.adopt_pushes.push(branch);
                    }
                }
                Err(e) => tracing::warn!("cannot create the adopt branch: {e}"),
            }
        }
        self.emit(scope, ev.clone());
        let cs = self.clusters.get_mut(scope)?;
        cs.last_drift = Some(ev.clone());
        super::board_detail::push_drift(&mut cs.drift_log, ev.clone());
        *self.drift_counts.entry(scope.to_string()).or_default() += 1;
        Some(ev)
    }

    /// Refreshes the document served by `GET /status`.
    pub(super) async fn publish_status(&mut self) {
        let mut clusters = serde_json::Map::new();
        for (scope, cs) in &self.clusters {
            let Ok(live) = cs.dcs.cluster().await else {
                continue;
            };
            let pending: Vec<&str> = live
                .members
                .iter()
                .filter(|m| m.data.pending_restart == Some(true))
                .map(|m| m.name.as_str())
                .collect();
            let mut ops = serde_json::Map::new();
            for rec in live
                .gitops
                .as_ref()
                .and_then(|g| g.value.get("ops"))
                .and_then(Value::as_object)
                .into_iter()
                .flatten()
                .map(|(_, r)| r)
            {
                let st = rec
                    .get("state")
                    .and_then(Value::as_str)
                    .unwrap_or("unknown")
                    .to_string();
                let n = ops.get(&st).and_then(Value::as_u64).unwrap_or(0) + 1;
                ops.insert(st, json!(n));
            }
            let owed = self
                .op_notes
                .get(&format!("{scope}/restart-waves"))
                .is_some_and(|m| m.contains("parked"));
            let desired = self
                .desired
                .as_ref()
                .and_then(|(st, _)| st.clusters.iter().find(|c| &c.scope == scope));
            let detail = super::board_detail::cluster_detail(
                scope,
                &live,
                desired,
                &cs.drift_log,
                &self.op_notes,
            );
            let mut entry = json!({
                    "leader": live.leader_name(),
                    "applied": live.gitops.as_ref().and_then(|g| g.value.get("applied")),
                    "drift_events": self.drift_counts.get(scope).copied().unwrap_or(0),
                    "last_drift": cs.last_drift,
                    "pending_restarts": pending.len(),
                    "pending_restart_members": pending,
                    "owed_restarts": u8::from(owed),
                    "operations": ops,
                    "operation_records": live.gitops.as_ref().and_then(|g| g.value.get("ops")),
                    "active_reconciler": live.gitops_lock,
                    "active_here": self.holds(scope),
            });
            if let Some(e) = entry.as_object_mut() {
                e.extend(detail);
            }
            clusters.insert(scope.clone(), entry);
        }
        let doc = json!({
            "last_pass": now(),
            "last_pass_unix": chrono::Utc::now().timestamp(),
            "desired_commit": self.desired.as_ref().map(|(_, c)| c),
            "last_error": self.last_error,
            "reconciler_id": self.opts.id,
            "clusters": clusters,
        });
        if let Ok(mut d) = self.board.doc.write() {
            *d = crate::secrets::redact_json(&doc);
        }
    }

    /// Picks up a new desired commit: validate, plan, apply.
    pub(super) async fn follow_repo(&mut self) {
        if let Some(flag) = &self.refs_changed {
            // inotify says when a ref moved; HEAD is still read every fallback_poll(), and at
            // every pass while a commit waits to be retried.
            let changed = flag.swap(false, std::sync::atomic::Ordering::SeqCst);
            let due = self.last_head_read.elapsed() >= self.repo_poll;
            if !changed && !due && self.seen.is_some() {
                return;
            }
            self.last_head_read = Instant::now();
        }
        let Some(head) = self.source.desired_head() else {
            return;
        };
        if self.seen.as_deref() == Some(head.sha.as_str()) {
            return;
        }
        if !self.apply_retry.ready(Instant::now()) {
            // The last attempt could not reach the DCS: wait out the backoff.
            return;
        }
        self.seen = Some(head.sha.clone());
        let started = Instant::now();
        let sha = head.sha.clone();
        let loaded = super::source::blocking(&self.source, move |src| {
            let dir = src.materialize(&sha)?;
            load_and_validate(dir).map_err(|p| {
                p.iter()
                    .map(|x| x.to_string())
                    .collect::<Vec<_>>()
                    .join("; ")
            })
        })
        .await
        .and_then(|r| r);
        match loaded {
            Ok(state) => {
                tracing::info!(
                    "desired commit {} by {}: valid, reconciling",
                    &head.sha[..12],
                    head.author
                );
                self.last_error = None;
                let short = head.sha[..12].to_string();
                self.desired = Some((state, head));
                self.apply_all().await;
                if self.seen.is_none() {
                    let wait = self.apply_retry.failed(Instant::now());
                    tracing::warn!(
                        "commit {short} not fully applied; retrying in {:.1} s",
                        wait.as_secs_f64()
                    );
                } else {
                    self.apply_retry.succeeded();
                    tracing::info!("commit applied in {} ms", started.elapsed().as_millis());
                }
            }
            Err(e) => {
                let e = crate::secrets::redact(&e);
                tracing::error!(
                    "desired commit {} is invalid, keeping the last good state: {e}",
                    &head.sha[..12]
                );
                self.notify(json!({"event": "invalid_commit", "commit": head.sha, "author": head.author, "error": e})).await;
                self.last_error = Some(format!("commit {}: {e}", head.sha));
            }
        }
    }
    /// Writes git's value of one drifted key back (CAS on the config version), leaving every
    /// other live key — including drift under the `alert` policy — as it is.
    async fn revert_key(&mut self, scope: &str, key: &str, git: Value) {
        let Some(cs) = self.clusters.get_mut(scope) else {
            return;
        };
        for _ in 0..5 {
            let Ok(live) = cs.dcs.fresh_cluster().await else {
                return;
            };
            let Some(cfg) = live.config else { return };
            let mut v = cfg.value.clone();
            if crate::config::set_path(&mut v, key, git.clone()).is_err() {
                return;
            }
            if cs
                .dcs
                .write_config(&v, Some(cfg.version))
                .await
                .unwrap_or(false)
            {
                tracing::info!(
                    "drift on cluster {scope}: {key} reverted to git's value {}",
                    crate::secrets::redact_json(&git)
                );
                cs.reported.remove(key);
                let ev = json!({"event": "drift_reverted", "at": now(), "key": key, "value": git});
                self.emit(scope, crate::secrets::redact_json(&ev));
                return;
            }
        }
    }
}
