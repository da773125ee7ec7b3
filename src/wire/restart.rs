//! The answer of a member to `POST /restart`, as the reconciler reads it: the text of a 503
//! differs by cause (Patroni's and patronus' texts are the same), and this is the one place
//! that reads it.

/// Patroni's text for a member busy with another action (`restart already in progress`).
const BUSY: &str = "already in progress";
/// Patroni's text for `restart_pending` on a member with no pending restart.
pub const NOT_SATISFIED: &str = "restart conditions are not satisfied";

/// What a member answered to `POST /restart`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RestartAnswer {
    /// 200: restarted (the member's message).
    Done(String),
    /// 503: another action runs (retry later).
    Busy,
    /// 503: the conditions of the request (`restart_pending`, a role, a version) do not hold.
    NotSatisfied,
    /// Any other answer (status 0 when the member could not be reached).
    Other {
        /// HTTP status.
        code: u16,
        /// Body.
        text: String,
    },
}

impl RestartAnswer {
    /// Reads a status and body.
    pub fn read(code: u16, text: &str) -> RestartAnswer {
        match code {
            200 => RestartAnswer::Done(text.trim().to_string()),
            503 if text.contains(BUSY) => RestartAnswer::Busy,
            503 if text.contains(NOT_SATISFIED) => RestartAnswer::NotSatisfied,
            _ => RestartAnswer::Other {
                code,
                text: text.trim().to_string(),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ha::reply::RequestError;

    #[test]
    fn the_member_texts_are_read() {
        let busy = RequestError::Busy("restart").to_string();
        assert_eq!(RestartAnswer::read(503, &busy), RestartAnswer::Busy);
        assert_eq!(
            RestartAnswer::read(503, NOT_SATISFIED),
            RestartAnswer::NotSatisfied
        );
        assert_eq!(
            RestartAnswer::read(200, "restarted successfully\n"),
            RestartAnswer::Done("restarted successfully".into())
        );
        assert_eq!(
            RestartAnswer::read(503, "restart failed: postgres did not start"),
            RestartAnswer::Other {
                code: 503,
                text: "restart failed: postgres did not start".into()
            }
        );
        assert!(matches!(
            RestartAnswer::read(0, "connection refused"),
            RestartAnswer::Other { code: 0, .. }
        ));
    }
}
