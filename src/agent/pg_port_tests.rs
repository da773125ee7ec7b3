//! The background tasks act on the local instance only through the PostgreSQL control port:
//! a recording fake stands in for PostgreSQL, and each test checks the operations a task
//! asks for, in order.

use super::*;
use crate::agent::shared::Shared;
use crate::agent::sql_port::fake::FakeSql;
use crate::config::{DynamicConfig, NodeConfig};
use crate::dcs::memory::MemoryDcs;
use crate::dcs::{Dcs, Keys};
use crate::postgres::{Following, PgError, PgRuntime};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Records every operation; `start` fails when `fail_start`.
#[derive(Default)]
struct FakePg {
    calls: Mutex<Vec<String>>,
    running: std::sync::atomic::AtomicBool,
    fail_start: bool,
    following: Mutex<Following>,
}

impl FakePg {
    fn record(&self, call: impl Into<String>) {
        self.calls.lock().unwrap().push(call.into());
    }
    fn calls(&self) -> Vec<String> {
        self.calls.lock().unwrap().clone()
    }
    fn set_running(&self, running: bool) {
        self.running
            .store(running, std::sync::atomic::Ordering::SeqCst);
    }
}

#[async_trait]
impl PgControl for FakePg {
    fn is_running(&self) -> bool {
        self.running.load(std::sync::atomic::Ordering::SeqCst)
    }
    async fn controldata(&self) -> Option<ControlData> {
        None
    }
    fn data_dir_empty(&self) -> bool {
        false
    }
    async fn replay_timeline(&self) -> PgResult<u64> {
        Err(PgError::Timeout("fake: no replication connection".into()))
    }
    fn write_pgpass(&self) -> PgResult<()> {
        self.record("write_pgpass");
        Ok(())
    }
    fn write_config(
        &self,
        _params: &Map<String, Value>,
        _hba: Option<&[String]>,
        recovery: Option<&RecoveryTarget>,
    ) -> PgResult<bool> {
        let role = if recovery.is_some() {
            "replica"
        } else {
            "primary"
        };
        self.record(format!("write_config {role}"));
        Ok(true)
    }
    fn write_signal(&self, name: &str) -> PgResult<()> {
        self.record(format!("write_signal {name}"));
        Ok(())
    }
    fn append_bootstrap_hba(&self) -> PgResult<()> {
        self.record("append_bootstrap_hba");
        Ok(())
    }
    async fn initdb(&self) -> PgResult<()> {
        self.record("initdb");
        Ok(())
    }
    async fn start(&self, _params: &Map<String, Value>) -> PgResult<Vec<String>> {
        self.record("start");
        if self.fail_start {
            return Err(PgError::Timeout("fake: start failed".into()));
        }
        self.set_running(true);
        Ok(Vec::new())
    }
    async fn stop(&self, mode: StopMode) -> PgResult<()> {
        self.record(format!("stop {mode:?}"));
        self.set_running(false);
        Ok(())
    }
    async fn promote(&self) -> PgResult<()> {
        self.record("promote");
        Ok(())
    }
    async fn reload(&self) -> PgResult<()> {
        self.record("reload");
        Ok(())
    }
    async fn rewind(&self, _conninfo: &str, _params: &Map<String, Value>) -> PgResult<()> {
        self.record("rewind");
        Ok(())
    }
    fn following(&self) -> Following {
        self.following.lock().unwrap().clone()
    }
    fn set_following(&self, following: Following) {
        *self.following.lock().unwrap() = following;
    }
    fn sync_names(&self) -> Option<String> {
        None
    }
    fn set_sync_names(&self, value: Option<String>) {
        self.record(format!("set_sync_names {value:?}"));
    }
    fn set_sync_names_for_promotion(&self, value: String) {
        self.record(format!("set_sync_names_for_promotion {value}"));
    }
    fn write_slot_state(&self, name: &str, _state: &[u8]) -> PgResult<()> {
        self.record(format!("write_slot_state {name}"));
        Ok(())
    }
    fn history_file(&self, _timeline: u64) -> Option<(String, String)> {
        None
    }
    fn move_data_dir_aside(&self) -> PgResult<()> {
        self.record("move_data_dir_aside");
        Ok(())
    }
    fn remove_data_dir(&self) -> std::io::Result<()> {
        self.record("remove_data_dir");
        Ok(())
    }
    async fn clone_data(
        &self,
        plans: &[MethodPlan],
        _conninfo: &str,
    ) -> Result<String, Vec<String>> {
        self.record("clone_data");
        let first = plans.first().map(|p| p.name.clone());
        first.ok_or_else(|| vec!["no replica method can run".to_string()])
    }
    async fn run_bootstrap_command(&self, _plan: &BootstrapPlan) -> Result<(), String> {
        self.record("run_bootstrap_command");
        Ok(())
    }
}

/// A `Shared` whose PostgreSQL is `ctl`, answering SQL as a running primary, over an
/// in-memory DCS.
fn shared(ctl: Arc<FakePg>) -> (Arc<Shared>, Arc<dyn Dcs>) {
    let node = NodeConfig {
        name: "m1".into(),
        scope: "t".into(),
        ..Default::default()
    };
    let dcs: Arc<dyn Dcs> = Arc::new(MemoryDcs::new(
        Keys::new("/service", "t"),
        Duration::from_secs(30),
    ));
    let security = Arc::new(crate::tls::security::ApiSecurity::load(&node).unwrap());
    let pg = Arc::new(Postgres::new(crate::agent::run::pg_settings(&node)).unwrap());
    let sql = FakeSql {
        state: Some(PgRuntime::default()),
        replication: Vec::new(),
    };
    let (commands, _rx) = tokio::sync::mpsc::unbounded_channel();
    let sh = Shared::new(crate::agent::shared::SharedParts {
        node,
        dcs: dcs.clone(),
        pg,
        ctl,
        sql: Arc::new(sql),
        security: security.clone(),
        peers: Arc::new(crate::agent::ports::HttpPeers::new(security)),
        clock: Arc::new(crate::agent::ports::SystemClock),
        commands,
    });
    (Arc::new(sh), dcs)
}

#[tokio::test]
async fn promote_runs_pg_ctl_promote_then_drops_the_recovery_settings() {
    let pg = Arc::new(FakePg::default());
    let (sh, _) = shared(pg.clone());
    let out = crate::agent::tasks::promote(sh, DynamicConfig::default(), vec![], None).await;
    assert!(out.ok, "{}", out.message);
    assert_eq!(
        pg.calls(),
        ["promote", "write_config primary", "reload"],
        "promotion through the port"
    );
}

#[tokio::test]
async fn restart_stops_fast_and_starts_with_the_configuration_written_first() {
    let pg = Arc::new(FakePg::default());
    pg.set_running(true);
    let (sh, _) = shared(pg.clone());
    let out = crate::agent::rejoin_tasks::restart(sh, None, false, DynamicConfig::default()).await;
    assert!(out.ok, "{}", out.message);
    assert_eq!(
        pg.calls(),
        ["stop Fast", "write_pgpass", "write_config primary", "start"]
    );
}

#[tokio::test]
async fn a_failed_start_after_demote_is_reported_and_the_lock_is_released() {
    let pg = Arc::new(FakePg {
        fail_start: true,
        ..Default::default()
    });
    pg.set_running(true);
    let (sh, dcs) = shared(pg.clone());
    assert!(dcs.try_acquire_leader("m1").await.unwrap());
    let mode = crate::ha::DemoteMode::Graceful;
    let out = crate::agent::tasks::demote(sh, None, mode, DynamicConfig::default()).await;
    assert!(
        !out.ok && out.message.contains("start postgres as replica"),
        "{}",
        out.message
    );
    assert_eq!(
        pg.calls(),
        ["stop Fast", "write_pgpass", "write_config replica", "start"]
    );
    let cluster = dcs.cluster().await.unwrap();
    assert_eq!(
        cluster.leader_name(),
        None,
        "graceful demote releases the lock"
    );
}

#[test]
fn the_real_port_reads_a_timeline_history_file_with_its_time() {
    let dir = tempfile::tempdir().unwrap();
    let mut node = NodeConfig::default();
    node.postgresql.data_dir = dir.path().to_path_buf();
    let pg = Postgres::new(crate::agent::run::pg_settings(&node)).unwrap();
    let ctl: &dyn PgControl = &pg;
    assert_eq!(ctl.history_file(2), None, "no file yet");
    std::fs::create_dir_all(dir.path().join("pg_wal")).unwrap();
    let line = "1\t0/3000060\tno recovery target specified\n";
    std::fs::write(dir.path().join("pg_wal/00000002.history"), line).unwrap();
    let (text, stamp) = ctl.history_file(2).expect("history of timeline 2");
    assert_eq!(text, line);
    assert!(
        chrono::DateTime::parse_from_rfc3339(&stamp).is_ok(),
        "{stamp}"
    );
    assert_eq!(ctl.history_file(3), None, "another timeline's file");
}
