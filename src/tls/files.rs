//! PEM certificate chains and private keys, a password-protected PKCS#8 key included.

use super::TlsError;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use std::path::Path;

/// Every certificate of a PEM file (a chain or a CA bundle); an empty file is an error.
pub fn load_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let bytes = read(path)?;
    let certs: Result<Vec<_>, _> = CertificateDer::pem_slice_iter(&bytes).collect();
    let certs = certs.map_err(|e| content(path, format!("not a PEM certificate file: {e}")))?;
    if certs.is_empty() {
        return Err(content(path, "no certificate in the file".into()));
    }
    Ok(certs)
}

/// The private key of a PEM file. With a password, the key must be an encrypted PKCS#8 key
/// (`-----BEGIN ENCRYPTED PRIVATE KEY-----`, as `openssl pkcs8 -topk8` writes it).
pub fn load_key(path: &Path, password: Option<&str>) -> Result<PrivateKeyDer<'static>, TlsError> {
    let bytes = read(path)?;
    let text = String::from_utf8_lossy(&bytes);
    if text.contains("Proc-Type: 4,ENCRYPTED") {
        return Err(content(
            path,
            "legacy OpenSSL key encryption is not supported; convert it with \
             `openssl pkcs8 -topk8 -in old.key -out new.key`"
                .into(),
        ));
    }
    if text.contains("-----BEGIN ENCRYPTED PRIVATE KEY-----") {
        let Some(password) = password else {
            return Err(content(
                path,
                "the key is encrypted and no password is set".into(),
            ));
        };
        return decrypt(path, &text, password);
    }
    PrivateKeyDer::from_pem_slice(&bytes)
        .map_err(|e| content(path, format!("no usable private key: {e}")))
}

fn decrypt(path: &Path, pem: &str, password: &str) -> Result<PrivateKeyDer<'static>, TlsError> {
    use pkcs8::der::Decode;
    let (label, der) = pkcs8::der::pem::decode_vec(pem.trim().as_bytes())
        .map_err(|e| content(path, format!("bad PEM: {e}")))?;
    if label != "ENCRYPTED PRIVATE KEY" {
        return Err(content(path, format!("unexpected PEM block {label}")));
    }
    let info = pkcs8::EncryptedPrivateKeyInfo::from_der(&der)
        .map_err(|e| content(path, format!("bad encrypted key: {e}")))?;
    let doc = info
        .decrypt(password)
        .map_err(|_| content(path, "cannot decrypt the key (wrong password?)".into()))?;
    Ok(PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(
        doc.as_bytes().to_vec(),
    )))
}

fn read(path: &Path) -> Result<Vec<u8>, TlsError> {
    std::fs::read(path).map_err(|source| TlsError::Read {
        path: path.to_path_buf(),
        source,
    })
}

fn content(path: &Path, reason: String) -> TlsError {
    TlsError::Content {
        path: path.to_path_buf(),
        reason,
    }
}
