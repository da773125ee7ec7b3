//! TLS with rustls and the ring provider, shared by every part of patronus: certificate and
//! key files (PEM, a password-protected PKCS#8 key too), the server configuration of the REST
//! API and the client configuration of every HTTP client (CLI, peers, reconciler, webhooks);
//! a node's reloadable REST security ([`security::ApiSecurity`]: server TLS, allowlist, the
//! agent's peer client), used by the REST server and the agent alike.

mod client;
mod files;
mod network;
pub mod security;
mod server;

pub use client::{client_config, http_client, ClientTls};
pub(crate) use client::{with_identity, AcceptAny};
pub use files::{load_certs, load_key};
pub use network::Network;
pub use server::{server_config, ClientCertMode, ServerTls};

use std::path::PathBuf;

/// A TLS setting that cannot be used, naming the file and the reason.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A file could not be read.
    #[error("{path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// A file was read but does not hold what it should.
    #[error("{path}: {reason}")]
    Content {
        /// The file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// rustls refused the combination (e.g. a key that does not match the certificate).
    #[error("TLS configuration: {0}")]
    Config(String),
}

/// Installs the ring provider as the process default (idempotent). Called before any TLS
/// configuration is built so that libraries building their own (tonic) find one.
pub fn install_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

fn provider() -> std::sync::Arc<rustls::crypto::CryptoProvider> {
    std::sync::Arc::new(rustls::crypto::ring::default_provider())
}

#[cfg(test)]
mod tests;
