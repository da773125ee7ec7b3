//! One reconcile pass: follow the repository, apply, check drift (alert / revert / adopt),
//! and publish the status document.

use super::daemon::{now, Reconciler};
use super::drift::Drift;
use crate::dcs::Dcs;
use crate::gitops::validate::load_and_validate;
use serde_json::{json, Value};
use std::time::Instant;

/// Member tag drift ([`super::drift::tag_drift`]) to report now: a tag a member publishes
/// differently is reported once it has lasted two `loop_wait`s plus 5 s (agents pick the
/// `gitops` key up within `loop_wait`), one the `gitops` key records differently at once.
pub(super) fn member_tag_drift(
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

impl Reconciler {
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

    /// Refreshes the document served by `GET /status`: a cluster's entry is rebuilt (from the
    /// watch cache) only when its fingerprint moved; an idle fleet only touches `last_pass`.
    pub(super) async fn publish_status(&mut self) {
        let scopes: Vec<String> = self.clusters.keys().cloned().collect();
        let before = self.board_cache.len();
        self.board_cache.retain(|s, _| scopes.contains(s));
        let mut changed = self.board_cache.len() != before;
        for scope in &scopes {
            let stamp = self.entry_stamp(scope);
            if self
                .board_cache
                .get(scope)
                .is_some_and(|(s, _)| *s == stamp)
            {
                continue;
            }
            let Some(entry) = self.cluster_entry(scope).await else {
                continue;
            };
            self.board_cache.insert(scope.clone(), (stamp, entry));
            changed = true;
        }
        let top = (self.desired.as_ref().map(|(_, c)| &c.sha), &self.last_error);
        let top_stamp = fingerprint(&top);
        changed |= std::mem::replace(&mut self.board_stamp, top_stamp) != top_stamp;
        let Ok(mut d) = self.board.doc.write() else {
            return;
        };
        if changed || !d.is_object() {
            let clusters: serde_json::Map<String, Value> = self
                .board_cache
                .iter()
                .map(|(s, (_, e))| (s.clone(), e.clone()))
                .collect();
            *d = crate::secrets::redact_json(&json!({
                "desired_commit": self.desired.as_ref().map(|(_, c)| c),
                "last_error": self.last_error,
                "reconciler_id": self.opts.id,
                "clusters": clusters,
            }));
        }
        d["last_pass"] = json!(now());
        d["last_pass_unix"] = json!(chrono::Utc::now().timestamp());
        let reads = super::cluster_pass::OBSERVATIONS.load(std::sync::atomic::Ordering::Relaxed);
        d["cluster_reads"] = json!(reads);
    }

    /// What a cluster's status entry is built from, hashed: its watch counter, whether this
    /// reconciler holds it, its drift records and notes, and the desired commit.
    fn entry_stamp(&self, scope: &str) -> u64 {
        let Some(cs) = self.clusters.get(scope) else {
            return 0;
        };
        let prefix = format!("{scope}/");
        let notes: Vec<(&String, &String)> = self
            .op_notes
            .range(prefix.clone()..)
            .take_while(|(k, _)| k.starts_with(&prefix))
            .collect();
        fingerprint(&(
            *cs.changes.borrow(),
            self.holds(scope),
            cs.drift_log.len(),
            // Counts every recorded drift (`last_drift` and a full `drift_log` move with it).
            self.drift_counts.get(scope),
            self.desired.as_ref().map(|(_, c)| &c.sha),
            notes,
        ))
    }

    /// The `GET /status` entry of one cluster, from the watch cache (no etcd round trip).
    async fn cluster_entry(&self, scope: &str) -> Option<Value> {
        let cs = self.clusters.get(scope)?;
        let live = cs.dcs.cluster().await.ok()?;
        let pending: Vec<&str> = live
            .members
            .iter()
            .filter(|m| m.data.pending_restart == Some(true))
            .map(|m| m.name.as_str())
            .collect();
        let records = live.gitops.as_ref().and_then(|g| g.value.get("ops"));
        let mut ops = serde_json::Map::new();
        for rec in records.and_then(Value::as_object).into_iter().flatten() {
            let st = rec
                .1
                .get("state")
                .and_then(Value::as_str)
                .unwrap_or("unknown");
            let n = ops.get(st).and_then(Value::as_u64).unwrap_or(0) + 1;
            ops.insert(st.to_string(), json!(n));
        }
        let owed = self.parked.contains(scope);
        let desired = self
            .desired
            .as_ref()
            .and_then(|(st, _)| st.clusters.iter().find(|c| c.scope == scope));
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
            "operation_records": records,
            "active_reconciler": live.gitops_lock,
            "active_here": self.holds(scope),
        });
        if let Some(e) = entry.as_object_mut() {
            e.extend(detail);
        }
        Some(entry)
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
                    "desired commit {} by {}: valid, reconciling (loaded and validated in {} ms)",
                    &head.sha[..12],
                    head.author,
                    started.elapsed().as_millis()
                );
                self.last_error = None;
                self.desired = Some((state, head));
                self.mark_due().await;
                self.following = Some(started);
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
    /// Writes git's value of drifted `revert` keys back in one compare-and-swap on the
    /// config revision observed, leaving every other live key — including drift under the
    /// `alert` policy — as it is. A moved revision: decided again on the next read.
    pub(super) async fn revert_keys(
        &mut self,
        scope: &str,
        dcs: &crate::dcs::etcd::EtcdDcs,
        live: &crate::dcs::Cluster,
        keys: Vec<(String, Value)>,
    ) {
        let Some(cfg) = live.config.as_ref() else {
            return;
        };
        let mut v = cfg.value.clone();
        if keys
            .iter()
            .any(|(k, git)| crate::config::set_path(&mut v, k, git.clone()).is_err())
        {
            return;
        }
        if !dcs
            .write_config(&v, Some(cfg.version))
            .await
            .unwrap_or(false)
        {
            return;
        }
        for (key, git) in keys {
            tracing::info!(
                "drift on cluster {scope}: {key} reverted to git's value {}",
                crate::secrets::redact_json(&git)
            );
            if let Some(cs) = self.clusters.get_mut(scope) {
                cs.reported.remove(&key);
            }
            let ev = json!({"event": "drift_reverted", "at": now(), "key": key, "value": git});
            self.emit(scope, crate::secrets::redact_json(&ev));
        }
    }

    /// A new desired commit was followed: connects to every cluster it names (its DCS may
    /// have moved) and marks each one due, decided in the pass that follows.
    async fn mark_due(&mut self) {
        let Some((state, _)) = self.desired.clone() else {
            return;
        };
        // A cluster the new commit no longer names has nothing due.
        for cs in self.clusters.values_mut() {
            cs.commit_due = false;
        }
        for c in &state.clusters {
            if let Err(e) = self.connect(&state, &c.scope).await {
                tracing::error!("cluster {}: DCS unavailable: {e}; retrying", c.scope);
                self.seen = None;
                continue;
            }
            if let Some(cs) = self.clusters.get_mut(&c.scope) {
                cs.commit_due = true;
            }
        }
    }

    /// After the pass that applied a followed commit: the log line, or the backoff when a
    /// cluster could not be applied.
    pub(super) fn after_commit_pass(&mut self) {
        let Some(started) = self.following else {
            return;
        };
        if self
            .clusters
            .iter()
            .any(|(s, cs)| cs.commit_due && self.holds(s))
        {
            return; // a cluster still to decide (a stale plan is decided again next pass)
        }
        self.following = None;
        if self.seen.is_none() {
            let wait = self.apply_retry.failed(Instant::now());
            tracing::warn!(
                "commit not fully applied; retrying in {:.1} s",
                wait.as_secs_f64()
            );
        } else {
            self.apply_retry.succeeded();
            tracing::info!("commit applied in {} ms", started.elapsed().as_millis());
        }
    }
}

/// A hash of `v` (the fingerprint of a status entry's inputs).
fn fingerprint(v: &impl std::hash::Hash) -> u64 {
    use std::hash::{DefaultHasher, Hasher};
    let mut h = DefaultHasher::new();
    v.hash(&mut h);
    h.finish()
}
