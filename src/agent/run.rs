//! Wiring of the agent process: configuration, DCS connection, API server, HA loop, signals.

use super::driver::{AgentError, Driver};
use super::shared::Shared;
use crate::config::NodeConfig;
use crate::dcs::etcd::{EtcdDcs, EtcdSettings};
use crate::dcs::{Dcs, Keys};
use crate::postgres::{Creds, LocalSql, PgSettings, Postgres};
use crate::tls::security::ApiSecurity;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

/// Errors starting or running the agent.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// PostgreSQL cannot be controlled (e.g. no postgres user).
    #[error(transparent)]
    Pg(#[from] crate::postgres::PgError),
    /// The REST API could not bind.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// Address.
        addr: String,
        /// Cause.
        #[source]
        source: std::io::Error,
    },
    /// The loop stopped with a fatal error.
    #[error(transparent)]
    Agent(#[from] AgentError),
    /// A certificate, key or allowlist entry of the REST API cannot be used.
    #[error(transparent)]
    Security(#[from] crate::tls::security::SecurityError),
}

/// Resolves PostgreSQL settings from the node config.
pub fn pg_settings(node: &NodeConfig) -> PgSettings {
    let p = &node.postgresql;
    let hosts = p.listen_hosts();
    let local_host = hosts
        .iter()
        .find(|h| !matches!(h.as_str(), "*" | "0.0.0.0" | "::" | ""))
        .cloned()
        .unwrap_or_else(|| "127.0.0.1".into());
    let creds = |c: &crate::config::Credentials| Creds {
        username: c.username.clone(),
        password: c.password.clone(),
        ssl: c.ssl.clone(),
    };
    PgSettings {
        name: node.name.clone(),
        scope: node.scope.clone(),
        data_dir: p.data_dir.clone(),
        config_dir: p.config_dir.clone(),
        bin_dir: p.resolved_bin_dir(std::env::var_os("PATH").as_deref()),
        pgpass: p.pgpass_path(&node.name),
        listen_addresses: hosts.join(","),
        port: p.listen_port(),
        local_host,
        local_socket: p.use_unix_socket.then(|| p.socket_dir()),
        local_socket_repl: p.use_unix_socket_repl.then(|| p.socket_dir()),
        superuser: creds(&p.authentication.superuser),
        replication: creds(&p.authentication.replication),
        rewind: p.authentication.rewind.as_ref().map(creds),
        pg_ctl_timeout: crate::config::timing::duration(p.pg_ctl_timeout.max(5)),
        local_parameters: p.parameters.clone(),
        local_pg_hba: p.pg_hba.clone(),
        local_pg_ident: p.pg_ident.clone(),
        local_recovery_conf: p.recovery_conf.clone(),
        initdb_args: node
            .bootstrap
            .as_ref()
            .map(|b| b.initdb.clone())
            .unwrap_or_default(),
        bootstrap_pg_hba: node
            .bootstrap
            .as_ref()
            .map(|b| b.pg_hba.clone())
            .unwrap_or_default(),
    }
}

/// Connects to etcd, retrying until it answers or `shutdown` fires.
pub async fn connect_dcs(
    node: &NodeConfig,
    shutdown: &mut tokio::sync::watch::Receiver<bool>,
) -> Option<Arc<EtcdDcs>> {
    let settings = EtcdSettings::from_config(&node.etcd3);
    let keys = Keys::new(&node.namespace, &node.scope);
    loop {
        match EtcdDcs::connect(&settings, keys.clone(), true).await {
            Ok(d) => return Some(d),
            // Wrong credentials or TLS settings: said loudly each time, still waiting (etcd
            // may be reconfigured); an etcd not up yet: waiting quietly.
            Err(e) if !e.is_retryable() => tracing::error!("waiting on etcd: {e}"),
            Err(e) => tracing::info!("waiting on etcd: {e}"),
        }
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_secs(1)) => {}
            _ = shutdown.changed() => return None,
        }
    }
}

/// Starts the REST server in front of the agent: its shared state, the bound listener and
/// the stop signal; the server runs as a spawned task. Handed in by the process wiring
/// (`main` passes `api::spawn_server`), so the agent does not depend on the REST server.
pub type ServeApi = fn(Arc<Shared>, tokio::net::TcpListener, tokio::sync::watch::Receiver<bool>);

/// Runs the agent until SIGTERM/SIGINT, its REST API started by `serve_api`.
pub async fn run_agent(
    node: NodeConfig,
    config_path: PathBuf,
    min_ttl: u64,
    serve_api: ServeApi,
) -> Result<(), RunError> {
    let (stop_tx, mut stop_rx) = tokio::sync::watch::channel(false);
    spawn_signal_handler(stop_tx);
    crate::tls::install_provider();
    let security = Arc::new(ApiSecurity::load(&node)?);
    let pg = Arc::new(Postgres::new(pg_settings(&node))?);
    let sql = Arc::new(
        LocalSql::new(pg.local_conninfo("postgres")).with_ssl(&pg.settings.superuser.ssl)?,
    );
    let listen = node.restapi.listen.clone();
    let listener = tokio::net::TcpListener::bind(&listen)
        .await
        .map_err(|source| RunError::Bind {
            addr: listen.clone(),
            source,
        })?;
    let Some(dcs) = connect_dcs(&node, &mut stop_rx).await else {
        return Ok(());
    };
    let dcs: Arc<dyn Dcs> = dcs;
    let (cmd_tx, cmd_rx) = tokio::sync::mpsc::unbounded_channel();
    let parts = super::shared::SharedParts {
        node,
        dcs,
        pg: pg.clone(),
        ctl: pg,
        sql,
        security: security.clone(),
        peers: Arc::new(super::ports::HttpPeers::new(security.clone())),
        clock: Arc::new(super::ports::SystemClock),
        commands: cmd_tx,
    };
    let sh = Arc::new(Shared {
        config_path,
        min_ttl,
        ..Shared::new(parts)
    });
    let scheme = sh.node().restapi.scheme();
    tracing::info!("REST API listening on {scheme}://{listen}");
    serve_api(sh.clone(), listener, stop_rx.clone());
    spawn_reload_handler(sh.clone());
    let result = Driver::new(sh.clone(), cmd_rx).run(stop_rx).await;
    shutdown(&sh).await;
    result.map_err(RunError::from)
}

/// Patroni's shutdown: stop PostgreSQL cleanly, then release the leader key if we hold it.
async fn shutdown(sh: &Shared) {
    let name = sh.name();
    if sh.status().dynamic.pause {
        tracing::info!("Leader key is not deleted and Postgresql is not stopped due paused state");
        return;
    }
    tracing::info!("shutting down: stopping postgres");
    let primary = sh.status().role == "primary";
    let was_running = sh.ctl.is_running();
    match sh.stop_postgres(crate::ha::StopMode::Fast).await {
        Ok(()) if !was_running => {}
        Ok(()) => sh.callback(super::callbacks::Effect::Stopped(
            super::callbacks::CallbackRole::of(primary),
        )),
        Err(e) => tracing::error!("failed to stop postgres: {e}"),
    }
    sh.callbacks
        .wait_running(std::time::Duration::from_secs(10))
        .await;
    let was_leader = sh.status().has_lock;
    if was_leader {
        // Publish the shutdown checkpoint as the last optime so replicas that have it pass
        // the maximum_lag_on_failover check in the race that follows.
        if let Some(ckpt) = sh.ctl.controldata().await.and_then(|c| c.checkpoint_lsn()) {
            let status = crate::dcs::Status {
                optime: ckpt,
                ..Default::default()
            };
            let _ = sh.dcs.write_status(&status).await;
        }
    }
    let node = sh.node();
    if node.fence.enabled() {
        let socket = super::fencing::fence_socket(&node);
        let data_dir = node.postgresql.data_dir.clone();
        super::fence_client::FenceClient::new(socket, data_dir)
            .stop_if_running()
            .await;
    }
    match sh.dcs.release_leader(&name).await {
        Ok(true) => tracing::info!("Leader key released"),
        Ok(false) => {}
        Err(e) => tracing::warn!("failed to release leader key: {e}"),
    }
}

fn spawn_signal_handler(stop: tokio::sync::watch::Sender<bool>) {
    tokio::spawn(async move {
        use tokio::signal::unix::{signal, SignalKind};
        let (Ok(mut term), Ok(mut int)) = (
            signal(SignalKind::terminate()),
            signal(SignalKind::interrupt()),
        ) else {
            return;
        };
        tokio::select! {
            _ = term.recv() => {}
            _ = int.recv() => {}
        }
        tracing::info!("received shutdown signal");
        let _ = stop.send(true);
    });
}

fn spawn_reload_handler(sh: Arc<Shared>) {
    tokio::spawn(async move {
        use tokio::signal::unix::{signal, SignalKind};
        let Ok(mut hup) = signal(SignalKind::hangup()) else {
            return;
        };
        while hup.recv().await.is_some() {
            // Certificates, CA bundles and allowlist names are read from disk and DNS.
            let sh = sh.clone();
            let _ = tokio::task::spawn_blocking(move || reload_node_config(&sh)).await;
        }
    });
}

/// What a reload did: None when the file could not be loaded (the old one stays), else the
/// keys that changed but need an agent restart.
pub type ReloadOutcome = Option<Vec<&'static str>>;

/// Re-reads the node config file (SIGHUP / `POST /reload`), applies what Patroni applies in
/// place (local parameters, pg_hba and pg_ident — rendered and PostgreSQL reloaded by the
/// next cycle —, tags, callbacks, log settings, REST API certificates, allowlist and
/// authentication) and wakes the loop.
pub fn reload_node_config(sh: &Shared) -> ReloadOutcome {
    let env: std::collections::BTreeMap<String, String> = std::env::vars().collect();
    let (cfg, warnings) = match crate::config::load_node_config(&sh.config_path, &env) {
        Ok(loaded) => loaded,
        Err(e) => {
            tracing::error!("configuration reload failed, keeping the old one: {e}");
            return None;
        }
    };
    for w in warnings {
        tracing::warn!("{w}");
    }
    if let Err(e) = sh.security.reload(&cfg) {
        tracing::error!("REST API TLS/allowlist reload failed, keeping the old ones: {e}");
    }
    if let Err(e) = crate::logging::apply(&cfg.log) {
        tracing::error!("log settings reload failed, keeping the old ones: {e}");
    }
    let restart = crate::config::reload::restart_needed(&sh.node(), &cfg);
    let p = &cfg.postgresql;
    let files = crate::postgres::LocalFiles {
        parameters: p.parameters.clone(),
        pg_hba: p.pg_hba.clone(),
        pg_ident: p.pg_ident.clone(),
        recovery_conf: p.recovery_conf.clone(),
    };
    if sh.pg.set_local_files(files) {
        sh.local_reload
            .store(true, std::sync::atomic::Ordering::SeqCst);
    }
    if let Ok(mut n) = sh.node.write() {
        *n = cfg;
    }
    tracing::info!("reloaded configuration from {}", sh.config_path.display());
    if !restart.is_empty() {
        tracing::warn!(
            "changes of {} need a restart of patronus to take effect",
            restart.join(", ")
        );
    }
    sh.wake.notify_one();
    Some(restart)
}
