//! PostgreSQL control errors.

use std::path::PathBuf;

/// Errors controlling or querying the local PostgreSQL.
#[derive(Debug, thiserror::Error)]
pub enum PgError {
    /// A program could not be started.
    #[error("failed to run {program}: {source}")]
    Spawn {
        /// Program path.
        program: String,
        /// Cause.
        #[source]
        source: std::io::Error,
    },
    /// A program exited with failure.
    #[error("{program} failed ({status}): {output}")]
    Exited {
        /// Program path.
        program: String,
        /// Exit status text.
        status: String,
        /// Last lines of its output.
        output: String,
    },
    /// A deadline passed.
    #[error("timed out: {0}")]
    Timeout(String),
    /// A SQL error.
    #[error("query failed: {}", sql_detail(.0))]
    Sql(#[from] tokio_postgres::Error),
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// File.
        path: PathBuf,
        /// Cause.
        #[source]
        source: std::io::Error,
    },
    /// The TLS settings of a role's connections cannot be used.
    #[error("postgresql.authentication.{role}: {source}")]
    Tls {
        /// `superuser`, `replication` or `rewind`.
        role: String,
        /// The file and the reason.
        #[source]
        source: crate::tls::TlsError,
    },
    /// The `postgres` OS user is missing.
    #[error("cannot run PostgreSQL as root and no 'postgres' OS user exists")]
    NoPostgresUser,
}

/// Result alias.
pub type PgResult<T> = Result<T, PgError>;

/// The server's message when there is one (tokio_postgres only says "db error").
fn sql_detail(e: &tokio_postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => format!("{e}: {}", db.message()),
        None => e.to_string(),
    }
}
