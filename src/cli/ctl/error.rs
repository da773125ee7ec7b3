//! CLI errors. Every error ends the command with [`crate::cli::exit_code::Exit::Failure`].

/// An error of a `patronus` operator command.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// Configuration file or DCS URL problem.
    #[error("{0}")]
    Config(String),
    /// The DCS could not be read or written.
    #[error(transparent)]
    Dcs(#[from] crate::dcs::DcsError),
    /// A REST call failed.
    #[error("{0}")]
    Http(String),
    /// The member's REST API could not be reached at all (nothing was sent).
    #[error("{0}")]
    Unreachable(String),
    /// The user declined, or a confirmation was needed without a terminal.
    #[error("{0}")]
    Aborted(String),
    /// Anything else the command refuses, with the reason.
    #[error("{0}")]
    Failed(String),
}

/// Result alias for CLI commands.
pub type CliResult<T> = Result<T, CliError>;
