//! pg_rewind of a stopped data directory, after making sure it was shut down cleanly.
//!
//! pg_rewind needs a cleanly shut down target. Left to itself it runs crash recovery in
//! single-user mode, but with the configuration file only: the protected parameters the
//! agent passes on the command line (`wal_log_hints` among them) are missing, so the
//! recovery records `wal_log_hints = off` in pg_control and pg_rewind then refuses the
//! target; and with a `standby.signal` present single-user mode does not start at all.
//! As Patroni does (`ensure_clean_shutdown`), the agent runs that recovery itself first:
//! signal files removed, the agent's command-line parameters, archiving switched off.

use super::controldata::ControlData;
use super::error::{PgError, PgResult};
use super::instance::Postgres;
use super::params::command_line_parameters;
use super::process::run;
use serde_json::{Map, Value};
use std::time::Duration;

/// pg_control states of a data directory pg_rewind accepts as it is.
fn cleanly_shut_down(control: Option<&ControlData>) -> bool {
    matches!(
        control.and_then(ControlData::state),
        Some("shut down" | "shut down in recovery")
    )
}

impl Postgres {
    /// Rewinds the (stopped) data directory from `source_conninfo` with pg_rewind;
    /// `dynamic_params` are the DCS `postgresql.parameters` the instance runs with.
    pub async fn rewind(
        &self,
        source_conninfo: &str,
        dynamic_params: &Map<String, Value>,
    ) -> PgResult<()> {
        self.write_pgpass()?;
        self.remove_recovery_signals()?;
        if !cleanly_shut_down(self.controldata().await.as_ref()) {
            self.ensure_clean_shutdown(dynamic_params).await?;
        }
        let mut cmd = self.user.command(&self.bin("pg_rewind"));
        cmd.arg("-D")
            .arg(&self.settings.data_dir)
            .arg(format!("--source-server={source_conninfo}"))
            .env("PGPASSFILE", &self.settings.pgpass)
            .env("LANG", "C");
        run(cmd, "pg_rewind", Duration::from_secs(3600))
            .await
            .map(|_| ())
    }

    /// Drops `standby.signal` / `recovery.signal` (starting as a replica writes them again).
    fn remove_recovery_signals(&self) -> PgResult<()> {
        for signal in ["standby.signal", "recovery.signal"] {
            let path = self.settings.data_dir.join(signal);
            match std::fs::remove_file(&path) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(source) => return Err(PgError::Io { path, source }),
            }
        }
        Ok(())
    }

    /// Crash recovery in single-user mode with the agent's command-line parameters, ending
    /// in a shutdown checkpoint.
    async fn ensure_clean_shutdown(&self, dynamic_params: &Map<String, Value>) -> PgResult<()> {
        let cl = command_line_parameters(
            dynamic_params,
            &self.settings.listen_addresses,
            self.settings.port,
            &self.settings.scope,
        );
        let mut cmd = self.user.command(&self.bin("postgres"));
        cmd.arg("--single")
            .arg("-F")
            .arg("-D")
            .arg(&self.settings.data_dir)
            .args(&cl.args)
            .args(["-c", "archive_mode=on", "-c", "archive_command=false"])
            .arg("postgres")
            .stdin(std::process::Stdio::null())
            .env("LANG", "C");
        tracing::info!("running crash recovery in single-user mode before pg_rewind");
        run(
            cmd,
            "postgres --single",
            self.settings.pg_ctl_timeout.max(Duration::from_secs(60)),
        )
        .await
        .map(|_| ())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_clean_shutdown_is_left_as_it_is() {
        let c = |state: &str| ControlData::parse(&format!("Database cluster state: {state}\n"));
        assert!(cleanly_shut_down(Some(&c("shut down"))));
        assert!(cleanly_shut_down(Some(&c("shut down in recovery"))));
        assert!(!cleanly_shut_down(Some(&c("in production"))));
        assert!(!cleanly_shut_down(Some(&c("in archive recovery"))));
        assert!(!cleanly_shut_down(None));
    }
}
