//! Certificate and key loading, errors naming the file, encrypted PKCS#8 keys (written by
//! the `openssl` CLI), and the server/client configurations built from them.

use super::*;
use std::path::{Path, PathBuf};
use std::process::Command;

struct Files {
    _dir: tempfile::TempDir,
    cert: PathBuf,
    key: PathBuf,
}

fn self_signed() -> Files {
    let dir = tempfile::tempdir().expect("temp dir");
    let ck = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).expect("cert");
    let cert = dir.path().join("api.crt");
    let key = dir.path().join("api.key");
    std::fs::write(&cert, ck.cert.pem()).expect("write cert");
    std::fs::write(&key, ck.signing_key.serialize_pem()).expect("write key");
    Files {
        _dir: dir,
        cert,
        key,
    }
}

/// `openssl pkcs8 -topk8 -v2 aes-256-cbc` of `key` with `password`.
fn encrypt(key: &Path, password: &str) -> PathBuf {
    let out = key.with_extension("enc.key");
    let status = Command::new("openssl")
        .args(["pkcs8", "-topk8", "-v2", "aes-256-cbc", "-in"])
        .arg(key)
        .arg("-out")
        .arg(&out)
        .arg("-passout")
        .arg(format!("pass:{password}"))
        .status()
        .expect("the openssl CLI is needed by this test (apt-get install openssl)");
    assert!(status.success(), "openssl pkcs8 failed");
    out
}

#[test]
fn load_errors_name_the_file_and_the_reason() {
    let missing = Path::new("/nonexistent/dir/api.crt");
    let err = load_certs(missing).unwrap_err().to_string();
    assert!(err.contains("/nonexistent/dir/api.crt"), "{err}");
    assert!(err.contains("No such file"), "{err}");
    let f = self_signed();
    let err = load_certs(&f.key).unwrap_err().to_string();
    assert!(err.contains(&f.key.display().to_string()), "{err}");
    assert!(err.contains("no certificate"), "{err}");
    let err = load_key(&f.cert, None).unwrap_err().to_string();
    assert!(
        err.contains("api.crt") && err.contains("no usable private key"),
        "{err}"
    );
    assert_eq!(load_certs(&f.cert).expect("certificate").len(), 1);
    load_key(&f.key, None).expect("plain PKCS#8 key");
}

#[test]
fn encrypted_pkcs8_keys_need_their_password() {
    let f = self_signed();
    let enc = encrypt(&f.key, "s3cret-pw");
    let text = std::fs::read_to_string(&enc).expect("read encrypted key");
    assert!(text.contains("BEGIN ENCRYPTED PRIVATE KEY"), "{text}");
    let plain = load_key(&f.key, None).expect("plain key");
    let decrypted = load_key(&enc, Some("s3cret-pw")).expect("decrypted key");
    assert_eq!(decrypted.secret_der(), plain.secret_der());
    let err = load_key(&enc, None).unwrap_err().to_string();
    assert!(
        err.contains("enc.key") && err.contains("no password"),
        "{err}"
    );
    let err = load_key(&enc, Some("wrong")).unwrap_err().to_string();
    assert!(err.contains("wrong password"), "{err}");
    assert!(
        !err.contains("s3cret-pw") && !err.contains("wrong:"),
        "{err}"
    );
    // The encrypted key serves the REST API.
    let tls = ServerTls {
        certfile: f.cert.clone(),
        keyfile: Some(enc),
        keyfile_password: Some("s3cret-pw".into()),
        cafile: None,
        verify_client: ClientCertMode::None,
    };
    server_config(&tls).expect("server config with an encrypted key");
}

#[test]
fn legacy_encrypted_keys_are_refused_with_the_conversion() {
    let dir = tempfile::tempdir().expect("temp dir");
    let key = dir.path().join("legacy.key");
    std::fs::write(
        &key,
        "-----BEGIN EC PRIVATE KEY-----\nProc-Type: 4,ENCRYPTED\nDEK-Info: AES-256-CBC,00\n\nAAAA\n-----END EC PRIVATE KEY-----\n",
    )
    .expect("write");
    let err = load_key(&key, Some("x")).unwrap_err().to_string();
    assert!(
        err.contains("legacy.key") && err.contains("openssl pkcs8 -topk8"),
        "{err}"
    );
}

#[test]
fn server_and_client_configurations() {
    let f = self_signed();
    let other = self_signed();
    let mut tls = ServerTls {
        certfile: f.cert.clone(),
        keyfile: Some(f.key.clone()),
        keyfile_password: None,
        cafile: None,
        verify_client: ClientCertMode::None,
    };
    let config = server_config(&tls).expect("server config");
    assert_eq!(config.alpn_protocols, vec![b"http/1.1".to_vec()]);
    tls.verify_client = ClientCertMode::Required;
    let err = server_config(&tls).unwrap_err().to_string();
    assert!(err.contains("cafile"), "{err}");
    tls.cafile = Some(f.cert.clone());
    server_config(&tls).expect("client certificates checked against a CA");
    tls.keyfile = Some(other.key.clone());
    tls.verify_client = ClientCertMode::None;
    assert!(server_config(&tls).is_err(), "a key of another certificate");

    let client = ClientTls {
        cacert: Some(f.cert.clone()),
        certfile: Some(f.cert.clone()),
        keyfile: Some(f.key.clone()),
        ..Default::default()
    };
    client_config(&client).expect("client config");
    let bad = ClientTls {
        cacert: Some("/nonexistent/ca.crt".into()),
        ..Default::default()
    };
    let err = client_config(&bad).unwrap_err().to_string();
    assert!(err.contains("/nonexistent/ca.crt"), "{err}");
}
