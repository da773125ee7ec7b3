//! The timeline a running standby replays, asked with `IDENTIFY_SYSTEM` on a replication
//! connection to itself (Patroni's `get_replica_timeline`). A standby without a WAL
//! receiver exposes no timeline in SQL but the latest checkpoint's, which stays on the old
//! timeline until the next restartpoint; divergence must not be judged on that.

use super::error::{PgError, PgResult};
use super::instance::Postgres;
use super::process::run;
use super::render::{render_conninfo, ConninfoInput};
use std::time::Duration;

impl Postgres {
    /// The timeline the local standby is replaying, from `IDENTIFY_SYSTEM` over a
    /// replication connection with the replication credentials.
    pub async fn replay_timeline(&self) -> PgResult<u64> {
        self.write_pgpass()?;
        let passfile = self.settings.pgpass.display().to_string();
        let conninfo = render_conninfo(&ConninfoInput {
            host: self
                .settings
                .local_socket_repl
                .as_deref()
                .unwrap_or(&self.settings.local_host),
            port: self.settings.port,
            user: &self.settings.replication.username,
            passfile: Some(&passfile),
            application_name: "patronus",
            ssl: &self.settings.replication.ssl,
            dbname: None,
        });
        let mut cmd = self.user.command(&self.bin("psql"));
        cmd.args(["-X", "-A", "-t", "-c", "IDENTIFY_SYSTEM", "-d"])
            .arg(format!("{conninfo} replication=1 connect_timeout=3"))
            .env("PGPASSFILE", &self.settings.pgpass)
            .env("LANG", "C");
        let out = run(cmd, "IDENTIFY_SYSTEM", Duration::from_secs(5)).await?;
        parse_identify_system(&out).ok_or_else(|| PgError::Exited {
            program: "psql IDENTIFY_SYSTEM".into(),
            status: "unexpected output".into(),
            output: out.chars().take(200).collect(),
        })
    }
}

/// The timeline field of `psql -A -t -c IDENTIFY_SYSTEM` output
/// (`systemid|timeline|xlogpos|dbname`).
pub fn parse_identify_system(out: &str) -> Option<u64> {
    let line = out.lines().find(|l| l.contains('|'))?;
    line.split('|')
        .nth(1)?
        .trim()
        .parse()
        .ok()
        .filter(|t| *t > 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_timeline() {
        assert_eq!(
            parse_identify_system("7301234567890123456|3|0/5000148|\n"),
            Some(3)
        );
        assert_eq!(parse_identify_system(""), None);
        assert_eq!(parse_identify_system("x|y|z|"), None);
        assert_eq!(parse_identify_system("1|0|0/0|"), None);
    }
}
