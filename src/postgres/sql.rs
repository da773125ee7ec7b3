//! SQL against the local instance: state queries, roles, slots.

use super::error::{PgError, PgResult};
use super::lsn::parse_lsn;
use super::names::{quote_ident, quote_literal};
use super::ssl::PgConnector;
use tokio::sync::Mutex;
use tokio_postgres::Client;

/// What a running instance reports about itself.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PgRuntime {
    /// `pg_is_in_recovery()`.
    pub in_recovery: bool,
    /// Primary: `pg_current_wal_flush_lsn()`.
    pub flush_lsn: Option<u64>,
    /// Replica: `pg_last_wal_receive_lsn()`.
    pub receive_lsn: Option<u64>,
    /// Replica: `pg_last_wal_replay_lsn()`.
    pub replay_lsn: Option<u64>,
    /// Current timeline.
    pub timeline: Option<u64>,
    /// `pg_postmaster_start_time()` as text.
    pub postmaster_start_time: Option<String>,
    /// `server_version_num`.
    pub server_version: i32,
    /// WAL receiver status (`streaming`, …) when one runs.
    pub receiver_status: Option<String>,
    /// Replica: `pg_last_xact_replay_timestamp()`.
    pub replay_timestamp: Option<String>,
    /// Replica: replay paused.
    pub replay_paused: bool,
    /// Database system identifier.
    pub sysid: Option<String>,
}

impl PgRuntime {
    /// Primary flush LSN, or max(receive, replay) on a replica.
    pub fn wal_position(&self) -> Option<u64> {
        if self.in_recovery {
            match (self.receive_lsn, self.replay_lsn) {
                (Some(a), Some(b)) => Some(a.max(b)),
                (a, b) => a.or(b),
            }
        } else {
            self.flush_lsn
        }
    }
}

/// One row of `pg_stat_replication`.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct ReplicationRow {
    /// Role used.
    pub usename: Option<String>,
    /// Standby's application_name (member name).
    pub application_name: Option<String>,
    /// Client address.
    pub client_addr: Option<String>,
    /// `streaming`, `catchup`, …
    pub state: Option<String>,
    /// `async`, `sync`, `potential`, `quorum`.
    pub sync_state: Option<String>,
    /// Sync priority.
    pub sync_priority: Option<i32>,
    /// Flush position the standby reported (not part of Patroni's `/patroni` body).
    #[serde(skip)]
    pub flush_lsn: Option<u64>,
}

const STATE_SQL: &str = "SELECT pg_is_in_recovery(), \
 CASE WHEN pg_is_in_recovery() THEN NULL ELSE pg_current_wal_flush_lsn()::text END, \
 pg_last_wal_receive_lsn()::text, pg_last_wal_replay_lsn()::text, \
 COALESCE(CASE WHEN pg_is_in_recovery() THEN (SELECT received_tli::bigint FROM pg_stat_get_wal_receiver()) \
   ELSE ('x' || substr(pg_walfile_name(pg_current_wal_lsn()), 1, 8))::bit(32)::bigint END, \
   (SELECT timeline_id::bigint FROM pg_control_checkpoint())), \
 to_char(pg_postmaster_start_time() AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS.US') || '+00:00', \
 current_setting('server_version_num')::int, \
 (SELECT status FROM pg_stat_get_wal_receiver()), \
 pg_last_xact_replay_timestamp()::text, \
 CASE WHEN pg_is_in_recovery() THEN pg_is_wal_replay_paused() ELSE false END, \
 (SELECT system_identifier::text FROM pg_control_system())";

/// A lazily (re)connected superuser session to the local instance.
pub struct LocalSql {
    config: tokio_postgres::Config,
    connector: PgConnector,
    client: Mutex<Option<Client>>,
}

impl LocalSql {
    /// Creates the session holder (plain connections); nothing connects until first use.
    pub fn new(config: tokio_postgres::Config) -> Self {
        LocalSql {
            config,
            connector: PgConnector::Plain,
            client: Mutex::new(None),
        }
    }

    /// Connects with the role's libpq TLS keys (`sslmode`, `sslrootcert`, ...); an unusable
    /// file is an error naming it.
    pub fn with_ssl(mut self, ssl: &crate::config::PgSsl) -> PgResult<Self> {
        super::ssl::configure(&mut self.config, ssl);
        self.connector = super::ssl::connector(ssl).map_err(|source| PgError::Tls {
            role: "superuser".into(),
            source,
        })?;
        Ok(self)
    }

    pub(super) async fn with_client<T>(
        &self,
        f: impl AsyncFnOnce(&Client) -> Result<T, tokio_postgres::Error>,
    ) -> PgResult<T> {
        let mut guard = self.client.lock().await;
        if guard.as_ref().is_none_or(|c| c.is_closed()) {
            *guard = Some(self.connector.connect(&self.config).await?);
        }
        let Some(client) = guard.as_ref() else {
            unreachable!("client set above")
        };
        match f(client).await {
            Ok(v) => Ok(v),
            Err(e) => {
                if client.is_closed() {
                    *guard = None;
                }
                Err(e.into())
            }
        }
    }

    /// A fresh session as the same role to `dbname`, on this instance or, with `remote`,
    /// on another member's (host, port) (the slot code needs a session per database).
    pub(crate) async fn connect_db(
        &self,
        remote: Option<(&str, u16)>,
        dbname: &str,
    ) -> PgResult<Client> {
        let mut config = self.config.clone();
        config.dbname(dbname);
        if let Some((host, port)) = remote {
            // `Config::host` appends: start from a config with only the remote address.
            let mut c = tokio_postgres::Config::new();
            c.host(host)
                .port(port)
                .dbname(dbname)
                .application_name("Patroni");
            c.ssl_mode(self.config.get_ssl_mode());
            if let Some(u) = self.config.get_user() {
                c.user(u);
            }
            if let Some(p) = self.config.get_password() {
                c.password(p);
            }
            if let Some(t) = self.config.get_connect_timeout() {
                c.connect_timeout(*t);
            }
            config = c;
        }
        Ok(self.connector.connect(&config).await?)
    }

    /// Drops the connection (after a restart).
    pub async fn reset(&self) {
        *self.client.lock().await = None;
    }

    /// Reads the instance state.
    pub async fn state(&self) -> PgResult<PgRuntime> {
        let row = self
            .with_client(async |c| c.query_one(STATE_SQL, &[]).await)
            .await?;
        let lsn = |i: usize| {
            row.get::<_, Option<String>>(i)
                .as_deref()
                .and_then(parse_lsn)
        };
        Ok(PgRuntime {
            in_recovery: row.get(0),
            flush_lsn: lsn(1),
            receive_lsn: lsn(2),
            replay_lsn: lsn(3),
            timeline: row.get::<_, Option<i64>>(4).map(|v| v as u64),
            postmaster_start_time: row.get(5),
            server_version: row.get(6),
            receiver_status: row.get(7),
            replay_timestamp: row.get(8),
            replay_paused: row.get::<_, Option<bool>>(9).unwrap_or(false),
            sysid: row.get(10),
        })
    }

    /// `pg_stat_replication` rows.
    pub async fn replication(&self) -> PgResult<Vec<ReplicationRow>> {
        let rows = self
            .with_client(async |c| {
                c.query(
                    "SELECT usename::text, application_name, host(client_addr), state, sync_state, sync_priority, flush_lsn::text \
                     FROM pg_stat_replication ORDER BY application_name",
                    &[],
                )
                .await
            })
            .await?;
        Ok(rows
            .iter()
            .map(|r| ReplicationRow {
                usename: r.get(0),
                application_name: r.get(1),
                client_addr: r.get(2),
                state: r.get(3),
                sync_state: r.get(4),
                sync_priority: r.get(5),
                flush_lsn: r.get::<_, Option<String>>(6).as_deref().and_then(parse_lsn),
            })
            .collect())
    }

    /// Runs statements without results.
    pub async fn execute(&self, sql: &str) -> PgResult<()> {
        self.with_client(async |c| c.batch_execute(sql).await).await
    }

    /// Creates (or updates the password of) a login role with extra options.
    pub async fn ensure_role(
        &self,
        name: &str,
        password: Option<&str>,
        options: &str,
    ) -> PgResult<()> {
        let pw = password
            .map(|p| format!(" PASSWORD {}", quote_literal(p)))
            .unwrap_or_default();
        let ident = quote_ident(name);
        let sql = format!(
            "DO $patronus$ BEGIN \
               IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = {lit}) THEN \
                 CREATE ROLE {ident} WITH LOGIN {options}{pw}; \
               ELSE ALTER ROLE {ident} WITH LOGIN {options}{pw}; END IF; END $patronus$",
            lit = quote_literal(name),
        );
        self.execute(&sql).await
    }

    /// Physical replication slots present on this instance.
    pub async fn physical_slots(&self) -> PgResult<Vec<String>> {
        let rows = self
            .with_client(async |c| {
                c.query(
                    "SELECT slot_name::text FROM pg_replication_slots WHERE slot_type = 'physical'",
                    &[],
                )
                .await
            })
            .await?;
        Ok(rows.iter().map(|r| r.get(0)).collect())
    }

    /// Creates a physical slot (reserving WAL).
    pub async fn create_physical_slot(&self, name: &str) -> PgResult<()> {
        self.execute(&format!(
            "SELECT pg_create_physical_replication_slot({}, true)",
            quote_literal(name)
        ))
        .await
    }

    /// Every row of pg_settings we need to compute pending restarts.
    pub async fn settings(&self) -> PgResult<Vec<super::pending::SettingRow>> {
        let rows = self
            .with_client(async |c| {
                c.query(
                    "SELECT name, setting, unit, vartype, context, pending_restart FROM pg_settings",
                    &[],
                )
                .await
            })
            .await?;
        Ok(rows
            .iter()
            .map(|r| super::pending::SettingRow {
                name: r.get(0),
                setting: r.get::<_, Option<String>>(1).unwrap_or_default(),
                unit: r.get(2),
                vartype: r.get(3),
                context: r.get(4),
                pending_restart: r.get(5),
            })
            .collect())
    }

    /// Parameters overridden with `ALTER SYSTEM` (set in postgresql.auto.conf), name → value
    /// with its unit. patronus manages configuration through the DCS; these bypass it.
    pub async fn alter_system_overrides(&self) -> PgResult<Vec<(String, String)>> {
        let rows = self
            .with_client(async |c| {
                c.query(
                    "SELECT name, setting || COALESCE(unit, '') FROM pg_settings \
                     WHERE sourcefile LIKE '%postgresql.auto.conf' ORDER BY name",
                    &[],
                )
                .await
            })
            .await?;
        Ok(rows.iter().map(|r| (r.get(0), r.get(1))).collect())
    }

    /// Runs CHECKPOINT.
    pub async fn checkpoint(&self) -> PgResult<()> {
        self.execute("CHECKPOINT").await
    }
}
