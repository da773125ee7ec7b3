//! The PostgreSQL control port over a simulated instance: what the real agent's effects and
//! background tasks do (start, stop, promote, reload, pg_rewind, clone, the configuration
//! files) changes the member's [`SimPg`](super::SimPg) after the configured duration.

use super::model::{EventKind, SYSID};
use super::world::World;
use crate::agent::custom_bootstrap::BootstrapPlan;
use crate::agent::pg_port::PgControl;
use crate::agent::replica_methods::MethodPlan;
use crate::ha::{PgRole, StopMode};
use crate::postgres::controldata::ControlData;
use crate::postgres::lsn::format_lsn;
use crate::postgres::{Following, PgError, PgResult, RecoveryTarget};
use async_trait::async_trait;
use serde_json::{Map, Value};
use std::sync::{Arc, Mutex};

/// Member `i`'s PostgreSQL, as generation `gen` of its agent controls it.
pub struct SimControl {
    world: Arc<World>,
    i: usize,
    gen: u64,
    /// The managed `synchronous_standby_names` the next configuration write renders.
    sync_names: Mutex<Option<String>>,
    /// Whom the agent recorded the recovery configuration in force follows.
    following: Mutex<Following>,
}

impl SimControl {
    /// The port of member `i` for generation `gen` of its agent.
    pub fn new(world: Arc<World>, i: usize, gen: u64) -> SimControl {
        let sync_names = world.lock().members[i].pg.files.sync_names.clone();
        SimControl {
            world,
            i,
            gen,
            sync_names: Mutex::new(sync_names),
            following: Mutex::default(),
        }
    }

    fn failed(program: &str, output: &str) -> PgError {
        PgError::Exited {
            program: program.into(),
            status: "exit status 1".into(),
            output: output.into(),
        }
    }

    /// Copies the data of the member named by `host=` in `conninfo` (pg_rewind, a clone).
    fn resync_from(&self, conninfo: &str, program: &str) -> PgResult<()> {
        let source = host_of(conninfo).unwrap_or_default();
        let mut st = self.world.lock();
        let found = st.members.iter().position(|m| m.name == source);
        let Some(s) = found.filter(|s| st.members[*s].pg.running) else {
            return Err(Self::failed(program, "source of the data is not running"));
        };
        let data = st.members[s].pg.clone();
        st.members[self.i].pg.copy_from(&data);
        self.world
            .event(&mut st, self.i, EventKind::Resynced { from: source });
        Ok(())
    }
}

/// The value of `host=` in a libpq connection string.
pub fn host_of(conninfo: &str) -> Option<String> {
    conninfo
        .split_whitespace()
        .find_map(|kv| kv.strip_prefix("host="))
        .map(|h| h.trim_matches('\'').to_string())
}

#[async_trait]
impl PgControl for SimControl {
    fn is_running(&self) -> bool {
        self.world.lock().members[self.i].pg.running
    }

    async fn controldata(&self) -> Option<ControlData> {
        self.world.gate(self.i, self.gen).await;
        let pg = self.world.lock().members[self.i].pg.clone();
        if !pg.has_data {
            return None;
        }
        let (lsn, tl) = (format_lsn(pg.control_lsn), pg.timeline);
        let text = format!(
            "Database system identifier: {SYSID}\nDatabase cluster state: {}\n\
             Latest checkpoint location: {lsn}\nLatest checkpoint's TimeLineID: {tl}\n\
             Minimum recovery ending location: {lsn}\nMin recovery ending loc's timeline: {tl}\n\
             wal_log_hints setting: on\n",
            pg.control_state
        );
        Some(ControlData::parse(&text))
    }

    fn data_dir_empty(&self) -> bool {
        !self.world.lock().members[self.i].pg.has_data
    }

    async fn replay_timeline(&self) -> PgResult<u64> {
        self.world.gate(self.i, self.gen).await;
        Ok(self.world.lock().members[self.i].pg.timeline)
    }

    fn write_pgpass(&self) -> PgResult<()> {
        Ok(())
    }

    fn write_config(
        &self,
        _params: &Map<String, Value>,
        _hba: Option<&[String]>,
        recovery: Option<&RecoveryTarget>,
    ) -> PgResult<bool> {
        if !self.world.current(self.i, self.gen) {
            return Err(PgError::Timeout("the agent is gone".into()));
        }
        let files = super::model::PgFiles {
            standby: recovery.is_some(),
            upstream: recovery.and_then(|r| r.conninfo.as_deref().and_then(host_of)),
            sync_names: self.sync_names.lock().ok().and_then(|s| s.clone()),
        };
        let mut st = self.world.lock();
        let pg = &mut st.members[self.i].pg;
        let changed = pg.files != files;
        pg.files = files;
        Ok(changed)
    }

    fn write_signal(&self, _name: &str) -> PgResult<()> {
        Ok(())
    }

    fn append_bootstrap_hba(&self) -> PgResult<()> {
        Ok(())
    }

    async fn initdb(&self) -> PgResult<()> {
        Err(Self::failed(
            "initdb",
            "the simulated cluster is bootstrapped already",
        ))
    }

    async fn start(&self, _params: &Map<String, Value>) -> PgResult<Vec<String>> {
        self.world
            .take(self.i, self.gen, self.world.cfg.start_ms)
            .await;
        let now = self.world.now();
        let mut st = self.world.lock();
        if !st.members[self.i].pg.start(now) {
            return Err(Self::failed("pg_ctl start", "no data directory"));
        }
        let primary = st.members[self.i].pg.role == PgRole::Primary;
        self.world
            .event(&mut st, self.i, EventKind::Started { primary });
        self.world.check(&mut st);
        Ok(vec![])
    }

    async fn stop(&self, mode: StopMode) -> PgResult<()> {
        self.world
            .take(self.i, self.gen, self.world.cfg.stop_ms)
            .await;
        let mut st = self.world.lock();
        stop_member(&self.world, &mut st, self.i, mode != StopMode::Immediate);
        Ok(())
    }

    async fn promote(&self) -> PgResult<()> {
        self.world
            .take(self.i, self.gen, self.world.cfg.promote_ms)
            .await;
        let now = self.world.now();
        let mut st = self.world.lock();
        let m = &mut st.members[self.i];
        if !m.pg.running || m.pg.role != PgRole::Replica {
            return Err(Self::failed("pg_ctl promote", "not running as a replica"));
        }
        if m.failing_promotes > 0 {
            m.failing_promotes -= 1;
            return Err(Self::failed("pg_ctl promote", ""));
        }
        let (timeline, lsn) = m.pg.promote(now);
        self.world
            .event(&mut st, self.i, EventKind::Promoted { timeline, lsn });
        self.world.check(&mut st);
        Ok(())
    }

    async fn reload(&self) -> PgResult<()> {
        self.world.gate(self.i, self.gen).await;
        self.world.lock().members[self.i].pg.reload();
        Ok(())
    }

    async fn rewind(&self, conninfo: &str, _params: &Map<String, Value>) -> PgResult<()> {
        self.world
            .take(self.i, self.gen, self.world.cfg.rewind_ms)
            .await;
        self.resync_from(conninfo, "pg_rewind")
    }

    fn following(&self) -> Following {
        self.following.lock().map(|f| f.clone()).unwrap_or_default()
    }

    fn set_following(&self, following: Following) {
        if let Ok(mut f) = self.following.lock() {
            *f = following;
        }
    }

    fn sync_names(&self) -> Option<String> {
        self.sync_names.lock().ok().and_then(|s| s.clone())
    }

    fn set_sync_names(&self, value: Option<String>) {
        if let Ok(mut s) = self.sync_names.lock() {
            *s = value;
        }
    }

    fn set_sync_names_for_promotion(&self, value: String) {
        self.set_sync_names(Some(value));
    }

    fn write_slot_state(&self, _name: &str, _state: &[u8]) -> PgResult<()> {
        Ok(())
    }

    fn history_file(&self, timeline: u64) -> Option<(String, String)> {
        let st = self.world.lock();
        let pg = &st.members[self.i].pg;
        let lines = pg.history.iter().filter(|h| h.timeline < timeline);
        let text: String = lines
            .map(|h| format!("{}\t{}\t{}\n", h.timeline, format_lsn(h.lsn), h.reason))
            .collect();
        let stamp = chrono::DateTime::from_timestamp_millis(pg.promoted_ms as i64)
            .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
            .unwrap_or_default();
        Some((text, stamp))
    }

    fn move_data_dir_aside(&self) -> PgResult<()> {
        self.remove_data_dir()
            .map_err(|e| PgError::Timeout(e.to_string()))
    }

    fn remove_data_dir(&self) -> std::io::Result<()> {
        let mut st = self.world.lock();
        let pg = &mut st.members[self.i].pg;
        pg.has_data = false;
        pg.running = false;
        Ok(())
    }

    async fn clone_data(
        &self,
        plans: &[MethodPlan],
        basebackup_conninfo: &str,
    ) -> Result<String, Vec<String>> {
        let Some(plan) = plans.first() else {
            return Err(vec!["no replica method can run".into()]);
        };
        self.world
            .take(self.i, self.gen, self.world.cfg.clone_ms)
            .await;
        match self.resync_from(basebackup_conninfo, "pg_basebackup") {
            Ok(()) => Ok(plan.name.clone()),
            Err(e) => Err(vec![e.to_string()]),
        }
    }

    async fn run_bootstrap_command(&self, _plan: &BootstrapPlan) -> Result<(), String> {
        Err("the simulated cluster is bootstrapped already".into())
    }
}

/// Stops member `i`'s postmaster (`clean`: with a shutdown checkpoint). A primary's
/// walsenders send everything up to the shutdown checkpoint before they exit.
pub fn stop_member(world: &World, st: &mut super::world::State, i: usize, clean: bool) {
    let pg = &mut st.members[i].pg;
    if !pg.running {
        return;
    }
    let was_primary = pg.role == PgRole::Primary;
    pg.stop(clean);
    let lsn = pg.lsn;
    if was_primary && clean {
        let mut last = st.members[i].pg.clone();
        last.running = true;
        let name = st.members[i].name.clone();
        for m in &mut st.members {
            if m.pg.following.as_deref() == Some(name.as_str()) {
                m.pg.receive_from(&last, true);
            }
        }
    }
    let kind = EventKind::Stopped {
        was_primary,
        clean,
        lsn,
    };
    world.event(st, i, kind);
}
