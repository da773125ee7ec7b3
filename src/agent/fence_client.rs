//! The agent's side of the userspace fence: connects to the fence process (starting one
//! when none answers), arms it with a deadline, re-arms it after every lock update, and
//! disarms it when this member no longer runs a primary.

use crate::fence::FenceCommand;
use std::path::PathBuf;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader, Lines};
use tokio::net::unix::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::UnixStream;

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
    pub async fn arm(&mut self, within: Duration) -> Result<(), FenceClientError> {
        self.send(FenceCommand::Arm(within)).await?;
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
        self.send(FenceCommand::Disarm).await?;
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
                Ok(()) => self.send(FenceCommand::Stop).await,
                Err(e) => Err(e),
            };
            match stopped {
                Ok(()) => tracing::info!("fence stopped"),
                Err(e) => tracing::warn!("{e}"),
            }
        }
    }

    /// Sends one command, reconnecting (and restarting the fence) once if needed.
    async fn send(&mut self, cmd: FenceCommand) -> Result<(), FenceClientError> {
        for _ in 0..2 {
            if self.conn.is_none() {
                self.connect_or_start().await?;
            }
            let Some(conn) = self.conn.as_mut() else {
                continue;
            };
            match tokio::time::timeout(ANSWER_TIMEOUT, round_trip(conn, &cmd.line())).await {
                Ok(Some(answer)) if answer.starts_with("ok") => return Ok(()),
                Ok(Some(answer)) => {
                    return Err(FenceClientError::Refused {
                        command: cmd.line(),
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
    async fn connect_or_start(&mut self) -> Result<(), FenceClientError> {
        if let Ok(stream) = UnixStream::connect(&self.socket).await {
            self.conn = Some(split(stream));
            return Ok(());
        }
        let pid = self.start()?;
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
    /// must not take it down), reaped by a background task.
    fn start(&self) -> Result<u32, FenceClientError> {
        let exe = std::env::current_exe().map_err(FenceClientError::Spawn)?;
        let mut cmd = tokio::process::Command::new(exe);
        cmd.arg("fence")
            .arg("--socket")
            .arg(&self.socket)
            .arg("--data-dir")
            .arg(&self.data_dir)
            .stdin(std::process::Stdio::null())
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
