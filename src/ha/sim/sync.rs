//! Synchronous replication in the simulator: the primary's `pg_stat_replication` rows, from
//! the members streaming from it and its `synchronous_standby_names`.

use super::{Agent, Sim};
use crate::ha::observation::{PgRole, StandbyConn};

impl Sim {
    /// `pg_stat_replication` of member `i` when it runs as a primary: one row per running
    /// member streaming from it, `sync` when `synchronous_standby_names` lists it.
    pub(super) fn standbys_of(&self, i: usize) -> Vec<StandbyConn> {
        let me = &self.members[i];
        if !me.pg.running || me.pg.role != PgRole::Primary {
            return vec![];
        }
        let names = me.pg.sync_names.as_deref();
        let listed = |n: &str| names.is_some_and(|v| crate::ha::sync::names_list(v, n));
        let streaming = self.members.iter().filter(|m| {
            m.agent != Agent::Dead
                && m.pg.running
                && m.pg.streaming
                && m.pg.following.as_deref() == Some(me.name.as_str())
        });
        streaming
            .map(|m| StandbyConn {
                name: m.name.clone(),
                streaming: true,
                sync_state: if listed(&m.name) { "sync" } else { "async" }.into(),
                flush_lsn: m.pg.lsn,
            })
            .collect()
    }
}
