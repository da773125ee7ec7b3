//! Running PostgreSQL programs, as the `postgres` OS user when the agent is root.

use super::error::{PgError, PgResult};
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;
use tokio::process::Command;

/// The OS identity PostgreSQL processes run as.
#[derive(Debug, Clone, Copy)]
pub struct PgUser {
    /// uid to switch to (None = keep ours).
    pub uid: Option<u32>,
    /// gid to switch to.
    pub gid: Option<u32>,
}

impl PgUser {
    /// Root → the `postgres` user; anybody else → themselves.
    pub fn detect() -> PgResult<PgUser> {
        if !nix::unistd::geteuid().is_root() {
            return Ok(PgUser {
                uid: None,
                gid: None,
            });
        }
        let user = nix::unistd::User::from_name("postgres")
            .ok()
            .flatten()
            .ok_or(PgError::NoPostgresUser)?;
        Ok(PgUser {
            uid: Some(user.uid.as_raw()),
            gid: Some(user.gid.as_raw()),
        })
    }

    /// A command that will run as this user, in its own process group.
    pub fn command(&self, program: &Path) -> Command {
        let mut c = Command::new(program);
        if let Some(gid) = self.gid {
            c.gid(gid);
        }
        if let Some(uid) = self.uid {
            c.uid(uid);
        }
        c.process_group(0);
        c.current_dir("/");
        c.stdin(Stdio::null());
        c
    }

    /// Gives `path` to this user (no-op when not root).
    pub fn chown(&self, path: &Path) -> PgResult<()> {
        if self.uid.is_none() {
            return Ok(());
        }
        std::os::unix::fs::chown(path, self.uid, self.gid).map_err(|source| PgError::Io {
            path: path.to_path_buf(),
            source,
        })
    }
}

/// Runs a command to completion with a deadline, returning stdout; failure carries the output tail.
pub async fn run(mut cmd: Command, what: &str, timeout: Duration) -> PgResult<String> {
    cmd.stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    let child = cmd.spawn().map_err(|source| PgError::Spawn {
        program: what.to_string(),
        source,
    })?;
    let out = match tokio::time::timeout(timeout, child.wait_with_output()).await {
        Ok(r) => r.map_err(|source| PgError::Spawn {
            program: what.to_string(),
            source,
        })?,
        Err(_) => return Err(PgError::Timeout(what.to_string())),
    };
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    if out.status.success() {
        return Ok(stdout);
    }
    let stderr = String::from_utf8_lossy(&out.stderr);
    let text = format!("{stdout}{stderr}");
    let tail: Vec<&str> = text.lines().rev().take(8).collect();
    Err(PgError::Exited {
        program: what.to_string(),
        status: out.status.to_string(),
        // A tool may echo its connection string: nothing secret goes to the logs.
        output: crate::secrets::redact(&tail.into_iter().rev().collect::<Vec<_>>().join(" | ")),
    })
}

/// Quotes one argument for the shell line pg_ctl builds from `-o`.
pub fn shell_quote(arg: &str) -> String {
    format!("'{}'", arg.replace('\'', r"'\''"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shell_quoting() {
        assert_eq!(shell_quote("--port=5432"), "'--port=5432'");
        assert_eq!(shell_quote("a'b"), r"'a'\''b'");
    }
}
