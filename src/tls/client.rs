//! The client side: one HTTP client builder for every caller (CLI, peers, reconciler,
//! webhooks), trusting the system's roots plus an optional CA file, presenting an optional
//! client certificate.

use super::{load_certs, load_key, provider, TlsError};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

/// What a client trusts and presents (Patroni's `ctl.cacert`, `certfile`, `keyfile`,
/// `keyfile_password`, `insecure`; or the `restapi` ones for the agent's own calls).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClientTls {
    /// Extra CA to trust besides the system's roots.
    pub cacert: Option<PathBuf>,
    /// Client certificate to present.
    pub certfile: Option<PathBuf>,
    /// Its key (defaults to `certfile`).
    pub keyfile: Option<PathBuf>,
    /// Password of an encrypted PKCS#8 key.
    pub keyfile_password: Option<String>,
    /// Do not verify the server's certificate (`ctl.insecure`).
    pub insecure: bool,
}

/// A reqwest client with this TLS configuration and a whole-request timeout.
pub fn http_client(tls: &ClientTls, timeout: Duration) -> Result<reqwest::Client, TlsError> {
    let config = client_config(tls)?;
    reqwest::Client::builder()
        .timeout(timeout)
        .tls_backend_preconfigured(config)
        .build()
        .map_err(|e| TlsError::Config(e.to_string()))
}

/// The rustls client configuration for `tls`.
pub fn client_config(tls: &ClientTls) -> Result<rustls::ClientConfig, TlsError> {
    let builder = rustls::ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| TlsError::Config(e.to_string()))?;
    let builder = if tls.insecure {
        builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AcceptAny))
    } else {
        builder.with_root_certificates(roots(tls.cacert.as_ref())?)
    };
    let mut config = with_identity(
        builder,
        tls.certfile.as_deref(),
        tls.keyfile.as_deref(),
        tls.keyfile_password.as_deref(),
    )?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(config)
}

/// Finishes a client configuration with the client certificate `cert` and its key (`key`,
/// else the certificate file; decrypted with `password`), or with none.
pub(crate) fn with_identity(
    builder: rustls::ConfigBuilder<rustls::ClientConfig, rustls::client::WantsClientCert>,
    cert: Option<&Path>,
    key: Option<&Path>,
    password: Option<&str>,
) -> Result<rustls::ClientConfig, TlsError> {
    let Some(cert) = cert else {
        return Ok(builder.with_no_client_auth());
    };
    let key_path = key.unwrap_or(cert);
    let key = load_key(key_path, password)?;
    builder
        .with_client_auth_cert(load_certs(cert)?, key)
        .map_err(|e| TlsError::Config(format!("{}: {e}", key_path.display())))
}

/// The system's roots (those that parse) plus `extra`.
fn roots(extra: Option<&PathBuf>) -> Result<rustls::RootCertStore, TlsError> {
    let mut roots = rustls::RootCertStore::empty();
    let native = rustls_native_certs::load_native_certs();
    roots.add_parsable_certificates(native.certs);
    if let Some(path) = extra {
        for cert in load_certs(path)? {
            roots.add(cert).map_err(|e| TlsError::Content {
                path: path.clone(),
                reason: e.to_string(),
            })?;
        }
    }
    Ok(roots)
}

/// `insecure` (and libpq's `sslmode=require` without a root certificate): any server
/// certificate is accepted, handshake signatures are still checked.
#[derive(Debug)]
pub(crate) struct AcceptAny;

impl ServerCertVerifier for AcceptAny {
    fn verify_server_cert(
        &self,
        _: &CertificateDer<'_>,
        _: &[CertificateDer<'_>],
        _: &ServerName<'_>,
        _: &[u8],
        _: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        let algs = provider().signature_verification_algorithms;
        rustls::crypto::verify_tls12_signature(message, cert, dss, &algs)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        let algs = provider().signature_verification_algorithms;
        rustls::crypto::verify_tls13_signature(message, cert, dss, &algs)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        provider()
            .signature_verification_algorithms
            .supported_schemes()
    }
}
