//! The RBAC case: 3 members on an etcd with users (the agents' password in `etcd3`, the
//! CLI's and the reconciler's in `PATRONI_ETCD3_USERNAME/PASSWORD`), a wrong password
//! named with the endpoint, a declared switchover against agents that require Basic auth
//! (401 without `PATRONI_CTL_*`, then done), an https webhook trusting a CA file, an etcd
//! restart (tokens re-acquired) and a kill -9 failover.

use super::*;
use std::sync::{Arc, Mutex};

/// An HTTPS receiver with a certificate of `ca`: the requests it got (head and body), each
/// answered 200.
async fn https_receiver(ca: &TestCa) -> (u16, Arc<Mutex<Vec<String>>>) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let files = ca.server("hooks");
    let cfg = patronus::tls::server_config(&patronus::tls::ServerTls {
        certfile: files.cert,
        keyfile: Some(files.key),
        keyfile_password: None,
        cafile: None,
        verify_client: patronus::tls::ClientCertMode::None,
    })
    .expect("receiver TLS");
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(cfg));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let bodies = Arc::new(Mutex::new(Vec::new()));
    let got = bodies.clone();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let (acceptor, got) = (acceptor.clone(), got.clone());
            tokio::spawn(async move {
                let Ok(mut tls) = acceptor.accept(tcp).await else {
                    return;
                };
                let mut buf = Vec::new();
                let mut chunk = [0u8; 4096];
                loop {
                    let text = String::from_utf8_lossy(&buf).to_string();
                    if let Some((head, body)) = text.split_once("\r\n\r\n") {
                        let len = head
                            .lines()
                            .find_map(|l| {
                                let (k, v) = l.split_once(':')?;
                                k.eq_ignore_ascii_case("content-length")
                                    .then(|| v.trim().parse::<usize>().ok())?
                            })
                            .unwrap_or(0);
                        if body.len() >= len {
                            got.lock().unwrap().push(text.clone());
                            let ok =
                                "HTTP/1.1 200 OK\r\ncontent-length: 0\r\nconnection: close\r\n\r\n";
                            let _ = tls.write_all(ok.as_bytes()).await;
                            let _ = tls.shutdown().await;
                            return;
                        }
                    }
                    match tls.read(&mut chunk).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => buf.extend_from_slice(&chunk[..n]),
                    }
                }
            });
        }
    });
    (port, bodies)
}

/// An agent of `c`'s member 0 with another name and REST port and a wrong etcd password:
/// its log says why it cannot connect, naming the endpoint.
async fn agent_with_wrong_password(c: &TestCluster, endpoint: &str) {
    let n = &c.nodes[0];
    let yaml = std::fs::read_to_string(&n.config).unwrap();
    let yaml = yaml
        .replace("name: m1", "name: m9")
        .replace(
            &format!("127.0.0.1:{}", n.api_port),
            &format!("127.0.0.1:{}", free_port()),
        )
        .replace("password: etcd-pw-it", "password: wrong-pw");
    let cfg = c.dir.join("m9.yml");
    std::fs::write(&cfg, yaml).unwrap();
    let log = c.dir.join("m9.log");
    let f = std::fs::File::create(&log).unwrap();
    let _agent = Daemon(
        Command::new(env!("CARGO_BIN_EXE_patronus"))
            .arg("agent")
            .arg("-c")
            .arg(&cfg)
            .stdout(f.try_clone().unwrap())
            .stderr(f)
            .spawn()
            .unwrap(),
    );
    let text = wait_for("the agent to report the refusal", T, || async {
        let t = std::fs::read_to_string(&log).ok()?;
        t.contains("authentication failed").then_some(t)
    })
    .await;
    assert!(text.contains(endpoint), "names the endpoint: {text}");
    assert!(text.contains("ERROR"), "logged as an error: {text}");
    assert!(
        !text.contains("wrong-pw"),
        "the password is not logged: {text}"
    );
}

const CREDS: [(&str, &str); 2] = [
    ("PATRONI_ETCD3_USERNAME", "patronus"),
    ("PATRONI_ETCD3_PASSWORD", "etcd-pw-it"),
];
const WRONG: [(&str, &str); 2] = [
    ("PATRONI_ETCD3_USERNAME", "patronus"),
    ("PATRONI_ETCD3_PASSWORD", "nope-it"),
];

/// The CLI with the credentials from PATRONI_ETCD3_USERNAME/PASSWORD; a wrong one is named.
/// Returns the -c file (hosts and scope only).
fn list_with_env_credentials(c: &TestCluster, endpoint: &str) -> PathBuf {
    let ctl = c.dir.join("ctl.yml");
    let body = format!(
        "scope: {}\netcd3:\n  hosts: {}\n",
        c.scope,
        c.etcd.endpoint()
    );
    std::fs::write(&ctl, body).unwrap();
    let (code, text) = run(&["-c", s(&ctl), "list"], &CREDS);
    assert_eq!(code, 0, "{text}");
    assert!(text.contains("Leader"), "{text}");
    let (code, text) = run(&["-c", s(&ctl), "list"], &WRONG);
    assert_eq!(code, 1, "{text}");
    assert!(
        text.contains(endpoint) && text.contains("authentication failed"),
        "{text}"
    );
    assert!(!text.contains("nope-it"), "{text}");
    ctl
}

/// A declared switchover: without REST credentials the agent answers 401 and the operation
/// fails saying so; with PATRONI_CTL_USERNAME/PASSWORD the next one runs. Returns the
/// running reconciler.
async fn switchover_with_basic_auth(c: &TestCluster, dir: &Path, li: usize) -> Daemon {
    let cand = c.nodes[(li + 1) % c.nodes.len()].name.clone();
    declare_switchover(c, dir, "sw1", &cand);
    let d1 = reconciler(&[], dir, &c.dir.join("rec1.log"), &CREDS);
    let st = wait_for("sw1 to fail", T, || async {
        let st = op_state(c, "sw1").await;
        (st["state"] == "failed").then_some(st)
    })
    .await;
    let outcome = st["outcome"].as_str().unwrap_or_default();
    assert!(outcome.contains("refused the credentials"), "{st}");
    drop(d1);
    declare_switchover(c, dir, "sw2", &cand);
    let mut env = CREDS.to_vec();
    env.extend(REST_CREDS);
    let d2 = reconciler(&[], dir, &c.dir.join("rec2.log"), &env);
    wait_for("the switchover", T, || async {
        (c.leader().await? == cand && op_state(c, "sw2").await["state"] == "done").then_some(())
    })
    .await;
    d2
}

/// etcd restarts: its simple tokens are gone; the agents authenticate again and go on (a
/// DCS write through the leader's agent succeeds, the leader is kept).
async fn etcd_restart_reauthenticates(c: &mut TestCluster) {
    let leader = c.leader().await.expect("a leader");
    c.etcd.kill();
    c.etcd.restart().await;
    let l = c.index(&leader);
    let c = &*c;
    wait_for(
        "a DCS write through the agent after the restart",
        T,
        || async {
            let body = r#"{"loop_wait": 2}"#;
            let (code, _) = c.send(l, reqwest::Method::PATCH, "/config", body).await;
            (code == 200).then_some(())
        },
    )
    .await;
    wait_for("the config written", T, || async {
        (c.key_json("config").await?["loop_wait"] == 2).then_some(())
    })
    .await;
    assert_eq!(
        c.leader().await.as_deref(),
        Some(leader.as_str()),
        "leader kept"
    );
    assert!(
        !c.log_text(l).contains("etcd-pw-it"),
        "the etcd password is not logged"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn etcd_users_switchover_webhooks_and_failover() {
    patronus::tls::install_provider();
    let opts = ClusterOpts {
        members: 3,
        etcd_user: Some(("patronus".into(), "etcd-pw-it".into())),
        etcd3_extra: "  username: patronus\n  password: etcd-pw-it\n".into(),
        rest_auth: Some(("admin".into(), "rest-pw-it".into())),
        ..Default::default()
    };
    let mut c = TestCluster::start("etcdrbac", opts).await;
    let li = c.wait_healthy(T).await;
    let endpoint = format!("http://127.0.0.1:{}", c.etcd.port);
    agent_with_wrong_password(&c, &endpoint).await;
    let ctl = list_with_env_credentials(&c, &endpoint);

    // The repository: hosts and an https webhook trusting the test CA.
    let ca = TestCa::new(&temp_dir("hookpki"), "hooks");
    let (hook_port, bodies) = https_receiver(&ca).await;
    let settings = format!(
        "dcs:\n  etcd3:\n    hosts: [\"{}\"]\n  namespace: /service\nnotify:\n  webhooks:\n    - url: https://127.0.0.1:{hook_port}/hook\n      cacert: {}\n",
        c.etcd.endpoint(),
        s(&ca.ca_file)
    );
    let cluster = "config:\n  postgresql:\n    parameters:\n      work_mem: 7MB\n";
    let dir = repo(&c, &settings, cluster);
    let (code, text) = run(&["-c", s(&ctl), "plan", "--repo", s(&dir)], &CREDS);
    assert_eq!(code, 2, "{text}");
    let (code, text) = run(&["plan", "--repo", s(&dir)], &WRONG);
    assert_eq!(code, 1, "{text}");
    assert!(
        text.contains(&endpoint) && text.contains("authentication failed"),
        "{text}"
    );
    let reconciler = switchover_with_basic_auth(&c, &dir, li).await;

    // A commit with a secret is refused; the webhook (https, test CA) says so without it.
    let secret = "hook-leak-it";
    let leaky = format!("{cluster}members:\n  m1:\n    tags:\n      api_token: {secret}\n");
    std::fs::write(
        dir.join(format!("clusters/{}/cluster.yaml", c.scope)),
        leaky,
    )
    .unwrap();
    commit(&dir, "a secret by mistake");
    let body = wait_for("the invalid_commit webhook", T, || async {
        let got = bodies.lock().unwrap().clone();
        got.into_iter().find(|b| b.contains("invalid_commit"))
    })
    .await;
    assert!(body.contains("api_token"), "{body}");
    assert!(!body.contains(secret), "{body}");
    drop(reconciler);
    etcd_restart_reauthenticates(&mut c).await;

    // Failover on the RBAC etcd: kill -9 of the leader; `list` with PATRONI_ETCD3_* shows
    // one of the two others leading.
    c.wait_healthy(T).await;
    let li = c.index(&c.leader().await.expect("a leader"));
    failover(&mut c, li, &["-c", s(&ctl), "list"], &CREDS).await;
}
