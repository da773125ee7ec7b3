//! Issue #14: the REST API over HTTPS with a test CA, on one 2-member cluster taken through
//! phases: health checks through the CA (leader 200, replica 503), no answer to plain HTTP,
//! `https://` api_url in the member keys, Patroni's access order on unsafe requests
//! (allowlist → client certificate → Basic auth) with `verify_client: optional`, body
//! limits, HAProxy `check-ssl` routing to the primary, then a reload to
//! `verify_client: required` (no certificate, no TLS session) and
//! `allowlist_include_members` (members' addresses allowed), the CLI listing and
//! switching over over HTTPS, a certificate swap to a second CA re-read on SIGHUP (and a
//! broken one refused), and a silent client cut off after the handshake limit.

mod common;

use common::certs::TestCa;
use common::*;
use reqwest::Method;
use std::net::{IpAddr, Ipv4Addr};
use std::path::Path;
use std::process::{Child, Command};
use std::time::Duration;

const T: Duration = Duration::from_secs(90);

/// A client trusting `ca`, presenting `cert` (when set), connecting from `source`.
fn client(ca: &Path, cert: Option<&certs::CertFiles>, source: [u8; 4]) -> reqwest::Client {
    patronus::tls::install_provider();
    let tls = patronus::tls::ClientTls {
        cacert: Some(ca.to_path_buf()),
        certfile: cert.map(|c| c.cert.clone()),
        keyfile: cert.map(|c| c.key.clone()),
        ..Default::default()
    };
    let config = patronus::tls::client_config(&tls).expect("client TLS config");
    reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .local_address(IpAddr::V4(Ipv4Addr::from(source)))
        .tls_backend_preconfigured(config)
        .build()
        .expect("client")
}

/// (status, body) of a request, or the error text.
async fn call(
    http: &reqwest::Client,
    method: Method,
    url: String,
    auth: bool,
    body: String,
) -> Result<(u16, String), String> {
    let mut rb = http.request(method, url).body(body);
    if auth {
        rb = rb.basic_auth("admin", Some("s3cret"));
    }
    let r = rb.send().await.map_err(|e| format!("{e:?}"))?;
    let code = r.status().as_u16();
    Ok((code, r.text().await.unwrap_or_default()))
}

/// Rewrites every member's config with `edit` and sends SIGHUP.
fn reload_all(c: &TestCluster, edit: &dyn Fn(String) -> String) {
    for n in &c.nodes {
        let text = std::fs::read_to_string(&n.config).expect("node config");
        std::fs::write(&n.config, edit(text)).expect("write node config");
        let pid = n.agent.as_ref().expect("agent runs").id();
        signal_pid(pid, nix::sys::signal::Signal::SIGHUP);
    }
}

/// `patronus -c <ctl> <args>`: (success, stdout + stderr).
fn cli(ctl: &Path, args: &[&str]) -> (bool, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_patronus"))
        .arg("-c")
        .arg(ctl)
        .args(args)
        .env_remove("PATRONICTL_CONFIG_FILE")
        .output()
        .expect("run patronus");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rest_api_over_https_allowlist_client_certs_haproxy_cli_and_reload() {
    let certs_dir = temp_dir("rest-tls-certs");
    let ca = TestCa::new(&certs_dir, "ca1");
    let server = ca.server("api");
    let admin = ca.client("admin");
    let tls = RestTls {
        ca: ca.ca_file.clone(),
        server: server.clone(),
        client: Some(admin.clone()),
        verify_client: "optional".into(),
    };
    let c = TestCluster::start(
        "rtls",
        ClusterOpts {
            members: 2,
            rest_auth: Some(("admin".into(), "s3cret".into())),
            rest_tls: Some(tls),
            restapi_extra: "  allowlist: [127.0.0.2]\n".into(),
            ..ClusterOpts::default()
        },
    )
    .await;
    let li = c.wait_healthy(T).await;
    let ri = 1 - li;
    let idle = idle_connection_closed(c.nodes[li].api_port);

    // Health checks through the CA, without a client certificate (optional).
    let anon = client(&ca.ca_file, None, [127, 0, 0, 1]);
    let get = |i: usize, path: &str| call(&anon, Method::GET, c.api_url(i, path), false, "".into());
    assert_eq!(get(li, "/primary").await.map(|r| r.0), Ok(200));
    assert_eq!(get(ri, "/primary").await.map(|r| r.0), Ok(503));
    assert_eq!(get(ri, "/replica").await.map(|r| r.0), Ok(200));

    // Plain HTTP on the TLS port is never served.
    let plain = http_get_url(&format!(
        "http://127.0.0.1:{}/primary",
        c.nodes[li].api_port
    ))
    .await;
    assert!(
        plain.as_ref().is_none_or(|(code, _)| *code != 200),
        "{plain:?}"
    );

    // The member keys advertise https.
    let member = c.key_json(&format!("members/{}", c.nodes[li].name)).await;
    let api_url = member
        .as_ref()
        .and_then(|m| m["api_url"].as_str())
        .unwrap_or_default();
    assert!(api_url.starts_with("https://127.0.0.1:"), "{member:?}");

    access_order(&c, &ca.ca_file, &admin, li).await;
    haproxy_routes_to_the_primary(&c, &ca.ca_file, li).await;

    // Reload: the members' addresses (127.0.0.1) join the allowlist and every client must
    // present a certificate.
    reload_all(&c, &|t| {
        t.replace(
            "allowlist: [127.0.0.2]",
            "allowlist: [127.0.0.2]\n  allowlist_include_members: true",
        )
        .replace("verify_client: optional", "verify_client: required")
    });
    // A new connection (a pooled one keeps the session it negotiated) without a client
    // certificate gets no TLS session.
    let url = c.api_url(li, "/patroni");
    let refused = wait_for("verify_client: required in force", T, || async {
        let fresh = client(&ca.ca_file, None, [127, 0, 0, 1]);
        call(&fresh, Method::GET, url.clone(), false, "".into())
            .await
            .err()
    })
    .await;
    // Under TLS 1.3 the client finishes its half of the handshake before the server checks
    // for a certificate, so the refusal reaches the client as the server's alert or as the
    // connection closing before the request went out (hyper: "connection was not ready").
    // Either way no HTTP response came back (`call` returns Err only then).
    assert!(
        refused.contains("certificate")
            || refused.contains("Certificate")
            || refused.contains("not ready")
            || refused.contains("closed"),
        "{refused}"
    );
    let with_cert = client(&ca.ca_file, Some(&admin), [127, 0, 0, 1]);
    let r = call(&with_cert, Method::GET, url.clone(), false, "".into()).await;
    assert_eq!(r.map(|r| r.0), Ok(200));
    // 127.0.0.1 is a member's address now: unsafe requests from it pass the allowlist.
    let reload = c.api_url(li, "/reload");
    let r = call(&with_cert, Method::POST, reload, true, "".into()).await;
    assert_eq!(r, Ok((202, "reload scheduled".into())));

    cli_over_https(&c, &ca.ca_file, &admin, li, ri).await;
    certificate_reload(&c, &certs_dir, &admin).await;

    // A client that connects and sends nothing is cut off after the 15 s handshake limit.
    let held = idle.await.expect("idle client task");
    assert!(
        (Duration::from_secs(10)..Duration::from_secs(30)).contains(&held),
        "the silent connection was held {held:?}"
    );
}

/// Connects to `port` and sends nothing; how long until the server closes the connection
/// (a minute at most).
fn idle_connection_closed(port: u16) -> tokio::task::JoinHandle<Duration> {
    tokio::spawn(async move {
        use tokio::io::AsyncReadExt;
        let start = std::time::Instant::now();
        let mut s = tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .expect("connect");
        let mut buf = [0u8; 64];
        let limit = Duration::from_secs(60);
        loop {
            match tokio::time::timeout(limit, s.read(&mut buf)).await {
                Ok(Ok(0)) | Ok(Err(_)) | Err(_) => return start.elapsed(),
                Ok(Ok(_)) => continue,
            }
        }
    })
}

/// Patroni's check_access order with `verify_client: optional` and `allowlist: [127.0.0.2]`.
async fn access_order(c: &TestCluster, ca: &Path, admin: &certs::CertFiles, li: usize) {
    let restart = c.api_url(li, "/restart");
    let outsider = client(ca, Some(admin), [127, 0, 0, 1]);
    let r = call(&outsider, Method::POST, restart.clone(), true, "{}".into()).await;
    assert_eq!(r, Ok((403, "Access is denied".into())));
    let r = call(
        &outsider,
        Method::GET,
        c.api_url(li, "/patroni"),
        false,
        "".into(),
    )
    .await;
    assert_eq!(r.map(|r| r.0), Ok(200), "GET is never restricted");

    let no_cert = client(ca, None, [127, 0, 0, 2]);
    let r = call(&no_cert, Method::POST, restart.clone(), true, "{}".into()).await;
    assert_eq!(r, Ok((403, "client certificate required".into())));

    let allowed = client(ca, Some(admin), [127, 0, 0, 2]);
    let r = call(&allowed, Method::POST, restart.clone(), false, "{}".into()).await;
    assert_eq!(r, Ok((401, "no auth header received".into())));

    // Limits: a body over 64 KiB, a body that is not JSON.
    let big = format!("{{\"role\": \"{}\"}}", "x".repeat(70 * 1024));
    let (code, text) = call(&allowed, Method::POST, restart.clone(), true, big)
        .await
        .expect("answer");
    assert_eq!(code, 413, "{text}");
    assert!(text.contains("65536 bytes"), "{text}");
    let (code, text) = call(
        &allowed,
        Method::POST,
        restart.clone(),
        true,
        "{oops".into(),
    )
    .await
    .expect("answer");
    assert_eq!(code, 400, "{text}");
    assert!(text.contains("invalid JSON"), "{text}");

    let reload = c.api_url(li, "/reload");
    let r = call(&allowed, Method::POST, reload, true, "".into()).await;
    assert_eq!(r, Ok((202, "reload scheduled".into())));
}

/// HAProxy checks `GET /primary` over TLS, verifying the agents' certificates with the CA,
/// and sends a PostgreSQL connection to the primary.
async fn haproxy_routes_to_the_primary(c: &TestCluster, ca: &Path, li: usize) {
    let haproxy = ["/usr/sbin/haproxy", "/usr/bin/haproxy"]
        .into_iter()
        .find(|p| Path::new(p).exists())
        .expect("haproxy is not installed (/usr/sbin/haproxy): apt-get install haproxy");
    let port = free_port();
    let servers: String = c
        .nodes
        .iter()
        .map(|n| {
            format!(
                "    server {} 127.0.0.1:{} check port {} check-ssl verify required ca-file {}\n",
                n.name,
                n.pg_port,
                n.api_port,
                ca.display()
            )
        })
        .collect();
    let cfg = format!(
        "global\n    maxconn 50\ndefaults\n    mode tcp\n    timeout client 1m\n    timeout connect 4s\n    timeout server 1m\n    timeout check 5s\n\
listen primary\n    bind 127.0.0.1:{port}\n    option httpchk GET /primary\n    http-check expect status 200\n    default-server inter 500ms fall 2 rise 1\n{servers}"
    );
    let file = c.dir.join("haproxy.cfg");
    std::fs::write(&file, cfg).expect("write haproxy.cfg");
    let log = std::fs::File::create(c.dir.join("haproxy.log")).expect("haproxy log");
    let child = Command::new(haproxy)
        .arg("-db")
        .arg("-f")
        .arg(&file)
        .stdout(log.try_clone().expect("dup"))
        .stderr(log)
        .spawn()
        .expect("start haproxy");
    let _guard = KillOnDrop(child);
    let primary_port = c.nodes[li].pg_port.to_string();
    let routed = wait_for(
        "HAProxy routes to the primary over check-ssl",
        T,
        || async {
            let (client, conn) = tokio_postgres::Config::new()
                .host("127.0.0.1")
                .port(port)
                .user("postgres")
                .password(SUPERPASS)
                .dbname("postgres")
                .connect_timeout(Duration::from_secs(2))
                .connect(tokio_postgres::NoTls)
                .await
                .ok()?;
            tokio::spawn(conn);
            let row = client
                .query_one(
                    "SELECT inet_server_port()::text, pg_is_in_recovery()::text",
                    &[],
                )
                .await
                .ok()?;
            Some((row.get::<_, String>(0), row.get::<_, String>(1)))
        },
    )
    .await;
    assert_eq!(routed, (primary_port, "false".to_string()));
}

struct KillOnDrop(Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `patronus list` and `patronus switchover --force` with `ctl` TLS settings.
async fn cli_over_https(
    c: &TestCluster,
    ca: &Path,
    admin: &certs::CertFiles,
    li: usize,
    ri: usize,
) {
    let ctl = c.dir.join("ctl.yml");
    let yaml = format!(
        "scope: {}\netcd3:\n  hosts: {}\nctl:\n  cacert: {}\n  certfile: {}\n  keyfile: {}\n  authentication:\n    username: admin\n    password: s3cret\n",
        c.scope,
        c.etcd.endpoint(),
        ca.display(),
        admin.cert.display(),
        admin.key.display()
    );
    std::fs::write(&ctl, &yaml).expect("write ctl config");
    // Without the CA the members' certificates are not trusted: the error names the member
    // and the reason; -k (insecure) skips the verification.
    let untrusting = c.dir.join("ctl-no-ca.yml");
    let no_ca: String = yaml
        .lines()
        .filter(|l| !l.contains("cacert"))
        .map(|l| format!("{l}\n"))
        .collect();
    std::fs::write(&untrusting, no_ca).expect("write ctl config");
    let member = c.nodes[li].name.as_str();
    let (ok, text) = cli(&untrusting, &["reload", &c.scope, member, "--force"]);
    assert!(!ok, "{text}");
    assert!(
        text.contains(member) && text.contains("UnknownIssuer"),
        "{text}"
    );
    let (ok, text) = cli(&untrusting, &["-k", "reload", &c.scope, member, "--force"]);
    assert!(ok && text.contains("Reload request received"), "{text}");
    let (ok, text) = cli(&ctl, &["list"]);
    assert!(ok, "{text}");
    assert!(
        text.contains(&c.nodes[li].name) && text.contains(&c.nodes[ri].name),
        "{text}"
    );
    let candidate = c.nodes[ri].name.clone();
    let (ok, text) = cli(&ctl, &["switchover", "--candidate", &candidate, "--force"]);
    assert!(ok, "{text}");
    wait_for("the candidate leads", T, || async {
        (c.leader().await.as_deref() == Some(candidate.as_str())).then_some(())
    })
    .await;
    assert_eq!(c.wait_healthy(T).await, ri);
}

/// Server certificates from a second CA, re-read on SIGHUP: a client trusting only that CA
/// connects.
async fn certificate_reload(c: &TestCluster, dir: &Path, admin: &certs::CertFiles) {
    let ca2 = TestCa::new(&dir.join("ca2"), "ca2");
    let api2 = ca2.server("api2");
    let api = c.opts.rest_tls.as_ref().expect("TLS").server.clone();
    std::fs::copy(&api2.cert, &api.cert).expect("replace the certificate");
    std::fs::copy(&api2.key, &api.key).expect("replace the key");
    reload_all(c, &|t| t);
    let only_ca2 = client(&ca2.ca_file, Some(admin), [127, 0, 0, 1]);
    let url = c.api_url(0, "/patroni");
    let code = wait_for("the new certificate is served", T, || async {
        call(&only_ca2, Method::GET, url.clone(), false, "".into())
            .await
            .ok()
            .map(|r| r.0)
    })
    .await;
    assert_eq!(code, 200);
    let only_ca1 = client(
        &c.opts.rest_tls.as_ref().expect("TLS").ca,
        Some(admin),
        [127, 0, 0, 1],
    );
    assert!(call(&only_ca1, Method::GET, url.clone(), false, "".into())
        .await
        .is_err());

    // A broken certificate on reload: the error names the file, the old one keeps serving.
    std::fs::write(&api.cert, "not a certificate\n").expect("break the certificate");
    reload_all(c, &|t| t);
    let file = api.cert.display().to_string();
    wait_for("the reload error naming the file", T, || async {
        let log = c.log_text(0);
        (log.contains("reload failed, keeping the old ones") && log.contains(&file)).then_some(())
    })
    .await;
    let fresh = client(&ca2.ca_file, Some(admin), [127, 0, 0, 1]);
    let r = call(&fresh, Method::GET, url, false, "".into()).await;
    assert_eq!(r.map(|r| r.0), Ok(200));
}
