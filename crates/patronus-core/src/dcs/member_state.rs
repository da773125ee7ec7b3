//! The `state` a member publishes in its member key, typed.

use super::model::Member;
use std::fmt;

/// The `state` a member publishes in its member key (Patroni's `PostgresqlState`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MemberState {
    /// `running`.
    Running,
    /// `stopped`.
    Stopped,
    /// `starting`.
    Starting,
    /// `stopping`.
    Stopping,
    /// `restarting`.
    Restarting,
    /// `crashed`.
    Crashed,
    /// Any other text (`creating replica`, `running custom bootstrap script`, …), as read.
    Other(String),
}

impl MemberState {
    /// The state for the published text.
    pub fn parse(s: &str) -> MemberState {
        match s {
            "running" => MemberState::Running,
            "stopped" => MemberState::Stopped,
            "starting" => MemberState::Starting,
            "stopping" => MemberState::Stopping,
            "restarting" => MemberState::Restarting,
            "crashed" => MemberState::Crashed,
            other => MemberState::Other(other.to_string()),
        }
    }

    /// Patroni's text.
    pub fn as_str(&self) -> &str {
        match self {
            MemberState::Running => "running",
            MemberState::Stopped => "stopped",
            MemberState::Starting => "starting",
            MemberState::Stopping => "stopping",
            MemberState::Restarting => "restarting",
            MemberState::Crashed => "crashed",
            MemberState::Other(s) => s,
        }
    }
}

impl fmt::Display for MemberState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Member {
    /// The published `state`, typed.
    pub fn member_state(&self) -> MemberState {
        MemberState::parse(&self.state)
    }

    /// True when the member's PostgreSQL runs (`state: running`).
    pub fn is_running(&self) -> bool {
        self.member_state() == MemberState::Running
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn member_states_round_trip_patroni_text() {
        for s in [
            "running",
            "stopped",
            "starting",
            "stopping",
            "restarting",
            "crashed",
        ] {
            assert_eq!(MemberState::parse(s).to_string(), s);
        }
        assert_eq!(
            MemberState::parse("creating replica"),
            MemberState::Other("creating replica".into())
        );
        let m = |state: &str| Member {
            state: state.into(),
            ..Member::default()
        };
        assert!(m("running").is_running());
        assert!(!m("Running").is_running() && !m("starting").is_running());
    }
}
