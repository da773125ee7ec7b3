//! The local PostgreSQL instance: configuration files, pg_ctl, initdb, pg_basebackup.

use super::controldata::ControlData;
use super::error::{PgError, PgResult};
use super::params::{command_line_parameters, conf_parameters};
use super::process::{run, shell_quote, PgUser};
use super::render::render_pgpass;
use serde_json::{Map, Value};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// A user name and optional password.
#[derive(Debug, Clone, PartialEq)]
pub struct Creds {
    /// Role name.
    pub username: String,
    /// Password, if any.
    pub password: Option<String>,
    /// libpq TLS keys of the role.
    pub ssl: crate::config::PgSsl,
}

/// Everything needed to run this instance, resolved from the node config.
#[derive(Debug, Clone)]
pub struct PgSettings {
    /// Member name (application_name, slot name).
    pub name: String,
    /// Cluster name (`cluster_name`).
    pub scope: String,
    /// PGDATA.
    pub data_dir: PathBuf,
    /// `postgresql.config_dir`: where postgresql.conf, pg_hba.conf, pg_ident.conf live
    /// (None = the data directory).
    pub config_dir: Option<PathBuf>,
    /// Directory of the PostgreSQL binaries.
    pub bin_dir: PathBuf,
    /// pgpass file written for replication/rewind connections.
    pub pgpass: PathBuf,
    /// `listen_addresses` value.
    pub listen_addresses: String,
    /// Port.
    pub port: u16,
    /// Host we use to connect to our own instance.
    pub local_host: String,
    /// Socket directory of the agent's superuser connections (`use_unix_socket`).
    pub local_socket: Option<String>,
    /// Socket directory of its local replication connections (`use_unix_socket_repl`).
    pub local_socket_repl: Option<String>,
    /// Superuser credentials.
    pub superuser: Creds,
    /// Replication credentials.
    pub replication: Creds,
    /// Rewind credentials.
    pub rewind: Option<Creds>,
    /// pg_ctl timeout.
    pub pg_ctl_timeout: Duration,
    /// Local `postgresql.parameters` (override dynamic ones except protected).
    pub local_parameters: Map<String, Value>,
    /// Local `postgresql.pg_hba`.
    pub local_pg_hba: Option<Vec<String>>,
    /// Local `postgresql.pg_ident`.
    pub local_pg_ident: Option<Vec<String>>,
    /// Local `postgresql.recovery_conf`.
    pub local_recovery_conf: Map<String, Value>,
    /// initdb arguments from `bootstrap.initdb`.
    pub initdb_args: Vec<String>,
    /// `bootstrap.pg_hba`, appended to initdb's file when nothing else manages pg_hba.
    pub bootstrap_pg_hba: Vec<String>,
}

/// Where a replica streams from.
#[derive(Debug, Clone, PartialEq)]
pub struct RecoveryTarget {
    /// libpq conninfo of the upstream (None = no upstream).
    pub conninfo: Option<String>,
    /// Slot on the upstream.
    pub slot: Option<String>,
    /// `postgresql.recovery_conf` in effect (the node file's, else the dynamic one).
    pub recovery_conf: Map<String, Value>,
    /// Recovery settings that win over the node's `recovery_conf` (a standby cluster's
    /// `restore_command`, `archive_cleanup_command`, `recovery_min_apply_delay`).
    pub overrides: Vec<(String, String)>,
}

/// Handle on the local instance.
pub struct Postgres {
    /// Settings.
    pub settings: PgSettings,
    pub(super) user: PgUser,
    /// `synchronous_standby_names` managed by sync mode (None = the user's parameters).
    sync_names: std::sync::Mutex<Option<String>>,
    /// Render the managed value beside recovery settings too (a standby about to promote).
    sync_names_in_recovery: std::sync::atomic::AtomicBool,
    /// The node file's `parameters`, `pg_hba`, `pg_ident` (replaced on reload).
    local: std::sync::RwLock<LocalFiles>,
    /// The dynamic `postgresql.pg_ident` (set by the loop from the `config` key).
    pub(super) dynamic_ident: std::sync::RwLock<Option<Vec<String>>>,
    /// Whom the recovery configuration in force follows.
    following: std::sync::Mutex<Following>,
}

/// Whom the recovery configuration in force follows (recorded once a start or a reload put
/// it in force; read by the next observation).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum Following {
    /// Nobody: a primary's configuration, a replica without `primary_conninfo`, or a leader
    /// whose address was not known yet.
    #[default]
    Nobody,
    /// A member of this cluster.
    Member(String),
    /// The remote primary of `standby_cluster` (the standby leader).
    RemotePrimary,
}

impl Following {
    /// The member followed, if one is.
    pub fn member(&self) -> Option<String> {
        match self {
            Following::Member(m) => Some(m.clone()),
            Following::Nobody | Following::RemotePrimary => None,
        }
    }
}

/// What the node file says about PostgreSQL's configuration files; replaced by a reload.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LocalFiles {
    /// Local `postgresql.parameters`.
    pub parameters: Map<String, Value>,
    /// Local `postgresql.pg_hba` (wins over the dynamic one).
    pub pg_hba: Option<Vec<String>>,
    /// Local `postgresql.pg_ident` (wins over the dynamic one).
    pub pg_ident: Option<Vec<String>>,
    /// Local `postgresql.recovery_conf` (extra recovery settings of a replica).
    pub recovery_conf: Map<String, Value>,
}

pub(super) fn io(path: &Path) -> impl FnOnce(std::io::Error) -> PgError + '_ {
    move |source| PgError::Io {
        path: path.to_path_buf(),
        source,
    }
}

impl Postgres {
    /// Creates the handle; fails when root has no `postgres` user to switch to.
    pub fn new(settings: PgSettings) -> PgResult<Postgres> {
        let local = LocalFiles {
            parameters: settings.local_parameters.clone(),
            pg_hba: settings.local_pg_hba.clone(),
            pg_ident: settings.local_pg_ident.clone(),
            recovery_conf: settings.local_recovery_conf.clone(),
        };
        Ok(Postgres {
            settings,
            user: PgUser::detect()?,
            sync_names: std::sync::Mutex::new(None),
            sync_names_in_recovery: Default::default(),
            local: std::sync::RwLock::new(local),
            dynamic_ident: std::sync::RwLock::new(None),
            following: Default::default(),
        })
    }

    /// The PostgreSQL major of the data directory (`PG_VERSION`), None before initdb.
    pub fn major(&self) -> Option<u32> {
        let text = std::fs::read_to_string(self.data().join("PG_VERSION")).ok()?;
        super::by_major::parse_pg_version(&text)
    }

    /// The node file's configuration-file settings in force.
    pub fn local_files(&self) -> LocalFiles {
        match self.local.read() {
            Ok(l) => l.clone(),
            Err(p) => p.into_inner().clone(),
        }
    }

    /// Replaces them (reload); they take effect at the next [`Postgres::write_config`].
    /// Returns true when something changed.
    pub fn set_local_files(&self, files: LocalFiles) -> bool {
        match self.local.write() {
            Ok(mut l) if *l != files => {
                *l = files;
                true
            }
            _ => false,
        }
    }

    /// Sets the dynamic `postgresql.pg_ident` (from the `config` key).
    pub fn set_dynamic_ident(&self, lines: Option<Vec<String>>) {
        if let Ok(mut d) = self.dynamic_ident.write() {
            *d = lines;
        }
    }

    /// A command for `program` run as the owner of the data directory (the `postgres` OS
    /// user when the agent is root), in its own process group: callbacks, hook scripts and
    /// custom replica or bootstrap methods run this way, as Patroni's own user would.
    pub fn owner_command(&self, program: &Path) -> tokio::process::Command {
        self.user.command(program)
    }

    pub(super) fn bin(&self, name: &str) -> PathBuf {
        self.settings.bin_dir.join(name)
    }

    pub(super) fn data(&self) -> &Path {
        &self.settings.data_dir
    }

    /// Where the configuration files are written: `config_dir`, else the data directory.
    pub fn conf_dir(&self) -> &Path {
        self.settings
            .config_dir
            .as_deref()
            .unwrap_or(&self.settings.data_dir)
    }

    /// True when the configuration files live outside the data directory.
    pub(super) fn separate_conf_dir(&self) -> bool {
        self.conf_dir() != self.data()
    }

    fn timeout(&self) -> Duration {
        self.settings.pg_ctl_timeout
    }

    /// Whom the recovery configuration in force follows.
    pub fn following(&self) -> Following {
        self.following.lock().map(|f| f.clone()).unwrap_or_default()
    }

    /// Records whom the recovery configuration in force follows.
    pub fn set_following(&self, following: Following) {
        if let Ok(mut f) = self.following.lock() {
            *f = following;
        }
    }

    /// The `synchronous_standby_names` sync mode manages (None = not managed).
    pub fn sync_names(&self) -> Option<String> {
        self.sync_names.lock().map(|g| g.clone()).unwrap_or(None)
    }

    /// Sets the managed `synchronous_standby_names`; takes effect at the next
    /// [`Postgres::write_config`].
    pub fn set_sync_names(&self, value: Option<String>) {
        if let Ok(mut g) = self.sync_names.lock() {
            *g = value;
        }
        self.sync_names_in_recovery
            .store(false, std::sync::atomic::Ordering::SeqCst);
    }

    /// Sets the managed `synchronous_standby_names` of a standby about to promote: rendered
    /// even beside its recovery settings, so it is in force the moment it is promoted.
    pub fn set_sync_names_for_promotion(&self, value: String) {
        self.set_sync_names(Some(value));
        self.sync_names_in_recovery
            .store(true, std::sync::atomic::Ordering::SeqCst);
    }

    /// True while [`Postgres::set_sync_names_for_promotion`] is in force.
    pub(super) fn sync_names_in_recovery(&self) -> bool {
        self.sync_names_in_recovery
            .load(std::sync::atomic::Ordering::SeqCst)
    }

    /// The server log file (beside the data directory).
    pub fn log_file(&self) -> PathBuf {
        let mut p = self.data().as_os_str().to_owned();
        p.push(".log");
        PathBuf::from(p)
    }

    /// True when the data directory is missing or empty.
    pub fn data_dir_empty(&self) -> bool {
        match std::fs::read_dir(self.data()) {
            Ok(mut it) => it.next().is_none(),
            Err(_) => true,
        }
    }

    /// Reads pg_control (None when there is none).
    pub async fn controldata(&self) -> Option<ControlData> {
        if !self.data().join("global/pg_control").exists() {
            return None;
        }
        let mut cmd = self.user.command(&self.bin("pg_controldata"));
        cmd.arg("-D")
            .arg(self.data())
            .env("LANG", "C")
            .env("LC_ALL", "C");
        let out = run(cmd, "pg_controldata", Duration::from_secs(10))
            .await
            .ok()?;
        Some(ControlData::parse(&out))
    }

    /// True when a postmaster for our data directory is alive.
    pub fn is_running(&self) -> bool {
        self.postmaster_pid().is_some()
    }

    /// The live postmaster's pid from postmaster.pid.
    pub fn postmaster_pid(&self) -> Option<i32> {
        let text = std::fs::read_to_string(self.data().join("postmaster.pid")).ok()?;
        let pid: i32 = text.lines().next()?.trim().parse().ok()?;
        let alive = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), None).is_ok();
        alive.then_some(pid)
    }

    /// Creates (or fixes) a directory owned by the postgres user with mode 0700.
    pub fn prepare_data_dir(&self) -> PgResult<()> {
        use std::os::unix::fs::PermissionsExt;
        let d = self.data();
        std::fs::create_dir_all(d).map_err(io(d))?;
        std::fs::set_permissions(d, std::fs::Permissions::from_mode(0o700)).map_err(io(d))?;
        self.user.chown(d)
    }

    /// Moves a data directory aside (`<dir>_<timestamp>`) so it can be re-created.
    pub fn move_data_dir_aside(&self) -> PgResult<()> {
        let d = self.data();
        if !d.exists() {
            return Ok(());
        }
        let stamp = chrono::Utc::now().format("%Y-%m-%d-%H-%M-%S");
        let mut target = d.as_os_str().to_owned();
        target.push(format!("_{stamp}"));
        std::fs::rename(d, &target).map_err(io(d))
    }

    /// Writes the pgpass file (mode 0600, owned by postgres).
    pub fn write_pgpass(&self) -> PgResult<()> {
        let mut entries = Vec::new();
        for c in [
            Some(&self.settings.replication),
            Some(&self.settings.superuser),
            self.settings.rewind.as_ref(),
        ]
        .into_iter()
        .flatten()
        {
            if let Some(p) = &c.password {
                entries.push((
                    "*".into(),
                    "*".into(),
                    "*".into(),
                    c.username.clone(),
                    p.clone(),
                ));
            }
        }
        let path = &self.settings.pgpass;
        write_private(path, &render_pgpass(&entries), &self.user)
    }

    /// Runs initdb with the configured options and the superuser's password.
    pub async fn initdb(&self) -> PgResult<()> {
        self.prepare_data_dir()?;
        let pwfile = std::env::temp_dir().join(format!(
            "patronus-pw-{}-{}",
            self.settings.name,
            std::process::id()
        ));
        let pw = self.settings.superuser.password.clone().unwrap_or_default();
        write_private(&pwfile, &format!("{pw}\n"), &self.user)?;
        let mut cmd = self.user.command(&self.bin("initdb"));
        cmd.arg("-D")
            .arg(self.data())
            .arg(format!("--username={}", self.settings.superuser.username))
            .arg(format!("--pwfile={}", pwfile.display()))
            .args(&self.settings.initdb_args);
        let r = run(cmd, "initdb", Duration::from_secs(300)).await;
        let _ = std::fs::remove_file(&pwfile);
        r.map(|_| ())
    }

    /// Clones the data directory from `conninfo` with pg_basebackup and the user's
    /// `options` (`postgresql.basebackup`); a fast checkpoint unless they choose one.
    pub async fn basebackup(&self, conninfo: &str, options: &[String]) -> PgResult<()> {
        self.prepare_data_dir()?;
        self.write_pgpass()?;
        let mut cmd = self.user.command(&self.bin("pg_basebackup"));
        cmd.arg("-D")
            .arg(self.data())
            .args(["-X", "stream", "--no-password"])
            .arg(format!("--dbname={conninfo}"))
            .args(options)
            .env("PGPASSFILE", &self.settings.pgpass);
        if !options.iter().any(|o| o.starts_with("--checkpoint")) {
            cmd.args(["-c", "fast"]);
        }
        run(cmd, "pg_basebackup", Duration::from_secs(3600))
            .await
            .map(|_| ())
    }

    /// Every parameter we configure (conf file + command line), name → value text, for the
    /// pending-restart comparison with pg_settings.
    pub fn desired_parameters(
        &self,
        dynamic_params: &Map<String, Value>,
    ) -> std::collections::BTreeMap<String, String> {
        let mut all = conf_parameters(dynamic_params, &self.local_files().parameters);
        if let Some(m) = self.major() {
            super::by_major::adapt(&mut all, m);
        }
        let dynamic_params = &super::by_major::dynamic_for_major(dynamic_params, self.major());
        let cl = command_line_parameters(
            dynamic_params,
            &self.settings.listen_addresses,
            self.settings.port,
            &self.settings.scope,
        );
        for arg in cl.args {
            if let Some((k, v)) = arg.trim_start_matches("--").split_once('=') {
                all.insert(k.to_string(), v.to_string());
            }
        }
        all
    }

    /// Starts the postmaster with the protected parameters on its command line, waiting until
    /// it accepts connections (or `pg_ctl_timeout`).
    pub async fn start(&self, dynamic_params: &Map<String, Value>) -> PgResult<Vec<String>> {
        let dynamic_params = &super::by_major::dynamic_for_major(dynamic_params, self.major());
        let cl = command_line_parameters(
            dynamic_params,
            &self.settings.listen_addresses,
            self.settings.port,
            &self.settings.scope,
        );
        let mut opts: Vec<String> = cl.args.iter().map(|a| shell_quote(a)).collect();
        if self.separate_conf_dir() {
            let file = self.conf_dir().join("postgresql.conf");
            opts.push(shell_quote(&format!("--config-file={}", file.display())));
        }
        let log = self.log_file();
        if !log.exists() {
            write_owned(&log, "", &self.user)?;
        }
        let mut cmd = self.user.command(&self.bin("pg_ctl"));
        cmd.arg("start")
            .arg("-D")
            .arg(self.data())
            .arg("-w")
            .arg("-t")
            .arg(self.timeout().as_secs().to_string())
            .arg("-l")
            .arg(&log)
            .arg("-o")
            .arg(opts.join(" "))
            .env("PGPASSFILE", &self.settings.pgpass);
        run(cmd, "pg_ctl start", self.timeout() + Duration::from_secs(5)).await?;
        Ok(cl.warnings)
    }

    /// Stops the postmaster (`fast` or `immediate`), waiting up to `pg_ctl_timeout`.
    pub async fn stop(&self, mode: crate::ha::StopMode) -> PgResult<()> {
        if !self.is_running() {
            return Ok(());
        }
        let mut cmd = self.user.command(&self.bin("pg_ctl"));
        cmd.arg("stop")
            .arg("-D")
            .arg(self.data())
            .args(["-m", mode.as_str(), "-w", "-t"])
            .arg(self.timeout().as_secs().to_string());
        run(cmd, "pg_ctl stop", self.timeout() + Duration::from_secs(5))
            .await
            .map(|_| ())
    }

    /// Promotes a replica, waiting for it to leave recovery.
    pub async fn promote(&self) -> PgResult<()> {
        let mut cmd = self.user.command(&self.bin("pg_ctl"));
        cmd.arg("promote")
            .arg("-D")
            .arg(self.data())
            .arg("-w")
            .arg("-t")
            .arg(self.timeout().as_secs().to_string());
        run(
            cmd,
            "pg_ctl promote",
            self.timeout() + Duration::from_secs(5),
        )
        .await
        .map(|_| ())
    }

    /// Asks the postmaster to re-read its configuration.
    pub async fn reload(&self) -> PgResult<()> {
        let mut cmd = self.user.command(&self.bin("pg_ctl"));
        cmd.arg("reload").arg("-D").arg(self.data());
        run(cmd, "pg_ctl reload", Duration::from_secs(30))
            .await
            .map(|_| ())
    }

    /// libpq conninfo to our own instance as superuser.
    pub fn local_conninfo(&self, dbname: &str) -> tokio_postgres::Config {
        let mut c = tokio_postgres::Config::new();
        c.host(
            self.settings
                .local_socket
                .as_deref()
                .unwrap_or(&self.settings.local_host),
        )
        .port(self.settings.port)
        .user(&self.settings.superuser.username)
        .dbname(dbname)
        .application_name("Patroni")
        .connect_timeout(Duration::from_secs(3));
        if let Some(p) = &self.settings.superuser.password {
            c.password(p);
        }
        c
    }
}

pub(super) fn write_owned(path: &Path, text: &str, user: &PgUser) -> PgResult<()> {
    let tmp = path.with_extension("patronus-tmp");
    std::fs::write(&tmp, text).map_err(io(&tmp))?;
    user.chown(&tmp)?;
    std::fs::rename(&tmp, path).map_err(io(path))
}

pub(super) fn write_private(path: &Path, text: &str, user: &PgUser) -> PgResult<()> {
    use std::os::unix::fs::PermissionsExt;
    let tmp = path.with_extension("patronus-tmp");
    std::fs::write(&tmp, text).map_err(io(&tmp))?;
    std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o600)).map_err(io(&tmp))?;
    user.chown(&tmp)?;
    std::fs::rename(&tmp, path).map_err(io(path))
}
