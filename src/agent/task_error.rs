//! Why a step of a background task failed (start, bootstrap, clone, custom bootstrap): the
//! errors of the layers below, typed, and the task's own reasons. A task turns it into its
//! outcome's message ([`super::tasks::TaskOutcome`]).

use crate::dcs::DcsError;
use crate::postgres::PgError;

/// A failed step of a background task.
#[derive(Debug, thiserror::Error)]
pub enum TaskError {
    /// An operation on the local PostgreSQL failed.
    #[error(transparent)]
    Pg(#[from] PgError),
    /// A DCS operation failed.
    #[error(transparent)]
    Dcs(#[from] DcsError),
    /// PostgreSQL did not answer queries before the timeout.
    #[error("postgres did not become ready: {0}")]
    NotReady(PgError),
    /// A script the node file names (post_bootstrap, a bootstrap method) failed.
    #[error("{0}")]
    Script(String),
    /// The step cannot be carried out (the reason says why).
    #[error("{0}")]
    Refused(String),
}

impl From<&str> for TaskError {
    fn from(reason: &str) -> TaskError {
        TaskError::Refused(reason.to_string())
    }
}
