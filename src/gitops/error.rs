//! Errors of the desired-state repository: every problem names the file, the YAML path and
//! the reason, and all problems of a repository are reported together.

use std::fmt;

/// One problem found in a repository file.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct RepoProblem {
    /// File relative to the repository root.
    pub file: String,
    /// Dotted YAML path inside the file (empty for the whole file).
    pub path: String,
    /// What is wrong.
    pub reason: String,
}

impl fmt::Display for RepoProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.path.is_empty() {
            write!(f, "{}: {}", self.file, self.reason)
        } else {
            write!(f, "{}: {}: {}", self.file, self.path, self.reason)
        }
    }
}

impl RepoProblem {
    /// A problem at `path` of `file`.
    pub fn new(
        file: impl Into<String>,
        path: impl Into<String>,
        reason: impl Into<String>,
    ) -> Self {
        RepoProblem {
            file: file.into(),
            path: path.into(),
            reason: reason.into(),
        }
    }
}

/// Errors of GitOps commands.
#[derive(Debug, thiserror::Error)]
pub enum GitopsError {
    /// The repository is invalid; nothing was applied.
    #[error("the repository is invalid ({} problem(s)):\n  - {}", .0.len(), .0.iter().map(|p| p.to_string()).collect::<Vec<_>>().join("\n  - "))]
    Invalid(Vec<RepoProblem>),
    /// The DCS could not be read or written.
    #[error(transparent)]
    Dcs(#[from] crate::dcs::DcsError),
    /// A saved plan no longer matches the DCS.
    #[error("plan is stale: {0}")]
    Stale(String),
    /// A DCS key holds a value we cannot use (edited by hand or written by another tool).
    #[error("DCS key '{key}' is corrupt: field '{field}' {reason}")]
    CorruptKey {
        /// Key relative to the cluster prefix (e.g. `gitops`).
        key: String,
        /// Field inside the value (`(root)` for the whole value).
        field: String,
        /// What is wrong with it.
        reason: String,
    },
    /// Anything else (I/O, bad arguments).
    #[error("{0}")]
    Other(String),
}
