//! The server side: the REST API's certificate and, optionally, client certificates checked
//! against a CA (`restapi.verify_client`).

use super::{load_certs, load_key, provider, TlsError};
use rustls::server::WebPkiClientVerifier;
use std::path::PathBuf;
use std::sync::Arc;

/// Patroni's `restapi.verify_client`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ClientCertMode {
    /// No client certificate is asked for.
    #[default]
    None,
    /// A client certificate is asked for and checked when sent; unsafe methods need one.
    Optional,
    /// Every connection must present a client certificate signed by the CA.
    Required,
}

/// The files of a TLS server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerTls {
    /// Certificate chain (PEM).
    pub certfile: PathBuf,
    /// Private key (PEM); defaults to `certfile` (Patroni allows both in one file).
    pub keyfile: Option<PathBuf>,
    /// Password of an encrypted PKCS#8 key.
    pub keyfile_password: Option<String>,
    /// CA that signs client certificates (needed unless `verify_client` is `None`).
    pub cafile: Option<PathBuf>,
    /// Whether client certificates are asked for.
    pub verify_client: ClientCertMode,
}

/// Builds the rustls server configuration (HTTP/1.1 only), reading every file now.
pub fn server_config(tls: &ServerTls) -> Result<rustls::ServerConfig, TlsError> {
    let certs = load_certs(&tls.certfile)?;
    let key_path = tls.keyfile.as_ref().unwrap_or(&tls.certfile);
    let key = load_key(key_path, tls.keyfile_password.as_deref())?;
    let builder = rustls::ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| TlsError::Config(e.to_string()))?;
    let builder = match tls.verify_client {
        ClientCertMode::None => builder.with_no_client_auth(),
        mode => {
            let Some(ca) = &tls.cafile else {
                return Err(TlsError::Config(
                    "verify_client needs restapi.cafile (the CA of the client certificates)".into(),
                ));
            };
            let mut roots = rustls::RootCertStore::empty();
            for cert in load_certs(ca)? {
                roots.add(cert).map_err(|e| TlsError::Content {
                    path: ca.clone(),
                    reason: e.to_string(),
                })?;
            }
            let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider());
            let verifier = if mode == ClientCertMode::Optional {
                verifier.allow_unauthenticated()
            } else {
                verifier
            };
            let verifier = verifier
                .build()
                .map_err(|e| TlsError::Config(e.to_string()))?;
            builder.with_client_cert_verifier(verifier)
        }
    };
    let mut config = builder
        .with_single_cert(certs, key)
        .map_err(|e| TlsError::Config(format!("{}: {e}", key_path.display())))?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(config)
}
