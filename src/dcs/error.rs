//! DCS errors.

/// Errors from DCS operations. All are retryable by the caller's loop.
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
    /// Our lease is gone.
    #[error("lease expired")]
    LeaseExpired,
}

impl DcsError {
    /// True for errors worth retrying immediately.
    pub fn is_retryable(&self) -> bool {
        true
    }
}

impl From<etcd_client::Error> for DcsError {
    fn from(e: etcd_client::Error) -> Self {
        DcsError::Unavailable(e.to_string())
    }
}
