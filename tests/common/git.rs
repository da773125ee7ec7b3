//! Git helpers for the GitOps tests: commits (retried, since the reconciler commits into the
//! same checkout), the `git` command as Dana DBA, and a reconciler process that is killed on
//! drop.

use std::ffi::OsStr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

fn try_commit(dir: &Path, msg: &str) -> Result<(), git2::Error> {
    let repo = git2::Repository::open(dir)?;
    let mut index = repo.index()?;
    index.add_all(["*"].iter(), git2::IndexAddOption::DEFAULT, None)?;
    index.update_all(["*"].iter(), None)?;
    index.write()?;
    let tree = repo.find_tree(index.write_tree()?)?;
    let sig = git2::Signature::now("Dana DBA", "dana@example.com")?;
    let parent = repo.head().ok().and_then(|h| h.peel_to_commit().ok());
    let parents: Vec<&git2::Commit> = parent.iter().collect();
    repo.commit(Some("HEAD"), &sig, &sig, msg, &tree, &parents)?;
    Ok(())
}

/// Commits every change in `dir` as Dana DBA; a collision with the reconciler's own commit
/// (index lock) is retried a bounded number of times.
pub fn commit(dir: &Path, msg: &str) {
    for _ in 0..50 {
        if try_commit(dir, msg).is_ok() {
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("could not commit '{msg}'");
}

/// A child process (the reconciler) killed when dropped.
pub struct Daemon(pub Child);

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Runs `git -C dir ARGS` as Dana DBA, output discarded; whether it succeeded.
pub fn git(dir: &Path, args: &[&str]) -> bool {
    Command::new("git")
        .arg("-C")
        .arg(dir)
        .args([
            "-c",
            "user.name=Dana DBA",
            "-c",
            "user.email=dana@example.com",
        ])
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// Starts `patronus reconcile ARGS` with fast test timings (`PATRONUS_MIN_TTL=5`) and the
/// extra environment `env`, logging to `log`; killed when the returned handle is dropped.
pub fn spawn_reconciler<I, S>(log: &Path, args: I, env: &[(&str, &str)]) -> Daemon
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    let log = std::fs::File::create(log).expect("reconciler log file");
    Daemon(
        Command::new(env!("CARGO_BIN_EXE_patronus"))
            .arg("reconcile")
            .args(args)
            .env("PATRONUS_MIN_TTL", "5")
            .envs(env.iter().copied())
            .stdout(log.try_clone().expect("log file"))
            .stderr(log)
            .stdin(Stdio::null())
            .spawn()
            .expect("spawn patronus reconcile"),
    )
}

/// Starts `patronus reconcile --listen 127.0.0.1:<port> --repo <repo>` (fast test timings),
/// logging to `<log_dir>/reconcile.log`; killed when the returned handle is dropped.
pub fn start_reconciler(log_dir: &Path, repo: &Path, port: u16) -> Daemon {
    start_reconciler_with(log_dir, repo, port, &[])
}

/// [`start_reconciler`] with extra environment variables (`RUST_LOG`, ...).
pub fn start_reconciler_with(
    log_dir: &Path,
    repo: &Path,
    port: u16,
    env: &[(&str, &str)],
) -> Daemon {
    let listen = format!("127.0.0.1:{port}");
    let args = [
        OsStr::new("--listen"),
        OsStr::new(&listen),
        OsStr::new("--repo"),
        repo.as_os_str(),
    ];
    spawn_reconciler(&log_dir.join("reconcile.log"), args, env)
}
