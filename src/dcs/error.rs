//! DCS errors.

/// Errors from DCS operations. All but [`DcsError::Refused`] may go away on a retry.
#[derive(Debug, thiserror::Error)]
pub enum DcsError {
    /// The DCS could not be reached or answered with an error.
    #[error("DCS is not accessible: {0}")]
    Unavailable(String),
    /// An operation did not finish within its deadline.
    #[error("DCS operation timed out: {0}")]
    Timeout(String),
    /// etcd refused the request in a way a retry cannot fix (credentials, permission,
    /// invalid request).
    #[error("DCS refused the request: {0}")]
    Refused(String),
}

impl DcsError {
    /// True for errors a retry may fix (everything but a refusal).
    pub fn is_retryable(&self) -> bool {
        !matches!(self, DcsError::Refused(_))
    }

    /// The same error, its message prefixed with the endpoint it came from.
    pub fn at(self, endpoint: &str) -> DcsError {
        let tag = |m: String| {
            if m.starts_with("etcd ") {
                m
            } else {
                format!("etcd {endpoint}: {m}")
            }
        };
        match self {
            DcsError::Unavailable(m) => DcsError::Unavailable(tag(m)),
            DcsError::Timeout(m) => DcsError::Timeout(tag(m)),
            DcsError::Refused(m) => DcsError::Refused(tag(m)),
        }
    }
}

impl From<etcd_client::Error> for DcsError {
    fn from(e: etcd_client::Error) -> Self {
        match super::etcd::settings_problem(&e) {
            Some(problem) => DcsError::Refused(problem),
            None => DcsError::Unavailable(super::etcd::describe(&e)),
        }
    }
}
