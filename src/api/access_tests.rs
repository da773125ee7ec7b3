use super::*;

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn net(s: &str) -> Network {
    Network::parse(s).unwrap().unwrap()
}

fn basic(user: &str, pass: &str) -> String {
    let raw = format!("{user}:{pass}");
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(raw)
    )
}

#[test]
fn networks_parse_and_contain() {
    assert!(net("10.0.0.0/8").contains(ip("10.200.1.2")));
    assert!(!net("10.0.0.0/8").contains(ip("11.0.0.1")));
    assert!(net("127.0.0.2").contains(ip("127.0.0.2")));
    assert!(!net("127.0.0.2").contains(ip("127.0.0.1")));
    assert!(net("0.0.0.0/0").contains(ip("192.168.1.1")));
    assert!(net("fd00::/8").contains(ip("fd12::1")));
    assert!(!net("fd00::/8").contains(ip("127.0.0.1")));
    assert!(net("[::1]").contains(ip("::1")));
    // An IPv4 client seen on a dual-stack socket.
    assert!(net("127.0.0.1").contains(ip("::ffff:127.0.0.1")));
    assert_eq!(Network::parse("db1.example.com").unwrap(), None);
    let err = Network::parse("10.0.0.0/33").unwrap_err();
    assert!(err.contains("0..=32"), "{err}");
    assert!(Network::parse("host/8")
        .unwrap_err()
        .contains("not a network"));
}

/// One row: policy knobs, caller, expected outcome.
struct Row {
    name: &'static str,
    method: Method,
    path: &'static str,
    peer: &'static str,
    cert: bool,
    header: Option<String>,
    allow: &'static [&'static str],
    members: bool,
    cert_needed: bool,
    auth: bool,
    want: Result<(), Denial>,
}

fn row(name: &'static str, method: Method, peer: &'static str) -> Row {
    Row {
        name,
        method,
        path: "/restart",
        peer,
        cert: false,
        header: None,
        allow: &[],
        members: false,
        cert_needed: false,
        auth: false,
        want: Ok(()),
    }
}

#[test]
fn access_follows_patronis_check_access_order() {
    let good = Some(basic("admin", "s3cret"));
    let bad = Some(basic("admin", "wrong"));
    #[rustfmt::skip]
    let rows = vec![
        Row { allow: &["127.0.0.2"], want: Ok(()), ..row("GET never restricted", Method::GET, "10.9.9.9") },
        Row { allow: &["127.0.0.2"], cert_needed: true, auth: true, ..row("HEAD never restricted", Method::HEAD, "10.9.9.9") },
        Row { want: Ok(()), ..row("nothing configured", Method::POST, "10.9.9.9") },
        Row { allow: &["127.0.0.2"], want: Err(Denial::NotAllowed), ..row("outside allowlist", Method::POST, "127.0.0.1") },
        Row { allow: &["127.0.0.2"], ..row("inside allowlist", Method::POST, "127.0.0.2") },
        Row { allow: &["10.0.0.0/8"], ..row("inside a network", Method::DELETE, "10.1.2.3") },
        Row { members: true, want: Err(Denial::NotAllowed), ..row("not a member", Method::PATCH, "10.9.9.9") },
        Row { members: true, ..row("a member", Method::PUT, "10.0.0.7") },
        Row { members: true, path: "/failsafe", ..row("failsafe skips members", Method::POST, "10.9.9.9") },
        Row { allow: &["127.0.0.2"], members: true, path: "/failsafe", want: Err(Denial::NotAllowed), ..row("failsafe keeps the allowlist", Method::POST, "10.0.0.7") },
        Row { cert_needed: true, want: Err(Denial::NoClientCert), ..row("no client cert", Method::POST, "127.0.0.1") },
        Row { cert_needed: true, cert: true, ..row("client cert", Method::POST, "127.0.0.1") },
        Row { allow: &["127.0.0.2"], cert_needed: true, auth: true, want: Err(Denial::NotAllowed), ..row("allowlist before cert and auth", Method::POST, "127.0.0.1") },
        Row { cert_needed: true, auth: true, want: Err(Denial::NoClientCert), ..row("cert before auth", Method::POST, "127.0.0.1") },
        Row { auth: true, want: Err(Denial::NoAuthHeader), ..row("no auth header", Method::POST, "127.0.0.1") },
        Row { auth: true, header: bad, want: Err(Denial::NotAuthenticated), ..row("wrong password", Method::POST, "127.0.0.1") },
        Row { auth: true, header: Some("Bearer x".into()), want: Err(Denial::NotAuthenticated), ..row("other scheme", Method::POST, "127.0.0.1") },
        Row { auth: true, cert_needed: true, cert: true, allow: &["127.0.0.0/8"], header: good, ..row("everything right", Method::POST, "127.0.0.1") },
    ];
    let credentials = BasicAuth {
        username: "admin".into(),
        password: "s3cret".into(),
    };
    let member_ips = [ip("10.0.0.7")];
    for r in rows {
        let allowlist: Vec<Network> = r.allow.iter().map(|a| net(a)).collect();
        let policy = Policy {
            allowlist: &allowlist,
            include_members: r.members,
            member_ips: &member_ips,
            cert_needed: r.cert_needed,
            auth: r.auth.then_some(&credentials),
        };
        let caller = Caller {
            method: &r.method,
            path: r.path,
            peer: ip(r.peer),
            client_cert: r.cert,
            authorization: r.header.as_deref(),
        };
        assert_eq!(decide(&policy, &caller), r.want, "{}", r.name);
    }
}

#[test]
fn denials_carry_patronis_codes_and_texts() {
    assert_eq!(
        (Denial::NotAllowed.status(), Denial::NotAllowed.text()),
        (403, "Access is denied")
    );
    assert_eq!(
        (Denial::NoClientCert.status(), Denial::NoClientCert.text()),
        (403, "client certificate required")
    );
    assert_eq!(Denial::NoAuthHeader.status(), 401);
    assert_eq!(Denial::NotAuthenticated.text(), "not authenticated");
}
