use super::*;
use serde_json::json;

#[test]
fn urls_take_the_protocol_unless_given() {
    let s = EtcdSettings {
        hosts: vec!["a:2379".into(), "https://b:2379".into()],
        protocol: "https".into(),
        ..Default::default()
    };
    assert_eq!(s.urls(), vec!["https://a:2379", "https://b:2379"]);
    let plain = EtcdSettings {
        hosts: vec!["a:1".into()],
        ..Default::default()
    };
    assert_eq!(plain.urls(), vec!["http://a:1"]);
}

#[test]
fn passwords_are_never_printed() {
    let s = EtcdSettings {
        hosts: vec!["a:1".into()],
        username: Some("patronus".into()),
        password: Some("hunter2-etcd".into()),
        tls: EtcdTls {
            key_password: Some("hunter2-key".into()),
            ..Default::default()
        },
        ..Default::default()
    };
    let text = format!("{s:?}");
    assert!(text.contains("patronus"), "{text}");
    assert!(!text.contains("hunter2"), "{text}");
}

#[test]
fn sections_read_as_patronictl_does() {
    let s = settings_of_section(&json!({
        "hosts": "10.0.0.1, 10.0.0.2:2380", "protocol": "https", "cacert": "/ca.pem",
        "cert": "/c.pem", "key": "/c.key", "key_password": "k",
        "username": "u", "password": "p"
    }));
    assert_eq!(s.hosts, vec!["10.0.0.1:2379", "10.0.0.2:2380"]);
    assert_eq!(s.protocol, "https");
    assert_eq!(s.username.as_deref(), Some("u"));
    assert_eq!(s.password.as_deref(), Some("p"));
    assert_eq!(s.tls.cacert, Some("/ca.pem".into()));
    assert_eq!(s.tls.key, Some("/c.key".into()));
    assert_eq!(s.tls.key_password.as_deref(), Some("k"));
    let u = settings_of_section(&json!({"url": "https://e:1", "port": 9}));
    assert_eq!(
        (u.hosts, u.protocol.as_str()),
        (vec!["e:1".to_string()], "https")
    );
    let p = settings_of_section(&json!({"host": "e", "port": 9}));
    assert_eq!(
        (p.hosts, p.protocol.as_str()),
        (vec!["e:9".to_string()], "http")
    );
}

#[test]
fn unusable_tls_files_are_refused_naming_the_file() {
    let s = EtcdSettings {
        hosts: vec!["e:2379".into()],
        protocol: "https".into(),
        tls: EtcdTls {
            cacert: Some("/nonexistent/etcd-ca.pem".into()),
            ..Default::default()
        },
        ..Default::default()
    };
    let e = s.connect_options().unwrap_err();
    assert!(!e.is_retryable());
    assert!(e.to_string().contains("/nonexistent/etcd-ca.pem"), "{e}");
    // Over plain http the TLS files are not read.
    let plain = EtcdSettings {
        protocol: "http".into(),
        ..s
    };
    assert!(plain.connect_options().is_ok());
}

#[test]
fn pem_wraps_at_64_columns() {
    let text = pem("CERTIFICATE", &[0u8; 100]);
    assert!(text.starts_with("-----BEGIN CERTIFICATE-----\n"));
    assert!(text.ends_with("-----END CERTIFICATE-----\n"));
    assert!(text
        .lines()
        .all(|l| l.len() <= 64 || l.starts_with("-----")));
}

#[test]
fn credential_and_certificate_refusals_are_settings_problems() {
    let status = |c, m: &str| etcd_client::Error::GRpcStatus(tonic::Status::new(c, m));
    let wrong = status(
        tonic::Code::InvalidArgument,
        "etcdserver: authentication failed, invalid user ID or password",
    );
    let why = settings_problem(&wrong).expect("a settings problem");
    assert!(why.contains("check username and password"), "{why}");
    let denied = status(
        tonic::Code::PermissionDenied,
        "etcdserver: permission denied",
    );
    assert!(settings_problem(&denied).is_some());
    let tls = status(
        tonic::Code::Unavailable,
        "invalid peer certificate: UnknownIssuer",
    );
    let why = settings_problem(&tls).expect("a TLS problem");
    assert!(why.starts_with("TLS handshake failed"), "{why}");
    let down = status(tonic::Code::Unavailable, "etcdserver: leader changed");
    assert!(settings_problem(&down).is_none());
    assert!(DcsError::from(wrong)
        .to_string()
        .contains("authentication failed"));
}

#[test]
fn errors_name_their_endpoint_once() {
    let e = DcsError::Refused("range: authentication failed".into()).at("https://e:2379");
    assert_eq!(
        e.to_string(),
        "DCS refused the request: etcd https://e:2379: range: authentication failed"
    );
    let again = e.at("https://other:1");
    assert!(!again.to_string().contains("other"), "{again}");
}
