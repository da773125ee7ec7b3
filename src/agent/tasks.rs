//! Long actions run in the background while the HA loop keeps going (Patroni's AsyncExecutor).

use super::callbacks::{CallbackRole, Effect};
use super::replica_methods::{plan_methods, CloneSource};
use super::shared::Shared;
use super::task_error::TaskError;
use crate::config::{DynamicConfig, NodeConfig};
use crate::dcs::Cluster;
use crate::postgres::names::slot_name_for_member;
use crate::postgres::render::{render_conninfo, ConninfoInput};
use crate::postgres::RecoveryTarget;
use serde_json::{Map, Value};
use std::sync::Arc;
use std::time::Duration;
use tokio::time::Instant;

/// Result of a background task: a log line, or an error; `fatal` stops the agent.
#[derive(Debug)]
pub struct TaskOutcome {
    /// What to log.
    pub message: String,
    /// Whether it succeeded.
    pub ok: bool,
    /// The agent must exit (failed bootstrap).
    pub fatal: bool,
}

impl TaskOutcome {
    /// A success with its log line.
    pub fn ok(m: impl Into<String>) -> Self {
        TaskOutcome {
            message: m.into(),
            ok: true,
            fatal: false,
        }
    }
    /// A (non-fatal) failure with its log line.
    pub fn failed(m: impl Into<String>) -> Self {
        TaskOutcome {
            message: m.into(),
            ok: false,
            fatal: false,
        }
    }
}

/// Recovery settings to follow `leader` (None → no upstream).
pub fn recovery_for(
    sh: &Shared,
    cluster: Option<&Cluster>,
    leader: Option<&str>,
    dynamic: &DynamicConfig,
) -> RecoveryTarget {
    let node = sh.node();
    let member = leader.and_then(|l| cluster.and_then(|c| c.member(l)));
    let conninfo = member.and_then(|m| m.data.host_port()).map(|(host, port)| {
        let passfile = sh.pg.settings.pgpass.display().to_string();
        render_conninfo(&ConninfoInput {
            host: &host,
            port,
            user: &node.postgresql.authentication.replication.username,
            passfile: Some(&passfile),
            application_name: &node.name,
            ssl: &node.postgresql.authentication.replication.ssl,
            dbname: None,
        })
    });
    RecoveryTarget {
        conninfo,
        slot: (dynamic.use_slots && leader.is_some()).then(|| slot_name_for_member(&node.name)),
        recovery_conf: effective_recovery_conf(&node, dynamic),
        overrides: standby_overrides(dynamic, false),
    }
}

/// `postgresql.recovery_conf` in effect: the node file's, else the dynamic one.
fn effective_recovery_conf(node: &NodeConfig, dynamic: &DynamicConfig) -> Map<String, Value> {
    crate::postgres::recovery_conf::effective(
        &node.postgresql.recovery_conf,
        dynamic.recovery_conf.as_ref(),
    )
    .clone()
}

/// The recovery settings a standby cluster adds (none in a normal cluster).
fn standby_overrides(dynamic: &DynamicConfig, standby_leader: bool) -> Vec<(String, String)> {
    dynamic
        .standby_cluster
        .iter()
        .flat_map(|s| s.recovery_overrides(standby_leader))
        .map(|(k, v)| (k.to_string(), v))
        .collect()
}

/// Recovery settings of the standby leader: stream from `standby_cluster.host`/`port`
/// (default port 5432) with our replication credentials, using `primary_slot_name` on the
/// remote when given (and `use_slots`), plus the section's recovery settings. Without a
/// host only `restore_command` feeds it. Several hosts get `target_session_attrs=read-write`
/// so that the one that is the primary is used.
pub fn remote_recovery(sh: &Shared, dynamic: &DynamicConfig) -> RecoveryTarget {
    let node = sh.node();
    let sc = dynamic.standby_cluster.clone().unwrap_or_default();
    let conninfo = sc.host.as_deref().map(|host| {
        let passfile = sh.pg.settings.pgpass.display().to_string();
        let mut c = render_conninfo(&ConninfoInput {
            host,
            port: sc.port.unwrap_or(5432),
            user: &node.postgresql.authentication.replication.username,
            passfile: Some(&passfile),
            application_name: &node.name,
            ssl: &node.postgresql.authentication.replication.ssl,
            dbname: None,
        });
        if host.contains(',') {
            c.push_str(" target_session_attrs=read-write");
        }
        c
    });
    RecoveryTarget {
        slot: sc
            .primary_slot_name
            .clone()
            .filter(|_| dynamic.use_slots && conninfo.is_some()),
        conninfo,
        recovery_conf: effective_recovery_conf(&node, dynamic),
        overrides: standby_overrides(dynamic, true),
    }
}

/// The recovery settings for what PostgreSQL follows now (the remote primary on the
/// standby leader, else the recorded member).
pub fn current_recovery(
    sh: &Shared,
    cluster: Option<&Cluster>,
    dynamic: &DynamicConfig,
) -> RecoveryTarget {
    if sh.following_remote() {
        return remote_recovery(sh, dynamic);
    }
    recovery_for(sh, cluster, sh.following().as_deref(), dynamic)
}

/// Records whom PostgreSQL follows: `leader` only when the recovery settings could name it
/// (its member key gave an address). Otherwise nobody, so that the next cycle renders them
/// again once the leader has published its member key (after an etcd stall every member key
/// is gone, and a new leader publishes its own only at the end of its cycle).
pub(super) fn record_following(sh: &Shared, rec: &RecoveryTarget, leader: Option<String>) {
    if let (Some(l), None) = (&leader, &rec.conninfo) {
        tracing::warn!("the address of leader {l} is not known yet; following it as soon as it is");
    }
    sh.set_following(leader.filter(|_| rec.conninfo.is_some()));
}

/// Waits until the local instance answers SQL.
async fn wait_ready(sh: &Shared, timeout: Duration) -> Result<(), TaskError> {
    let deadline = Instant::now() + timeout;
    loop {
        match sh.sql.state().await {
            Ok(_) => return Ok(()),
            Err(e) if Instant::now() >= deadline => return Err(TaskError::NotReady(e)),
            Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
}

/// initdb → configure → start → roles → `initialize` sysid → `config` → leader lock.
pub async fn bootstrap(
    sh: Arc<Shared>,
    dynamic: DynamicConfig,
    dcs_config: serde_json::Value,
) -> TaskOutcome {
    match bootstrap_steps(&sh, &dynamic, &dcs_config).await {
        Ok(()) => TaskOutcome::ok("initialized a new cluster"),
        Err(e) => {
            tracing::error!("bootstrap failed: {e}");
            let _ = sh.ctl.stop(crate::ha::StopMode::Immediate).await;
            if let Err(e) = sh.dcs.cancel_initialize().await {
                tracing::error!("failed to remove initialize key: {e}");
            } else {
                tracing::info!(
                    "removing initialize key after failed attempt to bootstrap the cluster"
                );
            }
            let _ = sh.ctl.move_data_dir_aside();
            TaskOutcome {
                message: format!("bootstrap failed: {e}"),
                ok: false,
                fatal: true,
            }
        }
    }
}

async fn bootstrap_steps(
    sh: &Shared,
    dynamic: &DynamicConfig,
    dcs_config: &serde_json::Value,
) -> Result<(), TaskError> {
    let node = sh.node();
    let pg = &sh.pg;
    create_data_and_start(sh, &node, dynamic).await?;
    wait_ready(sh, pg.settings.pg_ctl_timeout).await?;
    let auth = &node.postgresql.authentication;
    if let Some(pw) = &auth.superuser.password {
        sh.sql
            .ensure_role(&auth.superuser.username, Some(pw), "SUPERUSER")
            .await?;
    }
    if auth.replication.username != auth.superuser.username {
        sh.sql
            .ensure_role(
                &auth.replication.username,
                auth.replication.password.as_deref(),
                "REPLICATION",
            )
            .await?;
    }
    if let Some(rw) = auth
        .rewind
        .as_ref()
        .filter(|r| r.username != auth.superuser.username)
    {
        sh.sql
            .ensure_role(&rw.username, rw.password.as_deref(), "")
            .await?;
        let u = crate::postgres::names::quote_ident(&rw.username);
        let grants = format!(
            "GRANT EXECUTE ON function pg_catalog.pg_ls_dir(text, boolean, boolean) TO {u};\
             GRANT EXECUTE ON function pg_catalog.pg_stat_file(text, boolean) TO {u};\
             GRANT EXECUTE ON function pg_catalog.pg_read_binary_file(text) TO {u};\
             GRANT EXECUTE ON function pg_catalog.pg_read_binary_file(text, bigint, bigint, boolean) TO {u};"
        );
        sh.sql.execute(&grants).await?;
    }
    if let Some(script) = node
        .bootstrap
        .as_ref()
        .and_then(|b| b.post_bootstrap.clone())
    {
        run_post_bootstrap(sh, &script).await?;
    }
    claim_new_cluster(sh, dcs_config).await
}

/// The end of a bootstrap (a new cluster, or a new standby cluster's first clone): the
/// `initialize` key gets the system identifier, `config` the bootstrap configuration, and
/// this member takes the leader key.
pub(super) async fn claim_new_cluster(sh: &Shared, dcs_config: &Value) -> Result<(), TaskError> {
    let sysid = sh
        .ctl
        .controldata()
        .await
        .and_then(|c| c.sysid().map(str::to_string))
        .ok_or("cannot read the system identifier")?;
    sh.dcs.set_initialize(&sysid, false).await?;
    sh.dcs.write_config(dcs_config, Some(0)).await?;
    if !sh.dcs.try_acquire_leader(&sh.name()).await? {
        return Err("somebody else took the leader lock during bootstrap".into());
    }
    Ok(())
}

/// Creates the data directory (initdb, or the custom `bootstrap.method`) and starts
/// PostgreSQL as the new cluster's primary.
async fn create_data_and_start(
    sh: &Shared,
    node: &crate::config::NodeConfig,
    dynamic: &DynamicConfig,
) -> Result<(), TaskError> {
    let pg = &sh.ctl;
    let hba_managed = node.postgresql.pg_hba.is_some() || dynamic.pg_hba.is_some();
    if let Some((name, section)) = node.bootstrap.as_ref().and_then(|b| b.custom_method()) {
        let plan = super::custom_bootstrap::plan_bootstrap(
            name,
            section,
            &node.scope,
            &sh.pg.settings.data_dir,
        )
        .map_err(TaskError::Refused)?;
        super::custom_bootstrap::run(sh, dynamic, &plan).await?;
        if !hba_managed {
            pg.append_bootstrap_hba()?;
            pg.reload().await?;
        }
    } else {
        pg.initdb().await?;
        if !hba_managed {
            pg.append_bootstrap_hba()?;
        }
        pg.write_pgpass()?;
        pg.write_config(&dynamic.parameters, dynamic.pg_hba.as_deref(), None)?;
        for w in pg.start(&dynamic.parameters).await? {
            tracing::warn!("{w}");
        }
    }
    Ok(())
}

async fn run_post_bootstrap(sh: &Shared, script: &str) -> Result<(), TaskError> {
    let node = sh.node();
    let (host, port) = (sh.pg.settings.local_host.clone(), sh.pg.settings.port);
    let url = format!(
        "postgres://{}@{host}:{port}/postgres",
        node.postgresql.authentication.superuser.username
    );
    let mut parts = script.split_whitespace();
    let prog = parts.next().ok_or("empty post_bootstrap")?;
    let status = tokio::process::Command::new(prog)
        .args(parts)
        .arg(&url)
        .env("PGPASSFILE", &sh.pg.settings.pgpass)
        .status()
        .await
        .map_err(|e| TaskError::Script(format!("post_bootstrap {script}: {e}")))?;
    if !status.success() {
        let why = format!("post_bootstrap script {script} returned {status}");
        return Err(TaskError::Script(why));
    }
    Ok(())
}

/// pg_basebackup from `source`, then start as a replica following the leader.
pub async fn create_replica(
    sh: Arc<Shared>,
    cluster: Cluster,
    source: String,
    follow: Option<String>,
    dynamic: DynamicConfig,
) -> TaskOutcome {
    let rec = recovery_for(&sh, Some(&cluster), Some(&source), &dynamic);
    let (Some(conninfo), Some((host, port))) = (
        rec.conninfo.clone(),
        cluster.member(&source).and_then(|m| m.data.host_port()),
    ) else {
        return TaskOutcome::failed(format!("cannot find the address of {source}"));
    };
    let node = sh.node();
    let clone_source = CloneSource {
        connstring: format!(
            "postgres://{}@{}:{port}/postgres",
            node.postgresql.authentication.replication.username,
            if host.contains(':') {
                format!("[{host}]")
            } else {
                host.clone()
            }
        ),
    };
    let pg_config = standby_clone_config(&node.postgresql, &dynamic);
    let (plans, warnings) = plan_methods(&pg_config, &node.scope, Some(&clone_source));
    for w in warnings {
        tracing::warn!("{w}");
    }
    let target = format!("{conninfo} dbname=postgres");
    let method = match sh.ctl.clone_data(&plans, &target).await {
        Ok(method) => method,
        Err(failures) => {
            let _ = sh.ctl.remove_data_dir();
            return TaskOutcome::failed(format!(
                "failed to bootstrap replica from {source}: every method failed ({}); trying again in the next cycle",
                failures.join("; ")
            ));
        }
    };
    let rec = recovery_for(&sh, Some(&cluster), follow.as_deref(), &dynamic);
    match start(&sh, &dynamic, Some(&rec)).await {
        Ok(()) => {
            record_following(&sh, &rec, follow);
            sh.callback(Effect::Started(CallbackRole::Replica));
            TaskOutcome::ok(format!(
                "replica has been created using {method} from {source}"
            ))
        }
        Err(e) => TaskOutcome::failed(e.to_string()),
    }
}

/// In a standby cluster every clone uses `standby_cluster.create_replica_methods` when it is
/// set (Patroni); the methods' sections stay in the node's `postgresql`.
pub(super) fn standby_clone_config(
    pg: &crate::config::PostgresqlConfig,
    dynamic: &DynamicConfig,
) -> crate::config::PostgresqlConfig {
    let mut out = pg.clone();
    if let Some(m) = dynamic
        .standby_cluster
        .as_ref()
        .and_then(|s| s.create_replica_methods.clone())
    {
        out.create_replica_methods = Some(m);
    }
    out
}

/// No leader runs: creates the data with the methods marked `no_leader` (a restore from a
/// backup repository), then starts a standby without upstream that replays what its
/// `restore_command` finds; the leader race decides what follows (Patroni's
/// `bootstrap (without leader)`).
pub async fn create_replica_without_leader(sh: Arc<Shared>, dynamic: DynamicConfig) -> TaskOutcome {
    let node = sh.node();
    let (plans, warnings) = plan_methods(&node.postgresql, &node.scope, None);
    for w in warnings {
        tracing::warn!("{w}");
    }
    let method = match sh.ctl.clone_data(&plans, "").await {
        Ok(method) => method,
        Err(failures) => {
            let _ = sh.ctl.remove_data_dir();
            return TaskOutcome::failed(format!(
                "failed to bootstrap without leader: {}; trying again in the next cycle",
                failures.join("; ")
            ));
        }
    };
    let rec = recovery_for(&sh, None, None, &dynamic);
    match start(&sh, &dynamic, Some(&rec)).await {
        Ok(()) => {
            record_following(&sh, &rec, None);
            sh.callback(Effect::Started(CallbackRole::Replica));
            TaskOutcome::ok(format!(
                "replica has been created using {method} (without leader)"
            ))
        }
        Err(e) => TaskOutcome::failed(e.to_string()),
    }
}

/// Writes config files and starts PostgreSQL (as replica when `rec` is Some).
pub async fn start(
    sh: &Shared,
    dynamic: &DynamicConfig,
    rec: Option<&RecoveryTarget>,
) -> Result<(), TaskError> {
    sh.ctl.write_pgpass()?;
    sh.ctl
        .write_config(&dynamic.parameters, dynamic.pg_hba.as_deref(), rec)?;
    for w in sh.ctl.start(&dynamic.parameters).await? {
        tracing::warn!("{w}");
    }
    sh.sql.reset().await;
    wait_ready(sh, sh.pg.settings.pg_ctl_timeout).await
}

/// Starts as replica following `leader` (or as primary when `leader` is None and `primary`).
pub async fn start_task(
    sh: Arc<Shared>,
    cluster: Option<Cluster>,
    leader: Option<String>,
    primary: bool,
    dynamic: DynamicConfig,
) -> TaskOutcome {
    let rec = (!primary).then(|| recovery_for(&sh, cluster.as_ref(), leader.as_deref(), &dynamic));
    match start(&sh, &dynamic, rec.as_ref()).await {
        Ok(()) => {
            match &rec {
                Some(rec) => record_following(&sh, rec, leader),
                None => sh.set_following(None),
            }
            sh.callback(Effect::Started(CallbackRole::of(primary)));
            TaskOutcome::ok("postgres started")
        }
        Err(e) => TaskOutcome::failed(format!("failed to start postgres: {e}")),
    }
}

/// Promotes the local standby (pg_ctl promote), then rewrites the config without recovery
/// settings. The members' slots are created first (a standby can hold
/// physical slots, and they survive the promotion), so replicas that reconnect at once find
/// theirs instead of waiting PostgreSQL's 5 s retry.
pub async fn promote(
    sh: Arc<Shared>,
    dynamic: DynamicConfig,
    slots: Vec<String>,
    sync_names: Option<(String, RecoveryTarget)>,
) -> TaskOutcome {
    if !sh.pre_promote().await {
        tracing::warn!(
            "Releasing the leader key voluntarily because the pre-promote script failed"
        );
        if let Err(e) = sh.dcs.release_leader(&sh.name()).await {
            tracing::error!("failed to release the leader lock: {e}");
        }
        return TaskOutcome::failed("Promotion cancelled because the pre-promote script failed");
    }
    create_missing_slots(&sh, &slots).await;
    if let Some((value, recovery)) = sync_names {
        // Commits after the promotion already wait for the standbys the sync key allows
        // (strict mode: for a standby nobody has until one is chosen). The recovery
        // settings stay as they are until PostgreSQL leaves recovery.
        tracing::info!("setting synchronous_standby_names to '{value}' before promoting");
        sh.ctl.set_sync_names_for_promotion(value);
        let (params, hba) = (&dynamic.parameters, dynamic.pg_hba.as_deref());
        if let Ok(true) = sh.ctl.write_config(params, hba, Some(&recovery)) {
            let _ = sh.ctl.reload().await;
        }
    }
    if let Err(e) = sh.ctl.promote().await {
        return TaskOutcome::failed(format!("promote failed: {e}"));
    }
    sh.set_following(None);
    if let Ok(true) = sh
        .ctl
        .write_config(&dynamic.parameters, dynamic.pg_hba.as_deref(), None)
    {
        let _ = sh.ctl.reload().await;
    }
    sh.callback(Effect::Promoted);
    let _ = sh.sql.checkpoint().await;
    TaskOutcome::ok("promoted self to leader")
}

/// Creates those of `slots` that do not exist yet; failures are logged (the leader's next
/// cycle creates what is still missing).
pub(super) async fn create_missing_slots(sh: &Shared, slots: &[String]) {
    if slots.is_empty() {
        return;
    }
    let existing = match sh.sql.physical_slots().await {
        Ok(s) => s,
        Err(e) => {
            tracing::warn!("failed to list replication slots: {e}");
            return;
        }
    };
    for slot in slots.iter().filter(|s| !existing.contains(s)) {
        match sh.sql.create_physical_slot(slot).await {
            Ok(()) => tracing::info!("created physical replication slot {slot}"),
            Err(e) => tracing::warn!("failed to create replication slot {slot}: {e}"),
        }
    }
}

/// Stops PostgreSQL (`fast`/`immediate`), optionally releases the lock, restarts as a replica.
pub async fn demote(
    sh: Arc<Shared>,
    cluster: Option<Cluster>,
    mode: crate::ha::DemoteMode,
    dynamic: DynamicConfig,
) -> TaskOutcome {
    use crate::ha::DemoteMode;
    let name = sh.name();
    if let Err(e) = sh.stop_postgres(mode.stop_mode()).await {
        tracing::error!("failed to stop postgres while demoting: {e}");
    }
    if matches!(mode, DemoteMode::Graceful | DemoteMode::Immediate) {
        let _ = sh.dcs.release_leader(&name).await;
    }
    let leader = match mode {
        DemoteMode::Offline => None,
        _ => cluster
            .as_ref()
            .and_then(|c| c.leader_name())
            .filter(|l| *l != name)
            .map(str::to_string),
    };
    let rec = recovery_for(&sh, cluster.as_ref(), leader.as_deref(), &dynamic);
    match start(&sh, &dynamic, Some(&rec)).await {
        Ok(()) => {
            record_following(&sh, &rec, leader);
            sh.callback(Effect::Demoted);
            TaskOutcome::ok("demoted self")
        }
        Err(e) => TaskOutcome::failed(format!(
            "failed to start postgres as replica after demote: {e}"
        )),
    }
}
