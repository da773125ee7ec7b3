//! The fence process (`patronus fence`): listens on its unix socket, applies the agent's
//! commands, and kills the postmaster and its children when the deadline passes.
//!
//! It outlives the agent on purpose: if the agent dies or freezes while the fence is armed,
//! the deadline still holds. A restarted agent connects to the running fence again. With
//! nobody connected and nothing armed, the fence exits after a while.

use super::{postmaster_pid, stat_ppid, Fence, FenceCommand};
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use std::path::{Path, PathBuf};
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader, Lines};
use tokio::net::unix::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{UnixListener, UnixStream};
use tokio::time::Instant;

/// How long a disarmed fence with no agent connected waits before it exits.
const IDLE_EXIT: Duration = Duration::from_secs(30);

/// What the fence guards.
#[derive(Debug, Clone)]
pub struct FenceOptions {
    /// The unix socket the agent connects to.
    pub socket: PathBuf,
    /// The data directory whose `postmaster.pid` names the postmaster.
    pub data_dir: PathBuf,
    /// Armed from the start for this long (a fence started for a running primary guards it
    /// before the agent's first command arrives).
    pub armed: Option<Duration>,
}

/// Why the fence could not run.
#[derive(Debug, thiserror::Error)]
pub enum FenceError {
    /// Another fence already answers on the socket.
    #[error("a fence already listens on {0}")]
    AlreadyRunning(PathBuf),
    /// The socket could not be created.
    #[error("cannot listen on {path}: {source}")]
    Listen {
        /// Socket path.
        path: PathBuf,
        /// Cause.
        #[source]
        source: std::io::Error,
    },
}

type Conn = (Lines<BufReader<OwnedReadHalf>>, OwnedWriteHalf);

/// Binds the socket (replacing a stale file nobody listens on), owner-only.
async fn bind(path: &Path) -> Result<UnixListener, FenceError> {
    use std::os::unix::fs::PermissionsExt;
    if path.exists() {
        if UnixStream::connect(path).await.is_ok() {
            return Err(FenceError::AlreadyRunning(path.to_path_buf()));
        }
        let _ = std::fs::remove_file(path);
    }
    let listen = |source| FenceError::Listen {
        path: path.to_path_buf(),
        source,
    };
    let listener = UnixListener::bind(path).map_err(listen)?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).map_err(listen)?;
    Ok(listener)
}

/// The next line from the agent, or pending for ever when nobody is connected.
async fn next_line(conn: &mut Option<Conn>) -> Option<String> {
    match conn {
        Some((lines, _)) => lines.next_line().await.ok().flatten(),
        None => std::future::pending().await,
    }
}

/// Runs the fence until it has been idle (disarmed, nobody connected) for a while.
pub async fn run(opts: FenceOptions) -> Result<(), FenceError> {
    let listener = bind(&opts.socket).await?;
    let mut fence = Fence::default();
    if let Some(within) = opts.armed {
        fence.apply(FenceCommand::Arm(within), std::time::Instant::now());
    }
    tracing::info!(socket = %opts.socket.display(), "fence listening{}", armed_note(opts.armed));
    let mut conn: Option<Conn> = None;
    let mut idle_since = Instant::now();
    loop {
        let fire_at = fence.deadline().map(Instant::from_std);
        let idle = conn.is_none() && fire_at.is_none();
        tokio::select! {
            accepted = listener.accept() => {
                if let Ok((stream, _)) = accepted {
                    let (r, w) = stream.into_split();
                    conn = Some((BufReader::new(r).lines(), w));
                }
            }
            line = next_line(&mut conn) => match line {
                Some(line) => {
                    if reply(&mut fence, &mut conn, &line).await {
                        break;
                    }
                }
                None => {
                    conn = None;
                    idle_since = Instant::now();
                    if fence.deadline().is_some() {
                        tracing::warn!("fence: the agent went away while armed; the deadline holds");
                    }
                }
            },
            _ = tokio::time::sleep_until(fire_at.unwrap_or_else(Instant::now)), if fire_at.is_some() => {
                if fence.fire_if_due(std::time::Instant::now()) {
                    stop_postgres(&opts.data_dir);
                }
            }
            _ = tokio::time::sleep_until(idle_since + IDLE_EXIT), if idle => break,
        }
    }
    let _ = std::fs::remove_file(&opts.socket);
    tracing::info!("fence exiting: disarmed and no agent connected (or asked to stop)");
    Ok(())
}

fn armed_note(armed: Option<Duration>) -> String {
    armed.map_or_else(String::new, |d| format!(", armed ({} ms)", d.as_millis()))
}

/// Applies one line and answers it; true when the fence is to exit.
async fn reply(fence: &mut Fence, conn: &mut Option<Conn>, line: &str) -> bool {
    let answer = match FenceCommand::parse(line) {
        Ok(cmd) => fence.apply(cmd, std::time::Instant::now()),
        Err(e) => format!("error {e}"),
    };
    if let Some((_, w)) = conn {
        if w.write_all(format!("{answer}\n").as_bytes()).await.is_err() {
            *conn = None;
        }
    }
    answer == "ok stopping"
}

/// Kills the postmaster named in `postmaster.pid` and every child of it: the postmaster is
/// stopped first so that it forks nothing new, then its children and itself are killed.
pub fn stop_postgres(data_dir: &Path) {
    let pidfile = data_dir.join("postmaster.pid");
    let Some(pid) = std::fs::read_to_string(&pidfile)
        .ok()
        .and_then(|t| postmaster_pid(&t))
    else {
        tracing::error!(
            "fence: the leader lease deadline passed without renewal; no postmaster to stop ({} unreadable)",
            pidfile.display()
        );
        return;
    };
    if !runs_in(pid, data_dir) {
        tracing::error!(
            "fence: the leader lease deadline passed without renewal; postmaster {pid} is gone (no process of {} to stop)",
            data_dir.display()
        );
        return;
    }
    let postmaster = Pid::from_raw(pid);
    let _ = kill(postmaster, Signal::SIGSTOP);
    let children = children_of(pid);
    for child in &children {
        let _ = kill(Pid::from_raw(*child), Signal::SIGKILL);
    }
    let _ = kill(postmaster, Signal::SIGKILL);
    tracing::error!(
        "fence: the leader lease deadline passed without renewal; killed postmaster {pid} and {} of its processes so that this member stops accepting writes",
        children.len()
    );
}

/// True when process `pid` works in `data_dir` (a postmaster's working directory is its
/// data directory): a stale `postmaster.pid` whose pid was reused names another process.
fn runs_in(pid: i32, data_dir: &Path) -> bool {
    let cwd = std::fs::read_link(format!("/proc/{pid}/cwd"));
    let dir = std::fs::canonicalize(data_dir);
    matches!((cwd, dir), (Ok(a), Ok(b)) if a == b)
}

/// Pids whose parent is `pid` (from `/proc/<pid>/stat`).
fn children_of(pid: i32) -> Vec<i32> {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return vec![];
    };
    dir.filter_map(Result::ok)
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
        .filter(|p| {
            std::fs::read_to_string(format!("/proc/{p}/stat"))
                .ok()
                .and_then(|s| stat_ppid(&s))
                == Some(pid)
        })
        .collect()
}
