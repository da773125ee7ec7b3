//! User scripts around PostgreSQL's life: the `postgresql.callbacks` (`on_start`, `on_stop`,
//! `on_restart`, `on_reload`, `on_role_change`), `pre_promote` and `before_stop`.
//!
//! Callbacks run as Patroni runs them: `<command> <action> <role> <scope>`, the command split
//! shell-like, in the background (the HA loop never waits), one at a time per member — a newer
//! callback kills the process group of one still running (Patroni's `CallbackExecutor`).
//! `pre_promote` and `before_stop` run to completion in the task that promotes or stops.
//! Which callback an effect fires is the pure [`callback_for`].

use super::shared::Shared;
use crate::postgres::Postgres;
use std::path::Path;
use std::process::Stdio;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;
use tokio::task::JoinHandle;

/// A callback running longer than this is killed.
pub(crate) const CALLBACK_TIMEOUT: Duration = Duration::from_secs(600);
/// `pre_promote` and `before_stop` running longer than this count as failed.
pub(crate) const HOOK_TIMEOUT: Duration = Duration::from_secs(300);

/// A callback name (the first argument given to the script).
// The variants are Patroni's callback names (`on_start`, `on_stop`, …).
#[allow(clippy::enum_variant_names)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CallbackAction {
    /// PostgreSQL was started.
    OnStart,
    /// PostgreSQL was stopped.
    OnStop,
    /// PostgreSQL was restarted.
    OnRestart,
    /// PostgreSQL re-read its configuration.
    OnReload,
    /// The member became primary or replica.
    OnRoleChange,
}

impl CallbackAction {
    /// The key under `postgresql.callbacks` and the script's first argument.
    pub fn as_str(self) -> &'static str {
        match self {
            CallbackAction::OnStart => "on_start",
            CallbackAction::OnStop => "on_stop",
            CallbackAction::OnRestart => "on_restart",
            CallbackAction::OnReload => "on_reload",
            CallbackAction::OnRoleChange => "on_role_change",
        }
    }
}

/// The member's role after the effect (the script's second argument).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CallbackRole {
    /// Read-write primary.
    Primary,
    /// Standby.
    Replica,
    /// The standby leader of a standby cluster.
    StandbyLeader,
}

impl CallbackRole {
    /// Patroni's role name.
    pub fn as_str(self) -> &'static str {
        match self {
            CallbackRole::Primary => "primary",
            CallbackRole::Replica => "replica",
            CallbackRole::StandbyLeader => "standby_leader",
        }
    }

    /// Primary when `primary`, else replica.
    pub fn of(primary: bool) -> Self {
        if primary {
            CallbackRole::Primary
        } else {
            CallbackRole::Replica
        }
    }
}

/// What the agent did to PostgreSQL.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Effect {
    /// Started (after a clone, a rewind, a crash, an agent start) in this role.
    Started(CallbackRole),
    /// Stopped while in this role.
    Stopped(CallbackRole),
    /// Restarted in this role.
    Restarted(CallbackRole),
    /// Configuration reloaded in this role.
    Reloaded(CallbackRole),
    /// Promoted to primary.
    Promoted,
    /// Demoted to replica (including a switchover's old primary).
    Demoted,
}

/// The callback an effect fires, given the role of the last callback fired. A start in
/// another role than the previous one is a role change, as in Patroni (`follow()` starts
/// a former primary with `on_role_change` instead of `on_start`).
pub fn callback_for(
    effect: Effect,
    previous: Option<CallbackRole>,
) -> (CallbackAction, CallbackRole) {
    match effect {
        Effect::Started(role) if previous.is_some_and(|p| p != role) => {
            (CallbackAction::OnRoleChange, role)
        }
        Effect::Started(role) => (CallbackAction::OnStart, role),
        Effect::Stopped(role) => (CallbackAction::OnStop, role),
        Effect::Restarted(role) => (CallbackAction::OnRestart, role),
        Effect::Reloaded(role) => (CallbackAction::OnReload, role),
        Effect::Promoted => (CallbackAction::OnRoleChange, CallbackRole::Primary),
        Effect::Demoted => (CallbackAction::OnRoleChange, CallbackRole::Replica),
    }
}

/// The argv of a script: `command` split shell-like, then `extra`. Err names the problem.
pub fn script_argv(command: &str, extra: &[&str]) -> Result<Vec<String>, String> {
    let mut argv = shlex::split(command)
        .ok_or_else(|| format!("cannot split the command line `{command}` (unbalanced quotes)"))?;
    if argv.is_empty() {
        return Err("empty command".into());
    }
    argv.extend(extra.iter().map(|s| s.to_string()));
    Ok(argv)
}

/// Runs callbacks one at a time; remembers the last role and a failed `pre_promote`.
#[derive(Default)]
pub struct CallbackRunner {
    /// Process group and waiter of the callback still running, if any.
    current: Mutex<Option<(u32, JoinHandle<()>)>>,
    /// Role of the last callback fired.
    role: Mutex<Option<CallbackRole>>,
    /// Whether any effect fired a callback since the agent started.
    fired: AtomicBool,
    /// When `pre_promote` last failed (ms since the epoch, 0 = never).
    pre_promote_failed_ms: AtomicU64,
}

impl CallbackRunner {
    /// Whether an effect has been reported since the agent started.
    pub fn fired(&self) -> bool {
        self.fired.load(Ordering::Relaxed)
    }

    /// When the last `pre_promote` failed (ms since the epoch).
    pub fn pre_promote_failed_ms(&self) -> Option<u64> {
        Some(self.pre_promote_failed_ms.load(Ordering::Relaxed)).filter(|ms| *ms > 0)
    }

    /// Waits (up to `timeout`) for the callback still running, so that the agent's exit
    /// does not cut off `on_stop`.
    pub async fn wait_running(&self, timeout: Duration) {
        let running = self.current.lock().ok().and_then(|mut c| c.take());
        if let Some((_, handle)) = running {
            let _ = tokio::time::timeout(timeout, handle).await;
        }
    }

    pub(crate) fn record_pre_promote_failure(&self, at_ms: u64) {
        self.pre_promote_failed_ms.store(at_ms, Ordering::Relaxed);
    }

    /// Reports an effect: runs its callback (if configured) in the background, killing a
    /// callback still running.
    pub fn effect(
        &self,
        pg: &Postgres,
        callbacks: &serde_json::Map<String, serde_json::Value>,
        scope: &str,
        effect: Effect,
    ) {
        self.fired.store(true, Ordering::Relaxed);
        let previous = self.role.lock().ok().and_then(|mut r| r.take());
        let (action, role) = callback_for(effect, previous);
        if let Ok(mut r) = self.role.lock() {
            *r = Some(role);
        }
        let Some(cmd) = callbacks.get(action.as_str()).and_then(|v| v.as_str()) else {
            return;
        };
        let argv = match script_argv(cmd, &[action.as_str(), role.as_str(), scope]) {
            Ok(a) => a,
            Err(e) => {
                tracing::error!("callback {}: {e}", action.as_str());
                return;
            }
        };
        let cmd = pg.owner_command(Path::new(&argv[0]));
        self.run_exclusive(cmd, &argv[1..], action.as_str(), CALLBACK_TIMEOUT);
    }

    /// Starts `cmd` (a command in its own process group) with `args`, killing the process
    /// group of the callback still running, if any.
    fn run_exclusive(
        &self,
        cmd: tokio::process::Command,
        args: &[String],
        what: &str,
        timeout: Duration,
    ) {
        let Ok(mut current) = self.current.lock() else {
            return;
        };
        if let Some((pgid, handle)) = current.take() {
            if !handle.is_finished() {
                tracing::warn!("killing the callback still running (pid {pgid}) for {what}");
                kill_group(pgid);
            }
        }
        match spawn_logged(cmd, args, what, timeout) {
            Ok(running) => *current = Some(running),
            Err(e) => tracing::error!("callback {what} failed to start: {e}"),
        }
    }
}

/// Sends SIGKILL to a process group.
fn kill_group(pgid: u32) {
    if let Ok(pid) = i32::try_from(pgid) {
        let _ = nix::sys::signal::killpg(
            nix::unistd::Pid::from_raw(pid),
            nix::sys::signal::Signal::SIGKILL,
        );
    }
}

/// Spawns `argv` as the data directory's owner; a task waits for it (up to `timeout`) and
/// logs its exit status and output.
fn spawn_logged(
    mut cmd: tokio::process::Command,
    args: &[String],
    what: &str,
    timeout: Duration,
) -> std::io::Result<(u32, JoinHandle<()>)> {
    cmd.args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    let child = cmd.spawn()?;
    let pid = child.id().unwrap_or(0);
    let what = what.to_string();
    let handle = tokio::spawn(async move {
        match tokio::time::timeout(timeout, child.wait_with_output()).await {
            Ok(Ok(out)) => log_output(&what, &out),
            Ok(Err(e)) => tracing::error!("callback {what}: {e}"),
            Err(_) => {
                kill_group(pid);
                tracing::error!("callback {what} killed after {} s", timeout.as_secs());
            }
        }
    });
    Ok((pid, handle))
}

fn log_output(what: &str, out: &std::process::Output) {
    for line in String::from_utf8_lossy(&out.stdout)
        .lines()
        .chain(String::from_utf8_lossy(&out.stderr).lines())
        .filter(|l| !l.trim().is_empty())
    {
        tracing::info!("{what}: {line}");
    }
    if out.status.success() {
        tracing::info!("{what} exited with {}", out.status);
    } else {
        tracing::warn!("{what} exited with {}", out.status);
    }
}

/// Runs a hook (`pre_promote`, `before_stop`) to completion: Ok(true) on exit 0,
/// Ok(false) on another exit status or a timeout, Err when it could not start.
pub(crate) async fn run_hook(pg: &Postgres, what: &str, command: &str) -> Result<bool, String> {
    let argv = script_argv(command, &[])?;
    let mut cmd = pg.owner_command(Path::new(&argv[0]));
    cmd.args(&argv[1..])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    let child = cmd
        .spawn()
        .map_err(|e| format!("{what} script `{command}`: {e}"))?;
    let pid = child.id().unwrap_or(0);
    match tokio::time::timeout(HOOK_TIMEOUT, child.wait_with_output()).await {
        Ok(Ok(out)) => {
            log_output(what, &out);
            Ok(out.status.success())
        }
        Ok(Err(e)) => Err(format!("{what} script `{command}`: {e}")),
        Err(_) => {
            kill_group(pid);
            tracing::error!(
                "{what} script `{command}` killed after {} s",
                HOOK_TIMEOUT.as_secs()
            );
            Ok(false)
        }
    }
}

impl Shared {
    /// Reports an effect on PostgreSQL to the callbacks (see [`CallbackRunner::effect`]).
    pub fn callback(&self, effect: Effect) {
        let node = self.node();
        self.callbacks
            .effect(&self.pg, &node.postgresql.callbacks, &node.scope, effect);
    }

    /// Asks PostgreSQL to re-read its configuration, then fires `on_reload` with `role`.
    /// Everything that reloads PostgreSQL goes through here so that the callback runs.
    pub async fn reload_postgres(&self, role: CallbackRole) -> crate::postgres::PgResult<()> {
        self.ctl.reload().await?;
        self.callback(Effect::Reloaded(role));
        Ok(())
    }

    /// Runs `before_stop` (its exit status is only logged), then stops PostgreSQL.
    pub async fn stop_postgres(&self, mode: crate::ha::StopMode) -> crate::postgres::PgResult<()> {
        if self.ctl.is_running() {
            if let Some(cmd) = self
                .node()
                .postgresql
                .before_stop
                .clone()
                .filter(|c| !c.trim().is_empty())
            {
                if let Err(e) = run_hook(&self.pg, "before_stop", &cmd).await {
                    tracing::error!("{e}");
                }
            }
        }
        self.ctl.stop(mode).await
    }

    /// Runs `pre_promote`; false (and the time recorded) when it fails: the promotion is
    /// cancelled and the member stays out of the race for `ttl`.
    pub(crate) async fn pre_promote(&self) -> bool {
        let Some(cmd) = self
            .node()
            .postgresql
            .pre_promote
            .clone()
            .filter(|c| !c.trim().is_empty())
        else {
            return true;
        };
        let ok = match run_hook(&self.pg, "pre_promote", &cmd).await {
            Ok(ok) => ok,
            Err(e) => {
                tracing::error!("{e}");
                false
            }
        };
        if !ok {
            self.callbacks
                .record_pre_promote_failure(self.clock.now_ms());
        }
        ok
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use CallbackAction::*;
    use CallbackRole::*;

    #[test]
    fn which_callback_each_effect_fires() {
        let table = [
            (Effect::Started(Primary), None, (OnStart, Primary)),
            (Effect::Started(Replica), None, (OnStart, Replica)),
            (Effect::Started(Replica), Some(Replica), (OnStart, Replica)),
            (Effect::Started(Primary), Some(Primary), (OnStart, Primary)),
            // A former primary started as a replica (rewind, crash) changes role.
            (
                Effect::Started(Replica),
                Some(Primary),
                (OnRoleChange, Replica),
            ),
            (
                Effect::Started(Primary),
                Some(Replica),
                (OnRoleChange, Primary),
            ),
            (Effect::Stopped(Primary), Some(Primary), (OnStop, Primary)),
            (Effect::Stopped(Replica), None, (OnStop, Replica)),
            (
                Effect::Restarted(Replica),
                Some(Replica),
                (OnRestart, Replica),
            ),
            (Effect::Restarted(Primary), None, (OnRestart, Primary)),
            (
                Effect::Reloaded(Primary),
                Some(Primary),
                (OnReload, Primary),
            ),
            (Effect::Reloaded(Replica), None, (OnReload, Replica)),
            (Effect::Promoted, Some(Replica), (OnRoleChange, Primary)),
            (Effect::Promoted, None, (OnRoleChange, Primary)),
            (Effect::Demoted, Some(Primary), (OnRoleChange, Replica)),
            (Effect::Demoted, None, (OnRoleChange, Replica)),
        ];
        for (effect, previous, want) in table {
            assert_eq!(
                callback_for(effect, previous),
                want,
                "{effect:?} after {previous:?}"
            );
        }
    }

    fn sh(script: &str) -> (tokio::process::Command, Vec<String>) {
        let mut c = tokio::process::Command::new("/bin/sh");
        c.process_group(0);
        (c, vec!["-c".into(), script.into()])
    }

    #[tokio::test]
    async fn a_newer_callback_kills_the_one_still_running_and_a_slow_one_times_out() {
        let dir = std::env::temp_dir().join(format!("patronus-cb-unit-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let out = dir.join("out");
        let runner = CallbackRunner::default();
        // The first one would write after 3 s (its child sleep included in the group).
        let (c, a) = sh(&format!("sleep 3; echo first >> {}", out.display()));
        runner.run_exclusive(c, &a, "on_start", CALLBACK_TIMEOUT);
        let (c, a) = sh(&format!("echo second >> {}", out.display()));
        runner.run_exclusive(c, &a, "on_role_change", CALLBACK_TIMEOUT);
        runner.wait_running(Duration::from_secs(10)).await;
        tokio::time::sleep(Duration::from_millis(3500)).await;
        assert_eq!(std::fs::read_to_string(&out).unwrap(), "second\n");
        // A callback past its timeout is killed (its group with it).
        let (c, a) = sh(&format!("sleep 2; echo late >> {}", out.display()));
        runner.run_exclusive(c, &a, "on_reload", Duration::from_millis(300));
        runner.wait_running(Duration::from_secs(10)).await;
        tokio::time::sleep(Duration::from_millis(2500)).await;
        assert_eq!(std::fs::read_to_string(&out).unwrap(), "second\n");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn names_are_patronis() {
        let names: Vec<_> = [OnStart, OnStop, OnRestart, OnReload, OnRoleChange]
            .iter()
            .map(|a| a.as_str())
            .collect();
        assert_eq!(
            names,
            [
                "on_start",
                "on_stop",
                "on_restart",
                "on_reload",
                "on_role_change"
            ]
        );
        assert_eq!((Primary.as_str(), Replica.as_str()), ("primary", "replica"));
    }

    #[test]
    fn argv_is_split_shell_like_then_patroni_arguments() {
        let argv = script_argv(
            "/usr/local/bin/vip.sh --iface 'eth 0'",
            &["on_role_change", "primary", "demo"],
        )
        .unwrap();
        assert_eq!(
            argv,
            [
                "/usr/local/bin/vip.sh",
                "--iface",
                "eth 0",
                "on_role_change",
                "primary",
                "demo"
            ]
        );
        assert!(script_argv("/x 'open", &[])
            .unwrap_err()
            .contains("unbalanced"));
        assert_eq!(script_argv("  ", &[]).unwrap_err(), "empty command");
    }
}
