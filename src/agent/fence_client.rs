//! The agent's side of the userspace fence: connects to the fence process (starting one
//! when none answers), arms it with a deadline, re-arms it after every lock update, and
//! disarms it when this member no longer runs a primary.
//!
//! The connection lives in a task of its own (the link) so that a fence that dies while
//! armed is noticed at once — its end of the socket closes — and replaced by a new fence
//! armed with what is left of the same deadline, instead of at the next lock update.

use crate::fence::FenceCommand;
use std::path::{Path, PathBuf};
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader, Lines};
use tokio::net::unix::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::UnixStream;
use tokio::sync::{mpsc, oneshot};
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

/// Starts a fence process on (socket, data directory), armed from birth for the given
/// time if any; returns its pid.
type Starter = Box<dyn Fn(&Path, &Path, Option<Duration>) -> Result<u32, FenceClientError> + Send>;

/// A request to the link task, answered on `reply`.
struct Request {
    want: Want,
    reply: oneshot::Sender<Result<(), FenceClientError>>,
}

/// A handle on the fence of this member (the link task starts with the first command).
pub struct FenceClient {
    socket: PathBuf,
    data_dir: PathBuf,
    link: Option<mpsc::Sender<Request>>,
}

impl FenceClient {
    /// A client for the fence listening on `socket` and guarding `data_dir`.
    pub fn new(socket: PathBuf, data_dir: PathBuf) -> Self {
        FenceClient {
            socket,
            data_dir,
            link: None,
        }
    }

    /// Arms (or re-arms: feeds) the fence: PostgreSQL is killed unless re-armed `within`.
    /// The deadline is fixed now: a fence that has to be started first gets what is left
    /// of it, and is started armed.
    pub async fn arm(&mut self, within: Duration) -> Result<(), FenceClientError> {
        self.ask(Want::ArmUntil(Instant::now() + within)).await
    }

    /// Disarms the fence (once; later calls are free until it is armed again).
    pub async fn disarm(&mut self) -> Result<(), FenceClientError> {
        self.ask(Want::Command(FenceCommand::Disarm)).await
    }

    /// Disarms and stops a fence that is running (at shutdown, once PostgreSQL is
    /// stopped); starts none.
    pub async fn stop_if_running(&mut self) {
        let Ok(stream) = UnixStream::connect(&self.socket).await else {
            return;
        };
        // A fence that dies on the way is not restarted: there is nothing left to guard.
        let none: Starter =
            Box::new(|socket, _, _| Err(FenceClientError::Unreachable(socket.to_path_buf())));
        let mut link = Link::new(self.socket.clone(), self.data_dir.clone(), none);
        link.conn = Some(split(stream));
        let stopped = match link.apply(Want::Command(FenceCommand::Disarm)).await {
            Ok(()) => link.send(Want::Command(FenceCommand::Stop)).await,
            Err(e) => Err(e),
        };
        match stopped {
            Ok(()) => tracing::info!("fence stopped"),
            Err(e) => tracing::warn!("{e}"),
        }
    }

    /// Hands one command to the link task (started on first use) and waits for its result.
    async fn ask(&mut self, want: Want) -> Result<(), FenceClientError> {
        let socket = self.socket.clone();
        let unreachable = move || FenceClientError::Unreachable(socket.clone());
        let link = self.link.get_or_insert_with(|| {
            let link = Link::new(
                self.socket.clone(),
                self.data_dir.clone(),
                process_starter(),
            );
            spawn_link(link)
        });
        let (reply, answer) = oneshot::channel();
        if link.send(Request { want, reply }).await.is_err() {
            self.link = None;
            return Err(unreachable());
        }
        answer.await.unwrap_or_else(|_| Err(unreachable()))
    }
}

/// Runs `link` in a task of its own; the returned sender is its only input (dropping it
/// ends the task and closes the connection, which leaves an armed fence armed).
fn spawn_link(link: Link) -> mpsc::Sender<Request> {
    let (tx, rx) = mpsc::channel(1);
    tokio::spawn(link.run(rx));
    tx
}

/// The connection to the fence and what it was told.
struct Link {
    socket: PathBuf,
    data_dir: PathBuf,
    conn: Option<Conn>,
    told: Told,
    /// The deadline of the last successful arm, until a disarm: a fence that dies before
    /// it is replaced at once, armed with what is left of it.
    armed_until: Option<Instant>,
    start: Starter,
}

impl Link {
    fn new(socket: PathBuf, data_dir: PathBuf, start: Starter) -> Self {
        Link {
            socket,
            data_dir,
            conn: None,
            told: Told::Nothing,
            armed_until: None,
            start,
        }
    }

    /// Answers requests until the client goes away; replaces a fence that dies while armed.
    /// Requests come first: a closing client is never answered by a restart.
    async fn run(mut self, mut requests: mpsc::Receiver<Request>) {
        loop {
            tokio::select! {
                biased;
                req = requests.recv() => {
                    let Some(req) = req else { return };
                    let result = self.apply(req.want).await;
                    let _ = req.reply.send(result);
                }
                () = closed(&mut self.conn) => self.after_the_fence_went_away().await,
            }
        }
    }

    /// The fence closed the connection (it died, or another client took its place). Armed:
    /// arm again at once — a running fence is reconnected, a dead one replaced, armed from
    /// birth with what is left of the same deadline.
    async fn after_the_fence_went_away(&mut self) {
        self.conn = None;
        let Some(until) = self.armed_until else {
            return;
        };
        tracing::warn!("the fence went away while armed; arming a fence again");
        if let Err(e) = self.apply(Want::ArmUntil(until)).await {
            tracing::error!("{e}");
        }
    }

    /// Carries out one command and keeps (and logs) what the fence was told.
    async fn apply(&mut self, want: Want) -> Result<(), FenceClientError> {
        match want {
            Want::ArmUntil(until) => {
                self.send(want).await?;
                if self.told != Told::Armed {
                    let left = until.saturating_duration_since(Instant::now());
                    tracing::info!("fence armed ({} ms)", left.as_millis());
                }
                self.told = Told::Armed;
                self.armed_until = Some(until);
            }
            Want::Command(FenceCommand::Disarm) => {
                if self.told == Told::Disarmed {
                    return Ok(());
                }
                self.send(want).await?;
                if self.told == Told::Armed {
                    tracing::info!("fence disarmed");
                }
                self.told = Told::Disarmed;
                self.armed_until = None;
            }
            Want::Command(_) => self.send(want).await?,
        }
        Ok(())
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
        let pid = (self.start)(&self.socket, &self.data_dir, armed)?;
        tracing::info!(pid, "started the fence on {}", self.socket.display());
        let deadline = Instant::now() + START_TIMEOUT;
        while Instant::now() < deadline {
            if let Ok(stream) = UnixStream::connect(&self.socket).await {
                self.conn = Some(split(stream));
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        Err(FenceClientError::Unreachable(self.socket.clone()))
    }
}

/// Starts `patronus fence` (this executable) in its own process group (a signal to the
/// agent's group must not take it down), reaped by a background task; armed from birth
/// when it is started for an arm.
fn process_starter() -> Starter {
    Box::new(|socket, data_dir, armed| {
        let exe = std::env::current_exe().map_err(FenceClientError::Spawn)?;
        let mut cmd = tokio::process::Command::new(exe);
        cmd.arg("fence")
            .arg("--socket")
            .arg(socket)
            .arg("--data-dir")
            .arg(data_dir);
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
    })
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

/// Completes when the fence closes the connection (a line it sends unasked is passed
/// over); pending for ever without a connection. Cancel-safe.
async fn closed(conn: &mut Option<Conn>) {
    let Some((lines, _)) = conn else {
        return std::future::pending().await;
    };
    while let Ok(Some(_)) = lines.next_line().await {}
}

#[cfg(test)]
#[path = "fence_client_tests.rs"]
mod tests;
