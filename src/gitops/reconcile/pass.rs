//! One reconcile pass: follow the repository, apply, check drift (alert / revert / adopt),
//! and publish the status document.

use super::daemon::{now, Reconciler};
use super::drift::{detect, Drift};
use crate::dcs::Dcs;
use crate::gitops::apply;
use crate::gitops::guc::GucCatalog;
use crate::gitops::observed::ObservedCluster;
use crate::gitops::plan::plan_cluster;
use crate::gitops::validate::load_and_validate;
use serde_json::{json, Value};
use std::time::Instant;

/// Whether a drift concerns a secret-bearing setting (by its last key segment or its value).
fn is_secret_drift(d: &Drift) -> bool {
    let name = d.key.rsplit('.').next().unwrap_or(&d.key);
    let text = |v: &Value| v.as_str().map_or_else(|| v.to_string(), str::to_string);
    crate::secrets::is_secret_setting(name, &text(&d.live))
        || crate::secrets::is_secret_setting(name, &text(&d.git))
}

impl Reconciler {
    /// Compares live managed keys with git; alert (log + webhook), revert (write git's value back),
    /// adopt (commit the live value to a review branch).
    pub(super) async fn check_drift(&mut self) {
        let Some((state, _)) = self.desired.clone() else {
            return;
        };
        let ignore = state.settings.ignore();
        let mut reverts: Vec<(String, String, Value)> = Vec::new();
        let mut to_notify = Vec::new();
        for c in &state.clusters {
            let Some(cs) = self.clusters.get_mut(&c.scope) else {
                continue;
            };
            // A linearizable read: the watch cache may not have seen our own apply yet.
            let Ok(live) = cs.dcs.fresh_cluster().await else {
                continue;
            };
            let live_cfg = live.config.map(|v| v.value).unwrap_or(Value::Null);
            let mut drifts: Vec<Drift> = detect(&c.config, &live_cfg, &ignore, |k| {
                state.settings.drift_policy(k)
            });
            // ALTER SYSTEM on a member bypasses the DCS: always reported (alert).
            for m in &live.members {
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
                        let key = format!("members.{}.alter_system.{param}", m.name);
                        drifts.push(Drift {
                            key,
                            git: Value::Null,
                            live: value.clone(),
                            policy: "alert".into(),
                        });
                    }
                }
            }
            // Secret-bearing values (a conninfo with a password, ...) are never reported: a
            // drift event is logged, sent to webhooks and committed to the history.
            drifts.retain(|d| !is_secret_drift(d));
            for d in drifts {
                if cs.reported.get(&d.key) == Some(&d.live) {
                    continue;
                }
                cs.reported.insert(d.key.clone(), d.live.clone());
                tracing::warn!(
                    "drift detected on cluster {}: {} is {} live but {} in git (policy {})",
                    c.scope,
                    d.key,
                    crate::secrets::redact_json(&d.live),
                    crate::secrets::redact_json(&d.git),
                    d.policy
                );
                let ev = crate::secrets::redact_json(&json!({"event": "drift", "at": now(),
                    "cluster": c.scope, "key": d.key, "git": d.git, "live": d.live,
                    "policy": d.policy}));
                let mut ev = ev;
                if d.policy == "adopt" {
                    let author = state
                        .settings
                        .raw
                        .pointer("/commit_back/author")
                        .and_then(Value::as_str)
                        .unwrap_or("patronus <patronus@localhost>");
                    let sha = self
                        .desired
                        .as_ref()
                        .map(|(_, c)| c.sha.clone())
                        .unwrap_or_default();
                    match self
                        .source
                        .adopt(&sha, &c.file, &c.scope, &d.key, &d.live, author)
                    {
                        Ok(branch) => {
                            tracing::info!(
                                "drift on {}: live value committed to branch {branch} for review",
                                d.key
                            );
                            ev["branch"] = json!(branch);
                        }
                        Err(e) => tracing::warn!("cannot create the adopt branch: {e}"),
                    }
                }
                cs.events.push(ev.clone());
                cs.last_drift = Some(ev.clone());
                super::board_detail::push_drift(&mut cs.drift_log, ev.clone());
                *self.drift_counts.entry(c.scope.clone()).or_default() += 1;
                to_notify.push(ev);
                if d.policy == "revert" {
                    reverts.push((c.scope.clone(), d.key.clone(), d.git.clone()));
                }
            }
        }
        for ev in to_notify {
            self.notify(ev).await;
        }
        for (scope, key, git) in reverts {
            self.revert_key(&scope, &key, git).await;
        }
    }

    /// Plans and applies every cluster of the current desired state.
    pub(super) async fn apply_all(&mut self, why: &str) {
        let Some((state, commit)) = self.desired.clone() else {
            return;
        };
        for c in &state.clusters {
            if let Err(e) = self.connect(&state, &c.scope).await {
                tracing::error!("cluster {}: DCS unavailable: {e}; retrying", c.scope);
                self.seen = None;
                continue;
            }
            let Some(cs) = self.clusters.get_mut(&c.scope) else {
                continue;
            };
            let live = match cs.dcs.fresh_cluster().await {
                Ok(l) => l,
                Err(e) => {
                    self.seen = None;
                    tracing::error!("cluster {}: cannot read the DCS: {e}", c.scope);
                    continue;
                }
            };
            let obs = ObservedCluster::from_cluster(&c.scope, &live);
            if !obs.exists {
                tracing::warn!(
                    "cluster {} does not exist in the DCS yet; will retry",
                    c.scope
                );
                self.seen = None;
                continue;
            }
            let applied_commit = obs
                .gitops
                .as_ref()
                .and_then(|g| g.pointer("/applied/commit"))
                .and_then(Value::as_str);
            if applied_commit == Some(commit.sha.as_str()) && why == "commit" {
                // Applied already (by us before a restart, or before a retry for another
                // cluster): re-applying would silently revert drift kept under `alert`.
                continue;
            }
            let plan = plan_cluster(c, &obs, GucCatalog::postgresql15());
            match apply::apply_plan(
                cs.dcs.as_ref() as &dyn Dcs,
                &plan,
                obs.gitops.as_ref(),
                Some(&commit),
            )
            .await
            {
                Ok(true) => {
                    let params: Vec<String> = plan.params.iter().map(|p| p.name.clone()).collect();
                    tracing::info!(
                        "cluster {}: applied commit {} ({why}); parameters changed: {params:?}",
                        c.scope,
                        &commit.sha[..12]
                    );
                    cs.events.push(json!({"event": "applied", "at": now(), "commit": commit.sha, "author": commit.author,
                        "summary": commit.summary, "reason": why, "parameters": params}));
                    cs.reported.clear();
                }
                Ok(false) => {}
                Err(e) => {
                    tracing::warn!("cluster {}: {e}; retrying", c.scope);
                    self.seen = None;
                }
            }
        }
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
            "clusters": clusters,
        });
        if let Ok(mut d) = self.board.doc.write() {
            *d = crate::secrets::redact_json(&doc);
        }
    }

    /// Picks up a new desired commit: validate, plan, apply.
    pub(super) async fn follow_repo(&mut self) {
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
        let loaded = match self.source.materialize(&head.sha) {
            Ok(dir) => load_and_validate(dir).map_err(|p| {
                p.iter()
                    .map(|x| x.to_string())
                    .collect::<Vec<_>>()
                    .join("; ")
            }),
            Err(e) => Err(e),
        };
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
                self.apply_all("commit").await;
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
                cs.events.push(
                    json!({"event": "drift_reverted", "at": now(), "key": key, "value": git}),
                );
                cs.reported.remove(key);
                return;
            }
        }
    }
}
