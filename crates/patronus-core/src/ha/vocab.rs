//! Typed words of the agent's vocabulary whose text is PostgreSQL's: the `pg_controldata`
//! cluster state and the shutdown modes of `pg_ctl stop` (the member state published in the
//! member key is [`crate::dcs::MemberState`]). `Display` prints the exact text; parsing
//! never fails (an unknown text is kept as `Other`).

use std::fmt;

/// `Database cluster state` of `pg_controldata` (PostgreSQL's `DBState`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ControlState {
    /// `starting up`.
    StartingUp,
    /// `shut down`: a primary stopped cleanly.
    ShutDown,
    /// `shut down in recovery`: a replica stopped cleanly.
    ShutDownInRecovery,
    /// `shutting down`: a primary stopped during its shutdown checkpoint.
    ShuttingDown,
    /// `in crash recovery`.
    InCrashRecovery,
    /// `in archive recovery`: a replica (running or crashed).
    InArchiveRecovery,
    /// `in production`: a primary (running or crashed).
    InProduction,
    /// Any other text, kept as read.
    Other(String),
}

impl ControlState {
    /// The state for `pg_controldata`'s text.
    pub fn parse(s: &str) -> ControlState {
        match s.trim() {
            "starting up" => ControlState::StartingUp,
            "shut down" => ControlState::ShutDown,
            "shut down in recovery" => ControlState::ShutDownInRecovery,
            "shutting down" => ControlState::ShuttingDown,
            "in crash recovery" => ControlState::InCrashRecovery,
            "in archive recovery" => ControlState::InArchiveRecovery,
            "in production" => ControlState::InProduction,
            other => ControlState::Other(other.to_string()),
        }
    }

    /// PostgreSQL's text.
    pub fn as_str(&self) -> &str {
        match self {
            ControlState::StartingUp => "starting up",
            ControlState::ShutDown => "shut down",
            ControlState::ShutDownInRecovery => "shut down in recovery",
            ControlState::ShuttingDown => "shutting down",
            ControlState::InCrashRecovery => "in crash recovery",
            ControlState::InArchiveRecovery => "in archive recovery",
            ControlState::InProduction => "in production",
            ControlState::Other(s) => s,
        }
    }

    /// A primary that did not shut down cleanly (crashed while in production, in crash
    /// recovery or during its shutdown checkpoint).
    pub(crate) fn crashed_primary(&self) -> bool {
        matches!(
            self,
            ControlState::InProduction | ControlState::InCrashRecovery | ControlState::ShuttingDown
        )
    }

    /// The data directory was last a primary: crashed, or shut down cleanly as one.
    pub fn was_primary(&self) -> bool {
        self.crashed_primary() || *self == ControlState::ShutDown
    }
}

impl fmt::Display for ControlState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A shutdown mode of `pg_ctl stop -m`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StopMode {
    /// `smart`: wait for clients to disconnect.
    Smart,
    /// `fast`: disconnect clients, write the shutdown checkpoint.
    Fast,
    /// `immediate`: no checkpoint (crash recovery at the next start).
    Immediate,
}

impl StopMode {
    /// `pg_ctl`'s word.
    pub fn as_str(self) -> &'static str {
        match self {
            StopMode::Smart => "smart",
            StopMode::Fast => "fast",
            StopMode::Immediate => "immediate",
        }
    }
}

impl fmt::Display for StopMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_states_round_trip_postgres_text() {
        for s in [
            "starting up",
            "shut down",
            "shut down in recovery",
            "shutting down",
            "in crash recovery",
            "in archive recovery",
            "in production",
            "unrecognized status code",
        ] {
            assert_eq!(ControlState::parse(s).to_string(), s);
        }
        assert_eq!(
            ControlState::parse("in production"),
            ControlState::InProduction
        );
    }

    #[test]
    fn which_control_states_were_a_primary() {
        let was = |s| ControlState::parse(s).was_primary();
        assert!(was("in production") && was("in crash recovery") && was("shutting down"));
        assert!(was("shut down"));
        assert!(!was("shut down in recovery") && !was("in archive recovery"));
        assert!(!ControlState::ShutDown.crashed_primary());
    }

    #[test]
    fn stop_modes_print_pg_ctl_words() {
        assert_eq!(StopMode::Fast.to_string(), "fast");
        assert_eq!(StopMode::Immediate.to_string(), "immediate");
        assert_eq!(StopMode::Smart.to_string(), "smart");
    }
}
