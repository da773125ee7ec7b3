//! The PostgreSQL control port: what the agent's effects and background tasks do to the
//! local instance (`pg_ctl` start/stop/promote/reload, `initdb`, clones, `pg_rewind`,
//! `pg_controldata`, the configuration files), as a trait, so that a simulated instance can
//! stand in. The real one is [`Postgres`]; its methods do the work. Queries go through the
//! SQL port ([`super::sql_port::Sql`]); the instance's settings (paths, timeouts) stay on
//! [`Shared::pg`](super::shared::Shared).

use super::custom_bootstrap::BootstrapPlan;
use super::replica_methods::{run_methods, MethodPlan};
use crate::ha::StopMode;
use crate::postgres::controldata::ControlData;
use crate::postgres::{Following, PgResult, Postgres, RecoveryTarget};
use async_trait::async_trait;
use serde_json::{Map, Value};

/// Operations on the local PostgreSQL instance and its data directory.
#[async_trait]
pub trait PgControl: Send + Sync {
    /// True while the postmaster runs.
    fn is_running(&self) -> bool;
    /// `pg_controldata` of the data directory (None when it cannot be read).
    async fn controldata(&self) -> Option<ControlData>;
    /// True when the data directory is missing or empty.
    fn data_dir_empty(&self) -> bool;
    /// The timeline a standby without a WAL receiver replays (`IDENTIFY_SYSTEM` over a
    /// replication connection to itself).
    async fn replay_timeline(&self) -> PgResult<u64>;
    /// Writes the password file the replication and rewind connections use.
    fn write_pgpass(&self) -> PgResult<()>;
    /// Renders the configuration files (replica when `recovery` is given); true when a
    /// file changed (a reload is needed).
    fn write_config(
        &self,
        params: &Map<String, Value>,
        hba: Option<&[String]>,
        recovery: Option<&RecoveryTarget>,
    ) -> PgResult<bool>;
    /// Writes a signal file (`recovery.signal`, `standby.signal`) into the data directory.
    fn write_signal(&self, name: &str) -> PgResult<()>;
    /// Adds the bootstrap entries to an unmanaged `pg_hba.conf`.
    fn append_bootstrap_hba(&self) -> PgResult<()>;
    /// Runs `initdb`.
    async fn initdb(&self) -> PgResult<()>;
    /// Starts the postmaster; returns warnings to log.
    async fn start(&self, params: &Map<String, Value>) -> PgResult<Vec<String>>;
    /// Stops the postmaster in `mode`.
    async fn stop(&self, mode: StopMode) -> PgResult<()>;
    /// Promotes the standby.
    async fn promote(&self) -> PgResult<()>;
    /// Makes the postmaster reload its configuration.
    async fn reload(&self) -> PgResult<()>;
    /// Rewinds the stopped data directory from `conninfo` with pg_rewind.
    async fn rewind(&self, conninfo: &str, params: &Map<String, Value>) -> PgResult<()>;
    /// Whom the recovery configuration in force follows.
    fn following(&self) -> Following;
    /// Records whom the recovery configuration in force follows (after a start or a reload
    /// put it in force).
    fn set_following(&self, following: Following);
    /// The `synchronous_standby_names` the configuration files carry.
    fn sync_names(&self) -> Option<String>;
    /// Sets the `synchronous_standby_names` the next configuration write renders.
    fn set_sync_names(&self, value: Option<String>);
    /// Same, written while still in recovery (just before a promotion).
    fn set_sync_names_for_promotion(&self, value: String);
    /// Writes the state file of a logical slot copied from the leader.
    fn write_slot_state(&self, name: &str, state: &[u8]) -> PgResult<()>;
    /// The timeline history file of `timeline` (`pg_wal/<TL>.history`) and its modification
    /// time (RFC 3339, local time; empty when unknown); None when it cannot be read.
    fn history_file(&self, timeline: u64) -> Option<(String, String)>;
    /// Moves the data directory aside after a failed bootstrap.
    fn move_data_dir_aside(&self) -> PgResult<()>;
    /// Removes the data directory (for a re-clone).
    fn remove_data_dir(&self) -> std::io::Result<()>;
    /// Creates the data directory with the first of `plans` that succeeds (pg_basebackup
    /// over `basebackup_conninfo`, or a custom method): its name, or every failure.
    async fn clone_data(
        &self,
        plans: &[MethodPlan],
        basebackup_conninfo: &str,
    ) -> Result<String, Vec<String>>;
    /// Runs a custom `bootstrap.method` command that creates the data directory.
    async fn run_bootstrap_command(&self, plan: &BootstrapPlan) -> Result<(), String>;
}

#[async_trait]
impl PgControl for Postgres {
    fn is_running(&self) -> bool {
        Postgres::is_running(self)
    }
    async fn controldata(&self) -> Option<ControlData> {
        Postgres::controldata(self).await
    }
    fn data_dir_empty(&self) -> bool {
        Postgres::data_dir_empty(self)
    }
    async fn replay_timeline(&self) -> PgResult<u64> {
        Postgres::replay_timeline(self).await
    }
    fn write_pgpass(&self) -> PgResult<()> {
        Postgres::write_pgpass(self)
    }
    fn write_config(
        &self,
        params: &Map<String, Value>,
        hba: Option<&[String]>,
        recovery: Option<&RecoveryTarget>,
    ) -> PgResult<bool> {
        Postgres::write_config(self, params, hba, recovery)
    }
    fn write_signal(&self, name: &str) -> PgResult<()> {
        Postgres::write_signal(self, name)
    }
    fn append_bootstrap_hba(&self) -> PgResult<()> {
        Postgres::append_bootstrap_hba(self)
    }
    async fn initdb(&self) -> PgResult<()> {
        Postgres::initdb(self).await
    }
    async fn start(&self, params: &Map<String, Value>) -> PgResult<Vec<String>> {
        Postgres::start(self, params).await
    }
    async fn stop(&self, mode: StopMode) -> PgResult<()> {
        Postgres::stop(self, mode).await
    }
    async fn promote(&self) -> PgResult<()> {
        Postgres::promote(self).await
    }
    async fn reload(&self) -> PgResult<()> {
        Postgres::reload(self).await
    }
    async fn rewind(&self, conninfo: &str, params: &Map<String, Value>) -> PgResult<()> {
        Postgres::rewind(self, conninfo, params).await
    }
    fn following(&self) -> Following {
        Postgres::following(self)
    }
    fn set_following(&self, following: Following) {
        Postgres::set_following(self, following)
    }
    fn sync_names(&self) -> Option<String> {
        Postgres::sync_names(self)
    }
    fn set_sync_names(&self, value: Option<String>) {
        Postgres::set_sync_names(self, value)
    }
    fn set_sync_names_for_promotion(&self, value: String) {
        Postgres::set_sync_names_for_promotion(self, value)
    }
    fn write_slot_state(&self, name: &str, state: &[u8]) -> PgResult<()> {
        Postgres::write_slot_state(self, name, state)
    }
    fn history_file(&self, timeline: u64) -> Option<(String, String)> {
        let path = (self.settings.data_dir).join(format!("pg_wal/{timeline:08X}.history"));
        let text = std::fs::read_to_string(&path).ok()?;
        let stamp = std::fs::metadata(&path)
            .and_then(|m| m.modified())
            .map(|t| {
                chrono::DateTime::<chrono::Local>::from(t)
                    .to_rfc3339_opts(chrono::SecondsFormat::Secs, false)
            })
            .unwrap_or_default();
        Some((text, stamp))
    }
    fn move_data_dir_aside(&self) -> PgResult<()> {
        Postgres::move_data_dir_aside(self)
    }
    fn remove_data_dir(&self) -> std::io::Result<()> {
        std::fs::remove_dir_all(&self.settings.data_dir)
    }
    async fn clone_data(
        &self,
        plans: &[MethodPlan],
        basebackup_conninfo: &str,
    ) -> Result<String, Vec<String>> {
        run_methods(self, plans, basebackup_conninfo).await
    }
    async fn run_bootstrap_command(&self, plan: &BootstrapPlan) -> Result<(), String> {
        super::custom_bootstrap::run_command(self, plan).await
    }
}

#[cfg(test)]
#[path = "pg_port_tests.rs"]
mod tests;
