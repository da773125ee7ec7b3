//! Declared operations, run from the reconcile loop (serialised per cluster).

use super::daemon::{now, Reconciler};
use super::op_reclaim::{reclaim, Reclaim};
use super::ops::{claim, finish, op_records, readiness, recorded, Readiness, EXPIRY_SECS};
use crate::dcs::Dcs;
use serde_json::{json, Value};

impl Reconciler {
    /// Logs (and records) a note about an operation once per distinct message.
    fn note(&mut self, key: &str, msg: String) -> bool {
        if self.op_notes.get(key) == Some(&msg) {
            return false;
        }
        tracing::info!("{msg}");
        self.op_notes.insert(key.to_string(), msg);
        true
    }

    /// True when the operation records of the `gitops` key can be read; otherwise warns
    /// (once per distinct problem): nobody can tell which operations already ran.
    fn records_readable(&mut self, scope: &str, gitops: Option<&Value>) -> bool {
        let Err(e) = op_records(gitops) else {
            return true;
        };
        let msg = format!(
            "cluster {scope}: {e}; declared operations wait until it is repaired (or the \
             field deleted)"
        );
        let note = format!("{scope}/(gitops key)");
        if self.op_notes.get(&note) != Some(&msg) {
            tracing::warn!("{msg}");
            self.op_notes.insert(note, msg);
        }
        false
    }

    /// Runs due operations exactly once each.
    pub(super) async fn run_ops(&mut self) {
        let Some((state, commit)) = self.desired.clone() else {
            return;
        };
        for c in state.clusters.iter().filter(|c| !c.ops.is_empty()) {
            let Some(dcs) = self.active_dcs(&c.scope) else {
                continue;
            };
            let Ok(live) = dcs.fresh_cluster().await else {
                continue;
            };
            let records = live.gitops.as_ref().map(|g| &g.value);
            if !self.records_readable(&c.scope, records) {
                continue;
            }
            for op in &c.ops {
                let key = format!("{}/{}", c.scope, op.id);
                match recorded(records, &op.id).ok().flatten() {
                    Some(rec) if rec.get("state").and_then(Value::as_str) == Some("running") => {
                        self.follow_running(&c.scope, &dcs, &live, op, &rec).await;
                        continue;
                    }
                    Some(_) => continue,
                    None => {}
                }
                let now_t = chrono::Utc::now();
                match readiness(op, &live, now_t) {
                    Readiness::Waiting(why) => {
                        self.first_blocked.remove(&key);
                        self.note(
                            &key,
                            format!("cluster {}: operation {} waits: {why}", c.scope, op.id),
                        );
                    }
                    Readiness::Blocked(why) => {
                        let first = *self.first_blocked.entry(key.clone()).or_insert(now_t);
                        if (now_t - first).num_seconds() > EXPIRY_SECS {
                            let rec = json!({"state": "expired", "at": now(), "outcome": why, "commit": commit.sha, "author": commit.author});
                            if claim(dcs.as_ref() as &dyn Dcs, &live, &op.id, rec.clone())
                                .await
                                .unwrap_or(false)
                            {
                                self.record(&c.scope, &op.id, &op.kind, rec);
                            }
                        } else if self.note(
                            &key,
                            format!(
                                "cluster {}: operation {} blocked: {why}; retrying",
                                c.scope, op.id
                            ),
                        ) {
                            self.push_event(&c.scope, json!({"event": "operation_blocked", "at": now(), "id": op.id, "reason": why}));
                        }
                    }
                    Readiness::Ready => {
                        self.first_blocked.remove(&key);
                        // The leader at claim time tells a reclaiming reconciler whether a
                        // switchover happened.
                        let running = json!({"state": "running", "at": now(), "commit": commit.sha, "author": commit.author,
                            "leader": live.leader_name()});
                        if !claim(dcs.as_ref() as &dyn Dcs, &live, &op.id, running)
                            .await
                            .unwrap_or(false)
                        {
                            continue;
                        }
                        tracing::info!(
                            "cluster {}: running operation {} ({})",
                            c.scope,
                            op.id,
                            op.kind
                        );
                        let (exec, dcs2, live2, op2) =
                            (self.exec.clone(), dcs.clone(), live.clone(), op.clone());
                        let task =
                            tokio::spawn(
                                async move { execute_op(&exec, &dcs2, &live2, &op2).await },
                            );
                        self.op_tasks.insert(key, task);
                    }
                }
            }
        }
    }

    fn push_event(&mut self, scope: &str, ev: Value) {
        self.emit(scope, ev);
    }

    fn record(&mut self, scope: &str, id: &str, kind: &str, rec: Value) {
        let mut ev = json!({"event": "operation", "id": id, "type": kind});
        if let (Some(e), Some(r)) = (ev.as_object_mut(), rec.as_object()) {
            e.extend(r.clone());
        }
        self.push_event(scope, ev);
    }

    /// A claimed operation: collect the outcome of its request task, or (no task in this
    /// process: a crash or restart came between claim and outcome) reclaim the record from what
    /// the DCS shows, never running it again.
    async fn follow_running(
        &mut self,
        scope: &str,
        dcs: &std::sync::Arc<crate::dcs::etcd::EtcdDcs>,
        live: &crate::dcs::Cluster,
        op: &crate::gitops::desired::Operation,
        running: &Value,
    ) {
        let key = format!("{scope}/{}", op.id);
        let (st, outcome) = match self.op_tasks.get(&key) {
            Some(t) if !t.is_finished() => return,
            Some(_) => {
                let Some(task) = self.op_tasks.remove(&key) else {
                    return;
                };
                match task.await {
                    Ok(Ok(m)) => ("done", m),
                    Ok(Err(m)) => ("failed", m),
                    Err(e) => ("failed", format!("request task failed: {e}")),
                }
            }
            None => match reclaim(&op.kind, running, live, chrono::Utc::now()) {
                Reclaim::Wait => {
                    self.note(
                        &key,
                        format!(
                            "cluster {scope}: operation {} was claimed by a reconciler that                              stopped; checking what happened before recording it",
                            op.id
                        ),
                    );
                    return;
                }
                Reclaim::Finish { state, outcome } => (state, format!("reclaimed: {outcome}")),
            },
        };
        tracing::info!("cluster {scope}: operation {} {st}: {outcome}", op.id);
        let rec = json!({"state": st, "at": now(), "outcome": outcome, "commit": running.get("commit"),
            "author": running.get("author"), "reason": op.spec.get("reason")});
        let _ = finish(dcs.as_ref() as &dyn Dcs, &op.id, rec.clone()).await;
        self.record(scope, &op.id, &op.kind, rec);
    }
}

/// Carries out an operation through the members' REST APIs (in a background task).
async fn execute_op(
    exec: &super::exec::Exec,
    dcs: &std::sync::Arc<crate::dcs::etcd::EtcdDcs>,
    live: &crate::dcs::Cluster,
    op: &crate::gitops::desired::Operation,
) -> Result<String, String> {
    match op.kind.as_str() {
        "switchover" => {
            let cand = super::ops::choose_candidate(op, live);
            exec.switchover(live, cand.as_deref()).await
        }
        "restart" => {
            let pending_only = op
                .spec
                .get("pending_only")
                .and_then(Value::as_bool)
                .unwrap_or(false);
            let names: Vec<String> = op
                .spec
                .get("members")
                .and_then(Value::as_array)
                .map_or_else(
                    || {
                        let role = op.spec.get("role").and_then(Value::as_str).unwrap_or("any");
                        live.members
                            .iter()
                            .filter(|m| match role {
                                "primary" => live.leader_name() == Some(m.name.as_str()),
                                "replica" => live.leader_name() != Some(m.name.as_str()),
                                _ => true,
                            })
                            .filter(|m| !pending_only || m.data.pending_restart == Some(true))
                            .map(|m| m.name.clone())
                            .collect()
                    },
                    |a| {
                        a.iter()
                            .filter_map(Value::as_str)
                            .map(str::to_string)
                            .collect()
                    },
                );
            let mut done = Vec::new();
            for n in names {
                let now_cluster = dcs.fresh_cluster().await.map_err(|e| e.to_string())?;
                done.push(
                    exec.restart_member(dcs.as_ref() as &dyn Dcs, &now_cluster, &n, pending_only)
                        .await?,
                );
            }
            Ok(if done.is_empty() {
                "nothing to restart".into()
            } else {
                done.join(", ")
            })
        }
        other => Err(format!("unknown operation type {other}")),
    }
}
