//! Runs the slot plan of [`crate::ha::slots`]: lists the local slots, asks the pure rules
//! what to create, drop, advance or copy, and runs the SQL. The leader also remembers the
//! departed members whose slots it retains (`member_slots_ttl`) and the positions it
//! publishes in `status.slots`.

use super::driver::{CycleContext, Driver};
use super::tasks::TaskOutcome;
use crate::dcs::Cluster;
use crate::ha::slots::{self, DropReason, Lsn, SlotFacts, SlotKind, SlotPlan, SlotRole, SlotSpec};
use crate::ha::{PgRole, TaskKind};
use crate::postgres::names::slot_name_for_member;
use std::collections::BTreeMap;

/// A failed copy of logical slots is retried after this long.
const COPY_RETRY_MS: u64 = 60_000;

/// What the slot code remembers between cycles.
#[derive(Debug, Default)]
pub(super) struct SlotState {
    /// Leader: member slot → when its member was last seen (ms).
    pub retained: BTreeMap<String, u64>,
    /// Leader: positions of the permanent slots, for `status.slots`.
    pub positions: Option<BTreeMap<String, Lsn>>,
    /// Replica: when logical slots were last copied from the leader.
    pub copied_at: Option<u64>,
}

impl Driver {
    /// Creates, drops, advances and copies slots for this cycle (leader or replica).
    pub(super) async fn sync_slots(&mut self, ctx: &CycleContext) {
        // The standby leader keeps its replicas' member slots like a primary. A standby
        // cluster has only physical permanent slots (Patroni).
        let standby_leader = crate::ha::standby::is_standby_leader(&ctx.obs);
        let role = match ctx.obs.pg.role {
            Some(PgRole::Primary) => SlotRole::Primary,
            Some(PgRole::Replica) if standby_leader => SlotRole::Primary,
            Some(PgRole::Replica) => SlotRole::Replica,
            _ => return,
        };
        let local = match self.sh.sql.slots().await {
            Ok(l) => l,
            Err(e) => {
                tracing::warn!("failed to list replication slots: {e}");
                return;
            }
        };
        let standby_cluster = ctx.dynamic.is_standby_cluster();
        let applicable = crate::ha::standby::slots_for_cluster(&ctx.dynamic.slots, standby_cluster);
        let (mut permanent, _) = slots::permanent_slots(&applicable);
        // A standby cluster, and a replica whose WAL does not stream from the primary
        // (nostream, or cascading from a nostream member), keep only physical permanent slots.
        if standby_cluster || (role == SlotRole::Replica && !self.feeds_back_to_primary(ctx)) {
            permanent.retain(|p| p.kind == SlotKind::Physical);
        }
        let ignore = slots::ignore_rules(&ctx.dynamic.ignore_slots);
        let me = self.sh.name();
        let members = match role {
            SlotRole::Primary => self.leader_member_slots(ctx, &me),
            SlotRole::Replica => cascading_slots(ctx, &me),
        };
        let leader_positions = ctx
            .cluster
            .as_ref()
            .map(status_positions)
            .unwrap_or_default();
        let facts = SlotFacts {
            role,
            member_slots: &members,
            permanent: &permanent,
            ignore: &ignore,
            local: &local,
            leader_positions: &leader_positions,
            replay_lsn: ctx.runtime.as_ref().and_then(|r| r.replay_lsn),
            own_slot: &slot_name_for_member(&me),
        };
        let plan = slots::plan(&facts);
        self.slots.positions = (role == SlotRole::Primary && !standby_leader)
            .then(|| slots::published_positions(&permanent, &local));
        self.run_slot_plan(&plan).await;
        if !plan.copy.is_empty() {
            self.copy_logical_slots(ctx, plan.copy);
        }
    }

    /// Whether this replica's WAL comes by streaming from the primary (its feedback reaches
    /// it), [`crate::ha::upstream::streams_from_primary`].
    fn feeds_back_to_primary(&self, ctx: &CycleContext) -> bool {
        let Some(c) = &ctx.cluster else { return true };
        crate::ha::upstream::streams_from_primary(c, &self.sh.name(), &ctx.obs.node.stream)
    }

    /// The leader's member slots: current members (not `nostream`) and retained ones.
    fn leader_member_slots(&mut self, ctx: &CycleContext, me: &str) -> Vec<String> {
        let current = super::executor::member_slots(ctx, me);
        let published = ctx
            .cluster
            .as_ref()
            .and_then(|c| c.status.retain_slots.clone())
            .unwrap_or_default();
        self.slots.retained = slots::retain(
            &self.slots.retained,
            &current,
            &published,
            ctx.obs.now_ms,
            ctx.dynamic.member_slots_ttl,
        );
        // A member that is still here but streams from another member (or from nobody)
        // has no use for a slot on the leader: retaining it would pin WAL.
        if let Some(c) = &ctx.cluster {
            for m in &c.members {
                if m.name != me && !crate::ha::upstream::leader_keeps_slot_for(c, me, m) {
                    self.slots.retained.remove(&slot_name_for_member(&m.name));
                }
            }
        }
        if !ctx.dynamic.use_slots {
            return vec![];
        }
        self.slots.retained.keys().cloned().collect()
    }

    /// `status.retain_slots` to publish (None when `member_slots_ttl` is 0).
    pub(super) fn retain_slots_to_publish(&self, ctx: &CycleContext) -> Option<Vec<String>> {
        (ctx.dynamic.member_slots_ttl > 0 && ctx.dynamic.use_slots)
            .then(|| self.slots.retained.keys().cloned().collect())
    }

    async fn run_slot_plan(&self, plan: &SlotPlan) {
        let sql = &self.sh.sql;
        for (slot, why) in &plan.drop {
            match sql.drop_slot(&slot.name).await {
                Ok(()) if *why == DropReason::Unknown => {
                    tracing::info!("Dropped unknown replication slot '{}'", slot.name)
                }
                Ok(()) => tracing::info!(
                    "Dropped replication slot '{}' because its definition changed",
                    slot.name
                ),
                Err(e) => tracing::warn!("failed to drop replication slot '{}': {e}", slot.name),
            }
        }
        for spec in &plan.create {
            let res = match &spec.kind {
                SlotKind::Physical => sql.create_physical_slot(&spec.name).await,
                SlotKind::Logical { database, plugin } => {
                    sql.create_logical_slot(&spec.name, database, plugin).await
                }
            };
            match res {
                Ok(()) => tracing::info!(
                    "created {} replication slot {}",
                    spec.kind.type_name(),
                    spec.name
                ),
                Err(e) => tracing::warn!("failed to create replication slot {}: {e}", spec.name),
            }
        }
        for (spec, to) in &plan.advance {
            if let Err(e) = sql.advance_slot(&spec.name, &spec.kind, *to).await {
                tracing::warn!("failed to advance replication slot {}: {e}", spec.name);
            }
        }
    }

    /// Replica: copies the leader's logical slots (state files), then restarts PostgreSQL
    /// so that it loads them (Patroni's mechanism, PostgreSQL ≥ 11).
    fn copy_logical_slots(&mut self, ctx: &CycleContext, specs: Vec<SlotSpec>) {
        let now = ctx.obs.now_ms;
        if self
            .slots
            .copied_at
            .is_some_and(|at| now.saturating_sub(at) < COPY_RETRY_MS)
            || self.machine.task().is_some()
        {
            return;
        }
        let Some(cluster) = ctx.cluster.clone() else {
            return;
        };
        let Some((host, port)) = cluster
            .leader_name()
            .and_then(|l| cluster.member(l))
            .and_then(|m| m.data.host_port())
        else {
            return;
        };
        self.slots.copied_at = Some(now);
        let (sh, dynamic) = (self.sh.clone(), ctx.dynamic.clone());
        let names: Vec<String> = specs.into_iter().map(|s| s.name).collect();
        self.spawn_task(TaskKind::Restart, async move {
            let states = match sh.sql.read_remote_slot_states(&host, port, &names).await {
                Ok(s) if !s.is_empty() => s,
                Ok(_) => return TaskOutcome::failed("the leader has none of the logical slots"),
                Err(e) => return TaskOutcome::failed(format!("failed to read slots: {e}")),
            };
            for (name, state) in &states {
                if let Err(e) = sh.ctl.write_slot_state(name, state) {
                    return TaskOutcome::failed(format!("failed to copy slot {name}: {e}"));
                }
                tracing::info!("Copied logical replication slot '{name}' from the primary");
            }
            super::rejoin_tasks::restart(sh, Some(cluster), true, dynamic).await
        });
    }
}

/// Replica: slots for the members that stream from us (`replicatefrom`).
fn cascading_slots(ctx: &CycleContext, me: &str) -> Vec<String> {
    let Some(c) = &ctx.cluster else {
        return vec![];
    };
    crate::ha::upstream::slot_members(c, me, false, ctx.dynamic.use_slots)
        .into_iter()
        .map(slot_name_for_member)
        .collect()
}

/// The positions of `status.slots` (integers; anything else is left out).
fn status_positions(c: &Cluster) -> BTreeMap<String, Lsn> {
    c.status
        .slots
        .iter()
        .flatten()
        .filter_map(|(k, v)| v.as_u64().map(|l| (k.clone(), l)))
        .collect()
}
