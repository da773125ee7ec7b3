//! The userspace fence: a process apart from the agent that stops PostgreSQL when the
//! leader lease could expire without the agent having renewed it.
//!
//! A frozen or deadlocked agent (SIGSTOP, a stuck call, a paused VM) cannot keep its primary
//! writable past its lease: the fence is another process, fed a deadline after every
//! successful lock update; when the deadline passes without a renewal it kills the
//! postmaster and its children. Patroni relies on the Linux watchdog for this; the fence
//! works where no watchdog device exists. This module is the protocol and the state
//! machine (pure); `process` runs it.
//!
//! Protocol: one command per line on a unix socket, one reply line each.
//! `arm <ms>` — kill PostgreSQL unless re-armed within `<ms>` milliseconds (re-arming is
//! the feed); `disarm`; `status`; `stop` — exit (refused while armed). Replies:
//! `ok armed <ms>`, `ok disarmed`, `ok stopping`, `error <why>`.

pub mod process;

use std::time::{Duration, Instant};

/// A command from the agent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FenceCommand {
    /// Kill PostgreSQL unless re-armed within this time.
    Arm(Duration),
    /// Stand down.
    Disarm,
    /// Report the state.
    Status,
    /// Exit (an agent shutting down cleanly, PostgreSQL stopped); refused while armed.
    Stop,
}

/// A line that is not a command.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not a fence command: {0:?} (expected 'arm <ms>', 'disarm', 'status' or 'stop')")]
pub struct BadCommand(pub String);

impl FenceCommand {
    /// Parses one protocol line.
    pub fn parse(line: &str) -> Result<FenceCommand, BadCommand> {
        let mut words = line.split_whitespace();
        let cmd = match (words.next(), words.next()) {
            (Some("arm"), Some(ms)) => ms
                .parse::<u64>()
                .ok()
                .map(|ms| FenceCommand::Arm(Duration::from_millis(ms))),
            (Some("disarm"), None) => Some(FenceCommand::Disarm),
            (Some("status"), None) => Some(FenceCommand::Status),
            (Some("stop"), None) => Some(FenceCommand::Stop),
            _ => None,
        };
        match (cmd, words.next()) {
            (Some(c), None) => Ok(c),
            _ => Err(BadCommand(line.chars().take(80).collect())),
        }
    }

    /// The protocol line for this command.
    pub fn line(&self) -> String {
        match self {
            FenceCommand::Arm(d) => format!("arm {}", d.as_millis()),
            FenceCommand::Disarm => "disarm".into(),
            FenceCommand::Status => "status".into(),
            FenceCommand::Stop => "stop".into(),
        }
    }
}

/// The fence's state: armed until a deadline, or not.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Fence {
    deadline: Option<Instant>,
}

impl Fence {
    /// Applies a command received at `now`; returns the reply line.
    pub fn apply(&mut self, cmd: FenceCommand, now: Instant) -> String {
        match cmd {
            FenceCommand::Arm(d) => self.deadline = Some(now + d),
            FenceCommand::Disarm => self.deadline = None,
            FenceCommand::Status => {}
            FenceCommand::Stop if self.deadline.is_some() => {
                return "error armed: disarm first".into();
            }
            FenceCommand::Stop => return "ok stopping".into(),
        }
        self.describe(now)
    }

    /// `ok armed <ms left>` or `ok disarmed`.
    pub fn describe(&self, now: Instant) -> String {
        match self.deadline {
            Some(d) => format!("ok armed {}", d.saturating_duration_since(now).as_millis()),
            None => "ok disarmed".into(),
        }
    }

    /// When the fence fires, if armed.
    pub fn deadline(&self) -> Option<Instant> {
        self.deadline
    }

    /// True when armed and the deadline has passed: time to stop PostgreSQL. Firing
    /// disarms the fence (the agent re-arms it for a new primary).
    pub fn fire_if_due(&mut self, now: Instant) -> bool {
        if self.deadline.is_some_and(|d| d <= now) {
            self.deadline = None;
            return true;
        }
        false
    }
}

/// Parses `postmaster.pid`: the postmaster's pid is its first line.
pub fn postmaster_pid(pidfile_text: &str) -> Option<i32> {
    pidfile_text
        .lines()
        .next()?
        .trim()
        .parse()
        .ok()
        .filter(|p| *p > 1)
}

/// The parent pid in a `/proc/<pid>/stat` line (`pid (comm) state ppid ...`; `comm` may
/// hold spaces and parentheses, so the fields are read after the last `)`).
pub fn stat_ppid(stat: &str) -> Option<i32> {
    let rest = &stat[stat.rfind(')')? + 1..];
    rest.split_whitespace().nth(1)?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_protocol() {
        assert_eq!(
            FenceCommand::parse("arm 8000"),
            Ok(FenceCommand::Arm(Duration::from_secs(8)))
        );
        assert_eq!(FenceCommand::parse(" disarm "), Ok(FenceCommand::Disarm));
        assert_eq!(FenceCommand::parse("status"), Ok(FenceCommand::Status));
        assert_eq!(FenceCommand::parse("stop"), Ok(FenceCommand::Stop));
        for bad in [
            "",
            "arm",
            "arm -1",
            "arm 5 6",
            "disarm now",
            "reboot",
            "arm 1e9",
        ] {
            assert!(FenceCommand::parse(bad).is_err(), "{bad}");
        }
        let c = FenceCommand::Arm(Duration::from_millis(1234));
        assert_eq!(FenceCommand::parse(&c.line()), Ok(c));
    }

    #[test]
    fn fires_once_when_not_fed_in_time() {
        let t0 = Instant::now();
        let mut f = Fence::default();
        assert!(
            !f.fire_if_due(t0 + Duration::from_secs(100)),
            "disarmed never fires"
        );
        assert_eq!(
            f.apply(FenceCommand::Arm(Duration::from_secs(8)), t0),
            "ok armed 8000"
        );
        assert!(!f.fire_if_due(t0 + Duration::from_secs(7)));
        // Fed at 7 s: the deadline moves to 15 s.
        f.apply(
            FenceCommand::Arm(Duration::from_secs(8)),
            t0 + Duration::from_secs(7),
        );
        assert!(!f.fire_if_due(t0 + Duration::from_secs(14)));
        assert!(f.fire_if_due(t0 + Duration::from_secs(15)));
        assert!(!f.fire_if_due(t0 + Duration::from_secs(16)), "fires once");
        assert_eq!(f.describe(t0), "ok disarmed");
    }

    #[test]
    fn stop_is_refused_while_armed() {
        let t0 = Instant::now();
        let mut f = Fence::default();
        f.apply(FenceCommand::Arm(Duration::from_secs(5)), t0);
        assert!(f.apply(FenceCommand::Stop, t0).starts_with("error"));
        assert!(f.deadline().is_some(), "still armed");
        f.apply(FenceCommand::Disarm, t0);
        assert_eq!(f.apply(FenceCommand::Stop, t0), "ok stopping");
    }

    #[test]
    fn disarm_stands_down() {
        let t0 = Instant::now();
        let mut f = Fence::default();
        f.apply(FenceCommand::Arm(Duration::from_secs(1)), t0);
        assert_eq!(f.apply(FenceCommand::Disarm, t0), "ok disarmed");
        assert!(!f.fire_if_due(t0 + Duration::from_secs(5)));
    }

    #[test]
    fn reads_pids() {
        assert_eq!(postmaster_pid("4242\n/var/lib/pg\n"), Some(4242));
        assert_eq!(postmaster_pid("garbage"), None);
        assert_eq!(postmaster_pid("1\n"), None);
        assert_eq!(
            stat_ppid("777 (postgres: m1: walsender (x) 1) S 4242 777 777 0"),
            Some(4242)
        );
        assert_eq!(stat_ppid("nonsense"), None);
    }
}
