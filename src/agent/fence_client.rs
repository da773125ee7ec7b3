//! The agent's side of the userspace fence: connects to the fence process (starting one
//! when none answers), arms it with a deadline, re-arms it after every lock update, and
//! disarms it when this member no longer runs a primary.

use crate::fence::FenceCommand;
use std::path::PathBuf;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader, Lines};
use tokio::net::unix::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::UnixStream;
use tokio::time::Instant;

/// How long the fence may take to answer one command.
const ANSWER_TIMEOUT: Duration = Duration::from_secs(1);
/// How long a freshly started fence may take to listen.
const START_TIMEOUT: Duration = Duration::from_secs(3);

/// Why the fence could not be armed or disarmed.
#[derive(Debug, thiserror::Error)]
pub enum FenceClientError {
    /// The fence process could not be started.
    #[error("cannot start the fence: {0}")]
    Spawn(#[source] std::io::Error),
    /// No fence answered on the socket.
    #[error("the fence does not answer on {0}")]
    Unreachable(PathBuf),
    /// The fence answered with an error.
    #[error("the fence refused '{command}': {answer}")]
    Refused {
        /// The command sent.
        command: String,
        /// Its answer.
        answer: String,
    },
}

/// What the agent last told the fence.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Told {
    Nothing,
    Armed,
    Disarmed,
}

type Conn = (Lines<BufReader<OwnedReadHalf>>, OwnedWriteHalf);

/// A connection to the fence of this member.
pub struct FenceClient {
    socket: PathBuf,
    data_dir: PathBuf,
    conn: Option<Conn>,
    told: Told,
}

impl FenceClient {
    /// A client for the fence listening on `socket` and guarding `data_dir`.
    pub fn new(socket: PathBuf, data_dir: PathBuf) -> Self {
        FenceClient {
            socket,
            data_dir,
            conn: None,
            told: Told::Nothing,
        }
    }

    /// Arms (or re-arms: feeds) the fence: PostgreSQL is killed unless re-armed `within`.
    /// The deadline is fixed now: a fence that has to be started first gets what is left
    /// of it, and is started armed.
    pub async fn arm(&mut self, within: Duration) -> Result<(), FenceClientError> {
        let until = Instant::now() + within;
        self.send(Want::ArmUntil(until)).await?;
        if self.told != Told::Armed {
            tracing::info!("fence armed ({} ms)", within.as_millis());
        }
        self.told = Told::Armed;
        Ok(())
    }

    /// Disarms the fence (once; later calls are free until it is armed again).
    pub async fn disarm(&mut self) -> Result<(), FenceClientError> {
        if self.told == Told::Disarmed {
            return Ok(());
        }
        self.send(Want::Command(FenceCommand::Disarm)).await?;
        if self.told == Told::Armed {
            tracing::info!("fence disarmed");
        }
        self.told = Told::Disarmed;
        Ok(())
    }

    /// Disarms and stops a fence that is running (at shutdown, once PostgreSQL is
    /// stopped); starts none.
    pub async fn stop_if_running(&mut self) {
        if let Ok(stream) = UnixStream::connect(&self.socket).await {
            self.conn = Some(split(stream));
            self.told = Told::Nothing;
            let stopped = match self.disarm().await {
                Ok(()) => self.send(Want::Command(FenceCommand::Stop)).await,
                Err(e) => Err(e),
            };
            match stopped {
                Ok(()) => tracing::info!("fence stopped"),
                Err(e) => tracing::warn!("{e}"),
            }
        }
    }

    /// Sends one command, reconnecting (and restarting the fence) once if needed. A new
    /// connection may reach another fence process: what it was told is forgotten, so the
    /// next arm is logged again.
    async fn send(&mut self, want: Want) -> Result<(), FenceClientError> {
        for _ in 0..2 {
            if self.conn.is_none() {
                self.told = Told::Nothing;
                self.connect_or_start(want.armed_for()).await?;
            }
            let Some(conn) = self.conn.as_mut() else {
                continue;
            };
            let line = want.command().line();
            match tokio::time::timeout(ANSWER_TIMEOUT, round_trip(conn, &line)).await {
                Ok(Some(answer)) if answer.starts_with("ok") => return Ok(()),
                Ok(Some(answer)) => {
                    return Err(FenceClientError::Refused {
                        command: line,
                        answer,
                    })
                }
                _ => {
                    tracing::warn!("the fence stopped answering; reconnecting");
                    self.conn = None;
                }
            }
        }
        self.told = Told::Nothing;
        Err(FenceClientError::Unreachable(self.socket.clone()))
    }

    /// Connects to a running fence, or starts one and waits until it listens.
    async fn connect_or_start(&mut self, armed: Option<Duration>) -> Result<(), FenceClientError> {
        if let Ok(stream) = UnixStream::connect(&self.socket).await {
            self.conn = Some(split(stream));
            return Ok(());
        }
        let pid = self.start(armed)?;
        tracing::info!(pid, "started the fence on {}", self.socket.display());
        let deadline = tokio::time::Instant::now() + START_TIMEOUT;
        while tokio::time::Instant::now() < deadline {
            if let Ok(stream) = UnixStream::connect(&self.socket).await {
                self.conn = Some(split(stream));
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        Err(FenceClientError::Unreachable(self.socket.clone()))
    }

    /// Starts `patronus fence` in its own process group (a signal to the agent's group
    /// must not take it down), reaped by a background task; armed from birth when the
    /// command it is started for is an arm.
    fn start(&self, armed: Option<Duration>) -> Result<u32, FenceClientError> {
        let exe = std::env::current_exe().map_err(FenceClientError::Spawn)?;
        let mut cmd = tokio::process::Command::new(exe);
        cmd.arg("fence")
            .arg("--socket")
            .arg(&self.socket)
            .arg("--data-dir")
            .arg(&self.data_dir);
        if let Some(within) = armed {
            cmd.arg("--armed-ms").arg(within.as_millis().to_string());
        }
        cmd.stdin(std::process::Stdio::null())
            .process_group(0)
            .kill_on_drop(false);
        let mut child = cmd.spawn().map_err(FenceClientError::Spawn)?;
        let pid = child.id().unwrap_or(0);
        tokio::spawn(async move {
            let _ = child.wait().await;
        });
        Ok(pid)
    }
}

/// What the agent wants the fence to do; an arm keeps its absolute deadline across a
/// reconnection.
#[derive(Debug, Clone, Copy)]
enum Want {
    ArmUntil(Instant),
    Command(FenceCommand),
}

impl Want {
    /// The command to send now.
    fn command(&self) -> FenceCommand {
        match self {
            Want::ArmUntil(until) => {
                FenceCommand::Arm(until.saturating_duration_since(Instant::now()))
            }
            Want::Command(c) => *c,
        }
    }

    /// How long a fence started for this is armed from birth.
    fn armed_for(&self) -> Option<Duration> {
        match self.command() {
            FenceCommand::Arm(within) => Some(within),
            _ => None,
        }
    }
}

fn split(stream: UnixStream) -> Conn {
    let (r, w) = stream.into_split();
    (BufReader::new(r).lines(), w)
}

/// Writes one line and reads the answer (None when the connection broke).
async fn round_trip(conn: &mut Conn, line: &str) -> Option<String> {
    conn.1
        .write_all(format!("{line}\n").as_bytes())
        .await
        .ok()?;
    conn.0.next_line().await.ok().flatten()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_arm_keeps_its_deadline_across_a_reconnection() {
        let past = Want::ArmUntil(Instant::now() - Duration::from_secs(1));
        assert_eq!(past.command(), FenceCommand::Arm(Duration::ZERO));
        assert_eq!(past.armed_for(), Some(Duration::ZERO));
        let later = Want::ArmUntil(Instant::now() + Duration::from_secs(5));
        let left = later.armed_for().unwrap();
        assert!(left > Duration::from_secs(4) && left <= Duration::from_secs(5));
        assert_eq!(Want::Command(FenceCommand::Disarm).armed_for(), None);
    }
}
