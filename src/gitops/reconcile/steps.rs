//! Declared operations: carrying out the controller's operation steps and notes
//! ([`super::controller`]); the request runs in a background task.

use super::controller::Note;
use super::daemon::{now, Reconciler};
use super::ops::{claim, finish, recorded};
use crate::dcs::etcd::EtcdDcs;
use crate::dcs::{Cluster, Dcs};
use crate::gitops::desired::{DesiredCluster, Operation};
use chrono::{DateTime, Utc};
use serde_json::{json, Value};
use std::sync::Arc;

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

    /// Logs (once per distinct message) what the controller noted about an operation.
    pub(super) fn op_note(&mut self, scope: &str, note: Note, now_t: DateTime<Utc>) {
        match note {
            Note::OpsUnreadable(e) => {
                let msg = format!(
                    "cluster {scope}: {e}; declared operations wait until it is repaired (or \
                     the field deleted)"
                );
                let key = format!("{scope}/(gitops key)");
                if self.op_notes.get(&key) != Some(&msg) {
                    tracing::warn!("{msg}");
                    self.op_notes.insert(key, msg);
                }
            }
            Note::OpWaiting { id, why } => {
                let key = format!("{scope}/{id}");
                self.first_blocked.remove(&key);
                self.note(
                    &key,
                    format!("cluster {scope}: operation {id} waits: {why}"),
                );
            }
            Note::OpBlocked { id, why } => {
                let key = format!("{scope}/{id}");
                self.first_blocked.entry(key.clone()).or_insert(now_t);
                let msg = format!("cluster {scope}: operation {id} blocked: {why}; retrying");
                if self.note(&key, msg) {
                    self.push_event(
                        scope,
                        json!({"event": "operation_blocked", "at": now(), "id": id, "reason": why}),
                    );
                }
            }
            Note::OpReclaimWait(id) => {
                let msg = format!(
                    "cluster {scope}: operation {id} was claimed by a reconciler that stopped; \
                     checking what happened before recording it"
                );
                self.note(&format!("{scope}/{id}"), msg);
            }
            Note::WaveIdle | Note::WaveParked(_) => {}
        }
    }

    /// Claims operation `id` (`running`, with the leader at claim time: a reclaiming
    /// reconciler tells from it whether a switchover happened) and starts its request.
    pub(super) async fn claim_op(
        &mut self,
        c: &DesiredCluster,
        dcs: Arc<EtcdDcs>,
        live: &Cluster,
        id: &str,
    ) {
        let (Some(op), Some((_, commit))) = (find(c, id), self.desired.as_ref()) else {
            return;
        };
        let key = format!("{}/{id}", c.scope);
        self.first_blocked.remove(&key);
        let running = json!({"state": "running", "at": now(), "commit": commit.sha, "author": commit.author,
            "leader": live.leader_name()});
        if !claim(dcs.as_ref() as &dyn Dcs, live, id, running)
            .await
            .unwrap_or(false)
        {
            return; // the key moved: decided again on the next read
        }
        tracing::info!("cluster {}: running operation {id} ({})", c.scope, op.kind);
        let (exec, live2, op2) = (self.exec.clone(), live.clone(), op.clone());
        let task = tokio::spawn(async move { execute_op(&exec, &dcs, &live2, &op2).await });
        self.op_tasks.insert(key, task);
    }

    /// Records operation `id` expired (its preconditions kept failing past its deadline).
    pub(super) async fn expire_op(
        &mut self,
        c: &DesiredCluster,
        dcs: &EtcdDcs,
        live: &Cluster,
        id: &str,
        why: String,
    ) {
        let (Some(op), Some((_, commit))) = (find(c, id), self.desired.as_ref()) else {
            return;
        };
        let rec = json!({"state": "expired", "at": now(), "outcome": why, "commit": commit.sha, "author": commit.author});
        if claim(dcs, live, id, rec.clone()).await.unwrap_or(false) {
            self.record(&c.scope, id, &op.kind, rec);
        }
    }

    /// Records the final state of a claimed operation: the outcome of its request task, or
    /// (reclaimed) what the DCS shows; it is never run again.
    pub(super) async fn finish_op(
        &mut self,
        c: &DesiredCluster,
        dcs: &EtcdDcs,
        live: &Cluster,
        id: &str,
        st: &str,
        outcome: String,
    ) {
        let Some(op) = find(c, id) else {
            return;
        };
        let running = recorded(live.gitops.as_ref().map(|g| &g.value), id)
            .ok()
            .flatten()
            .unwrap_or_default();
        tracing::info!("cluster {}: operation {id} {st}: {outcome}", c.scope);
        let rec = json!({"state": st, "at": now(), "outcome": outcome, "commit": running.get("commit"),
            "author": running.get("author"), "reason": op.spec.get("reason")});
        if finish(dcs, id, rec.clone()).await.is_err() {
            return; // the outcome is kept: recorded on a later pass
        }
        self.op_outcomes.remove(&format!("{}/{id}", c.scope));
        self.record(&c.scope, id, &op.kind, rec);
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
}

/// The declared operation `id` of cluster `c`.
fn find<'a>(c: &'a DesiredCluster, id: &str) -> Option<&'a Operation> {
    c.ops.iter().find(|o| o.id == id)
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
