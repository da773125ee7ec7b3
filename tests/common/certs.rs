//! A throw-away certificate authority for TLS tests: a CA, server certificates for
//! 127.0.0.1/localhost and client certificates, written as PEM files into a test directory
//! (readable by the `postgres` user, keys 0600 where PostgreSQL insists).

use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose,
};
use std::path::{Path, PathBuf};

/// A certificate and its key on disk.
#[derive(Debug, Clone)]
pub struct CertFiles {
    /// PEM certificate.
    pub cert: PathBuf,
    /// PEM private key (PKCS#8, unencrypted).
    pub key: PathBuf,
}

/// A test CA whose certificate is `ca_file`.
pub struct TestCa {
    dir: PathBuf,
    issuer: CertifiedIssuer<'static, KeyPair>,
    /// The CA certificate (PEM), to trust.
    pub ca_file: PathBuf,
}

impl TestCa {
    /// A new CA named `name`, its files under `dir` (created).
    pub fn new(dir: &Path, name: &str) -> TestCa {
        std::fs::create_dir_all(dir).expect("create the CA directory");
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
        params.distinguished_name.push(DnType::CommonName, name);
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let key = KeyPair::generate().expect("CA key");
        let issuer = CertifiedIssuer::self_signed(params, key).expect("self-sign the CA");
        let ca_file = dir.join(format!("{name}-ca.crt"));
        write(&ca_file, &issuer.pem(), 0o644);
        TestCa {
            dir: dir.to_path_buf(),
            issuer,
            ca_file,
        }
    }

    /// A server certificate for 127.0.0.1 and localhost (also usable as a client one).
    pub fn server(&self, name: &str) -> CertFiles {
        self.issue(
            name,
            vec!["127.0.0.1".into(), "localhost".into()],
            vec![
                ExtendedKeyUsagePurpose::ServerAuth,
                ExtendedKeyUsagePurpose::ClientAuth,
            ],
        )
    }

    /// A client certificate whose common name is `name` (an etcd user name with
    /// `--client-cert-auth`).
    pub fn client(&self, name: &str) -> CertFiles {
        self.issue(name, vec![], vec![ExtendedKeyUsagePurpose::ClientAuth])
    }

    fn issue(
        &self,
        name: &str,
        sans: Vec<String>,
        usages: Vec<ExtendedKeyUsagePurpose>,
    ) -> CertFiles {
        let mut params = CertificateParams::new(sans).expect("certificate params");
        params.distinguished_name.push(DnType::CommonName, name);
        params.extended_key_usages = usages;
        params.key_usages = vec![
            KeyUsagePurpose::DigitalSignature,
            KeyUsagePurpose::KeyEncipherment,
        ];
        let key = KeyPair::generate().expect("key");
        let cert = params.signed_by(&key, &self.issuer).expect("sign");
        let files = CertFiles {
            cert: self.dir.join(format!("{name}.crt")),
            key: self.dir.join(format!("{name}.key")),
        };
        write(&files.cert, &cert.pem(), 0o644);
        write(&files.key, &key.serialize_pem(), 0o600);
        files
    }
}

/// Writes `text` with `mode`, owned by `postgres` when running as root (PostgreSQL refuses a
/// key it does not own, or one readable by others).
fn write(path: &Path, text: &str, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::write(path, text).expect("write a PEM file");
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).expect("chmod");
    if nix::unistd::geteuid().is_root() {
        if let Ok(Some(user)) = nix::unistd::User::from_name("postgres") {
            let _ = nix::unistd::chown(path, Some(user.uid), Some(user.gid));
        }
    }
}
