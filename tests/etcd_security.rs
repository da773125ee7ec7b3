//! Issue #14 (etcd and agents secured): agents, `patronus list`, `plan`, `apply` and
//! `reconcile` against etcd over TLS with client certificates (3 etcd members) and against
//! etcd with RBAC users; wrong or missing credentials fail naming the endpoint; the
//! reconciler runs a switchover on agents that require Basic auth (a 401 is reported, not
//! retried); webhooks over https with a CA file; no password accepted in the repository.

mod common;

use common::certs::{CertFiles, TestCa};
use common::git::{commit, Daemon};
use common::*;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

const T: Duration = Duration::from_secs(120);

/// Runs the binary with `args` and `env`: (exit code, stdout + stderr).
fn run(args: &[&str], env: &[(&str, &str)]) -> (i32, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_patronus"))
        .args(args)
        .envs(env.iter().copied())
        .env_remove("PATRONICTL_CONFIG_FILE")
        .env("HOME", "/nonexistent")
        .stdin(Stdio::null())
        .output()
        .expect("run patronus");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.code().unwrap_or(-1), text)
}

fn s(p: &Path) -> &str {
    p.to_str().expect("utf-8 path")
}

/// `key` encrypted as PKCS#8 with `password` (`openssl pkcs8 -topk8`), beside it.
fn encrypt_key(key: &Path, password: &str) -> PathBuf {
    let out = key.with_extension("enc.key");
    let openssl = which("openssl").expect("openssl is not installed: apt-get install openssl");
    let status = Command::new(openssl)
        .args(["pkcs8", "-topk8", "-v2", "aes-256-cbc", "-in"])
        .arg(key)
        .arg("-out")
        .arg(&out)
        .arg("-passout")
        .arg(format!("pass:{password}"))
        .status()
        .expect("run openssl");
    assert!(status.success(), "openssl pkcs8 failed");
    let text = std::fs::read_to_string(&out).unwrap();
    assert!(text.contains("BEGIN ENCRYPTED PRIVATE KEY"), "{text}");
    out
}

/// A desired-state repository (committed) for the cluster of `c`.
fn repo(c: &TestCluster, settings: &str, cluster_yaml: &str) -> PathBuf {
    let dir = temp_dir("secrepo");
    git2::Repository::init(&dir).unwrap();
    std::fs::write(dir.join("patronus.yaml"), settings).unwrap();
    let f = dir.join(format!("clusters/{}/cluster.yaml", c.scope));
    std::fs::create_dir_all(f.parent().unwrap()).unwrap();
    std::fs::write(f, cluster_yaml).unwrap();
    commit(&dir, "initial");
    dir
}

/// The cluster options of a TLS etcd (3 members, client certificates required) and agents
/// using an encrypted client key; the agents' certificate files.
fn tls_opts(ca: &TestCa) -> (ClusterOpts, CertFiles) {
    let agent = ca.client("patronus");
    // The agents' key encrypted (PKCS#8), with etcd3.key_password.
    let encrypted = encrypt_key(&agent.key, "etcd-key-pw-it");
    let opts = ClusterOpts {
        members: 2,
        etcd_members: 3,
        etcd_security: EtcdSecurity {
            tls: Some(EtcdTlsFiles {
                ca: ca.ca_file.clone(),
                server: ca.server("etcd-server"),
                client_cert_auth: true,
                harness: ca.client("harness"),
            }),
        },
        etcd3_extra: format!(
            "  protocol: https\n  cacert: {}\n  cert: {}\n  key: {}\n  key_password: etcd-key-pw-it\n",
            s(&ca.ca_file),
            s(&agent.cert),
            s(&encrypted)
        ),
        ..Default::default()
    };
    (opts, agent)
}

/// Whether `text` names one of the etcd members (any: the first attempt may fail without
/// saying why and move on to the next member).
fn names_an_endpoint(c: &TestCluster, text: &str) -> bool {
    (0..c.etcd.len()).any(|i| {
        let url = format!("etcd https://127.0.0.1:{}: ", c.etcd.member(i).port);
        text.contains(&url)
    })
}

/// A `-c` file for `c` over https with `tls` (lines of the etcd3 section).
fn tls_ctl_file(c: &TestCluster, name: &str, tls: &str) -> PathBuf {
    let p = c.dir.join(name);
    let body = format!(
        "scope: {}\netcd3:\n  hosts: {}\n  protocol: https\n{tls}",
        c.scope,
        c.etcd.endpoints()
    );
    std::fs::write(&p, body).unwrap();
    p
}

/// `patronus list` with a -c file (patronictl's etcd3 keys); a CA that did not issue etcd's
/// certificate is refused at once, naming the endpoint. Returns the good -c file.
fn list_over_tls(c: &TestCluster, pki: &Path, ca: &TestCa, agent: &CertFiles) -> PathBuf {
    let (cert, key) = (s(&agent.cert), s(&agent.key));
    let identity = format!("  cert: {cert}\n  key: {key}\n");
    let good = tls_ctl_file(
        c,
        "ctl.yml",
        &format!("  cacert: {}\n{identity}", s(&ca.ca_file)),
    );
    let (code, text) = run(&["-c", s(&good), "list"], &[]);
    assert_eq!(code, 0, "{text}");
    assert!(
        text.contains("m1") && text.contains("m2") && text.contains("Leader"),
        "{text}"
    );
    let other = TestCa::new(pki, "other");
    let wrong = format!("  cacert: {}\n{identity}", s(&other.ca_file));
    let wrong_ca = tls_ctl_file(c, "wrong-ca.yml", &wrong);
    let (code, text) = run(&["-c", s(&wrong_ca), "list"], &[]);
    eprintln!("WRONG-CA: {text}");
    assert_eq!(code, 1, "{text}");
    assert!(names_an_endpoint(c, &text), "names the endpoint: {text}");
    assert!(text.contains("TLS handshake failed"), "says why: {text}");
    good
}

/// plan and apply: non-secret settings in patronus.yaml, the client certificate from
/// PATRONI_ETCD3_CERT/KEY; without it etcd refuses the connection, named, exit 1.
async fn gitops_over_tls(c: &TestCluster, ca: &TestCa, agent: &CertFiles) {
    let settings = format!(
        "dcs:\n  etcd3:\n    hosts: \"{}\"\n    protocol: https\n    cacert: {}\n  namespace: /service\n",
        c.etcd.endpoints(),
        s(&ca.ca_file)
    );
    let cluster = "config:\n  postgresql:\n    parameters:\n      work_mem: 9MB\n";
    let dir = repo(c, &settings, cluster);
    let env = [
        ("PATRONI_ETCD3_CERT", s(&agent.cert)),
        ("PATRONI_ETCD3_KEY", s(&agent.key)),
    ];
    let (code, text) = run(&["plan", "--repo", s(&dir)], &env);
    assert_eq!(code, 2, "changes planned: {text}");
    assert!(text.contains("work_mem"), "{text}");
    let (code, text) = run(&["plan", "--repo", s(&dir)], &[]);
    eprintln!("MISSING-CERT: {text}");
    assert_eq!(code, 1, "{text}");
    assert!(names_an_endpoint(c, &text), "names the endpoint: {text}");
    assert!(text.contains("TLS handshake failed"), "says why: {text}");
    let (code, text) = run(&["apply", "--repo", s(&dir)], &env);
    assert_eq!(code, 0, "{text}");
    let config = c.key_json("config").await.expect("config key");
    assert_eq!(config["postgresql"]["parameters"]["work_mem"], "9MB");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_etcd_with_client_certificates() {
    patronus::tls::install_provider();
    let pki = temp_dir("etcdpki");
    let ca = TestCa::new(&pki, "etcd");
    let (opts, agent) = tls_opts(&ca);
    let mut c = TestCluster::start("etcdtls", opts).await;
    let li = c.wait_healthy(T).await;
    let good = list_over_tls(&c, &pki, &ca, &agent);
    gitops_over_tls(&c, &ca, &agent).await;

    // Failover over TLS: the leader's agent and PostgreSQL die, the other member takes over.
    let other_name = c.nodes[1 - li].name.clone();
    c.kill_agent(li);
    c.kill_postmaster(li);
    wait_for("the other member to lead", T, || async {
        (c.leader().await? == other_name && c.writable(1 - li).await == Some(true)).then_some(())
    })
    .await;
    let (code, text) = run(&["-c", s(&good), "list"], &[]);
    assert_eq!(code, 0, "{text}");
    let leader_line = text
        .lines()
        .find(|l| l.contains("Leader"))
        .unwrap_or_default();
    assert!(leader_line.contains(&other_name), "{text}");
    for i in 0..2 {
        assert!(
            !c.log_text(i).contains("etcd-key-pw-it"),
            "the key password is not logged"
        );
    }
}

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

fn reconciler(repo: &Path, log: &Path, env: &[(&str, &str)]) -> Daemon {
    let f = std::fs::File::create(log).unwrap();
    Daemon(
        Command::new(env!("CARGO_BIN_EXE_patronus"))
            .args(["reconcile", "--repo"])
            .arg(repo)
            .envs(env.iter().copied())
            .env("HOME", "/nonexistent")
            .env("PATRONUS_MIN_TTL", "5")
            .stdout(f.try_clone().unwrap())
            .stderr(f)
            .stdin(Stdio::null())
            .spawn()
            .unwrap(),
    )
}

async fn op_state(c: &TestCluster, id: &str) -> Value {
    c.key_json("gitops").await.unwrap_or(Value::Null)["ops"][id].clone()
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
    let cand = c.nodes[1 - li].name.clone();
    let ops = dir.join(format!("clusters/{}/ops", c.scope));
    std::fs::create_dir_all(&ops).unwrap();
    let op = format!("type: switchover\ncandidate: {cand}\n");
    std::fs::write(ops.join("sw1.yaml"), &op).unwrap();
    commit(dir, "switchover without REST credentials");
    let d1 = reconciler(dir, &c.dir.join("rec1.log"), &CREDS);
    let st = wait_for("sw1 to fail", T, || async {
        let st = op_state(c, "sw1").await;
        (st["state"] == "failed").then_some(st)
    })
    .await;
    let outcome = st["outcome"].as_str().unwrap_or_default();
    assert!(outcome.contains("refused the credentials"), "{st}");
    drop(d1);
    std::fs::write(ops.join("sw2.yaml"), &op).unwrap();
    commit(dir, "switchover with REST credentials");
    let mut env = CREDS.to_vec();
    env.extend([
        ("PATRONI_CTL_USERNAME", "admin"),
        ("PATRONI_CTL_PASSWORD", "rest-pw-it"),
    ]);
    let d2 = reconciler(dir, &c.dir.join("rec2.log"), &env);
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
async fn rbac_etcd_rest_auth_and_https_webhooks() {
    patronus::tls::install_provider();
    let opts = ClusterOpts {
        members: 2,
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
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_reconciler_reaches_https_agents_with_basic_auth() {
    use base64::Engine;
    use patronus::gitops::connection::AgentAccess;
    use patronus::gitops::reconcile::exec::Exec;
    patronus::tls::install_provider();
    let ca = TestCa::new(&temp_dir("agentpki"), "agents");
    let (port, requests) = https_receiver(&ca).await;
    let member = patronus::dcs::MemberEntry {
        name: "node1".into(),
        data: patronus::dcs::Member {
            api_url: format!("https://127.0.0.1:{port}/patroni"),
            ..Default::default()
        },
        version: 0,
        lease: 0,
    };
    let access = AgentAccess {
        auth: Some(("admin".into(), "rest-pw-it".into())),
        tls: patronus::tls::ClientTls {
            cacert: Some(ca.ca_file.clone()),
            ..Default::default()
        },
    };
    let body = serde_json::json!({"restart_pending": true});
    let (code, text) = Exec::new(&access)
        .unwrap()
        .post(&member, "/restart", &body)
        .await;
    assert_eq!(code, 200, "{text}");
    let request = requests
        .lock()
        .unwrap()
        .first()
        .cloned()
        .unwrap_or_default();
    assert!(request.starts_with("POST /restart "), "{request}");
    let basic = base64::engine::general_purpose::STANDARD.encode("admin:rest-pw-it");
    assert!(
        request.to_ascii_lowercase().contains(&format!(
            "authorization: basic {}",
            basic.to_ascii_lowercase()
        )),
        "{request}"
    );
    // Without the CA the agent's certificate is not trusted: no request, the reason given.
    let untrusted = Exec::new(&AgentAccess::default()).unwrap();
    let (code, text) = untrusted.post(&member, "/restart", &body).await;
    assert_eq!(code, 0, "{text}");
    assert!(text.contains("UnknownIssuer"), "{text}");
    assert_eq!(requests.lock().unwrap().len(), 1);
}

#[test]
fn a_password_in_the_repository_is_refused() {
    let dir = temp_dir("pwrepo");
    std::fs::write(
        dir.join("patronus.yaml"),
        "dcs:\n  etcd3:\n    hosts: [\"127.0.0.1:2379\"]\n    username: patronus\n    password: repo-secret-it\n",
    )
    .unwrap();
    let f = dir.join("clusters/acme/cluster.yaml");
    std::fs::create_dir_all(f.parent().unwrap()).unwrap();
    std::fs::write(
        &f,
        "config:\n  postgresql:\n    parameters:\n      password_encryption: scram-sha-256\n      work_mem: 4MB\n",
    )
    .unwrap();
    for cmd in ["validate", "plan"] {
        let args: Vec<&str> = if cmd == "validate" {
            vec![cmd, s(&dir)]
        } else {
            vec![cmd, "--repo", s(&dir)]
        };
        let (code, text) = run(&args, &[]);
        assert_eq!(code, 1, "{cmd}: {text}");
        assert!(
            text.contains("patronus.yaml: dcs.etcd3.password: "),
            "{cmd}: {text}"
        );
        assert!(
            text.contains("PATRONI_ETCD3_PASSWORD"),
            "points to the alternative: {text}"
        );
        assert!(!text.contains("repo-secret-it"), "{cmd}: {text}");
        assert!(
            !text.contains("password_encryption"),
            "not a secret: {text}"
        );
    }
}
