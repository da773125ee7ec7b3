//! The end of a cycle: what the REST API serves ([`NodeStatus`]) and our member key.

use super::driver::{CycleContext, Driver, FENCE_PROBLEM_KEY};
use super::member::{build_member, effective_tags, published_role, published_state};
use super::shared::NodeStatus;
use crate::config::timing;
use crate::config::NodeConfig;
use serde_json::{Map, Value};

impl Driver {
    /// Updates the API status and our member key.
    pub(super) async fn publish(&mut self, ctx: &CycleContext, message: &str) {
        let node = self.sh.node();
        let st = self.node_status(ctx, &node, message).await;
        let mut member = build_member(&node, &st, ctx.dynamic.pause);
        if !st.alter_system.is_empty() {
            // Our extension (Patroni ignores it): ALTER SYSTEM bypasses the DCS configuration.
            member.extra.insert(
                "patronus_alter_system".into(),
                Value::Object(st.alter_system.clone()),
            );
        }
        if let Some(why) = &st.fence_problem {
            // Our extension: why this member does not lead (`list` shows it).
            member
                .extra
                .insert(FENCE_PROBLEM_KEY.into(), Value::String(why.clone()));
        }
        member.scheduled_restart = st.scheduled_restart.clone();
        if let Ok(mut s) = self.sh.status.write() {
            *s = st;
        }
        if ctx.cluster.is_some() {
            let budget = timing::duration(ctx.dynamic.retry_timeout.max(1));
            match tokio::time::timeout(budget, self.sh.dcs.touch_member(&node.name, &member)).await
            {
                Ok(Ok(())) => {}
                Ok(Err(e)) => tracing::warn!("failed to update member key: {e}"),
                Err(_) => tracing::warn!("failed to update member key in time"),
            }
        }
    }

    /// What this cycle learned, as the REST API serves it.
    async fn node_status(
        &self,
        ctx: &CycleContext,
        node: &NodeConfig,
        message: &str,
    ) -> NodeStatus {
        let rt = ctx.runtime.as_ref();
        let has_lock = ctx.obs.has_lock() || ctx.acquired_lock;
        let task = self.machine.task();
        let standby_cluster = ctx.dynamic.is_standby_cluster();
        let in_recovery = rt.is_some_and(|r| r.in_recovery);
        let now_ms = self.sh.clock.now_ms();
        NodeStatus {
            state: published_state(task, ctx.obs.pg.running).into(),
            role: published_role(&ctx.obs.pg.data, ctx.obs.pg.role, has_lock, standby_cluster)
                .into(),
            has_lock,
            lock_expires_ms: if has_lock {
                timing::ms_after(now_ms, ctx.dynamic.ttl)
            } else {
                0
            },
            replication_state: in_recovery.then(|| {
                if rt.and_then(|r| r.receiver_status.as_deref()) == Some("streaming") {
                    "streaming".to_string()
                } else {
                    "in archive recovery".to_string()
                }
            }),
            replayed: rt.filter(|r| r.in_recovery).and_then(|r| r.replay_lsn),
            received: rt.filter(|r| r.in_recovery).and_then(|r| r.receive_lsn),
            location: rt.filter(|r| !r.in_recovery).and_then(|r| r.flush_lsn),
            timeline: ctx.obs.pg.timeline,
            server_version: rt.map_or(0, |r| r.server_version),
            postmaster_start_time: rt.and_then(|r| r.postmaster_start_time.clone()),
            replay_timestamp: rt.and_then(|r| r.replay_timestamp.clone()),
            replay_paused: rt.is_some_and(|r| r.replay_paused),
            sysid: rt.and_then(|r| r.sysid.clone()),
            replication: if rt.is_some_and(|r| !r.in_recovery) {
                self.sh.sql.replication().await.unwrap_or_default()
            } else {
                vec![]
            },
            tags: effective_tags(&super::member::merged_tags(
                &node.tags,
                ctx.cluster.as_ref(),
                &node.name,
            )),
            pending_restart: !self.pending_now(rt).is_empty(),
            watchdog_failed: self.watchdog_failed,
            fence_problem: self.fence_problem.clone(),
            pending_restart_reason: self.pending_now(rt),
            cluster: ctx.cluster.clone(),
            dynamic: ctx.dynamic.clone(),
            dcs_last_seen: if ctx.cluster.is_some() {
                now_ms / 1000
            } else {
                self.sh.status().dcs_last_seen
            },
            next_cycle_ms: timing::ms_after(now_ms, ctx.dynamic.loop_wait),
            last_message: message.to_string(),
            alter_system: self.alter_system(rt.is_some()).await,
            scheduled_restart: self
                .sh
                .scheduled_restart
                .read()
                .ok()
                .and_then(|s| s.as_ref().map(|s| s.to_json())),
        }
    }

    /// Settings changed by ALTER SYSTEM (PostgreSQL running). Secret-bearing ones (a
    /// primary_conninfo with a password, ...) never leave the node: they are not even kept
    /// in the status the REST API serves.
    async fn alter_system(&self, running: bool) -> Map<String, Value> {
        if !running {
            return Map::new();
        }
        let overrides = self
            .sh
            .sql
            .alter_system_overrides()
            .await
            .unwrap_or_default();
        crate::secrets::strip_secret_settings(
            overrides
                .into_iter()
                .map(|(k, v)| (k, Value::String(v)))
                .collect(),
        )
    }
}
