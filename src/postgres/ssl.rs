//! TLS of the agent's own PostgreSQL connections (tokio-postgres with rustls), from the
//! libpq keys of the role (`sslmode`, `sslrootcert`, `sslcert`, `sslkey`, `sslpassword`,
//! `sslcrl`, `channel_binding`), with libpq's meaning:
//!
//! | sslmode | TLS | verification |
//! |---|---|---|
//! | disable | never | — |
//! | allow, prefer | when the server offers it | none |
//! | require | always | none; chain to `sslrootcert` when it is set (as libpq) |
//! | verify-ca | always | chain to `sslrootcert` |
//! | verify-full | always | chain to `sslrootcert` and host name |
//!
//! Libpq tools (`pg_basebackup`, `pg_rewind`, `psql`) and `primary_conninfo` get the same
//! keys rendered into their conninfo ([`crate::config::PgSsl::conninfo_pairs`]).

use crate::config::{Negotiated, PgSsl, SslMode};
use crate::tls::{load_certs, TlsError};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, CertificateRevocationListDer, ServerName, UnixTime};
use rustls::{CertificateError, DigitallySignedStruct, SignatureScheme};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// How the agent connects: plain or TLS (with a prepared rustls configuration).
#[derive(Clone)]
pub enum PgConnector {
    /// `sslmode: disable`.
    Plain,
    /// Every other mode.
    Tls(tokio_postgres_rustls::MakeRustlsConnect),
}

impl PgConnector {
    /// Connects with `config`, the connection driven by a spawned task.
    pub async fn connect(
        &self,
        config: &tokio_postgres::Config,
    ) -> Result<tokio_postgres::Client, tokio_postgres::Error> {
        // libpq never negotiates TLS over a Unix socket (`use_unix_socket`): neither do we.
        let unix_only = config
            .get_hosts()
            .iter()
            .all(|h| matches!(h, tokio_postgres::config::Host::Unix(_)));
        match self {
            _ if unix_only && !config.get_hosts().is_empty() => {
                let mut plain = config.clone();
                plain.ssl_mode(tokio_postgres::config::SslMode::Disable);
                let (client, conn) = plain.connect(tokio_postgres::NoTls).await?;
                tokio::spawn(async move {
                    let _ = conn.await;
                });
                Ok(client)
            }
            PgConnector::Plain => {
                let (client, conn) = config.connect(tokio_postgres::NoTls).await?;
                tokio::spawn(async move {
                    let _ = conn.await;
                });
                Ok(client)
            }
            PgConnector::Tls(tls) => {
                let (client, conn) = config.connect(tls.clone()).await?;
                tokio::spawn(async move {
                    let _ = conn.await;
                });
                Ok(client)
            }
        }
    }
}

/// What verification the mode asks for (pure).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verify {
    /// Accept any certificate (signatures still checked).
    Nothing,
    /// Chain to the CA, any host name.
    Chain,
    /// Chain and host name.
    Full,
}

/// The verification a role's settings call for (libpq's rules).
pub fn verification(ssl: &PgSsl) -> Verify {
    match ssl.mode() {
        SslMode::Disable | SslMode::Allow | SslMode::Prefer => Verify::Nothing,
        SslMode::Require if ssl.sslrootcert.is_none() => Verify::Nothing,
        SslMode::Require | SslMode::VerifyCa => Verify::Chain,
        SslMode::VerifyFull => Verify::Full,
    }
}

/// The tokio-postgres `sslmode` for a libpq one.
fn tokio_mode(mode: SslMode) -> tokio_postgres::config::SslMode {
    use tokio_postgres::config::SslMode as T;
    match mode {
        SslMode::Disable => T::Disable,
        SslMode::Allow | SslMode::Prefer => T::Prefer,
        SslMode::Require | SslMode::VerifyCa | SslMode::VerifyFull => T::Require,
    }
}

/// Sets `sslmode` and `channel_binding` on a tokio-postgres configuration.
pub fn configure(config: &mut tokio_postgres::Config, ssl: &PgSsl) {
    use tokio_postgres::config::ChannelBinding as C;
    config.ssl_mode(tokio_mode(ssl.mode()));
    if let Some(cb) = ssl.channel_binding {
        config.channel_binding(match cb {
            Negotiated::Disable => C::Disable,
            Negotiated::Prefer => C::Prefer,
            Negotiated::Require => C::Require,
        });
    }
}

/// The connector for a role's settings; an unusable file is an error naming it.
pub fn connector(ssl: &PgSsl) -> Result<PgConnector, TlsError> {
    if ssl.mode() == SslMode::Disable {
        return Ok(PgConnector::Plain);
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| TlsError::Config(e.to_string()))?;
    let verifier: Arc<dyn ServerCertVerifier> = match verification(ssl) {
        Verify::Nothing => Arc::new(crate::tls::AcceptAny),
        level => {
            let webpki = webpki_verifier(ssl, provider.clone())?;
            match level {
                Verify::Chain => Arc::new(ChainOnly(webpki)),
                _ => webpki,
            }
        }
    };
    let builder = builder
        .dangerous()
        .with_custom_certificate_verifier(verifier);
    let mut config = crate::tls::with_identity(
        builder,
        ssl.sslcert.as_deref(),
        ssl.sslkey.as_deref(),
        ssl.sslpassword.as_deref(),
    )?;
    // PostgreSQL 17 accepts only this protocol name when ALPN is offered; older servers
    // ignore it.
    config.alpn_protocols = vec![b"postgresql".to_vec()];
    Ok(PgConnector::Tls(
        tokio_postgres_rustls::MakeRustlsConnect::new(config),
    ))
}

/// The chain verifier: roots from `sslrootcert` (`system`: the system's roots), CRLs from
/// `sslcrl` / `sslcrldir`.
fn webpki_verifier(
    ssl: &PgSsl,
    provider: Arc<rustls::crypto::CryptoProvider>,
) -> Result<Arc<WebPkiServerVerifier>, TlsError> {
    let Some(root) = &ssl.sslrootcert else {
        return Err(TlsError::Config(format!(
            "sslmode {} needs sslrootcert (the CA file that signed the server certificate)",
            ssl.mode().as_str()
        )));
    };
    let mut roots = rustls::RootCertStore::empty();
    if root == Path::new("system") {
        roots.add_parsable_certificates(rustls_native_certs::load_native_certs().certs);
    } else {
        for cert in load_certs(root)? {
            roots.add(cert).map_err(|e| TlsError::Content {
                path: root.clone(),
                reason: e.to_string(),
            })?;
        }
    }
    let crls = load_crls(ssl)?;
    WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider)
        .with_crls(crls)
        .build()
        .map_err(|e| TlsError::Config(format!("{}: {e}", root.display())))
}

/// CRLs of `sslcrl` (a PEM file) and `sslcrldir` (every file in it).
fn load_crls(ssl: &PgSsl) -> Result<Vec<CertificateRevocationListDer<'static>>, TlsError> {
    let mut files: Vec<PathBuf> = ssl.sslcrl.iter().cloned().collect();
    if let Some(dir) = &ssl.sslcrldir {
        let entries = std::fs::read_dir(dir).map_err(|source| TlsError::Read {
            path: dir.clone(),
            source,
        })?;
        files.extend(entries.filter_map(Result::ok).map(|e| e.path()));
    }
    let mut out = Vec::new();
    for path in files {
        let bytes = std::fs::read(&path).map_err(|source| TlsError::Read {
            path: path.clone(),
            source,
        })?;
        for crl in CertificateRevocationListDer::pem_slice_iter(&bytes) {
            out.push(crl.map_err(|e| TlsError::Content {
                path: path.clone(),
                reason: format!("not a PEM CRL: {e}"),
            })?);
        }
    }
    Ok(out)
}

/// `verify-ca` (or `require` with a root): the chain is verified, the name is not.
#[derive(Debug)]
struct ChainOnly(Arc<WebPkiServerVerifier>);

impl ServerCertVerifier for ChainOnly {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        match self
            .0
            .verify_server_cert(end_entity, intermediates, server_name, ocsp, now)
        {
            Err(rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) => Ok(ServerCertVerified::assertion()),
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.supported_verify_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ssl(mode: SslMode, root: bool) -> PgSsl {
        PgSsl {
            sslmode: Some(mode),
            sslrootcert: root.then(|| "/ca.crt".into()),
            ..Default::default()
        }
    }

    #[test]
    fn verification_follows_libpq() {
        let cases = [
            (SslMode::Disable, true, Verify::Nothing),
            (SslMode::Prefer, true, Verify::Nothing),
            (SslMode::Require, false, Verify::Nothing),
            (SslMode::Require, true, Verify::Chain),
            (SslMode::VerifyCa, true, Verify::Chain),
            (SslMode::VerifyFull, true, Verify::Full),
        ];
        for (mode, root, want) in cases {
            assert_eq!(verification(&ssl(mode, root)), want, "{mode:?} root={root}");
        }
    }

    #[test]
    fn bad_settings_name_the_problem() {
        crate::tls::install_provider();
        let e = connector(&ssl(SslMode::VerifyFull, false))
            .err()
            .expect("no root")
            .to_string();
        assert!(e.contains("sslrootcert"), "{e}");
        let e = connector(&ssl(SslMode::VerifyCa, true))
            .err()
            .expect("missing file")
            .to_string();
        assert!(e.contains("/ca.crt"), "{e}");
        assert!(matches!(
            connector(&ssl(SslMode::Disable, false)),
            Ok(PgConnector::Plain)
        ));
        assert!(matches!(
            connector(&PgSsl::default()),
            Ok(PgConnector::Tls(_))
        ));
    }
}
