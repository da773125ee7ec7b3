//! The SQL port: every query the agent (its loop, effects, tasks and REST handlers) sends to
//! the local PostgreSQL, as a trait, so a fake or simulated instance can stand in. The real
//! one is [`LocalSql`] (one session over TCP as the superuser); its methods do the work.

use crate::ha::slots::{LocalSlot, Lsn, SlotKind};
use crate::postgres::pending::SettingRow;
use crate::postgres::{LocalSql, PgResult, PgRuntime, ReplicationRow};
use async_trait::async_trait;

/// Queries to the local PostgreSQL (and the leader's slot files for a logical slot copy).
#[async_trait]
pub trait Sql: Send + Sync {
    /// Drops the session (after a restart): the next query connects again.
    async fn reset(&self);
    /// The instance's state: recovery, LSNs, timeline, version, start time.
    async fn state(&self) -> PgResult<PgRuntime>;
    /// The primary's `pg_stat_replication` rows.
    async fn replication(&self) -> PgResult<Vec<ReplicationRow>>;
    /// Runs statements (no result).
    async fn execute(&self, sql: &str) -> PgResult<()>;
    /// Creates (or updates the password of) a login role with extra options.
    async fn ensure_role(&self, name: &str, password: Option<&str>, options: &str) -> PgResult<()>;
    /// Names of the physical replication slots.
    async fn physical_slots(&self) -> PgResult<Vec<String>>;
    /// Creates a physical replication slot.
    async fn create_physical_slot(&self, name: &str) -> PgResult<()>;
    /// The `pg_settings` rows pending restarts are computed from.
    async fn settings(&self) -> PgResult<Vec<SettingRow>>;
    /// Parameters set with `ALTER SYSTEM`, name → value with its unit.
    async fn alter_system_overrides(&self) -> PgResult<Vec<(String, String)>>;
    /// Runs `CHECKPOINT`.
    async fn checkpoint(&self) -> PgResult<()>;
    /// The non-temporary replication slots.
    async fn slots(&self) -> PgResult<Vec<LocalSlot>>;
    /// Drops a slot.
    async fn drop_slot(&self, name: &str) -> PgResult<()>;
    /// Creates a logical slot in its database.
    async fn create_logical_slot(&self, name: &str, db: &str, plugin: &str) -> PgResult<()>;
    /// Moves a slot forward.
    async fn advance_slot(&self, name: &str, kind: &SlotKind, to: Lsn) -> PgResult<()>;
    /// Reads the state files of the named logical slots on the leader at `host:port`.
    async fn read_remote_slot_states(
        &self,
        host: &str,
        port: u16,
        names: &[String],
    ) -> PgResult<Vec<(String, Vec<u8>)>>;
}

#[async_trait]
impl Sql for LocalSql {
    async fn reset(&self) {
        LocalSql::reset(self).await
    }
    async fn state(&self) -> PgResult<PgRuntime> {
        LocalSql::state(self).await
    }
    async fn replication(&self) -> PgResult<Vec<ReplicationRow>> {
        LocalSql::replication(self).await
    }
    async fn execute(&self, sql: &str) -> PgResult<()> {
        LocalSql::execute(self, sql).await
    }
    async fn ensure_role(&self, name: &str, password: Option<&str>, options: &str) -> PgResult<()> {
        LocalSql::ensure_role(self, name, password, options).await
    }
    async fn physical_slots(&self) -> PgResult<Vec<String>> {
        LocalSql::physical_slots(self).await
    }
    async fn create_physical_slot(&self, name: &str) -> PgResult<()> {
        LocalSql::create_physical_slot(self, name).await
    }
    async fn settings(&self) -> PgResult<Vec<SettingRow>> {
        LocalSql::settings(self).await
    }
    async fn alter_system_overrides(&self) -> PgResult<Vec<(String, String)>> {
        LocalSql::alter_system_overrides(self).await
    }
    async fn checkpoint(&self) -> PgResult<()> {
        LocalSql::checkpoint(self).await
    }
    async fn slots(&self) -> PgResult<Vec<LocalSlot>> {
        LocalSql::slots(self).await
    }
    async fn drop_slot(&self, name: &str) -> PgResult<()> {
        LocalSql::drop_slot(self, name).await
    }
    async fn create_logical_slot(&self, name: &str, db: &str, plugin: &str) -> PgResult<()> {
        LocalSql::create_logical_slot(self, name, db, plugin).await
    }
    async fn advance_slot(&self, name: &str, kind: &SlotKind, to: Lsn) -> PgResult<()> {
        LocalSql::advance_slot(self, name, kind, to).await
    }
    async fn read_remote_slot_states(
        &self,
        host: &str,
        port: u16,
        names: &[String],
    ) -> PgResult<Vec<(String, Vec<u8>)>> {
        LocalSql::read_remote_slot_states(self, host, port, names).await
    }
}

#[cfg(test)]
pub(crate) mod fake {
    //! A fake local PostgreSQL for unit tests of agent code: canned answers, every other
    //! query fails as a timed-out one would.

    use super::*;
    use crate::postgres::PgError;

    /// Answers `state` and `replication` from its fields; every other query fails.
    #[derive(Default)]
    pub(crate) struct FakeSql {
        pub(crate) state: Option<PgRuntime>,
        pub(crate) replication: Vec<ReplicationRow>,
    }

    fn down<T>() -> PgResult<T> {
        Err(PgError::Timeout("fake: not answered".into()))
    }

    #[async_trait]
    impl Sql for FakeSql {
        async fn reset(&self) {}
        async fn state(&self) -> PgResult<PgRuntime> {
            self.state.clone().map_or_else(down, Ok)
        }
        async fn replication(&self) -> PgResult<Vec<ReplicationRow>> {
            Ok(self.replication.clone())
        }
        async fn execute(&self, _sql: &str) -> PgResult<()> {
            down()
        }
        async fn ensure_role(&self, _n: &str, _p: Option<&str>, _o: &str) -> PgResult<()> {
            down()
        }
        async fn physical_slots(&self) -> PgResult<Vec<String>> {
            down()
        }
        async fn create_physical_slot(&self, _name: &str) -> PgResult<()> {
            down()
        }
        async fn settings(&self) -> PgResult<Vec<SettingRow>> {
            down()
        }
        async fn alter_system_overrides(&self) -> PgResult<Vec<(String, String)>> {
            down()
        }
        async fn checkpoint(&self) -> PgResult<()> {
            down()
        }
        async fn slots(&self) -> PgResult<Vec<LocalSlot>> {
            down()
        }
        async fn drop_slot(&self, _name: &str) -> PgResult<()> {
            down()
        }
        async fn create_logical_slot(&self, _n: &str, _d: &str, _p: &str) -> PgResult<()> {
            down()
        }
        async fn advance_slot(&self, _n: &str, _k: &SlotKind, _to: Lsn) -> PgResult<()> {
            down()
        }
        async fn read_remote_slot_states(
            &self,
            _host: &str,
            _port: u16,
            _names: &[String],
        ) -> PgResult<Vec<(String, Vec<u8>)>> {
            down()
        }
    }
}
