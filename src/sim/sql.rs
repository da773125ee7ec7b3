//! The SQL port over a simulated instance: what the real agent's queries would answer
//! (`pg_is_in_recovery`, WAL positions, timeline, `pg_stat_replication`, physical slots).

use super::model::SYSID;
use super::world::{State, World};
use crate::agent::sql_port::Sql;
use crate::ha::slots::{LocalSlot, Lsn, SlotKind};
use crate::ha::PgRole;
use crate::postgres::pending::SettingRow;
use crate::postgres::{PgError, PgResult, PgRuntime, ReplicationRow};
use async_trait::async_trait;
use std::sync::Arc;

/// SQL to member `i`'s PostgreSQL from generation `gen` of its agent.
pub struct SimSql {
    world: Arc<World>,
    i: usize,
    gen: u64,
}

impl SimSql {
    /// The port of member `i` for generation `gen` of its agent.
    pub fn new(world: Arc<World>, i: usize, gen: u64) -> SimSql {
        SimSql { world, i, gen }
    }

    /// Runs `f` on the state once the agent may act and PostgreSQL answers.
    async fn query<T>(&self, f: impl FnOnce(&mut State) -> T) -> PgResult<T> {
        self.world.gate(self.i, self.gen).await;
        let mut st = self.world.lock();
        if !st.members[self.i].pg.running {
            return Err(PgError::Timeout(
                "connection refused: postgres is not running".into(),
            ));
        }
        Ok(f(&mut st))
    }
}

/// `pg_stat_replication` of member `i` when it runs as a primary: one row per running
/// member streaming from it, `sync` when `synchronous_standby_names` lists it.
fn replication_rows(st: &State, i: usize) -> Vec<ReplicationRow> {
    let me = &st.members[i];
    if me.pg.role != PgRole::Primary {
        return vec![];
    }
    let names = me.pg.sync_names.as_deref();
    let listed = |n: &str| names.is_some_and(|v| crate::ha::sync::names_list(v, n));
    let streaming = st.members.iter().filter(|m| {
        m.agent != super::Agent::Dead
            && m.pg.running
            && m.pg.streaming
            && m.pg.following.as_deref() == Some(me.name.as_str())
    });
    streaming
        .map(|m| ReplicationRow {
            usename: Some("replicator".into()),
            application_name: Some(m.name.clone()),
            client_addr: None,
            state: Some("streaming".into()),
            sync_state: Some(if listed(&m.name) { "sync" } else { "async" }.into()),
            sync_priority: Some(i32::from(listed(&m.name))),
            flush_lsn: Some(m.pg.lsn),
        })
        .collect()
}

/// What the state query answers for member `i`.
fn runtime(st: &State, i: usize) -> PgRuntime {
    let pg = &st.members[i].pg;
    let replica = pg.role == PgRole::Replica;
    let receiving = replica && pg.streaming && pg.following.is_some();
    let started = chrono::DateTime::from_timestamp_millis(pg.started_ms as i64)
        .map(|t| t.format("%Y-%m-%d %H:%M:%S%.6f+00:00").to_string());
    PgRuntime {
        in_recovery: replica,
        flush_lsn: (!replica).then_some(pg.lsn),
        receive_lsn: replica.then_some(pg.lsn),
        replay_lsn: replica.then_some(pg.lsn),
        timeline: Some(pg.timeline),
        postmaster_start_time: started,
        server_version: 150_000,
        receiver_status: receiving.then(|| "streaming".to_string()),
        replay_timestamp: None,
        replay_paused: false,
        sysid: Some(SYSID.into()),
    }
}

#[async_trait]
impl Sql for SimSql {
    async fn reset(&self) {}

    async fn state(&self) -> PgResult<PgRuntime> {
        self.query(|st| runtime(st, self.i)).await
    }

    async fn replication(&self) -> PgResult<Vec<ReplicationRow>> {
        self.query(|st| replication_rows(st, self.i)).await
    }

    async fn execute(&self, _sql: &str) -> PgResult<()> {
        self.query(|_| ()).await
    }

    async fn ensure_role(&self, _name: &str, _pw: Option<&str>, _opts: &str) -> PgResult<()> {
        self.query(|_| ()).await
    }

    async fn physical_slots(&self) -> PgResult<Vec<String>> {
        self.query(|st| st.members[self.i].pg.slots.clone()).await
    }

    async fn create_physical_slot(&self, name: &str) -> PgResult<()> {
        self.query(|st| {
            let slots = &mut st.members[self.i].pg.slots;
            if !slots.iter().any(|s| s == name) {
                slots.push(name.to_string());
            }
        })
        .await
    }

    async fn settings(&self) -> PgResult<Vec<SettingRow>> {
        self.query(|_| vec![]).await
    }

    async fn alter_system_overrides(&self) -> PgResult<Vec<(String, String)>> {
        self.query(|_| vec![]).await
    }

    async fn checkpoint(&self) -> PgResult<()> {
        self.query(|_| ()).await
    }

    async fn slots(&self) -> PgResult<Vec<LocalSlot>> {
        self.query(|st| {
            let slots = st.members[self.i].pg.slots.iter();
            slots
                .map(|name| LocalSlot {
                    name: name.clone(),
                    kind: SlotKind::Physical,
                    position: None,
                    active: false,
                })
                .collect()
        })
        .await
    }

    async fn drop_slot(&self, name: &str) -> PgResult<()> {
        self.query(|st| st.members[self.i].pg.slots.retain(|s| s != name))
            .await
    }

    async fn create_logical_slot(&self, _name: &str, _db: &str, _plugin: &str) -> PgResult<()> {
        Err(PgError::Timeout(
            "the simulator has no logical slots".into(),
        ))
    }

    async fn advance_slot(&self, _name: &str, _kind: &SlotKind, _to: Lsn) -> PgResult<()> {
        self.query(|_| ()).await
    }

    async fn read_remote_slot_states(
        &self,
        _host: &str,
        _port: u16,
        _names: &[String],
    ) -> PgResult<Vec<(String, Vec<u8>)>> {
        Ok(vec![])
    }
}
