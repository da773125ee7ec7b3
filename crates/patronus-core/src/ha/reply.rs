//! The HA loop's answer to an operator request (`POST /restart`, `POST /reinitialize`) and
//! the one mapping of its refusals to HTTP status codes and Patroni's reply texts. Pure: the
//! agent machine ([`super::machine`]) produces these answers.

use thiserror::Error;

/// Why the HA loop did not carry out a request. `Display` is the text Patroni sends.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum RequestError {
    /// A long action runs (`restart already in progress`, as Patroni's async executor says).
    #[error("{0} already in progress")]
    Busy(&'static str),
    /// Another operator request waits for the next cycle.
    #[error("another request is being processed")]
    AnotherRequest,
    /// The action was cancelled by a forced reinitialize.
    #[error("cancelled by a forced reinitialize")]
    Cancelled,
    /// The cycle decided not to act; the decision's message says why.
    #[error("{0}")]
    Declined(String),
    /// The action ran and failed; its outcome message.
    #[error("{0}")]
    Failed(String),
    /// The HA loop does not take requests (stopping or stopped).
    #[error("the HA loop is not running")]
    LoopStopped,
    /// The HA loop dropped the request without answering.
    #[error("the HA loop dropped the request")]
    Dropped,
}

/// What the HA loop answers: the message of the action taken, or why not.
pub type Reply = Result<String, RequestError>;

/// The operator request a reply answers (bodies differ per endpoint, as in Patroni).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RequestKind {
    /// `POST /restart`.
    Restart,
    /// `POST /reinitialize`.
    Reinitialize,
}

impl RequestError {
    /// HTTP status of the refusal: every refusal of the HA loop is 503 (Service
    /// Unavailable: retry later), as in Patroni.
    pub fn status(&self) -> u16 {
        503
    }

    /// The reply body for `kind`: `/restart` prefixes failures with `restart failed:` but
    /// sends a busy executor's text as is; `/reinitialize` sends the text as is.
    pub fn body(&self, kind: RequestKind) -> String {
        match (kind, self) {
            (RequestKind::Restart, RequestError::Busy(_)) => self.to_string(),
            (RequestKind::Restart, _) => format!("restart failed: {self}"),
            (RequestKind::Reinitialize, _) => self.to_string(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_and_bodies() {
        let busy = RequestError::Busy("restart");
        assert_eq!(busy.status(), 503);
        assert_eq!(
            busy.body(RequestKind::Restart),
            "restart already in progress"
        );
        let failed = RequestError::Failed("postgres did not start".into());
        assert_eq!(
            failed.body(RequestKind::Restart),
            "restart failed: postgres did not start"
        );
        assert_eq!(
            RequestError::AnotherRequest.body(RequestKind::Reinitialize),
            "another request is being processed"
        );
        assert_eq!(
            RequestError::Busy("reinitialize").body(RequestKind::Reinitialize),
            "reinitialize already in progress"
        );
    }
}
