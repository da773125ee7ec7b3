//! DCS errors.

/// Errors from DCS operations, classified for the caller's choice: [`DcsError::Unavailable`]
/// and [`DcsError::Timeout`] may go away on a retry of the same call; a refusal never does; a
/// lost compare-and-swap needs a fresh read and a new decision, not a blind retry.
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
    /// A compare-and-swap write lost: the key (named) changed since it was read.
    #[error("{0}: changed by someone else since it was read")]
    CasFailed(String),
}

impl DcsError {
    /// True for errors a retry of the same call may fix (the DCS was unavailable or slow).
    pub fn is_retryable(&self) -> bool {
        matches!(self, DcsError::Unavailable(_) | DcsError::Timeout(_))
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
            DcsError::CasFailed(key) => DcsError::CasFailed(key),
        }
    }
}

/// The outcome of a compare-and-swap write (`Ok(false)` when it lost) as a classified error.
pub trait CasOutcome {
    /// `Ok(())` when the write went through, [`DcsError::CasFailed`] naming `key` when it lost.
    fn or_cas_failed(self, key: &str) -> Result<(), DcsError>;
}

impl CasOutcome for Result<bool, DcsError> {
    fn or_cas_failed(self, key: &str) -> Result<(), DcsError> {
        match self {
            Ok(true) => Ok(()),
            Ok(false) => Err(DcsError::CasFailed(key.to_string())),
            Err(e) => Err(e),
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classification_decides_retry() {
        assert!(DcsError::Unavailable("down".into()).is_retryable());
        assert!(DcsError::Timeout("get".into()).is_retryable());
        assert!(!DcsError::Refused("permission denied".into()).is_retryable());
        assert!(!DcsError::CasFailed("config".into()).is_retryable());
    }

    #[test]
    fn a_lost_cas_names_its_key() {
        assert!(Ok::<bool, DcsError>(true).or_cas_failed("config").is_ok());
        let e = Ok::<bool, DcsError>(false)
            .or_cas_failed("config")
            .unwrap_err();
        assert!(matches!(&e, DcsError::CasFailed(k) if k == "config"));
        assert_eq!(
            e.to_string(),
            "config: changed by someone else since it was read"
        );
        let e = Err::<bool, DcsError>(DcsError::Timeout("put".into())).or_cas_failed("config");
        assert!(matches!(e, Err(DcsError::Timeout(_))));
    }
}
